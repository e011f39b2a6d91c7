import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { loadIssuer } from '../../components/ca/issuer.js';
import { openKeyStore } from '../../components/keys/index.js';
import { startHttp01Server } from '../../test/helpers/challenge-servers.js';
import { requireTool } from '../../test/helpers/tools.js';
import { startCaInstance } from './ca-instance.js';
import { freePort, randomPorts } from './ports.js';
import { ensureSharedState, type SharedState } from './shared-state.js';

const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), 'shared-softhsm-test-'));
t.teardown(() => {
  if (process.env.KEEP_TEST_STATE !== '1') rmSync(dir, { recursive: true, force: true });
});
const stateDir = join(dir, 'state');

/** Every file under `root`, recursively. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { withFileTypes: true }).flatMap((entry) => {
    const path = join(root, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

if (requireTool(t, 'softhsm2-util', 'apt-get install softhsm2')) {
  const shared = await ensureSharedState({ stateDir, keyStore: 'softhsm' });
  suite(shared);
}

function suite(shared: SharedState): void {
  t.test('puts the CA keys on a SoftHSM2 token under hsm/ and none on disk', async (t) => {
    t.match(shared.keyStore, {
      type: 'pkcs11',
      tokenLabel: 'bluegreen-ca',
      softhsmConf: join(stateDir, 'hsm', 'softhsm2.conf'),
      pin: { file: join(stateDir, 'hsm', 'pin') },
    });
    t.equal(statSync(join(stateDir, 'hsm', 'pin')).mode & 0o777, 0o600);
    t.notOk(existsSync(shared.keysDir), 'no file key store directory');

    // Mutual-TLS and CT log keys are files by design; the CA's keys must not be. The token's
    // own files hold its objects encrypted under a key derived from the PIN.
    const keyFiles = [...filesUnder(shared.caDir), ...filesUnder(join(stateDir, 'hsm'))].filter(
      (file) => readFileSync(file, 'latin1').includes('PRIVATE KEY'),
    );
    t.same(keyFiles, []);

    const store = openKeyStore(shared.keyStore);
    t.teardown(() => store.close());
    t.same(await store.list(), ['issuer-1', 'root']);
    const issuer = await loadIssuer(shared.issuers[0], store);
    t.equal(issuer.id, shared.activeIssuer, 'the issuer certificate certifies the token key');
  });

  t.test('keeps the recorded key store when run again', async (t) => {
    const again = await ensureSharedState({ stateDir });
    t.same(again.keyStore, shared.keyStore);
    t.same(again.issuers, shared.issuers);
  });

  t.test('rejects asking an existing softhsm state for the file store', async (t) => {
    await t.rejects(ensureSharedState({ stateDir, keyStore: 'file' }), {
      message: /keeps its CA keys in the softhsm key store, not file/,
    });
  });

  t.test('issues a certificate through the CA process signing on the token', async (t) => {
    const validation = { httpPort: await freePort(), tlsAlpnPort: await freePort() };
    const instance = await startCaInstance({
      shared,
      ports: await randomPorts(validation),
      settings: { allowedDomains: ['test'], logLevel: 'info' },
      dir: join(dir, 'run'),
    });
    t.teardown(() => instance.stop());
    const http01 = await startHttp01Server(validation.httpPort);
    t.teardown(() => http01.close());

    const agent = new Agent({ ca: readFileSync(shared.trustBundle, 'utf8') });
    t.teardown(() => agent.destroy());
    acme.axios.defaults.httpsAgent = agent;
    const client = new acme.Client({
      directoryUrl: instance.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffMin: 50,
      backoffMax: 500,
    });
    const [, csr] = await acme.crypto.createCsr({ commonName: 'hsm.softhsm.test' });
    const chain = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      skipChallengeVerification: true,
      challengeCreateFn: async (_a, challenge, keyAuthorization) => {
        http01.tokens.set(challenge.token, keyAuthorization);
      },
      challengeRemoveFn: async (_a, challenge) => {
        http01.tokens.delete(challenge.token);
      },
    });

    const chainFile = join(dir, 'chain.pem');
    writeFileSync(chainFile, chain);
    const { stdout } = await run('openssl', [
      'verify',
      '-CAfile',
      join(shared.caDir, 'root.pem'),
      '-untrusted',
      chainFile,
      chainFile,
    ]);
    t.match(stdout, /: OK/);

    const caLog = readFileSync(join(instance.logDir, 'ca.log'), 'utf8');
    t.match(caLog, /"msg":"signing key loaded"/);
    t.notMatch(caLog, new RegExp(readFileSync(join(stateDir, 'hsm', 'pin'), 'utf8').trim()));
  });
}
