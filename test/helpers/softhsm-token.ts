import { readFileSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import type { SoftHsmKeyStoreConfig } from '../../components/keys/softhsm.js';

/**
 * A look inside a SoftHSM2 token from a test, through PKCS#11 directly rather than through the
 * key store under test. Call it while no key store of the test process has the module open:
 * it initializes the module under the token's SOFTHSM2_CONF and finalizes it when done.
 */

/** What the token says about the private key objects labelled with one key id. */
export interface TokenPrivateKey {
  /** CKA_TOKEN: stored on the token, not a session object. */
  token: boolean;
  sensitive: boolean;
  extractable: boolean;
  /** CKA_NEVER_EXTRACTABLE: extractable was never true since the key was made. */
  neverExtractable: boolean;
  /** CKA_LOCAL: generated on the token, not imported. */
  local: boolean;
}

/** The private key objects labelled `label` on the token, with their protection attributes. */
export function privateKeysOnToken(config: SoftHsmKeyStoreConfig, label: string): TokenPrivateKey[] {
  process.env.SOFTHSM2_CONF = config.softhsmConf;
  const p11 = new pkcs11js.PKCS11();
  p11.load(config.module);
  p11.C_Initialize();
  try {
    const slot = p11
      .C_GetSlotList(true)
      .find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === config.tokenLabel);
    if (!slot) throw new Error(`no token labelled ${config.tokenLabel}`);
    const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    // Private objects are visible only to a logged-in user.
    p11.C_Login(session, pkcs11js.CKU_USER, readFileSync(config.pin.file, 'utf8').trim());

    p11.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    const handles = p11.C_FindObjects(session, 16);
    p11.C_FindObjectsFinal(session);

    const flag = (handle: Buffer, type: number) =>
      p11.C_GetAttributeValue(session, handle, [{ type }])[0].value[0] === 1;
    return handles.map((handle) => ({
      token: flag(handle, pkcs11js.CKA_TOKEN),
      sensitive: flag(handle, pkcs11js.CKA_SENSITIVE),
      extractable: flag(handle, pkcs11js.CKA_EXTRACTABLE),
      neverExtractable: flag(handle, pkcs11js.CKA_NEVER_EXTRACTABLE),
      local: flag(handle, pkcs11js.CKA_LOCAL),
    }));
  } finally {
    // Ends the session and the login with it.
    p11.C_Finalize();
    p11.close();
  }
}
