import { z } from 'zod';
import { listenAddress } from '../../../components/lib/config.js';
import { colors } from './route-file.js';

/** The load balancer's config: its routes and where the route file is. */

const publicRoute = z.strictObject({
  name: z.string().min(1),
  listen: listenAddress,
  backends: z.strictObject({ blue: listenAddress, green: listenAddress }),
});

const previewRoute = z.strictObject({
  /** Names a public route whose backend for `color` this route reaches, unless `backend` is set. */
  name: z.string().min(1),
  listen: listenAddress,
  color: z.enum(colors),
  backend: listenAddress.optional(),
});

/** One listener: public (follows the active color) or preview (fixed to one color). */
export const routeSchema = z.union([publicRoute, previewRoute]);
export type RouteConfig = z.input<typeof routeSchema>;

/** What `startProxy` and the proxy process's config file take. */
export const proxyConfig = z
  .strictObject({
    routes: z.array(routeSchema).min(1),
    /** JSON route file, see route-file.ts; read at start, on SIGHUP and when it changes. */
    routeFile: z.string().min(1),
    /** `/health` and `/status`. @default 127.0.0.1 on a free port */
    adminListen: listenAddress.default('127.0.0.1:0'),
    /** The process writes its pid here for `flip` to signal. @default `lb.pid` beside routeFile */
    pidFile: z.string().min(1).optional(),
    /** How long SIGTERM waits for open connections before cutting them. @default 30 s */
    drainGraceMs: z.number().int().nonnegative().default(30_000),
    /** Route-file events closer together than this cause one reload. @default 50 ms */
    reloadDebounceMs: z.number().int().nonnegative().default(50),
    /** A safety net for file systems where change events are lost. @default 2 s */
    pollMs: z.number().int().positive().default(2_000),
    /** A backend that has not accepted by then counts as failed. @default 5 s */
    connectTimeoutMs: z.number().int().positive().default(5_000),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.routes.forEach((route, i) => {
      if (seen.has(route.listen)) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'listen'],
          message: `listen address ${route.listen} is used by two routes`,
        });
      }
      if (!route.listen.endsWith(':0')) seen.add(route.listen);

      const needsPublic = 'color' in route && !route.backend;
      const found = config.routes.some((r) => 'backends' in r && r.name === route.name);
      if (needsPublic && !found) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'name'],
          message: `preview route ${route.name} has no backend and no public route of that name`,
        });
      }
    });
  });
export type ProxyConfig = z.input<typeof proxyConfig>;
