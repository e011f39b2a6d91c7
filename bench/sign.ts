import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyStore } from '../components/keys/file-store.js';
import { Pkcs11KeyStore } from '../components/keys/pkcs11-store.js';
import { initSoftHsmToken } from '../components/keys/softhsm.js';
import type { KeyStore, SigningKey } from '../components/keys/types.js';

export interface SignFigures {
  store: 'pkcs11' | 'file';
  concurrency: number;
  signatures: number;
  seconds: number;
  perSecond: number;
}

export interface SignBenchResult {
  figures: SignFigures[];
  /** PKCS#11 signatures per second over file-store ones, by concurrency. */
  ratios: { concurrency: number; pkcs11OverFile: number }[];
}

/** A certificate's to-be-signed part is around this size. */
const payload = Buffer.alloc(1200, 0x5a);

/** Signs as fast as `concurrency` callers can for `seconds`; every signature is awaited. */
async function measure(key: SigningKey, seconds: number, concurrency: number) {
  let signatures = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;

  const caller = async () => {
    while (performance.now() < deadline) {
      await key.sign(payload);
      signatures++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));

  const elapsed = (performance.now() - started) / 1000;
  return { signatures, seconds: elapsed, perSecond: signatures / elapsed };
}

/**
 * ECDSA P-256 signatures per second through a PKCS#11 store (a SoftHSM2 token in a temporary
 * folder) and through the file key store, one after the other, at each concurrency.
 */
export async function benchSign(
  options: { seconds?: number; concurrencies?: number[] } = {},
): Promise<SignBenchResult> {
  const seconds = options.seconds ?? 3;
  const concurrencies = options.concurrencies ?? [1, 4];
  const dir = mkdtempSync(join(tmpdir(), 'bench-sign-'));
  const stores: Record<SignFigures['store'], KeyStore> = {
    pkcs11: new Pkcs11KeyStore(await initSoftHsmToken({ dir: join(dir, 'hsm'), label: 'bench' })),
    file: new FileKeyStore(join(dir, 'keys')),
  };

  const figures: SignFigures[] = [];
  try {
    for (const [store, keyStore] of Object.entries(stores) as [SignFigures['store'], KeyStore][]) {
      const key = await keyStore.generate('bench', 'ecdsa-p256');
      await key.sign(payload); // the first signature opens the session; keep it out of the figures
      for (const concurrency of concurrencies) {
        figures.push({ store, concurrency, ...(await measure(key, seconds, concurrency)) });
      }
    }
  } finally {
    await stores.pkcs11.close();
    await stores.file.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const rate = (store: string, concurrency: number) =>
    figures.find((f) => f.store === store && f.concurrency === concurrency)!.perSecond;
  const ratios = concurrencies.map((concurrency) => ({
    concurrency,
    pkcs11OverFile: rate('pkcs11', concurrency) / rate('file', concurrency),
  }));
  return { figures, ratios };
}
