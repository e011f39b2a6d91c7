import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { rotationTest } from '../helpers/rotation.js';
import { requireTool } from '../helpers/tools.js';

// CA key rotation with the file key store; rotation-softhsm.test.ts runs the same on a token.
t.test('a rotated CA key signs new certificates while the old one still answers', async (t) => {
  if (!requireTool(t, 'openssl', 'apt-get install openssl')) return;
  await rotationTest(t, {
    keyStore: 'file',
    afterRotation: async (t, ca, rotation) => {
      const file = join(ca.shared.keysDir, 'issuer-2.key');
      t.ok(existsSync(file), `the key of ${rotation.active} is a file in the key store`);
    },
    afterRetirement: async (t, ca, retired) => {
      const file = join(ca.shared.keysDir, 'issuer-1.key');
      t.equal(retired.keptKey.location, file);
      t.ok(existsSync(file), 'the retired key file stays until an operator removes it');
    },
  });
});
