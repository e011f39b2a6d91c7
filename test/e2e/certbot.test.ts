import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startTestCa } from '../helpers/ca.js';
import { requireTool } from '../helpers/tools.js';

const run = promisify(execFile);

t.test('certbot obtains a certificate with --standalone over http-01', async (t) => {
  if (!requireTool(t, 'certbot', 'apt-get install certbot')) return;
  const ca = await startTestCa();
  t.teardown(() => ca.stop());

  const dir = join(ca.dir, 'certbot');
  mkdirSync(dir);
  await run(
    'certbot',
    [
      'certonly',
      '--standalone',
      '--non-interactive',
      '--agree-tos',
      '--register-unsafely-without-email',
      '--server',
      ca.directoryUrl,
      '--http-01-port',
      String(ca.httpPort),
      '--http-01-address',
      '127.0.0.1',
      '--config-dir',
      join(dir, 'config'),
      '--work-dir',
      join(dir, 'work'),
      '--logs-dir',
      join(dir, 'logs'),
      '-d',
      'certbot.test',
    ],
    { env: { ...process.env, REQUESTS_CA_BUNDLE: ca.shared.trustBundle }, timeout: 120_000 },
  );

  const live = join(dir, 'config', 'live', 'certbot.test');
  const { stdout } = await run('openssl', [
    'verify',
    '-CAfile',
    join(ca.shared.caDir, 'root.pem'),
    '-untrusted',
    join(live, 'chain.pem'),
    join(live, 'cert.pem'),
  ]);
  t.match(stdout, /cert\.pem: OK/);
  t.match(readFileSync(join(live, 'fullchain.pem'), 'utf8'), /BEGIN CERTIFICATE/);
});
