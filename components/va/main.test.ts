import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ensureIdentity } from '../lib/pki.js';
import { closedPort } from './testing.js';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'va-main-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs main.ts; `whenReady` may act once it has logged `va started`. */
function run(args: string[], whenReady?: (pid: number) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { stdio: 'pipe' });
    const out = { stdout: '', stderr: '' };
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out.stdout += d;
      if (whenReady && out.stdout.includes('"va started"')) {
        whenReady(child.pid!);
        whenReady = undefined;
      }
    });
    child.stderr.on('data', (d: Buffer) => (out.stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, ...out });
    });
  });
}

function writeConfig(name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

t.test('fails with one line and exit code 2 on a bad config', async (t) => {
  const file = writeConfig('bad.json', { listen: '127.0.0.1:0', httpPort: 'eighty' });

  const { code, stderr } = await run(['--config', file]);

  t.equal(code, 2);
  t.match(stderr, /^va: config .*bad\.json: .+\n$/);
  t.equal(stderr.split('\n').length, 2, 'exactly one line');
});

t.test('fails with exit code 2 without --config', async (t) => {
  const { code, stderr } = await run([]);

  t.equal(code, 2);
  t.equal(stderr, 'va: missing --config <file>\n');
});

t.test('serves health and stops cleanly on SIGTERM', async (t) => {
  const tls = await ensureIdentity(join(dir, 'pki'), 'va');
  const adminPort = await closedPort();
  const file = writeConfig('good.json', {
    listen: '127.0.0.1:0',
    adminListen: `127.0.0.1:${adminPort}`,
    tls,
    log: { level: 'info' },
    httpPort: 5002,
    tlsAlpnPort: 5001,
    hostOverrides: [{ suffix: 'test', address: '127.0.0.1' }],
  });
  let health: number | undefined;

  const { code, stdout } = await run(['--config', file], (pid) => {
    fetch(`http://127.0.0.1:${adminPort}/health`)
      .then((res) => (health = res.status))
      .finally(() => process.kill(pid, 'SIGTERM'));
  });

  t.equal(health, 200);
  t.equal(code, 0);
  t.match(stdout, /"msg":"va stopped"/);
});
