import { createServer, type Server, type Socket } from 'node:net';

/**
 * A small HTTP/1.1 server (RFC 9112) for the OCSP responder. node:http builds a stream object
 * pair per request, which costs about three times what nginx spends serving the same bytes;
 * the responder answers small, mostly cached documents and has a throughput target against
 * nginx, so it parses requests itself and writes each response in one write.
 *
 * It is strict rather than lenient: anything it does not understand ends the connection after
 * a 4xx or 5xx. It accepts origin- and absolute-form targets, Content-Length and chunked
 * bodies up to a limit, `Expect: 100-continue`, pipelined requests (answered in order) and
 * keep-alive; it sends Date, Content-Length and, when closing, `Connection: close`.
 */

/** What a handler sees of a request. */
export interface HttpRequest {
  readonly method: string;
  /** The target's path, without the query; starts with `/`. */
  readonly path: string;
  /** A request header by lower-case name; repeated fields joined with `, ` (RFC 9110 §5.3). */
  header(name: string): string | undefined;
  readonly body: Buffer;
}

/** What a handler answers. */
export interface HttpResponse {
  status: number;
  /** Lower-case names; Date, Content-Length and Connection are set by the server. */
  headers?: Readonly<Record<string, string | number>>;
  /** A Buffer, or a latin1 string (written with the head in one piece). */
  body?: Buffer | string;
  /** Close the connection after this response. */
  close?: boolean;
}

/** Answers synchronously when it can (a cache hit), so that no promise is made per request. */
export type HttpHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

export interface Http1ServerOptions {
  handler: HttpHandler;
  /** Largest request body; a larger one gets 413 and the connection is closed. */
  maxBodyBytes: number;
  /** @default 16384, as node:http; a larger request line and headers get 431 */
  maxHeadBytes?: number;
  /** An idle keep-alive connection is closed after this long. @default 5000 */
  keepAliveTimeoutMs?: number;
  /** A request must arrive whole within this long of its first byte. @default 10000 */
  requestTimeoutMs?: number;
  /** Called when a handler throws or rejects; the client gets 500. */
  onError?: (err: unknown) => void;
}

const reasons: Record<number, string> = {
  100: 'Continue',
  200: 'OK',
  304: 'Not Modified',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  411: 'Length Required',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

/** RFC 9110 §5.6.2 token. */
const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 §5.5 field-value: visible characters, spaces, tabs and obs-text. */
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;
/** RFC 9112 §3: method SP request-target SP HTTP-version. */
const requestLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;

let dateSecond = 0;
let dateValue = '';

/** RFC 9110 §6.6.1: the Date of a response, formatted once a second. */
function httpDateNow(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}

class RequestImpl implements HttpRequest {
  body: Buffer = Buffer.alloc(0);

  constructor(
    readonly method: string,
    readonly path: string,
    private readonly fields: Map<string, string>,
  ) {}

  header(name: string): string | undefined {
    return this.fields.get(name);
  }
}

/** A request's head, parsed; or why it cannot be served. */
type Head =
  | {
      ok: true;
      request: RequestImpl;
      keepAlive: boolean;
      /** An HTTP/1.0 client that asked to keep the connection must be told it is kept. */
      announceKeepAlive: boolean;
      bodyLength: number | 'chunked';
    }
  | { ok: false; status: number };

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const line = requestLine.exec(lines[0]);
  if (!line) return { ok: false, status: 400 };

  const [, method, target, major, minor] = line;
  if (major !== '1') return { ok: false, status: 505 };
  const http11 = minor !== '0';

  // RFC 9112 §3.2: origin-form, or absolute-form whose path is what matters here.
  let pathAndQuery = target;
  if (!target.startsWith('/')) {
    const absolute = /^https?:\/\/[^/?#]+(\/[^#]*)?$/i.exec(target);
    if (!absolute) return { ok: false, status: 400 };
    pathAndQuery = absolute[1] ?? '/';
  }
  const query = pathAndQuery.indexOf('?');
  const path = query === -1 ? pathAndQuery : pathAndQuery.slice(0, query);

  const fields = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const field = lines[i];
    const colon = field.indexOf(':');
    // No obs-fold (RFC 9112 §5.2) and no whitespace before the colon (§5.1).
    if (colon <= 0) return { ok: false, status: 400 };
    const name = field.slice(0, colon);
    const value = field.slice(colon + 1).trim();
    if (!token.test(name) || !fieldValue.test(value)) return { ok: false, status: 400 };

    const lower = name.toLowerCase();
    const held = fields.get(lower);
    fields.set(lower, held === undefined ? value : `${held}, ${value}`);
  }

  // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused.
  if (http11 && !fields.has('host')) return { ok: false, status: 400 };

  const connection = (fields.get('connection') ?? '').toLowerCase().split(/\s*,\s*/);
  const keepAlive = http11 ? !connection.includes('close') : connection.includes('keep-alive');

  const transferEncoding = fields.get('transfer-encoding');
  const contentLength = fields.get('content-length');
  let bodyLength: number | 'chunked' = 0;
  if (transferEncoding !== undefined) {
    // RFC 9112 §6.1: both at once is a smuggling attempt; only chunked is implemented.
    if (contentLength !== undefined) return { ok: false, status: 400 };
    if (transferEncoding.toLowerCase() !== 'chunked') return { ok: false, status: 501 };
    bodyLength = 'chunked';
  } else if (contentLength !== undefined) {
    // Repeated equal values are allowed (RFC 9112 §6.3); anything else is not.
    const values = new Set(contentLength.split(/\s*,\s*/));
    const [only] = values;
    if (values.size !== 1 || !/^\d{1,15}$/.test(only)) return { ok: false, status: 400 };
    bodyLength = Number(only);
  }

  const request = new RequestImpl(method, path, fields);
  return { ok: true, request, keepAlive, announceKeepAlive: keepAlive && !http11, bodyLength };
}

/**
 * Decodes a whole chunked body starting at `from` (RFC 9112 §7.1), ignoring extensions and
 * trailers. `incomplete` until the last chunk and the trailer section are all there.
 */
function decodeChunked(
  buf: Buffer,
  from: number,
  maxBytes: number,
): { body: Buffer; end: number } | 'incomplete' | 'invalid' | 'tooLarge' {
  const parts: Buffer[] = [];
  let size = 0;
  let at = from;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', at);
    if (lineEnd === -1) return buf.length - at > 1024 ? 'invalid' : 'incomplete';
    const sizeText = buf.subarray(at, lineEnd).toString('latin1').split(';')[0].trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return 'invalid';
    const chunkSize = parseInt(sizeText, 16);

    if (chunkSize === 0) {
      // Trailer fields, then an empty line.
      let trailerAt = lineEnd + 2;
      for (;;) {
        const end = buf.indexOf('\r\n', trailerAt);
        if (end === -1) return buf.length - trailerAt > 8192 ? 'invalid' : 'incomplete';
        if (end === trailerAt) return { body: Buffer.concat(parts, size), end: end + 2 };
        trailerAt = end + 2;
      }
    }

    size += chunkSize;
    if (size > maxBytes) return 'tooLarge';
    const dataStart = lineEnd + 2;
    if (buf.length < dataStart + chunkSize + 2) return 'incomplete';
    if (buf[dataStart + chunkSize] !== 0x0d || buf[dataStart + chunkSize + 1] !== 0x0a) {
      return 'invalid';
    }
    parts.push(buf.subarray(dataStart, dataStart + chunkSize));
    at = dataStart + chunkSize + 2;
  }
}

/** One client connection: reads requests in order and answers each before the next. */
class Connection {
  #buf: Buffer = Buffer.alloc(0);
  /** Where the search for the end of the head resumes, so a slow head is not rescanned. */
  #scanFrom = 0;
  #busy = false;
  #closed = false;
  #ended = false;
  #continued = false;
  #draining = false;
  #deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly o: Required<Omit<Http1ServerOptions, 'onError'>> & Http1ServerOptions,
  ) {
    socket.setNoDelay(true);
    // Idle between requests: a handler still at work (an SA call) is not idleness.
    socket.setTimeout(o.keepAliveTimeoutMs, () => {
      if (!this.#busy) socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      this.#ended = true;
      if (!this.#busy) this.#close();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.#closed = true;
      clearTimeout(this.#deadline);
    });
  }

  /** Ends the connection now when idle, or after the response under way. */
  drain(): void {
    this.#draining = true;
    if (!this.#busy) this.#close();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    // Pipelined requests wait while one is answered; past this much, stop reading for now.
    if (this.#busy && this.#buf.length > this.o.maxHeadBytes + this.o.maxBodyBytes) {
      this.socket.pause();
    }
    if (!this.#busy) this.#next();
  }

  /** Serves every complete request in the buffer, one at a time. */
  #next(): void {
    while (!this.#busy && !this.#closed && this.#buf.length > 0) {
      const headEnd = this.#buf.indexOf('\r\n\r\n', this.#scanFrom);
      if (headEnd === -1) {
        if (this.#buf.length > this.o.maxHeadBytes) return this.#fail(431);
        this.#scanFrom = Math.max(0, this.#buf.length - 3);
        return this.#armDeadline();
      }
      if (headEnd > this.o.maxHeadBytes) return this.#fail(431);

      const head = parseHead(this.#buf.subarray(0, headEnd).toString('latin1'));
      if (!head.ok) return this.#fail(head.status);

      const bodyStart = headEnd + 4;
      let end: number;
      if (head.bodyLength === 'chunked') {
        const decoded = decodeChunked(this.#buf, bodyStart, this.o.maxBodyBytes);
        if (decoded === 'invalid') return this.#fail(400);
        if (decoded === 'tooLarge') return this.#fail(413);
        if (decoded === 'incomplete') return this.#awaitBody(head.request);
        head.request.body = decoded.body;
        end = decoded.end;
      } else {
        if (head.bodyLength > this.o.maxBodyBytes) return this.#fail(413);
        if (this.#buf.length < bodyStart + head.bodyLength) return this.#awaitBody(head.request);
        head.request.body = this.#buf.subarray(bodyStart, bodyStart + head.bodyLength);
        end = bodyStart + head.bodyLength;
      }

      this.#buf = this.#buf.subarray(end);
      this.#scanFrom = 0;
      this.#continued = false;
      clearTimeout(this.#deadline);
      this.#deadline = undefined;
      this.#dispatch(head.request, head.keepAlive, head.announceKeepAlive);
    }
    if (this.#ended && !this.#busy) this.#close();
  }

  /** A request begun must be whole within requestTimeoutMs, however slowly it trickles in. */
  #armDeadline(): void {
    if (this.#deadline) return;
    this.#deadline = setTimeout(() => this.#fail(408), this.o.requestTimeoutMs);
    this.#deadline.unref();
  }

  /** RFC 9110 §10.1.1: a client waiting on `Expect: 100-continue` is told to send. */
  #awaitBody(request: RequestImpl): void {
    this.#armDeadline();
    const expect = request.header('expect');
    if (expect === undefined || this.#continued) return;
    if (expect.toLowerCase() !== '100-continue') return this.#fail(417);
    this.#continued = true;
    this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  #dispatch(request: RequestImpl, keepAlive: boolean, announce: boolean): void {
    this.#busy = true;
    let answer: HttpResponse | Promise<HttpResponse>;
    try {
      answer = this.o.handler(request);
    } catch (err) {
      this.o.onError?.(err);
      answer = { status: 500, close: true };
    }

    if (answer instanceof Promise) {
      answer.then(
        (response) => this.#respond(request, response, keepAlive, announce),
        (err: unknown) => {
          this.o.onError?.(err);
          this.#respond(request, { status: 500, close: true }, keepAlive, announce);
        },
      );
    } else {
      this.#respond(request, answer, keepAlive, announce);
    }
  }

  #respond(
    request: RequestImpl,
    response: HttpResponse,
    keepAlive: boolean,
    announce: boolean,
  ): void {
    if (this.#closed) return;
    const close = !keepAlive || response.close === true || this.#ended || this.#draining;
    const connection = close ? 'close' : announce ? 'keep-alive' : null;
    const flushed = this.#write(serialize(response, request.method === 'HEAD', connection));

    if (close) return this.#close();
    const resume = () => {
      this.#busy = false;
      this.socket.resume();
      this.#next();
    };
    if (flushed) resume();
    else this.socket.once('drain', resume);
  }

  /** Answers an unreadable request and closes: what follows it cannot be trusted. */
  #fail(status: number): void {
    if (this.#closed) return;
    this.#busy = true;
    this.#write(serialize({ status }, false, 'close'));
    this.#close();
  }

  #write(data: string | Buffer): boolean {
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#deadline);
    this.socket.end();
  }
}

/** The whole response as one write: a latin1 string, or head and Buffer body concatenated. */
function serialize(
  response: HttpResponse,
  omitBody: boolean,
  connection: 'close' | 'keep-alive' | null,
): string | Buffer {
  const body = response.body ?? '';
  const reason = reasons[response.status] ?? 'Unknown';
  let head = `HTTP/1.1 ${response.status} ${reason}\r\ndate: ${httpDateNow()}\r\n`;
  const headers = response.headers;
  if (headers) for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
  // RFC 9110 §8.6: a 304 carries no body and says nothing of its length.
  if (response.status !== 304) {
    const length = typeof body === 'string' ? Buffer.byteLength(body, 'latin1') : body.length;
    head += `content-length: ${length}\r\n`;
  }
  head += connection ? `connection: ${connection}\r\n\r\n` : '\r\n';

  if (omitBody || response.status === 304) return head;
  if (typeof body === 'string') return head + body;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

export interface Http1Server {
  /** Call `listen` on it. */
  readonly server: Server;
  /** Stops accepting, ends idle connections, and resolves once every connection is gone. */
  close(): Promise<void>;
}

/** A net.Server speaking HTTP/1.1 to `options.handler`. */
export function createHttp1Server(options: Http1ServerOptions): Http1Server {
  const resolved = {
    maxHeadBytes: 16_384,
    keepAliveTimeoutMs: 5_000,
    requestTimeoutMs: 10_000,
    onError: () => undefined,
    ...options,
  };
  if (!Number.isInteger(resolved.maxBodyBytes) || resolved.maxBodyBytes < 0) {
    const got = options.maxBodyBytes;
    throw new Error(`expected maxBodyBytes to be a non-negative integer, got ${got}`);
  }
  const connections = new Set<Connection>();
  const server = createServer((socket) => {
    const connection = new Connection(socket, resolved);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  });

  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const connection of connections) connection.drain();
      }),
  };
}
