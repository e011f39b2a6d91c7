import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer as createHttpServer, request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startProxy, type RouteConfig } from './proxy.js';
import { flip, waitForRoutes, writeRouteFile, type Color } from './route-file.js';

/**
 * The proxy in-process, over real sockets on 127.0.0.1: two echo backends (one per color) and
 * a public route between them; flips are route-file writes, as the pipeline makes them.
 */

const dir = mkdtempSync(join(tmpdir(), 'lb-proxy-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A TCP backend that answers every chunk with `<color>:<chunk>`. */
async function echoBackend(color: Color): Promise<{ server: Server; address: string }> {
  const server = createServer((socket) => {
    socket.on('data', (chunk) => socket.write(`${color}:${chunk}`));
    socket.on('error', () => {});
  });
  return { server, address: await listen(server) };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** A socket to `address` that reads replies one at a time. */
interface Conversation {
  readonly socket: Socket;
  say(text: string): Promise<string>;
}

async function open(address: string): Promise<Conversation> {
  const [host, port] = address.split(':');
  const socket = connect({ host, port: Number(port) });
  socket.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const say = (text: string) =>
    new Promise<string>((resolve, reject) => {
      socket.once('data', (data: string) => resolve(data));
      socket.once('close', () => reject(new Error('closed before a reply')));
      socket.write(text);
    });
  return { socket, say };
}

async function oneShot(address: string, text: string): Promise<string> {
  const c = await open(address);
  try {
    return await c.say(text);
  } finally {
    c.socket.destroy();
  }
}

/** Resolves once the socket is closed; `hadData` says whether anything arrived first. */
function closedWithoutData(address: string): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    let data = false;
    const socket = connect({ host, port: Number(port) }, () => socket.write('hello'));
    socket.on('data', () => (data = true));
    socket.on('error', () => {});
    socket.on('close', () => resolve(!data));
  });
}

const blue = await echoBackend('blue');
const green = await echoBackend('green');
t.teardown(() => {
  blue.server.close();
  green.server.close();
});

async function proxyWith(name: string, routes: RouteConfig[], active: Color | null) {
  const routeFile = join(dir, `${name}.json`);
  writeRouteFile(routeFile, { active, preview: ['blue', 'green'] });
  const proxy = await startProxy({ routes, routeFile, reloadDebounceMs: 10 });
  t.teardown(() => proxy.stop(0));
  return { proxy, routeFile };
}

const publicRoute = (name: string): RouteConfig => ({
  name,
  listen: '127.0.0.1:0',
  backends: { blue: blue.address, green: green.address },
});

t.test('new connections follow a flip', async (t) => {
  const { proxy, routeFile } = await proxyWith('follow', [publicRoute('echo')], 'blue');
  const [address] = proxy.addresses;
  t.equal(await oneShot(address, 'a'), 'blue:a');

  const { revision } = flip(routeFile, 'green');
  await waitForRoutes(proxy.adminUrl, { revision });
  t.equal(await oneShot(address, 'b'), 'green:b');

  const { revision: back } = flip(routeFile, 'blue');
  await waitForRoutes(proxy.adminUrl, { revision: back, active: 'blue' });
  t.equal(await oneShot(address, 'c'), 'blue:c');

  const status = proxy.status();
  t.same(status.routes[0].connections, { blue: 2, green: 1 });
  t.equal(status.failures, 0);
});

t.test('a connection opened before a flip keeps its backend until it closes', async (t) => {
  const { proxy, routeFile } = await proxyWith('drain', [publicRoute('echo')], 'blue');
  const [address] = proxy.addresses;
  const longLived = await open(address);
  t.equal(await longLived.say('before'), 'blue:before');

  const { revision } = flip(routeFile, 'green');
  await waitForRoutes(proxy.adminUrl, { revision });
  t.equal(await oneShot(address, 'new'), 'green:new', 'a new connection goes to green');
  t.equal(await longLived.say('after'), 'blue:after', 'the old one still talks to blue');
  t.same(proxy.status().open, { blue: 1, green: 0 });

  longLived.socket.end();
  await new Promise((r) => longLived.socket.once('close', r));
  await new Promise((r) => setTimeout(r, 50));
  t.same(proxy.status().open, { blue: 0, green: 0 });
});

t.test('keep-alive HTTP clients see no failed request while the color flips back and forth', async (t) => {
  const backends = await Promise.all(
    (['blue', 'green'] as const).map(async (color) => {
      let served = 0;
      const server = createHttpServer((req, res) => {
        req.resume();
        // Every tenth answer closes its connection, so clients keep opening new ones.
        if (++served % 10 === 0) res.setHeader('connection', 'close');
        req.on('end', () => res.end(color));
      });
      server.keepAliveTimeout = 60_000;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      t.teardown(() => {
        server.closeAllConnections();
        server.close();
      });
      return `127.0.0.1:${(server.address() as { port: number }).port}`;
    }),
  );
  const { proxy, routeFile } = await proxyWith(
    'load',
    [{ name: 'http', listen: '127.0.0.1:0', backends: { blue: backends[0], green: backends[1] } }],
    'blue',
  );
  const port = Number(proxy.addresses[0].split(':')[1]);

  const clients = 24;
  const requestsPerClient = 150;
  let failed = 0;
  let done = 0;
  const seen = { blue: 0, green: 0 };

  const client = async () => {
    // Few sockets per client, so keep-alive reuse and new connections both happen.
    const agent = new Agent({ keepAlive: true, maxSockets: 2, maxFreeSockets: 1 });
    for (let i = 0; i < requestsPerClient; i++) {
      try {
        const body = await get(agent, port);
        seen[body as Color]++;
      } catch {
        failed++;
      }
      done++;
    }
    agent.destroy();
  };

  let flips = 0;
  const flipper = async () => {
    let color: Color = 'blue';
    // Bounded: stops when the clients are done, or after 200 flips at most.
    while (done < clients * requestsPerClient && flips < 200) {
      color = color === 'blue' ? 'green' : 'blue';
      const { revision } = flip(routeFile, color);
      await waitForRoutes(proxy.adminUrl, { revision });
      flips++;
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  await Promise.all([...Array.from({ length: clients }, client), flipper()]);
  t.equal(failed, 0, `${clients * requestsPerClient} requests during ${flips} flips, none failed`);
  t.ok(flips >= 5, `flipped ${flips} times`);
  t.ok(seen.blue > 0 && seen.green > 0, `both colors answered (${seen.blue} blue, ${seen.green} green)`);
  const { connections } = proxy.status().routes[0];
  t.ok(connections.blue + connections.green > flips, `connections ${JSON.stringify(connections)}`);
  t.equal(proxy.status().failures, 0);
});

function get(agent: Agent, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(body))));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

t.test('a refused backend closes the client connection and is counted', async (t) => {
  const gone = createServer();
  const goneAddress = await listen(gone);
  await new Promise((r) => gone.close(r));

  const { proxy } = await proxyWith(
    'refused',
    [
      {
        name: 'echo',
        listen: '127.0.0.1:0',
        backends: { blue: goneAddress, green: green.address },
      },
    ],
    'blue',
  );
  t.ok(await closedWithoutData(proxy.addresses[0]), 'the client is closed without a reply');
  t.ok(await closedWithoutData(proxy.addresses[0]));

  const status = proxy.status();
  t.same(status.routes[0].failures, { blue: 2, green: 0 });
  t.equal(status.failures, 2);
  t.same(status.open, { blue: 0, green: 0 });
});

t.test('with no active color, public routes close connections and count them unrouted', async (t) => {
  const { proxy } = await proxyWith('none', [publicRoute('echo')], null);
  t.ok(await closedWithoutData(proxy.addresses[0]));
  t.equal(proxy.status().routes[0].unrouted, 1);
  t.equal(proxy.status().failures, 0);
});

t.test('preview routes stick to their color through flips', async (t) => {
  const { proxy, routeFile } = await proxyWith(
    'preview',
    [
      publicRoute('echo'),
      { name: 'echo', listen: '127.0.0.1:0', color: 'blue' },
      { name: 'echo', listen: '127.0.0.1:0', color: 'green' },
    ],
    'blue',
  );
  const [pub, previewBlue, previewGreen] = proxy.addresses;

  for (const active of ['green', 'blue'] as const) {
    const { revision } = flip(routeFile, active);
    await waitForRoutes(proxy.adminUrl, { revision });
    t.equal(await oneShot(pub, 'p'), `${active}:p`, `public follows ${active}`);
    t.equal(await oneShot(previewBlue, 'x'), 'blue:x', 'blue preview stays blue');
    t.equal(await oneShot(previewGreen, 'y'), 'green:y', 'green preview stays green');
  }

  // A color left out of `preview` closes its preview route, as after a teardown.
  writeRouteFile(routeFile, { active: 'blue', preview: ['blue'] });
  proxy.reload('test');
  await waitForRoutes(proxy.adminUrl, { active: 'blue' });
  await new Promise((r) => setTimeout(r, 50));
  t.ok(await closedWithoutData(previewGreen), 'green preview is closed');
  t.equal(await oneShot(previewBlue, 'z'), 'blue:z');
  const greenPreview = proxy.status().routes[2];
  t.match(greenPreview, { kind: 'preview', color: 'green', unrouted: 1 });
});

t.test('a corrupt route file is rejected and the last good routes stay', async (t) => {
  const { proxy, routeFile } = await proxyWith('corrupt', [publicRoute('echo')], 'green');
  const before = proxy.status().generation;
  writeFileSync(routeFile, '{"active": "purple"}');
  proxy.reload('test');
  await new Promise((r) => setTimeout(r, 150));

  const status = proxy.status();
  t.equal(status.active, 'green');
  t.equal(status.generation, before);
  t.ok(status.reload.errors >= 1);
  t.match(status.reload.lastError, /route file .*corrupt\.json: active: /);
  t.equal(await oneShot(proxy.addresses[0], 'q'), 'green:q');
});

t.test('rejects a preview route with no backend to reach', async (t) => {
  const routeFile = join(dir, 'bad.json');
  writeRouteFile(routeFile, { active: null, preview: [] });
  await t.rejects(
    startProxy({ routes: [{ name: 'nothing', listen: '127.0.0.1:0', color: 'blue' }], routeFile }),
    /preview route nothing has no backend/,
  );
});
