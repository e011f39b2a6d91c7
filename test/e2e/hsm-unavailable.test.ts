import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { exportJWK, importPKCS8 } from 'jose';
import t from 'tap';
import { openDatabase } from '../../components/sa/db.js';
import { startTestCa } from '../helpers/ca.js';
import { startHttp01Server } from '../helpers/challenge-servers.js';
import { RawAcme } from '../helpers/raw-acme.js';
import { requireTool } from '../helpers/tools.js';

/**
 * An HSM that stops answering while the CA runs. Every component is a process and the CA's
 * keys are on a SoftHSM2 token. The token's folder is moved away after start-up and back
 * later: to the CA this is what an unmounted volume or an HSM appliance dropping off the
 * network looks like, the failure operators meet in service. (A wrong PIN is caught earlier:
 * the CA logs in while starting, so with a wrong PIN it does not start and no order reaches it.)
 * An order finalized meanwhile must fail with a problem that names the HSM and leave no
 * certificate behind; once the token is back, the same CA process issues again.
 */

const run = promisify(execFile);

if (requireTool(t, 'softhsm2-util', 'apt-get install softhsm2')) {
  const ca = await startTestCa({ keyStore: 'softhsm' });
  t.teardown(() => ca.stop());
  acme.axios.defaults.httpsAgent = ca.agent;
  const http01 = await startHttp01Server(ca.httpPort);
  t.teardown(() => http01.close());

  const tokens = join(ca.shared.stateDir, 'hsm', 'tokens');
  const pin = readFileSync(join(ca.shared.stateDir, 'hsm', 'pin'), 'utf8').trim();
  const away = `${tokens}.away`;
  // Whatever happens, the token is put back before the CA is stopped and the folder removed.
  t.teardown(() => {
    if (existsSync(away)) renameSync(away, tokens);
  });

  const accountKey = await acme.crypto.createPrivateEcdsaKey();
  const client = new acme.Client({
    directoryUrl: ca.directoryUrl,
    accountKey,
    backoffMin: 50,
    backoffMax: 500,
  });
  await client.createAccount({ termsOfServiceAgreed: true });

  /** An order for `name` whose http-01 challenge is answered: ready to finalize. */
  const readyOrder = async (name: string) => {
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
    const [authz] = await client.getAuthorizations(order);
    if (authz.status !== 'valid') {
      const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
      http01.tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    }
    await client.waitForValidStatus(order);
    return order;
  };

  const name = 'hsm-down.test';
  const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] });
  const db = openDatabase(ca.shared.dbUrl);
  t.teardown(() => db.destroy());
  const count = async (table: 'certificates' | 'ocsp_responses') =>
    Number(
      (await db.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirst())
        ?.n ?? 0,
    );

  await t.test('an order finalized while the HSM is gone fails naming the HSM', async (t) => {
    const ready = await readyOrder(name);
    const caPid = ca.instance.processes.get('ca')?.child.pid;
    t.ok(caPid, 'the CA runs as a process of its own');
    const before = { certificates: await count('certificates'), ocsp: await count('ocsp_responses') };

    renameSync(tokens, away);

    // The finalize request itself, as the wire carries it, so status and body are the server's.
    const raw = await new RawAcme(ca.directoryUrl, ca.agent).init();
    const privateKey = await importPKCS8(accountKey.toString(), 'ES256');
    const jwk = await exportJWK(createPublicKey(accountKey));
    const response = await raw.post(
      ready.finalize,
      { csr: acme.crypto.getPemBodyAsB64u(csr) },
      { key: { privateKey, jwk, alg: 'ES256' }, kid: client.getAccountUrl() },
    );

    t.ok(response.status < 500, `the finalize response is not a 5xx (got ${response.status})`);
    t.notMatch(response.text, /\n\s+at |\.ts:\d+|CKR_/, 'no stack and no PKCS#11 code');
    t.notOk(response.text.includes(pin), 'no PIN');
    const order = response.json as { status: string; certificate?: string; error?: any };
    t.equal(order.status, 'invalid', 'the order is invalid, not valid or stuck processing');
    t.notOk(order.certificate, 'the order names no certificate');
    t.match(order.error, {
      type: 'urn:ietf:params:acme:error:serverInternal',
      status: 500,
      detail: /HSM\) is unavailable, so no certificate was issued; create a new order/,
    });

    // The order keeps saying so when fetched again.
    const fetched = await client.getOrder(ready);
    t.equal(fetched.status, 'invalid');
    t.match(fetched.error, { detail: /HSM/ });

    const orderId = String(ready.url).split('/').pop()!;
    t.match(orderId, /^[A-Za-z0-9_-]{8,}$/, 'the order id is known');
    const rows = await db.db
      .selectFrom('certificates')
      .select('serial')
      .where('order_id', '=', orderId)
      .execute();
    t.same(rows, [], 'the SA holds no certificate for the order');
    const orderRow = await db.db
      .selectFrom('orders')
      .select(['certificate_serial', 'error'])
      .where('id', '=', orderId)
      .executeTakeFirstOrThrow();
    t.equal(orderRow.certificate_serial, null);
    t.match(String(orderRow.error), /HSM/);
    t.same(
      { certificates: await count('certificates'), ocsp: await count('ocsp_responses') },
      before,
      'no certificate and no OCSP response was stored for anything',
    );
    t.equal(ca.instance.processes.get('ca')?.child.pid, caPid, 'the CA process did not restart');
    t.equal(ca.instance.processes.get('ca')?.child.exitCode, null, 'and it is still running');
  });

  await t.test('once the HSM is back the same CA process issues again', async (t) => {
    renameSync(away, tokens);
    const order = await client.finalizeOrder(await readyOrder(name), csr);
    const valid = await client.waitForValidStatus(order);
    t.equal(valid.status, 'valid');
    const chain = await client.getCertificate(valid);

    const chainFile = join(ca.dir, 'after-hsm.pem');
    writeFileSync(chainFile, chain);
    const rootFile = join(ca.shared.caDir, 'root.pem');
    const { stdout } = await run('openssl', [
      'verify', '-CAfile', rootFile, '-untrusted', chainFile, chainFile,
    ]);
    t.match(stdout, /after-hsm\.pem: OK/);

    const orderId = String(order.url).split('/').pop()!;
    t.match(orderId, /^[A-Za-z0-9_-]{8,}$/);
    const rows = await db.db
      .selectFrom('certificates')
      .select('serial')
      .where('order_id', '=', orderId)
      .execute();
    t.equal(rows.length, 1, 'the SA holds the new certificate');

    const caLog = readFileSync(join(ca.instance.logDir, 'ca.log'), 'utf8');
    t.match(caLog, /precertificate signing failed/, 'the failure is in the audit log');
    t.notOk(caLog.includes(pin), 'the PIN is not logged');
  });
}
