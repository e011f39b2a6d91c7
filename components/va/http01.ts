import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostPort, socketFailure, timeoutFailure, type ValidationContext } from './context.js';
import { excerpt, failure } from './problems.js';
import { isHostname } from './resolver.js';

/** Redirects followed before giving up, as Boulder and Pebble do. */
export const maxRedirects = 10;

/** Bytes read beyond the key authorization's length: room for trailing whitespace, no more. */
export const bodySlackBytes = 128;

const redirectStatuses = new Set([301, 302, 303, 307, 308]);

interface HttpAnswer {
  status: number;
  location?: string;
  body: Buffer;
}

/**
 * RFC 8555 §8.3: fetches `http://<name>/.well-known/acme-challenge/<token>` on the configured
 * http-01 port and checks that the body, without trailing whitespace, is the key
 * authorization. Resolves on success; throws a CaError of a validation kind otherwise.
 */
export async function validateHttp01(
  ctx: ValidationContext,
  name: string,
  token: string,
  keyAuthorization: string,
): Promise<void> {
  let url = new URL(`http://${name}/.well-known/acme-challenge/${token}`);
  url.port = String(ctx.httpPort);
  const limit = Buffer.byteLength(keyAuthorization) + bodySlackBytes;
  const seen = new Set<string>();

  for (let redirects = 0; ; redirects++) {
    seen.add(url.href);
    const answer = await fetchOnce(ctx, url, limit);

    if (redirectStatuses.has(answer.status)) {
      if (redirects >= maxRedirects) {
        const detail = `too many redirects: more than ${maxRedirects}, last from ${url.href}`;
        throw failure('connection', detail);
      }
      const next = redirectTarget(ctx, url, answer.location);
      if (seen.has(next.href)) {
        throw failure('connection', `redirect loop: ${url.href} redirects back to ${next.href}`);
      }
      url = next;
      continue;
    }

    if (answer.status !== 200) {
      throw failure('unauthorized', `invalid response from ${url.href}: HTTP ${answer.status}`);
    }

    // RFC 8555 §8.3: the server should ignore whitespace at the end of the body.
    const body = answer.body.toString('utf8').trimEnd();
    if (body !== keyAuthorization) {
      throw failure(
        'unauthorized',
        `the key authorization at ${url.href} does not match this challenge: ` +
          `expected ${excerpt(keyAuthorization, 128)}, got ${excerpt(body, 128)}`,
      );
    }
    return;
  }
}

/**
 * Where a redirect may lead: http on the http-01 port or https on the tls-alpn-01 port (the
 * configured stand-ins for 80 and 443), to a DNS name, never an IP literal.
 */
function redirectTarget(ctx: ValidationContext, from: URL, location: string | undefined): URL {
  if (!location) throw failure('connection', `redirect from ${from.href} has no Location header`);

  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    const detail = `redirect from ${from.href} to an invalid URL ${excerpt(location)}`;
    throw failure('connection', detail);
  }

  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw failure(
      'connection',
      `redirect from ${from.href} to scheme ${excerpt(next.protocol)}: ` +
        'only http and https are followed',
    );
  }
  if (!isHostname(next.hostname)) {
    throw failure(
      'connection',
      `redirect from ${from.href} to host ${excerpt(next.hostname)}: only DNS names are followed`,
    );
  }

  const https = next.protocol === 'https:';
  const port = next.port ? Number(next.port) : https ? 443 : 80;
  const allowed = https ? ctx.tlsAlpnPort : ctx.httpPort;
  if (port !== allowed) {
    throw failure(
      'connection',
      `redirect from ${from.href} to port ${port}: only ${ctx.httpPort} for http and ` +
        `${ctx.tlsAlpnPort} for https are followed`,
    );
  }

  next.hash = '';
  next.username = '';
  next.password = '';
  return next;
}

async function fetchOnce(ctx: ValidationContext, url: URL, limit: number): Promise<HttpAnswer> {
  const https = url.protocol === 'https:';
  const port = Number(url.port) || (https ? 443 : 80);
  const record = { hostname: url.hostname, port, url: url.href };

  let addresses: string[];
  try {
    addresses = await ctx.resolver.resolveAddresses(url.hostname, ctx.signal);
  } catch (err) {
    ctx.records.push(record);
    throw err;
  }
  // Limitation: only the first address is tried, with no fallback to the others.
  // See docs/limitations.md#va-address-fallback.
  const address = addresses[0];
  ctx.records.push({ ...record, addressesResolved: addresses, addressUsed: address });
  const target = `fetching ${url.href} from ${hostPort(address, port)}`;

  return new Promise<HttpAnswer>((resolve, reject) => {
    const options = {
      host: address,
      port,
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      agent: false as const,
      headers: { host: url.hostname, 'user-agent': ctx.userAgent, accept: '*/*' },
    };
    // Boulder fetches https redirect targets without checking the chain: the name was
    // already proven to route here, and applicants often serve self-signed certificates.
    const req = https
      ? httpsRequest({ ...options, servername: url.hostname, rejectUnauthorized: false })
      : httpRequest(options);

    let settled = false;
    const settle = (err: Error | null, answer?: HttpAnswer) => {
      if (settled) return;
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
      req.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const onAbort = () => settle(timeoutFailure(ctx, target));

    if (ctx.signal.aborted) return onAbort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });

    req.on('error', (err) => settle(socketFailure(err, target)));
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      res.on('error', (err) => settle(socketFailure(err, `reading ${url.href}`)));
      if (status !== 200) {
        return settle(null, { status, location: res.headers.location, body: Buffer.alloc(0) });
      }
      readBody(res, limit, url, (err, body) => settle(err, { status, body: body! }));
    });
    req.end();
  });
}

/** Reads at most `limit` bytes; a longer body fails at once rather than being drained. */
function readBody(
  res: IncomingMessage,
  limit: number,
  url: URL,
  done: (err: Error | null, body?: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;

  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) {
      const detail = `response from ${url.href} is longer than ${limit} bytes`;
      return done(failure('unauthorized', detail));
    }
    chunks.push(chunk);
  });
  res.on('end', () => done(null, Buffer.concat(chunks)));
  res.on('close', () => {
    if (!res.complete) {
      done(failure('connection', `connection closed before the response from ${url.href} ended`));
    }
  });
}
