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
  /**
   * The handler returns this very object again, unchanged, for as long as it is valid: the
   * server may then keep its serialized form and reuse it while the Date second lasts.
   */
  reused?: boolean;
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
/** RFC 9112 §3.2: a request-target is visible characters, no spaces. */
const requestTarget = /^[\x21-\x7e]+$/;
/** RFC 9112 §2.3: HTTP-version, its two digits captured. */
const httpVersion = /^HTTP\/(\d)\.(\d)$/;

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

const empty = Buffer.alloc(0);

class RequestImpl implements HttpRequest {
  body: Buffer = empty;

  constructor(
    readonly method: string,
    readonly path: string,
    private readonly fields: Map<string, string>,
    readonly keepAlive: boolean,
    /** An HTTP/1.0 client that asked to keep the connection must be told it is kept. */
    readonly announceKeepAlive: boolean,
    readonly bodyLength: number | 'chunked',
  ) {}

  header(name: string): string | undefined {
    return this.fields.get(name);
  }
}

/** Whether the connection stays open after this request (RFC 9112 §9.3). */
function keepsAlive(connection: string | undefined, http11: boolean): boolean {
  if (connection === undefined) return http11;
  const lower = connection.toLowerCase();
  // What nearly every client sends, without splitting the list.
  if (lower === 'keep-alive') return true;
  if (lower === 'close') return false;
  const options = lower.split(/\s*,\s*/);
  return http11 ? !options.includes('close') : options.includes('keep-alive');
}

/**
 * Reads a request's head (without its final empty line): the request, or the status that
 * refuses it. Written with indexOf rather than one split and a capturing regex, as it runs
 * for every request.
 */
function parseHead(text: string): RequestImpl | number {
  const lineEnd = text.indexOf('\r\n');
  const line = lineEnd === -1 ? text : text.slice(0, lineEnd);

  // RFC 9112 §3: method SP request-target SP HTTP-version, nothing else.
  const methodEnd = line.indexOf(' ');
  const targetEnd = line.indexOf(' ', methodEnd + 1);
  if (methodEnd === -1 || targetEnd === -1) return 400;
  const method = line.slice(0, methodEnd);
  const target = line.slice(methodEnd + 1, targetEnd);
  const version = line.slice(targetEnd + 1);
  if (!token.test(method) || !requestTarget.test(target)) return 400;
  let http11 = true;
  if (version !== 'HTTP/1.1') {
    const digits = httpVersion.exec(version);
    if (!digits) return 400;
    if (digits[1] !== '1') return 505;
    http11 = digits[2] !== '0';
  }

  // RFC 9112 §3.2: origin-form, or absolute-form whose path is what matters here.
  let pathAndQuery = target;
  if (target.charCodeAt(0) !== 0x2f) {
    const absolute = /^https?:\/\/[^/?#]+(\/[^#]*)?$/i.exec(target);
    if (!absolute) return 400;
    pathAndQuery = absolute[1] ?? '/';
  }
  const query = pathAndQuery.indexOf('?');
  const path = query === -1 ? pathAndQuery : pathAndQuery.slice(0, query);

  const fields = new Map<string, string>();
  let at = lineEnd === -1 ? text.length : lineEnd + 2;
  while (at < text.length) {
    const next = text.indexOf('\r\n', at);
    const end = next === -1 ? text.length : next;
    const colon = text.indexOf(':', at);
    // No obs-fold (RFC 9112 §5.2) and no whitespace before the colon (§5.1).
    if (colon <= at || colon >= end) return 400;
    const name = text.slice(at, colon);
    const value = text.slice(colon + 1, end).trim();
    if (!token.test(name) || !fieldValue.test(value)) return 400;

    const lower = name.toLowerCase();
    const held = fields.get(lower);
    fields.set(lower, held === undefined ? value : `${held}, ${value}`);
    at = end + 2;
  }

  // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused.
  if (http11 && !fields.has('host')) return 400;

  const keepAlive = keepsAlive(fields.get('connection'), http11);

  const transferEncoding = fields.get('transfer-encoding');
  const contentLength = fields.get('content-length');
  let bodyLength: number | 'chunked' = 0;
  if (transferEncoding !== undefined) {
    // RFC 9112 §6.1: both at once is a smuggling attempt; only chunked is implemented.
    if (contentLength !== undefined) return 400;
    if (transferEncoding.toLowerCase() !== 'chunked') return 501;
    bodyLength = 'chunked';
  } else if (contentLength !== undefined) {
    // Repeated equal values are allowed (RFC 9112 §6.3); anything else is not.
    const values = new Set(contentLength.split(/\s*,\s*/));
    const [only] = values;
    if (values.size !== 1 || !/^\d{1,15}$/.test(only)) return 400;
    bodyLength = Number(only);
  }

  const announce = keepAlive && !http11;
  return new RequestImpl(method, path, fields, keepAlive, announce, bodyLength);
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
  #buf: Buffer = empty;
  /** Where the search for the end of the head resumes, so a slow head is not rescanned. */
  #scanFrom = 0;
  #busy = false;
  #closed = false;
  #ended = false;
  #continued = false;
  #draining = false;
  #deadline: NodeJS.Timeout | undefined;
  /** The request being answered, until its response is written. */
  #request: RequestImpl | undefined;

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
      const buf = this.#buf;
      let head: string | undefined;
      let headEnd: number;
      if (this.#scanFrom === 0) {
        // A head that came in whole, the usual case: one decode, then a string search.
        const window = buf.toString('latin1', 0, Math.min(buf.length, this.o.maxHeadBytes + 4));
        headEnd = window.indexOf('\r\n\r\n');
        if (headEnd !== -1) head = window.slice(0, headEnd);
      } else {
        headEnd = buf.indexOf('\r\n\r\n', this.#scanFrom);
        if (headEnd !== -1) head = buf.toString('latin1', 0, headEnd);
      }
      if (head === undefined) {
        if (buf.length > this.o.maxHeadBytes) return this.#fail(431);
        this.#scanFrom = Math.max(0, buf.length - 3);
        return this.#armDeadline();
      }
      if (headEnd > this.o.maxHeadBytes) return this.#fail(431);

      const request = parseHead(head);
      if (typeof request === 'number') return this.#fail(request);

      const bodyStart = headEnd + 4;
      let end: number;
      if (request.bodyLength === 'chunked') {
        const decoded = decodeChunked(buf, bodyStart, this.o.maxBodyBytes);
        if (decoded === 'invalid') return this.#fail(400);
        if (decoded === 'tooLarge') return this.#fail(413);
        if (decoded === 'incomplete') return this.#awaitBody(request);
        request.body = decoded.body;
        end = decoded.end;
      } else {
        if (request.bodyLength > this.o.maxBodyBytes) return this.#fail(413);
        if (buf.length < bodyStart + request.bodyLength) return this.#awaitBody(request);
        if (request.bodyLength > 0) {
          request.body = buf.subarray(bodyStart, bodyStart + request.bodyLength);
        }
        end = bodyStart + request.bodyLength;
      }

      this.#buf = end === buf.length ? empty : buf.subarray(end);
      this.#scanFrom = 0;
      this.#continued = false;
      if (this.#deadline !== undefined) {
        clearTimeout(this.#deadline);
        this.#deadline = undefined;
      }
      this.#dispatch(request);
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

  #dispatch(request: RequestImpl): void {
    this.#busy = true;
    this.#request = request;
    let answer: HttpResponse | Promise<HttpResponse>;
    try {
      answer = this.o.handler(request);
    } catch (err) {
      this.o.onError?.(err);
      answer = { status: 500, close: true };
    }

    if (answer instanceof Promise) answer.then(this.#respond, this.#failHandler);
    else this.#respond(answer);
  }

  readonly #failHandler = (err: unknown): void => {
    this.o.onError?.(err);
    this.#respond({ status: 500, close: true });
  };

  /**
   * Sends the answer to the request under way. Like #failHandler and #resume, a function made
   * once per connection, so that answering a request makes no closure.
   */
  readonly #respond = (response: HttpResponse): void => {
    const request = this.#request;
    if (this.#closed || request === undefined) return;
    this.#request = undefined;
    const close = !request.keepAlive || response.close === true || this.#ended || this.#draining;
    const connection = close ? 'close' : request.announceKeepAlive ? 'keep-alive' : null;
    const flushed = this.#write(serialize(response, request.method === 'HEAD', connection));

    if (close) return this.#close();
    if (flushed) this.#resume();
    else this.socket.once('drain', this.#resume);
  };

  readonly #resume = (): void => {
    this.#busy = false;
    if (this.socket.isPaused()) this.socket.resume();
    this.#next();
  };

  /** Answers an unreadable request and closes: what follows it cannot be trusted. */
  #fail(status: number): void {
    if (this.#closed) return;
    this.#busy = true;
    this.#write(serializeNow({ status }, false, 'close', httpDateNow()));
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

/** A reused response as written on a kept-alive connection, for one second of Date. */
interface Serialized {
  second: number;
  whole: string | Buffer;
  /** For HEAD; made when first asked for. */
  head: string | undefined;
}

/** Weakly held: a response the handler stops returning takes its serialization with it. */
const serializedResponses = new WeakMap<HttpResponse, Serialized>();

/**
 * The whole response as one write: a latin1 string, or head and Buffer body concatenated.
 * A response marked `reused` on a connection that needs no Connection field (the common
 * keep-alive case) is serialized once a second rather than for every request.
 */
function serialize(
  response: HttpResponse,
  omitBody: boolean,
  connection: 'close' | 'keep-alive' | null,
): string | Buffer {
  if (response.reused !== true || connection !== null) {
    return serializeNow(response, omitBody, connection, httpDateNow());
  }

  const date = httpDateNow();
  let held = serializedResponses.get(response);
  if (held === undefined || held.second !== dateSecond) {
    const whole = serializeNow(response, false, null, date);
    held = { second: dateSecond, whole, head: undefined };
    serializedResponses.set(response, held);
  }
  if (!omitBody) return held.whole;
  held.head ??= serializeNow(response, true, null, date) as string;
  return held.head;
}

function serializeNow(
  response: HttpResponse,
  omitBody: boolean,
  connection: 'close' | 'keep-alive' | null,
  date: string,
): string | Buffer {
  const body = response.body ?? '';
  const reason = reasons[response.status] ?? 'Unknown';
  let head = `HTTP/1.1 ${response.status} ${reason}\r\ndate: ${date}\r\n`;
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
