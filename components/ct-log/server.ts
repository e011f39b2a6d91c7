import { X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { splitAddress } from '../lib/config.js';
import { CaError } from '../lib/errors.js';
import { audit, type Logger } from '../lib/log.js';
import {
  decodeBase64,
  encodeDigitallySigned,
  isPrecertificate,
  issuerKeyHashOf,
  merkleTreeLeaf,
  precertTbsOf,
  sctSignedData,
  sctToResponse,
  sctVersionV1,
  signDigitally,
  spkiOf,
  treeHeadSignedData,
  type LogEntry,
  type SignedCertificateTimestamp,
} from '../lib/sct.js';
import { normalizeSerial } from '../lib/cert-info.js';
import type { LogKey } from './log-key.js';
import type { EntryStore } from './store.js';

/**
 * A CT log stub over node:http: RFC 6962 §4.1 add-chain, §4.2 add-pre-chain and §4.3 get-sth.
 * It checks that each chain links by signature but trusts any root, and it merges what it
 * accepts at once, so its maximum merge delay is zero.
 */

/** More certificates than any real chain has; bounds the work one request can ask for. */
const maxChainLength = 10;

/** What a log instance serves with: its key, its entries, its limits. */
export interface CtLogServerOptions {
  listen: string;
  key: LogKey;
  store: EntryStore;
  /** Bodies over this size are refused with 413 without being parsed. */
  maxBodyBytes: number;
  log: Logger;
  metrics?: Registry;
  /** @default () => Date.now() */
  now?: () => number;
}

/** A listening log; `close` stops it and drops open connections. */
export interface CtLogServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A refusal the client caused: its status and a message naming what was wrong. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const endpoints = {
  '/ct/v1/add-chain': 'POST',
  '/ct/v1/add-pre-chain': 'POST',
  '/ct/v1/get-sth': 'GET',
} as const;
type Endpoint = keyof typeof endpoints;

const isEndpoint = (path: string): path is Endpoint => Object.hasOwn(endpoints, path);

/** Starts the log's HTTP API on `listen`; resolves once it accepts connections. */
export async function startCtLogServer(o: CtLogServerOptions): Promise<CtLogServer> {
  const now = o.now ?? (() => Date.now());
  const requests = o.metrics
    ? new Counter({
        name: 'ct_log_requests_total',
        help: 'CT log requests, by endpoint and HTTP status',
        labelNames: ['endpoint', 'status'],
        registers: [o.metrics],
      })
    : undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (!isEndpoint(path)) throw new HttpError(404, `no such endpoint ${path.slice(0, 100)}`);
    const method = endpoints[path];
    if (req.method !== method) {
      res.setHeader('allow', method);
      throw new HttpError(405, `${path} takes ${method}, got ${req.method}`);
    }

    if (path === '/ct/v1/get-sth') return send(res, 200, await treeHead());

    const chain = parseChain(await readBody(req, o.maxBodyBytes));
    const sct = await addEntry(chain, path === '/ct/v1/add-pre-chain');
    return send(res, 200, sctToResponse(sct));
  };

  /** Signs an SCT for the chain's first certificate and appends its leaf before answering. */
  const addEntry = async (chain: Chain, precert: boolean) => {
    const entry = entryFor(chain.ders, precert);
    const serial = normalizeSerial(chain.first.serialNumber);
    const timestamp = now();
    const extensions = Buffer.alloc(0);
    const unsigned = { version: sctVersionV1, timestamp, extensions };
    const sct: SignedCertificateTimestamp = {
      ...unsigned,
      logId: o.key.logId,
      signature: signDigitally(sctSignedData(unsigned, entry), o.key.privateKey),
    };

    await o.store.append(merkleTreeLeaf(timestamp, entry, extensions));
    audit(o.log, 'sct signed', { serial, entryType: entry.type, timestamp });
    return sct;
  };

  const treeHead = async () => {
    const head = await o.store.head();
    const timestamp = now();
    const signature = signDigitally(treeHeadSignedData({ timestamp, ...head }), o.key.privateKey);
    // RFC 6962 §4.3: the answer's field names and encodings.
    return {
      tree_size: head.treeSize,
      timestamp,
      sha256_root_hash: head.rootHash.toString('base64'),
      tree_head_signature: encodeDigitallySigned(signature).toString('base64'),
    };
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const endpoint = isEndpoint(path) ? path : 'other';

    handle(req, res)
      .catch((err: unknown) => {
        if (err instanceof HttpError) return sendError(req, res, err.status, err.message);
        if (err instanceof CaError && err.kind === 'malformed') {
          return sendError(req, res, 400, err.detail);
        }
        o.log.error({ method: req.method, url: path, err }, 'ct log request failed');
        return sendError(req, res, 503, 'the log cannot accept entries now; try again');
      })
      .finally(() => {
        requests?.inc({ endpoint, status: res.statusCode });
        o.log.debug({ method: req.method, url: path, status: res.statusCode }, 'request served');
      });
  });
  // A client that trickles its request must not hold a connection for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  const { host, port } = splitAddress(o.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();

  return {
    port: typeof bound === 'object' && bound ? bound.port : port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Reads the whole body, or refuses with 413 as soon as it is known to be too large. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) {
    return Promise.reject(new HttpError(413, `body of ${declared} bytes; at most ${maxBytes}`));
  }

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) {
        reject(new HttpError(413, `body over ${maxBytes} bytes`));
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A submitted chain: the DER of each certificate, and the first one parsed. */
interface Chain {
  ders: Buffer[];
  first: X509Certificate;
}

/** `{"chain": [base64 DER, …]}`: each certificate parsed, each signed by the next. */
function parseChain(body: Buffer): Chain {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'expected a JSON body {"chain": [base64 DER certificates]}');
  }

  const chain = (value as { chain?: unknown } | null)?.chain;
  if (!Array.isArray(chain) || chain.length === 0 || chain.length > maxChainLength) {
    const got = Array.isArray(chain) ? `${chain.length} certificates` : typeof chain;
    throw new HttpError(400, `expected chain as 1 to ${maxChainLength} certificates, got ${got}`);
  }

  const ders = chain.map((item, i) => decodeBase64(item, `chain[${i}]`));
  const certs = ders.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch {
      throw new HttpError(400, `chain[${i}] is not a DER X.509 certificate`);
    }
  });
  // Limitation: any root is accepted; only the links are checked. See
  // docs/limitations.md#ct-log-stub.
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i].verify(certs[i + 1].publicKey)) {
      throw new HttpError(400, `chain[${i}] is not signed by chain[${i + 1}]`);
    }
  }
  return { ders, first: certs[0] };
}

/**
 * RFC 6962 §3.1: a precertificate entry is the issuer's key hash and the TBS without the
 * poison; the issuer is chain[1] (precertificate signing certificates are not supported).
 */
function entryFor(chain: Buffer[], precert: boolean): LogEntry {
  const poisoned = isPrecertificate(chain[0]);
  if (!precert) {
    if (poisoned) throw new HttpError(400, 'chain[0] is a precertificate; use add-pre-chain');
    return { type: 'x509', certificate: chain[0] };
  }

  if (!poisoned) {
    throw new HttpError(400, 'chain[0] carries no critical poison extension (RFC 6962 §3.1)');
  }
  if (chain.length < 2) throw new HttpError(400, 'expected chain[1], the precertificate issuer');
  return {
    type: 'precert',
    issuerKeyHash: issuerKeyHashOf(spkiOf(chain[1])),
    tbsCertificate: precertTbsOf(chain[0]),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Sends a JSON error; after a 413 the rest of the body is drained, then the connection closes. */
function sendError(req: IncomingMessage, res: ServerResponse, status: number, message: string) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 413) {
    res.setHeader('connection', 'close');
    req.resume();
  }
  send(res, status, { error: message });
}
