import { join } from 'node:path';
import { addIssuer, listIssuers } from '../components/ca/hierarchy.js';
import { openKeyStore } from '../components/keys/index.js';
import { openDatabase } from '../components/sa/db.js';
import { withLock } from './local/state-lock.js';
import { hierarchyUrls, updateSharedIssuers } from './local/shared-state.js';

/**
 * CA key rotation for the shared state: a new issuing key and intermediate under the same root
 * become the active issuer, and an old issuer leaves the shared state once nothing it signed
 * is still valid. Running colors keep their configs; the next deploy picks the change up.
 */

/** What a rotation did: the issuer that signed until now and the one that signs from now. */
export interface RotationResult {
  readonly previous: string;
  readonly active: string;
}

/**
 * Creates a new issuing key in the shared state's key store (the same algorithm and URL bases as
 * the existing issuers), signs its intermediate with the unchanged root, and records it in
 * shared.json as the active issuer. Earlier issuers stay, so their OCSP responses and CRLs keep
 * being signed and served at their own URLs. The trust bundle holds only the root and is not
 * rewritten.
 */
export async function rotateIssuer(stateDir: string): Promise<RotationResult> {
  const { value } = await withLock(stateDir, 'rotate-ca-key', async () => {
    let previous = '';
    const state = await updateSharedIssuers(stateDir, async (shared) => {
      previous = shared.activeIssuer;
      const urls = hierarchyUrls(shared.publicHttpBase);
      // Distinct subject names keep the intermediates apart for relying parties that match
      // on the name; the number follows the key ids (issuer-<n>) in hierarchy.json.
      const number = (await listIssuers(shared.caDir, urls)).length + 1;
      const keyStore = openKeyStore(shared.keyStore);
      try {
        const issuer = await addIssuer({
          keyStore,
          dir: shared.caDir,
          issuerName: `bluegreen-ca issuer ${number}`,
          urls,
        });
        return { issuers: [...shared.issuers, issuer], activeIssuer: issuer.id };
      } finally {
        // A PKCS#11 store logs out and finalizes its module here.
        await keyStore.close();
      }
    });
    return { previous, active: state.activeIssuer };
  });
  return value;
}

export interface RetireOptions {
  /** The time certificates are compared with. @default the current time */
  now?: Date;
}

/** What a retirement did: the issuer removed and the ones the shared state keeps. */
export interface RetireResult {
  readonly retired: string;
  readonly issuers: readonly string[];
  /**
   * The retired issuer's key, which stays where it was: its id in the key store and that
   * store (`<keysDir>/<id>.key` or `HSM token <label>`), for an operator who destroys it later.
   */
  readonly keptKey: { readonly keyId: string; readonly location: string };
}

/**
 * Removes issuer `id` from shared.json, so the next deploy no longer loads its key or answers
 * OCSP and CRL requests for it. Refuses the active issuer, and any issuer that signed a
 * certificate or precertificate which has not expired at `now`. The key stays in the key store
 * (file or token object) and the intermediate in the hierarchy directory: retiring stops their
 * use, it does not destroy them. Colors deployed before the retirement still list the issuer
 * in their configs and load its key when they start (a rollback, a restart), so destroying it
 * here would keep them from starting; an operator destroys it once every color is redeployed.
 */
export async function retireIssuer(
  stateDir: string,
  id: string,
  options: RetireOptions = {},
): Promise<RetireResult> {
  const nowIso = (options.now ?? new Date()).toISOString();

  const { value } = await withLock(stateDir, 'retire-ca-key', async () => {
    let keptKey: RetireResult['keptKey'] | undefined;
    const state = await updateSharedIssuers(stateDir, async (shared) => {
      const retiring = shared.issuers.find((i) => i.id === id);
      if (!retiring) {
        const known = shared.issuers.map((i) => i.id).join(', ');
        throw new Error(`expected --retire to name an issuer (${known}), got ${id}`);
      }
      if (id === shared.activeIssuer) {
        throw new Error(
          `issuer ${id} is the active issuer; rotate to a new one before retiring it`,
        );
      }

      const lastNotAfter = await lastUnexpired(shared.dbUrl, id, nowIso);
      if (lastNotAfter) {
        throw new Error(
          `issuer ${id} still has unexpired certificates (the last expires ${lastNotAfter}); ` +
            'retire it after that',
        );
      }
      const store = shared.keyStore;
      keptKey = {
        keyId: retiring.keyId,
        location:
          store.type === 'file'
            ? join(store.dir, `${retiring.keyId}.key`)
            : `HSM token ${store.tokenLabel}`,
      };
      return {
        issuers: shared.issuers.filter((i) => i.id !== id),
        activeIssuer: shared.activeIssuer,
      };
    });
    return { retired: id, issuers: state.issuers.map((i) => i.id), keptKey: keptKey! };
  });
  return value;
}

/**
 * When the last certificate of `issuerId` unexpired at `nowIso` expires, or null when none is.
 * Precertificates that never became a certificate count too: their serials have an OCSP
 * response from that issuer and must keep getting one.
 */
async function lastUnexpired(
  dbUrl: string,
  issuerId: string,
  nowIso: string,
): Promise<string | null> {
  const { db, destroy } = openDatabase(dbUrl);
  try {
    // Times are fixed-width ISO text, so text comparison is time comparison (see db.ts).
    const certificate = await db
      .selectFrom('certificates')
      .select((eb) => eb.fn.max('not_after').as('last'))
      .where('issuer_id', '=', issuerId)
      .where('not_after', '>', nowIso)
      .executeTakeFirst();
    const precertificate = await db
      .selectFrom('ocsp_responses as o')
      .innerJoin('serials as s', 's.serial', 'o.serial')
      .select((eb) => eb.fn.max('s.expires').as('last'))
      .where('o.issuer_id', '=', issuerId)
      .where('s.expires', '>', nowIso)
      .executeTakeFirst();

    const last = [certificate?.last, precertificate?.last].filter((v): v is string => !!v).sort();
    return last.at(-1) ?? null;
  } finally {
    await destroy();
  }
}
