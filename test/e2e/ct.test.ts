import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { embeddedScts, verifySct } from '../../components/lib/sct.js';
import { pemToDers } from '../../components/lib/x509.js';
import { openDatabase } from '../../components/sa/db.js';
import { stopProcess } from '../../pipelines/local/processes.js';
import { startTestCa } from '../helpers/ca.js';
import { startHttp01Server } from '../helpers/challenge-servers.js';

const run = promisify(execFile);

// Certificate Transparency end to end: every component a process, the CT log stub included.
const ca = await startTestCa();
t.teardown(() => ca.stop());
acme.axios.defaults.httpsAgent = ca.agent;
const http01 = await startHttp01Server(ca.httpPort);
t.teardown(() => http01.close());

const logPublicKey = readFileSync(ca.shared.ctLogPublicKeyFile, 'utf8');
const ctLogUrl = `http://127.0.0.1:${ca.instance.ports.ctLog}`;

async function newClient() {
  const client = new acme.Client({
    directoryUrl: ca.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffMin: 50,
    backoffMax: 500,
  });
  await client.createAccount({ termsOfServiceAgreed: true });
  return client;
}

/** An order for `name` whose http-01 challenge is answered: ready to finalize. */
async function readyOrder(client: acme.Client, name: string) {
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
  const [authz] = await client.getAuthorizations(order);
  const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
  http01.tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
  await client.completeChallenge(challenge);
  await client.waitForValidStatus(challenge);
  await client.waitForValidStatus(order);
  return order;
}

async function treeSize(): Promise<number> {
  const res = await fetch(`${ctLogUrl}/ct/v1/get-sth`);
  return ((await res.json()) as { tree_size: number }).tree_size;
}

t.test('issues a certificate whose SCTs OpenSSL lists and the log key verifies', async (t) => {
  const before = await treeSize();
  const client = await newClient();
  const [, csr] = await acme.crypto.createCsr({ commonName: 'ct.test', altNames: ['ct.test'] });
  const order = await client.finalizeOrder(await readyOrder(client, 'ct.test'), csr);
  const pem = await client.getCertificate(await client.waitForValidStatus(order));
  const [leaf, issuer] = pemToDers(pem);

  const file = join(ca.dir, 'ct-leaf.pem');
  writeFileSync(file, pem);
  const { stdout } = await run('openssl', ['x509', '-in', file, '-text', '-noout']);
  t.match(stdout, /CT Precertificate SCTs:\s+Signed Certificate Timestamp:\s+Version\s+: v1/);
  t.notMatch(stdout, /Poison/);

  const scts = embeddedScts(leaf);
  t.ok(scts.length >= 1, `${scts.length} SCT(s) embedded`);
  for (const sct of scts) {
    const valid = verifySct(sct, { finalCertDer: leaf, issuerCertDer: issuer, logPublicKey });
    t.ok(valid, 'the SCT verifies against the log key');
  }
  t.equal(await treeSize(), before + 1, 'the log appended the precertificate');
});

t.test('fails the order, storing no certificate, when the CT log is down', async (t) => {
  const client = await newClient();
  const ready = await readyOrder(client, 'ct-down.test');
  await stopProcess(ca.instance.processes.get('ct-log')!);

  const names = { commonName: 'ct-down.test', altNames: ['ct-down.test'] };
  const [, csr] = await acme.crypto.createCsr(names);
  const finalized = await client.finalizeOrder(ready, csr);
  const problem = finalized.error as { type: string; detail: string };
  t.equal(finalized.status, 'invalid');
  t.equal(problem.type, 'urn:ietf:params:acme:error:serverInternal');
  t.match(problem.detail, /CT logs could not be reached, so no certificate was issued/);
  t.notOk(finalized.certificate, 'the order names no certificate');

  const orderId = String(ready.url).split('/').pop()!;
  const db = openDatabase(ca.shared.dbUrl);
  t.teardown(() => db.destroy());
  const rows = await db.db
    .selectFrom('certificates')
    .select('serial')
    .where('order_id', '=', orderId)
    .execute();
  t.same(rows, [], 'the SA holds no certificate for the order');
});
