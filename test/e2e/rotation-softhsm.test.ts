import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { openKeyStore } from '../../components/keys/index.js';
import type { SoftHsmKeyStoreConfig } from '../../components/keys/softhsm.js';
import { rotationTest } from '../helpers/rotation.js';
import { privateKeysOnToken } from '../helpers/softhsm-token.js';
import { requireTool } from '../helpers/tools.js';

/**
 * CA key rotation with the CA's keys on a SoftHSM2 token: the same end-to-end test as with the
 * file store, plus what only a token can show. The new issuing key is made on the token,
 * sensitive and never extractable, and no key file appears; a retired issuer's key stays on
 * the token (colors deployed before the retirement still load it when they start).
 */

/** Every file under `root`, recursively. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { withFileTypes: true }).flatMap((entry) => {
    const path = join(root, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

t.test('a rotated CA key on an HSM token signs while the old one still answers', async (t) => {
  if (!requireTool(t, 'openssl', 'apt-get install openssl')) return;
  if (!requireTool(t, 'softhsm2-util', 'apt-get install softhsm2')) return;

  await rotationTest(t, {
    keyStore: 'softhsm',
    afterRotation: async (t, ca, rotation) => {
      t.equal(ca.shared.keyStore.type, 'pkcs11');
      const token = ca.shared.keyStore as SoftHsmKeyStoreConfig;

      t.same(
        privateKeysOnToken(token, 'issuer-2'),
        [{ token: true, sensitive: true, extractable: false, neverExtractable: true, local: true }],
        `the key of ${rotation.active} was generated on the token and cannot leave it`,
      );
      t.notOk(existsSync(ca.shared.keysDir), 'no file key store was created');
      const pemKeys = filesUnder(ca.shared.stateDir)
        .filter((file) => !file.includes(`${join(ca.shared.stateDir, 'pki')}/`))
        .filter((file) => !file.includes(`${join(ca.shared.stateDir, 'ct-log')}/`))
        .filter((file) => readFileSync(file, 'latin1').includes('PRIVATE KEY'));
      t.same(pemKeys, [], 'no CA key in a file, outside the mTLS and CT log keys');
    },
    afterRetirement: async (t, ca, retired) => {
      const token = ca.shared.keyStore as SoftHsmKeyStoreConfig;
      t.equal(retired.keptKey.location, `HSM token ${token.tokenLabel}`);
      // Kept, and still protected: an operator destroys it once every color is redeployed.
      t.same(privateKeysOnToken(token, 'issuer-1'), [
        { token: true, sensitive: true, extractable: false, neverExtractable: true, local: true },
      ]);
      const store = openKeyStore(token);
      t.teardown(() => store.close());
      t.same(await store.list(), ['issuer-1', 'issuer-2', 'root']);
    },
  });
});
