import * as acme from 'acme-client';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issuerHashesOfCertificate } from '../components/lib/ocsp.js';
import { serialFromCertificate, pemToDers } from '../components/lib/x509.js';
import { freePort } from '../pipelines/local/ports.js';
import { startTestCa } from '../test/helpers/ca.js';
import { issueOverHttp01, startHttp01Server } from '../test/helpers/challenge-servers.js';
import { ocspRequestDer } from '../test/helpers/ocsp.js';

/**
 * OCSP GET requests per second with keep-alive against the real responder process (its
 * response read from the SA, then from memory), beside nginx serving the same response bytes
 * as a static file in the same run. Both get one process (nginx `worker_processes 1`); the
 * load comes from this process over N keep-alive connections, to each in alternating rounds.
 */

export interface RateFigures {
  target: 'responder' | 'nginx';
  connections: number;
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
}

export interface OcspBenchResult {
  responder: RateFigures;
  nginx: RateFigures;
  /** responder / nginx requests per second. */
  ratio: number;
}

/**
 * A minimal HTTP/1.1 keep-alive client: one GET at a time per connection, the response read
 * by its Content-Length. It is far cheaper than http.Agent, so that on a small machine the
 * server, not the client, is what is measured.
 */
async function load(
  port: number,
  path: string,
  connections: number,
  seconds: number,
): Promise<{ requests: number; errors: number; seconds: number }> {
  const request = Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`,
  );
  let requests = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;

  const one = () =>
    new Promise<void>((resolve) => {
      const socket: Socket = connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      let buffered: Buffer = Buffer.alloc(0);

      const send = () => {
        if (performance.now() >= deadline) {
          socket.end();
          return resolve();
        }
        socket.write(request);
      };

      socket.on('connect', send);
      socket.on('error', () => {
        errors++;
        resolve();
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
        for (;;) {
          const end = buffered.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = buffered.subarray(0, end).toString('latin1');
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buffered.length < end + 4 + length) return;

          if (head.startsWith('HTTP/1.1 200')) requests++;
          else errors++;
          buffered = buffered.subarray(end + 4 + length);
          send();
        }
      });
    });

  await Promise.all(Array.from({ length: connections }, one));
  return { requests, errors, seconds: (performance.now() - started) / 1000 };
}

/**
 * Loads both targets in alternating rounds, so that a change in the machine's other load
 * during the run (tests of other work, say) falls on both alike rather than on one.
 */
async function measureBoth(
  targets: { target: RateFigures['target']; port: number }[],
  path: string,
  connections: number,
  seconds: number,
  rounds: number,
): Promise<RateFigures[]> {
  const totals = targets.map(({ target }) => ({
    target,
    connections,
    requests: 0,
    errors: 0,
    seconds: 0,
  }));
  // Warm-up: connections, JIT, the responder's cache.
  for (const { port } of targets) await load(port, path, connections, 1);

  for (let round = 0; round < rounds; round++) {
    for (const [i, { port }] of targets.entries()) {
      const run = await load(port, path, connections, seconds / rounds);
      totals[i].requests += run.requests;
      totals[i].errors += run.errors;
      totals[i].seconds += run.seconds;
    }
  }
  return totals.map((t) => ({ ...t, perSecond: t.requests / t.seconds }));
}

/** Debian's nginx-light installs it here. */
const nginxBinary = '/usr/sbin/nginx';

/** Starts nginx on a free port serving `body` for every path, from a config in `dir`. */
async function startNginx(
  dir: string,
  body: Buffer,
): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'response.der'), body, { mode: 0o644 });
  // The worker may run as nobody (nginx started by root): it must be able to read the file.
  for (const d of [dir, www]) chmodSync(d, 0o755);

  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  server {
    listen 127.0.0.1:${port};
    location / {
      root ${www};
      default_type application/ocsp-response;
      try_files /response.der =404;
      add_header Cache-Control "max-age=60, public, no-transform, must-revalidate";
    }
  }
}
`,
  );

  const args = ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf];
  const child: ChildProcess = spawn(nginxBinary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited at start: ${stderr.trim()}`);
    const ok = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      throw new Error(`nginx did not answer on port ${port}: ${stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Issues one certificate from a whole test CA, then loads its responder and nginx in turn. */
export async function benchOcsp(options: {
  /** Seconds of load per target, split over the rounds. */
  seconds: number;
  connections: number;
  /** @default 5 */
  rounds?: number;
}): Promise<OcspBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ocsp-'));
  const ca = await startTestCa({ logLevel: 'warn' });
  const http01 = await startHttp01Server(ca.httpPort);
  acme.axios.defaults.httpsAgent = ca.agent;
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;

  try {
    const client = new acme.Client({
      directoryUrl: ca.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffMin: 10,
      backoffMax: 200,
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    const [, csr] = await acme.crypto.createCsr({ commonName: 'ocsp.bench.test' });
    const chain = await issueOverHttp01(client, http01.tokens, csr);

    const [leaf, issuerCert] = pemToDers(chain);
    const issuerId = ca.shared.activeIssuer;
    const hashes = issuerHashesOfCertificate(issuerCert);
    const requestDer = ocspRequestDer(hashes, serialFromCertificate(leaf));
    const path = `/ocsp/${issuerId}/${encodeURIComponent(requestDer.toString('base64'))}`;

    const port = ca.instance.ports.publicHttp;
    const first = await fetch(`http://127.0.0.1:${port}${path}`);
    const body = Buffer.from(await first.arrayBuffer());
    if (first.status !== 200 || body.length < 100) {
      throw new Error(`the responder answered ${first.status} with ${body.length} bytes`);
    }

    nginx = await startNginx(dir, body);
    const [responder, fromNginx] = await measureBoth(
      [
        { target: 'responder', port },
        { target: 'nginx', port: nginx.port },
      ],
      path,
      options.connections,
      options.seconds,
      options.rounds ?? 5,
    );
    return { responder, nginx: fromNginx, ratio: responder.perSecond / fromNginx.perSecond };
  } finally {
    await nginx?.stop();
    await http01.close();
    await ca.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
