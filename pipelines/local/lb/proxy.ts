import { watch, statSync, type FSWatcher } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { splitAddress } from '../../../components/lib/config.js';
import { proxyConfig, type ProxyConfig } from './config.js';
import { colors, readRouteFile, type Color, type RouteFile } from './route-file.js';

export { proxyConfig, routeSchema, type ProxyConfig, type RouteConfig } from './config.js';

/**
 * The local target's load balancer: a TCP proxy with one listener per route. Public routes send
 * each new connection to the active color's backend; preview routes always to their own
 * color's. The color is chosen once per connection, so a flip never moves or cuts a connection
 * already open: it drains on the backend it started with.
 */

type PerColor = Record<Color, number>;
const zeroes = (): PerColor => ({ blue: 0, green: 0 });

/** Counters of one route, as `/status` reports them. */
export interface RouteStatus {
  readonly name: string;
  readonly kind: 'public' | 'preview';
  /** Preview routes only. */
  readonly color?: Color;
  /** Bound address: the configured one, with the real port when it was 0. */
  readonly address: string;
  readonly backends: Partial<Record<Color, string>>;
  /** Connections handed to a backend, by color. */
  readonly connections: PerColor;
  /** Backends that refused, reset or timed out before accepting; the client was closed. */
  readonly failures: PerColor;
  readonly open: PerColor;
  /** Connections closed at once: no active color, or the preview color is closed. */
  readonly unrouted: number;
}

/** `/status`: the contract `waitForRoutes` and the status verb read. */
export interface ProxyStatus {
  readonly pid: number;
  readonly active: Color | null;
  readonly preview: Color[];
  readonly revision: string | null;
  /** Applied route-file loads since start; the first is 1. */
  readonly generation: number;
  readonly appliedAt: string;
  readonly draining: boolean;
  readonly open: PerColor;
  readonly failures: number;
  readonly reload: { readonly errors: number; readonly lastError: string | null };
  readonly routes: RouteStatus[];
}

/** The small part of a pino logger the proxy writes to. */
export interface ProxyLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface RunningProxy {
  readonly adminUrl: string;
  /** Bound addresses in the order of `routes`. */
  readonly addresses: readonly string[];
  /** Schedules a re-read of the route file (debounced). */
  reload(reason: string): void;
  status(): ProxyStatus;
  /** Stops accepting, waits up to `graceMs` for open connections, then cuts the rest. */
  stop(graceMs?: number): Promise<{ cut: number }>;
}

interface RouteState {
  readonly name: string;
  readonly kind: 'public' | 'preview';
  readonly color?: Color;
  readonly backends: Partial<Record<Color, string>>;
  address: string;
  server: Server;
  readonly connections: PerColor;
  readonly failures: PerColor;
  readonly open: PerColor;
  unrouted: number;
}

const quiet: ProxyLog = { info: () => {}, warn: () => {} };

/** Starts every route's listener and the admin endpoint; rejects if one cannot listen. */
export async function startProxy(input: ProxyConfig, log: ProxyLog = quiet): Promise<RunningProxy> {
  const config = proxyConfig.parse(input);
  let routes: RouteFile = readRouteFile(config.routeFile);
  let generation = 1;
  let appliedAt = new Date().toISOString();
  const reloadErrors = { errors: 0, lastError: null as string | null };
  let draining = false;
  const sockets = new Set<Socket>();

  const states: RouteState[] = config.routes.map((r) => {
    if ('backends' in r) {
      return { name: r.name, kind: 'public', backends: { ...r.backends }, ...counters(r.listen) };
    }
    const owner = config.routes.find((p) => 'backends' in p && p.name === r.name);
    const backend = r.backend ?? (owner && 'backends' in owner ? owner.backends[r.color] : '');
    return {
      name: r.name,
      kind: 'preview',
      color: r.color,
      backends: { [r.color]: backend },
      ...counters(r.listen),
    };
  });

  const pick = (route: RouteState): Color | null => {
    if (route.kind === 'public') return routes.active;
    return routes.preview.includes(route.color!) ? route.color! : null;
  };

  const handle = (route: RouteState, client: Socket) => {
    const color = pick(route);
    if (!color || draining) {
      route.unrouted++;
      client.destroy();
      return;
    }

    const { host, port } = splitAddress(route.backends[color]!);
    route.connections[color]++;
    route.open[color]++;
    sockets.add(client);
    client.setNoDelay(true);

    const backend = connect({ host, port, allowHalfOpen: true, noDelay: true });
    // Settled once the backend accepts or fails, so one connection counts at most once.
    let settled = false;
    backend.setTimeout(config.connectTimeoutMs);

    backend.once('connect', () => {
      settled = true;
      backend.setTimeout(0);
      client.pipe(backend);
      backend.pipe(client);
    });

    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      route.failures[color]++;
      const backendAddress = route.backends[color];
      log.warn({ route: route.name, color, backend: backendAddress, reason }, 'backend failed');
      if (!client.destroyed) client.resetAndDestroy();
    };
    backend.on('timeout', () => {
      fail('connect timeout');
      backend.destroy();
    });
    backend.on('error', (err: NodeJS.ErrnoException) => {
      fail(err.code ?? err.message);
      client.destroy();
    });
    client.on('error', () => backend.destroy());
    backend.on('close', () => {
      if (!client.destroyed && !client.writableEnded) client.end();
    });
    client.on('close', () => {
      backend.destroy();
      sockets.delete(client);
      route.open[color]--;
    });
  };

  const listening: Promise<void>[] = states.map((route) => {
    route.server.on('connection', (socket: Socket) => handle(route, socket));
    const { host, port } = splitAddress(route.address);
    return new Promise<void>((resolve, reject) => {
      route.server.once('error', reject);
      route.server.listen(port, host, () => {
        const bound = route.server.address();
        if (bound && typeof bound === 'object') route.address = `${host}:${bound.port}`;
        route.server.off('error', reject);
        // Accept errors (EMFILE) must not end the process that every client goes through.
        route.server.on('error', (err) => {
          log.warn({ route: route.name, error: err.message }, 'accept failed');
        });
        resolve();
      });
    });
  });

  const status = (): ProxyStatus => {
    const open = zeroes();
    let failures = 0;
    for (const r of states) {
      for (const c of colors) {
        open[c] += r.open[c];
        failures += r.failures[c];
      }
    }
    return {
      pid: process.pid,
      active: routes.active,
      preview: [...routes.preview],
      revision: routes.revision ?? null,
      generation,
      appliedAt,
      draining,
      open,
      failures,
      reload: { ...reloadErrors },
      routes: states.map((r) => ({
        name: r.name,
        kind: r.kind,
        ...(r.color ? { color: r.color } : {}),
        address: r.address,
        backends: { ...r.backends },
        connections: { ...r.connections },
        failures: { ...r.failures },
        open: { ...r.open },
        unrouted: r.unrouted,
      })),
    };
  };

  const admin = createHttpServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      res.writeHead(draining ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: draining ? 'draining' : 'ok' }));
    } else if (path === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status()));
    } else {
      res.writeHead(404).end();
    }
  });

  const apply = (reason: string) => {
    let next: RouteFile;
    try {
      next = readRouteFile(config.routeFile);
    } catch (err) {
      // Keep serving the routes we have: a bad file must not take the endpoints down.
      reloadErrors.errors++;
      reloadErrors.lastError = (err as Error).message;
      log.warn({ reason, error: reloadErrors.lastError }, 'route file rejected');
      return;
    }
    if (next.revision !== undefined && next.revision === routes.revision) return;

    const from = routes.active;
    routes = next;
    generation++;
    appliedAt = new Date().toISOString();
    reloadErrors.lastError = null;
    const fields = { reason, from, to: next.active, revision: next.revision, generation };
    log.info(fields, 'routes applied');
  };

  // A flip both changes the file and sends SIGHUP: both land in one reload, naming both.
  let debounce: NodeJS.Timeout | undefined;
  const reasons = new Set<string>();
  const reload = (reason: string) => {
    reasons.add(reason);
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      const why = [...reasons].join(', ');
      reasons.clear();
      apply(why);
    }, config.reloadDebounceMs);
  };

  // The pipeline replaces the file by rename, so watch its directory, not the old inode.
  const fileName = basename(config.routeFile);
  const watcher: FSWatcher = watch(dirname(config.routeFile), (_event, name) => {
    if (name === fileName) reload('file changed');
  });
  watcher.on('error', (err) => log.warn({ error: err.message }, 'route file watch failed'));

  let seen = fingerprint(config.routeFile);
  const poll = setInterval(() => {
    const now = fingerprint(config.routeFile);
    if (now !== seen) {
      seen = now;
      reload('file changed (poll)');
    }
  }, config.pollMs);
  poll.unref();

  // net.Server#close waits for every open connection, so it is called without waiting here.
  const stopAccepting = () => {
    for (const r of states) if (r.server.listening) r.server.close();
  };

  const closeAll = async () => {
    watcher.close();
    clearInterval(poll);
    if (debounce) clearTimeout(debounce);
    stopAccepting();
    for (const s of sockets) s.destroy();
    admin.closeAllConnections();
    if (admin.listening) await new Promise<void>((resolve) => admin.close(() => resolve()));
  };

  try {
    await Promise.all(listening);
    const { host, port } = splitAddress(config.adminListen);
    await new Promise<void>((resolve, reject) => {
      admin.once('error', reject);
      admin.listen(port, host, () => resolve());
    });
  } catch (err) {
    await closeAll();
    throw new Error(`load balancer cannot listen: ${(err as Error).message}`);
  }

  const adminPort = (admin.address() as { port: number }).port;
  const adminHost = splitAddress(config.adminListen).host;
  log.info({ active: routes.active, revision: routes.revision }, 'load balancer started');

  return {
    adminUrl: `http://${adminHost}:${adminPort}`,
    addresses: states.map((r) => r.address),
    reload,
    status,
    async stop(graceMs = config.drainGraceMs) {
      draining = true;
      // Stop accepting first; the admin endpoint stays up so /status shows the drain.
      stopAccepting();
      const deadline = Date.now() + graceMs;
      while (sockets.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }

      const cut = sockets.size;
      await closeAll();
      log.info({ cut }, 'load balancer stopped');
      return { cut };
    },
  };
}

function counters(address: string) {
  return {
    address,
    server: createServer({ allowHalfOpen: true }),
    connections: zeroes(),
    failures: zeroes(),
    open: zeroes(),
    unrouted: 0,
  };
}

function fingerprint(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}
