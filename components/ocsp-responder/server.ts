import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import { createMetrics, startAdminServer } from '../lib/admin.js';
import { splitAddress } from '../lib/config.js';
import { ConfigError, toCaError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import {
  issuerHashesOfCertificate,
  ocspErrorResponse,
  ocspOids,
  type IssuerHashes,
  type OcspResponseStatus,
} from '../lib/ocsp.js';
import { createRpcClient } from '../lib/rpc.js';
import type { Running } from '../lib/run.js';
import { pemToDer } from '../lib/x509.js';
import { saService, type StorageAuthority } from '../sa/service.js';
import { TtlCache } from './cache.js';
import type { OcspResponderConfig } from './config.js';
import { createHttp1Server, type HttpRequest, type HttpResponse } from './http1.js';
import { MalformedOcspRequest, parseOcspRequest } from './request.js';
import { createRequestTallies, type Tally } from './tally.js';

/**
 * The OCSP responder: RFC 6960 Appendix A over plain HTTP, one responder per issuer key at
 * `/ocsp/<issuerId>` (GET with the request in the path, POST with it in the body), the
 * issuer's CRL at `/crl/<issuerId>.crl` and its certificate at `/issuer/<issuerId>.der`, the
 * URLs the CA writes into certificates. It holds no keys: it serves what the CA signed ahead
 * of time and the SA stores.
 *
 * Bad input never gets a 5xx: an unreadable request is answered `malformedRequest`, a request
 * for an issuer or serial without a stored response `unauthorized`, an oversized one 413
 * (http1.ts, before the handler sees it).
 */

/** What the handler needs from the SA. */
export type ResponderSource = Pick<StorageAuthority, 'getOcspResponse' | 'getCrl'>;

/** An issuer the responder answers for. */
export interface ResponderIssuer {
  id: string;
  /** Its certificate, DER. */
  certDer: Buffer;
}

export interface ResponderHandlerOptions {
  issuers: readonly ResponderIssuer[];
  sa: ResponderSource;
  /** Seconds a response read from the SA is served from memory. */
  cacheSeconds: number;
  /** Cap of Cache-Control max-age. */
  maxAgeSeconds: number;
  /** Bounds the GET path too: the request in it is base64 and URL-escaped. */
  maxRequestBytes: number;
  cacheEntries: number;
  log: Logger;
  metrics?: Registry;
  /** @default Date.now */
  now?: () => number;
}

/** A signed document ready to send, with its HTTP validators. */
interface Document {
  /** latin1, so that the head and body go out in one write (http1.ts). */
  bodyText: string;
  etag: string;
  lastModified: string;
  lastModifiedMs: number;
  expires: string;
  nextUpdateMs: number;
  /** good or revoked for OCSP; `crl` for CRLs. */
  label: string;
}

interface KnownIssuer extends ResponderIssuer {
  hashes: IssuerHashes;
  certEtag: string;
}

/** A GET path already read, so that a repeated one skips base64 and ASN.1 entirely. */
interface Question {
  issuer: KnownIssuer;
  serialHex: string;
  /** `${issuerId}/${serialHex}`, the cache key. */
  key: string;
  /** Only a GET path's question is kept, and only it keeps its last answer. */
  remembered: boolean;
  served: Served | undefined;
}

/**
 * The 200 last answered to an unconditional GET of a remembered path, given again unchanged
 * while the cached document is fresh and its max-age has not moved: a repeated GET is then one
 * map lookup, and http1.ts reuses the serialized bytes too.
 */
interface Served {
  response: HttpResponse;
  /** Exclusive: when the document leaves the cache (cache.ts). */
  freshBefore: number;
  /** Inclusive: the last moment at which max-age is still the one in `response`. */
  maxAgeThrough: number;
  tally: Tally;
}

type Answer = HttpResponse | Promise<HttpResponse>;

const ocspContentType = 'application/ocsp-response';
/** GET paths remembered at most; the map starts over when full. */
const maxRememberedPaths = 10_000;
const issuerMaxAgeSeconds = 86_400;

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

function documentOf(der: string, thisUpdate: string, nextUpdate: string, label: string): Document {
  const body = Buffer.from(der, 'base64');
  const lastModifiedMs = Date.parse(thisUpdate);
  return {
    bodyText: body.toString('latin1'),
    etag: etagOf(body),
    lastModified: new Date(lastModifiedMs).toUTCString(),
    lastModifiedMs,
    expires: new Date(nextUpdate).toUTCString(),
    nextUpdateMs: Date.parse(nextUpdate),
    label,
  };
}

/** True when the request's validators match, so a 304 answers it (RFC 9110 §13.1). */
function notModified(req: HttpRequest, doc: Document): boolean {
  const ifNoneMatch = req.header('if-none-match');
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch === '*' || ifNoneMatch.split(',').some((tag) => tag.trim() === doc.etag);
  }
  const ifModifiedSince = req.header('if-modified-since');
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && since >= doc.lastModifiedMs;
}

/** Standard base64 or base64url, possibly with `+` turned into a space by a careless proxy. */
const base64Path = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * The responder's routes as one function from request to response, answering synchronously
 * from memory when it can. Exported so tests and other transports can drive it directly.
 */
export function createResponderHandler(o: ResponderHandlerOptions): (req: HttpRequest) => Answer {
  const now = o.now ?? Date.now;
  const issuers = new Map<string, KnownIssuer>(
    o.issuers.map((issuer) => [
      issuer.id,
      {
        ...issuer,
        hashes: issuerHashesOfCertificate(issuer.certDer),
        certEtag: etagOf(issuer.certDer),
      },
    ]),
  );
  // A revocation reaches clients within cacheSeconds (1 by default): short enough for a
  // smoke test that revokes and asks again, long enough that a hot serial is read once.
  const ocspCache = new TtlCache<Document | null>({
    ttlMs: o.cacheSeconds * 1000,
    maxEntries: o.cacheEntries,
    now,
  });
  const crlCache = new TtlCache<Document | null>({
    ttlMs: o.cacheSeconds * 1000,
    maxEntries: Math.max(issuers.size, 1),
    now,
  });
  let questions = new Map<string, Question>();
  // Longest GET path: the prefix, an issuer id, and the request in base64 with escapes.
  const maxPathLength = 80 + Math.ceil((o.maxRequestBytes * 4) / 3) * 3;

  const tallyOf = createRequestTallies(o.metrics);
  const count = (route: string, outcome: string) => tallyOf(route, outcome).inc();

  /** RFC 5019 §6.2: max-age no later than nextUpdate. */
  function maxAgeOf(doc: Document, at: number): number {
    const remaining = Math.floor((doc.nextUpdateMs - at) / 1000);
    return Math.max(0, Math.min(o.maxAgeSeconds, remaining));
  }

  /** The last moment at which maxAgeOf(doc) still gives `maxAge`: it only ever falls. */
  function maxAgeThrough(doc: Document, maxAge: number): number {
    return maxAge === 0 ? Infinity : doc.nextUpdateMs - maxAge * 1000;
  }

  function documentResponse(
    req: HttpRequest,
    doc: Document,
    contentType: string,
    maxAge: number,
  ): HttpResponse {
    const headers = {
      'content-type': contentType,
      // The validators let an HTTP cache revalidate (RFC 9110 §13.1).
      'cache-control': `max-age=${maxAge}, public, no-transform, must-revalidate`,
      etag: doc.etag,
      'last-modified': doc.lastModified,
      expires: doc.expires,
    };
    if (req.method !== 'POST' && notModified(req, doc)) return { status: 304, headers };
    return { status: 200, headers, body: doc.bodyText };
  }

  function ocspError(status: Exclude<OcspResponseStatus, 'successful'>): HttpResponse {
    count('ocsp', status);
    return {
      status: 200,
      headers: { 'content-type': ocspContentType, 'cache-control': 'no-store' },
      body: ocspErrorResponse(status),
    };
  }

  function plain(route: string, status: number, headers: Record<string, string> = {}) {
    count(route, String(status));
    return { status, headers };
  }

  async function loadOcsp(issuerId: string, serial: string): Promise<Document | null> {
    try {
      const record = await o.sa.getOcspResponse({ issuerId, serial });
      return documentOf(record.der, record.thisUpdate, record.nextUpdate, record.status);
    } catch (err) {
      if (toCaError(err).kind === 'notFound') return null;
      throw err;
    }
  }

  /** RFC 5019 §2.2.3: a responder with no response to give answers unauthorized. */
  function respondOcsp(req: HttpRequest, doc: Document | null): HttpResponse {
    // It holds no key, so it cannot sign `unknown` for a serial it never saw.
    if (!doc) return ocspError('unauthorized');
    count('ocsp', doc.label);
    return documentResponse(req, doc, ocspContentType, maxAgeOf(doc, now()));
  }

  function lookupFailed(question: Question, err: unknown): HttpResponse {
    const fields = { issuer: question.issuer.id, serial: question.serialHex, err };
    o.log.warn(fields, 'ocsp lookup failed');
    // RFC 6960 §4.2.1: tryLater when the responder cannot answer just now.
    return ocspError('tryLater');
  }

  /** Answers a remembered GET from the cache, keeping the answer for the next one. */
  function serveAgain(req: HttpRequest, question: Question, doc: Document): HttpResponse {
    const at = now();
    const maxAge = maxAgeOf(doc, at);
    const response = documentResponse(req, doc, ocspContentType, maxAge);
    const tally = tallyOf('ocsp', doc.label);
    tally.inc();
    if (response.status === 200) {
      response.reused = true;
      question.served = {
        response,
        freshBefore: ocspCache.freshBefore(question.key),
        maxAgeThrough: maxAgeThrough(doc, maxAge),
        tally,
      };
    }
    return response;
  }

  function answer(req: HttpRequest, question: Question): Answer {
    const unconditional =
      req.header('if-none-match') === undefined && req.header('if-modified-since') === undefined;
    const served = question.served;
    if (served !== undefined && unconditional) {
      const at = now();
      if (at < served.freshBefore && at <= served.maxAgeThrough) {
        served.tally.inc();
        return served.response;
      }
      question.served = undefined;
    }

    const hit = ocspCache.fresh(question.key);
    if (hit === undefined) {
      const load = () => loadOcsp(question.issuer.id, question.serialHex);
      return ocspCache.get(question.key, load).then(
        (doc) => respondOcsp(req, doc),
        (err: unknown) => lookupFailed(question, err),
      );
    }
    if (hit !== null && question.remembered && unconditional) return serveAgain(req, question, hit);
    return respondOcsp(req, hit);
  }

  /** Reads the request, checks it names this issuer, then answers; `rememberAs` for GETs. */
  function answerDer(
    req: HttpRequest,
    issuerId: string,
    der: Uint8Array,
    rememberAs: string | null,
  ): Answer {
    let question;
    try {
      question = parseOcspRequest(der);
    } catch (err) {
      if (!(err instanceof MalformedOcspRequest)) throw err;
      o.log.debug({ reason: err.message }, 'malformed ocsp request');
      return ocspError('malformedRequest');
    }

    const issuer = issuers.get(issuerId);
    // Only SHA-1 CertIDs: they are what the stored responses carry (RFC 5019 §2.1.1).
    const ours =
      issuer !== undefined &&
      question.hashAlgorithm === ocspOids.sha1 &&
      question.issuerNameHash.equals(issuer.hashes.nameHash) &&
      question.issuerKeyHash.equals(issuer.hashes.keyHash);
    if (!ours) return ocspError('unauthorized');

    const known: Question = {
      issuer,
      serialHex: question.serialHex,
      key: `${issuer.id}/${question.serialHex}`,
      remembered: rememberAs !== null,
      served: undefined,
    };
    if (rememberAs !== null) {
      if (questions.size >= maxRememberedPaths) questions = new Map();
      questions.set(rememberAs, known);
    }
    return answer(req, known);
  }

  function ocspGet(req: HttpRequest): Answer {
    const remembered = questions.get(req.path);
    if (remembered) return answer(req, remembered);
    if (req.path.length > maxPathLength) return { ...plain('ocsp', 414), close: true };

    const rest = req.path.slice('/ocsp/'.length);
    const slash = rest.indexOf('/');
    const issuerId = slash === -1 ? rest : rest.slice(0, slash);
    let encoded: string;
    try {
      encoded = decodeURIComponent(slash === -1 ? '' : rest.slice(slash + 1)).replaceAll(' ', '+');
    } catch {
      return ocspError('malformedRequest');
    }
    if (!base64Path.test(encoded)) return ocspError('malformedRequest');

    return answerDer(req, issuerId, Buffer.from(encoded, 'base64'), req.path);
  }

  function ocspPost(req: HttpRequest, rest: string): Answer {
    const issuerId = rest.endsWith('/') ? rest.slice(0, -1) : rest;
    if (issuerId.includes('/')) return plain('ocsp', 404);

    // RFC 6960 Appendix A.1: the body is application/ocsp-request.
    const mediaType = req.header('content-type')?.split(';')[0].trim().toLowerCase();
    if (mediaType !== undefined && mediaType !== 'application/ocsp-request') {
      return plain('ocsp', 415);
    }
    return answerDer(req, issuerId, req.body, null);
  }

  async function loadCrl(issuerId: string): Promise<Document | null> {
    try {
      const record = await o.sa.getCrl({ issuerId });
      return documentOf(record.der, record.thisUpdate, record.nextUpdate, 'crl');
    } catch (err) {
      if (toCaError(err).kind === 'notFound') return null;
      throw err;
    }
  }

  function crl(req: HttpRequest, name: string): Answer {
    const issuer = name.endsWith('.crl') ? issuers.get(name.slice(0, -4)) : undefined;
    if (!issuer) return plain('crl', 404);

    const respond = (doc: Document | null): HttpResponse => {
      if (!doc) return plain('crl', 404);
      count('crl', '200');
      return documentResponse(req, doc, 'application/pkix-crl', maxAgeOf(doc, now()));
    };
    const hit = crlCache.fresh(issuer.id);
    if (hit !== undefined) return respond(hit);
    return crlCache.get(issuer.id, () => loadCrl(issuer.id)).then(respond, (err: unknown) => {
      o.log.warn({ issuer: issuer.id, err }, 'crl lookup failed');
      return plain('crl', 503, { 'retry-after': '5' });
    });
  }

  function issuerCertificate(name: string): HttpResponse {
    const issuer = name.endsWith('.der') ? issuers.get(name.slice(0, -4)) : undefined;
    if (!issuer) return plain('issuer', 404);

    count('issuer', '200');
    return {
      status: 200,
      headers: {
        'content-type': 'application/pkix-cert',
        'cache-control': `max-age=${issuerMaxAgeSeconds}, public`,
        etag: issuer.certEtag,
      },
      body: issuer.certDer,
    };
  }

  function route(req: HttpRequest): Answer {
    const { method, path } = req;
    const reading = method === 'GET' || method === 'HEAD';

    if (path.startsWith('/ocsp/')) {
      if (reading) return ocspGet(req);
      const rest = path.slice('/ocsp/'.length);
      if (method === 'POST') return ocspPost(req, rest);
      return plain('ocsp', 405, { allow: 'GET, HEAD, POST' });
    }

    const name = path.startsWith('/crl/') ? 'crl' : path.startsWith('/issuer/') ? 'issuer' : null;
    if (!name) return plain('other', 404);
    if (!reading) return plain(name, 405, { allow: 'GET, HEAD' });

    const file = path.slice(name.length + 2);
    return name === 'crl' ? crl(req, file) : issuerCertificate(file);
  }

  // A bug in a route becomes internalError for OCSP (an OCSP client understands it) or 500.
  return (req: HttpRequest): Answer => {
    try {
      return route(req);
    } catch (err) {
      o.log.error({ path: req.path.slice(0, 200), err }, 'request failed');
      if (req.path.startsWith('/ocsp/')) return ocspError('internalError');
      return { status: 500, close: true };
    }
  };
}

/** A started responder: its bound ports, and how to stop it. */
export interface RunningResponder extends Running {
  readonly port: number;
  readonly adminPort: number;
}

async function loadIssuers(config: OcspResponderConfig): Promise<ResponderIssuer[]> {
  return Promise.all(
    config.issuers.map(async ({ id, certFile }, index) => {
      try {
        return { id, certDer: pemToDer(await readFile(certFile, 'utf8')) };
      } catch (err) {
        throw new ConfigError(`issuers.${index}.certFile: ${certFile}: ${(err as Error).message}`);
      }
    }),
  );
}

/** Loads the issuer certificates, connects to the SA and serves HTTP and the admin port. */
export async function startOcspResponder(
  config: OcspResponderConfig,
  log: Logger,
): Promise<RunningResponder> {
  const issuers = await loadIssuers(config);
  const metrics = createMetrics('ocsp-responder');
  const sa = createRpcClient(saService, config.sa, config.tls);

  // Once draining, every answer closes its connection: keep-alive clients reconnect elsewhere.
  let draining = false;
  const answer = createResponderHandler({
      issuers,
      sa,
      cacheSeconds: config.cacheSeconds,
      maxAgeSeconds: config.maxAgeSeconds,
      maxRequestBytes: config.maxRequestBytes,
      cacheEntries: config.cacheEntries,
      log,
      metrics,
    });
  const http = createHttp1Server({
    handler: (req) => {
      const out = answer(req);
      if (!draining) return out;
      return out instanceof Promise ? out.then((r) => ({ ...r, close: true })) : { ...out, close: true };
    },
    maxBodyBytes: config.maxRequestBytes,
    onError: (err) => log.error({ err }, 'request failed'),
  });
  const { host, port } = splitAddress(config.listen);
  try {
    await new Promise<void>((resolve, reject) => {
      http.server.once('error', reject);
      http.server.listen(port, host, () => resolve());
    });
  } catch (err) {
    sa.close();
    throw err;
  }
  const bound = http.server.address();
  const boundPort = typeof bound === 'object' && bound ? bound.port : port;

  const admin = await startAdminServer(config.adminListen, metrics);
  log.info(
    { port: boundPort, adminPort: admin.port, issuers: issuers.map((i) => i.id) },
    'ocsp-responder started',
  );

  return {
    port: boundPort,
    adminPort: admin.port,
    drain() {
      draining = true;
    },
    async stop() {
      await http.close();
      await admin.close();
      sa.close();
      log.info('ocsp-responder stopped');
      log.flush();
    },
  };
}
