import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { Counter, type Registry } from 'prom-client';
import { CaError } from '../lib/errors.js';
import { splitAddress } from '../lib/config.js';
import { account, accountOrders, keyChange, newAccount } from './account.js';
import { authorization, challenge } from './authorization.js';
import { certificate, renewalInfo } from './certificate.js';
import type { WfeContext } from './context.js';
import { directory, newNonce } from './directory.js';
import { baseUrlOf, problemResponse, readBody, send, type AcmeRequest, type AcmeResponse } from './http.js';
import { finalize, getOrder, newOrder } from './order.js';
import { revokeCert } from './revocation.js';

type Handler = (ctx: WfeContext, req: AcmeRequest) => AcmeResponse | Promise<AcmeResponse>;

interface Route {
  readonly methods: readonly string[];
  readonly pattern: RegExp;
  readonly names: readonly string[];
  readonly handler: Handler;
  readonly name: string;
}

const id = '([A-Za-z0-9_-]{1,64})';

function route(methods: string[], path: string, names: string[], handler: Handler, name: string): Route {
  return { methods, pattern: new RegExp(`^${path}$`), names, handler, name };
}

const routes: readonly Route[] = [
  route(['GET'], '/directory', [], directory, 'directory'),
  route(['GET', 'HEAD'], '/acme/new-nonce', [], newNonce, 'new-nonce'),
  route(['POST'], '/acme/new-account', [], newAccount, 'new-account'),
  route(['POST'], `/acme/acct/${id}`, ['id'], account, 'account'),
  route(['POST'], `/acme/acct/${id}/orders`, ['id'], accountOrders, 'account-orders'),
  route(['POST'], '/acme/key-change', [], keyChange, 'key-change'),
  route(['POST'], '/acme/new-order', [], newOrder, 'new-order'),
  route(['POST'], `/acme/order/${id}`, ['id'], getOrder, 'order'),
  route(['POST'], `/acme/order/${id}/finalize`, ['id'], finalize, 'finalize'),
  route(['POST'], `/acme/authz/${id}`, ['id'], authorization, 'authorization'),
  route(['POST'], `/acme/chall/${id}/(http-01|dns-01|tls-alpn-01)`, ['id', 'type'], challenge, 'challenge'),
  route(['POST'], '/acme/cert/([0-9a-f]{1,40})', ['serial'], certificate, 'certificate'),
  route(['POST'], '/acme/revoke-cert', [], revokeCert, 'revoke-cert'),
  route(['GET'], '/acme/renewal-info/([A-Za-z0-9_.-]{1,512})', ['certId'], renewalInfo, 'renewal-info'),
];

function match(path: string): { route: Route; params: Record<string, string> } | null {
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    r.names.forEach((n, i) => (params[n] = m[i + 1]));
    return { route: r, params };
  }
  return null;
}

/** Handles one HTTP request end to end; never throws. */
export async function handle(
  ctx: WfeContext,
  raw: IncomingMessage,
  res: ServerResponse,
  requests?: Counter,
): Promise<void> {
  const requestId = randomBytes(8).toString('hex');
  const method = raw.method ?? 'GET';
  const path = (raw.url ?? '/').split('?')[0];
  const found = match(path);
  let base: string | undefined;
  let out: AcmeResponse;

  try {
    base = baseUrlOf(raw);
    if (!found) throw new CaError('notFound', `no resource at ${path.slice(0, 100)}`);
    if (!found.route.methods.includes(method)) {
      res.setHeader('allow', found.route.methods.join(', '));
      out = {
        status: 405,
        body: {
          type: 'urn:ietf:params:acme:error:malformed',
          detail: `${method} is not allowed here; use ${found.route.methods.join(' or ')}`,
          status: 405,
        },
      };
    } else {
      const body = method === 'POST' ? await readBody(raw, ctx.config.maxBodyBytes) : Buffer.alloc(0);
      const req: AcmeRequest = {
        method,
        path,
        base,
        url: base + (raw.url ?? '/'),
        params: found.params,
        contentType: String(raw.headers['content-type'] ?? ''),
        body,
        requestId,
      };
      out = await found.route.handler(ctx, req);
    }
  } catch (err) {
    out = problemResponse(err, ctx.log, requestId);
  }

  // Every POST response and every new-nonce response carries a fresh nonce (RFC 8555 §6.5).
  const wantsNonce = method === 'POST' || found?.route.name === 'new-nonce';
  send(res, out, { nonce: wantsNonce ? ctx.nonces.issue() : undefined, base });
  requests?.inc({ route: found?.route.name ?? 'unknown', status: String(out.status) });
  ctx.log.debug({ requestId, method, url: path, status: out.status }, 'request served');
}

export interface AcmeServer {
  readonly port: number;
  /** From now on every response closes its connection, so clients move to the other color. */
  drain(): void;
  close(): Promise<void>;
}

/** Starts the HTTPS ACME API. */
export async function startAcmeServer(ctx: WfeContext, metrics?: Registry): Promise<AcmeServer> {
  const requests = metrics
    ? new Counter({
        name: 'acme_requests_total',
        help: 'ACME requests by route and status',
        labelNames: ['route', 'status'],
        registers: [metrics],
      })
    : undefined;

  const server: Server = createServer(
    {
      cert: readFileSync(ctx.config.https.certFile),
      key: readFileSync(ctx.config.https.keyFile),
      keepAlive: true,
      keepAliveTimeout: 30_000,
      requestTimeout: 30_000,
      headersTimeout: 15_000,
    },
    (req, res) => {
      if (draining) res.setHeader('connection', 'close');
      void handle(ctx, req, res, requests);
    },
  );
  let draining = false;

  const { host, port } = splitAddress(ctx.config.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();

  return {
    port: typeof bound === 'object' && bound ? bound.port : port,
    drain: () => {
      draining = true;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
