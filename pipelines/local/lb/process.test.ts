import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort } from '../ports.js';
import { launchProxy, stopProxy } from './launch.js';
import { flip, waitForRoutes, writeRouteFile } from './route-file.js';

/**
 * The load balancer as the process operators run: started detached by launchProxy, flipped by
 * route file plus SIGHUP through its pid file, and drained by SIGTERM.
 */

const dir = mkdtempSync(join(tmpdir(), 'lb-process-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const mainFile = fileURLToPath(new URL('./main.ts', import.meta.url));

async function backend(color: string): Promise<{ server: Server; address: string }> {
  const server = createServer((socket) => {
    socket.on('data', (chunk) => socket.write(`${color}:${chunk}`));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return { server, address: `127.0.0.1:${(server.address() as { port: number }).port}` };
}

function exchange(port: number, text: string, keep = false) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setEncoding('utf8');
  const reply = new Promise<string>((resolve, reject) => {
    socket.once('data', (d: string) => {
      if (!keep) socket.end();
      resolve(d);
    });
    socket.once('error', reject);
  });
  socket.write(text);
  return { socket, reply };
}

t.test('runs detached, applies a flip signalled through its pid file, and drains on SIGTERM', async (t) => {
  const blue = await backend('blue');
  const green = await backend('green');
  const publicPort = await freePort();
  const adminPort = await freePort();
  const routeFile = join(dir, 'routes.json');
  writeRouteFile(routeFile, { active: 'blue', preview: ['blue', 'green'] });
  const configFile = join(dir, 'lb.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      routes: [
        {
          name: 'echo',
          listen: `127.0.0.1:${publicPort}`,
          backends: { blue: blue.address, green: green.address },
        },
      ],
      routeFile,
      adminListen: `127.0.0.1:${adminPort}`,
      drainGraceMs: 10_000,
      // No change events in this test's way: only SIGHUP can apply the flip quickly.
      pollMs: 60_000,
    }),
  );

  const lb = await launchProxy({ configFile, logFile: join(dir, 'lb.log') });
  t.teardown(() => {
    try {
      process.kill(lb.pid, 'SIGKILL');
    } catch {
      // already stopped
    }
  });
  t.equal(readFileSync(lb.pidFile, 'utf8').trim(), String(lb.pid));
  t.equal(await exchange(publicPort, 'a').reply, 'blue:a');

  const held = exchange(publicPort, 'held', true);
  t.equal(await held.reply, 'blue:held');

  const result = flip(routeFile, 'green');
  t.ok(result.signalled, 'the proxy was sent SIGHUP');
  t.equal(result.previous, 'blue');
  await waitForRoutes(lb.adminUrl, { revision: result.revision, active: 'green' });
  t.equal(await exchange(publicPort, 'b').reply, 'green:b');

  const stopped = stopProxy(lb.pidFile);
  let health = 200;
  for (let i = 0; i < 100 && health !== 503; i++) {
    await new Promise((r) => setTimeout(r, 50));
    health = (await fetch(`${lb.adminUrl}/health`)).status;
  }
  t.equal(health, 503, 'draining while a connection is open');
  t.same(((await (await fetch(`${lb.adminUrl}/status`)).json()) as { open: unknown }).open, {
    blue: 1,
    green: 0,
  });

  const late = await new Promise<string>((resolve) => {
    held.socket.once('data', (d: string) => resolve(d));
    held.socket.write('late');
  });
  t.equal(late, 'blue:late', 'the drained connection still works');

  held.socket.end();
  t.equal(await stopped, true);
  t.notOk(existsSync(lb.pidFile), 'the pid file is removed');
  t.match(readFileSync(join(dir, 'lb.log'), 'utf8'), /"reason":"[^"]*SIGHUP[^"]*".*"msg":"routes applied"/);
});

t.test('fails with one line naming the bad field of its config', async (t) => {
  const configFile = join(dir, 'bad.json');
  writeFileSync(configFile, JSON.stringify({ routes: [], routeFile: join(dir, 'routes.json') }));
  const run = spawnSync(process.execPath, ['--import', 'tsx', mainFile, '--config', configFile], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  t.equal(run.status, 2);
  t.match(run.stderr, /^lb: config .*bad\.json: routes: .*\n$/);
});
