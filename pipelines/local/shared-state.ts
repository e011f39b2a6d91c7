import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  createHierarchy,
  type HierarchyUrls,
  type IssuerDescription,
} from '../../components/ca/hierarchy.js';
import { ensureLogKeyFiles } from '../../components/ct-log/log-key.js';
import {
  openKeyStore,
  type KeyAlgorithm,
  type KeyStoreConfig,
} from '../../components/keys/index.js';
import { initSoftHsmToken } from '../../components/keys/softhsm.js';
import { componentIdentities, ensureIdentity, ensureRoot } from '../../components/lib/pki.js';
import { openDatabase } from '../../components/sa/db.js';
import { migrateToLatest } from '../../components/sa/migrations.js';
import { writeFileAtomic } from './state.js';

/**
 * The state every color shares and no flip replaces: the internal PKI, the CA's keys and
 * hierarchy, the nonce key and the database.
 */
export interface SharedState {
  readonly stateDir: string;
  readonly pkiDir: string;
  readonly keysDir: string;
  readonly caDir: string;
  readonly dbUrl: string;
  readonly nonceKeyFile: string;
  /** Every root a client must trust: the CA's root and the ACME endpoint's TLS root. */
  readonly trustBundle: string;
  readonly issuers: readonly IssuerDescription[];
  readonly activeIssuer: string;
  /** Base of the OCSP, CRL and issuer URLs written into certificates. */
  readonly publicHttpBase: string;
  /** Where the CA's keys are: the file store in `keysDir`, or a SoftHSM2 token under `hsm/`. */
  readonly keyStore: KeyStoreConfig;
  /** The CT log's ECDSA P-256 key (PEM, 0600), so every color's log signs as one log. */
  readonly ctLogKeyFile: string;
  /** Its public half, PEM: what publishers verify SCTs with. */
  readonly ctLogPublicKeyFile: string;
  /** The CT log's append-only entry file, shared by every color's log instance. */
  readonly ctLogDataFile: string;
}

/** Which key store a new shared state puts the CA's keys in. */
export type SharedKeyStore = 'file' | 'softhsm';

export interface SharedStateOptions {
  stateDir: string;
  /** @default sqlite file in the state directory */
  dbUrl?: string;
  /** @default 'ecdsa-p256' */
  keyAlgorithm?: KeyAlgorithm;
  /** @default http://127.0.0.1:4002 */
  publicHttpBase?: string;
  /**
   * Where a new shared state keeps the CA's keys: PKCS#8 files, or a SoftHSM2 token initialized
   * in `<stateDir>/hsm`. An existing state keeps its own; asking for the other one fails.
   * @default 'file'
   */
  keyStore?: SharedKeyStore;
}

/** The SoftHSM2 token label of the local target's CA keys. */
export const sharedTokenLabel = 'bluegreen-ca';

const recordName = 'shared.json';

/** Creates whatever is missing of the shared state, keeps what exists, and migrates the db. */
export async function ensureSharedState(options: SharedStateOptions): Promise<SharedState> {
  const stateDir = resolve(options.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const record = join(stateDir, recordName);
  if (existsSync(record)) {
    const recorded = JSON.parse(readFileSync(record, 'utf8')) as Omit<SharedState, 'keyStore'> & {
      keyStore?: KeyStoreConfig;
    };
    // Records written before the key store was recorded all used the file store.
    const state: SharedState = {
      ...recorded,
      keyStore: recorded.keyStore ?? { type: 'file', dir: recorded.keysDir },
      // Records written before the CT log existed gain its key here.
      ...ensureCtLogState(stateDir),
    };
    const kind: SharedKeyStore = state.keyStore.type === 'file' ? 'file' : 'softhsm';
    if (options.keyStore && options.keyStore !== kind) {
      throw new Error(
        `the shared state in ${stateDir} keeps its CA keys in the ${kind} key store, not ` +
          `${options.keyStore}; use another --state directory to start over`,
      );
    }
    await migrate(state.dbUrl);
    return state;
  }

  const pkiDir = join(stateDir, 'pki');
  const keysDir = join(stateDir, 'keys');
  const caDir = join(stateDir, 'ca');
  const publicHttpBase = options.publicHttpBase ?? 'http://127.0.0.1:4002';
  const dbUrl = options.dbUrl ?? `sqlite:${join(stateDir, 'ca.db')}`;

  await ensureRoot(pkiDir);
  for (const identity of componentIdentities) await ensureIdentity(pkiDir, identity);
  await ensureIdentity(pkiDir, 'acme-https', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });

  const keyStoreConfig: KeyStoreConfig =
    options.keyStore === 'softhsm'
      ? await initSoftHsmToken({ dir: join(stateDir, 'hsm'), label: sharedTokenLabel })
      : { type: 'file', dir: keysDir };
  const keyStore = openKeyStore(keyStoreConfig);
  let issuer: IssuerDescription;
  try {
    issuer = await createHierarchy({
      keyStore,
      dir: caDir,
      algorithm: options.keyAlgorithm ?? 'ecdsa-p256',
      rootName: 'bluegreen-ca root',
      issuerName: 'bluegreen-ca issuer',
      urls: hierarchyUrls(publicHttpBase),
    });
  } finally {
    // A PKCS#11 store logs out and finalizes its module here.
    await keyStore.close();
  }

  const nonceKeyFile = join(stateDir, 'nonce.key');
  if (!existsSync(nonceKeyFile)) writeFileSync(nonceKeyFile, randomBytes(32), { mode: 0o600 });

  const trustBundle = join(stateDir, 'roots.pem');
  writeFileSync(
    trustBundle,
    readFileSync(join(caDir, 'root.pem'), 'utf8') + readFileSync(join(pkiDir, 'root.pem'), 'utf8'),
  );

  await migrate(dbUrl);
  const state: SharedState = {
    stateDir,
    pkiDir,
    keysDir,
    caDir,
    dbUrl,
    nonceKeyFile,
    trustBundle,
    issuers: [issuer],
    activeIssuer: issuer.id,
    publicHttpBase,
    keyStore: keyStoreConfig,
    ...ensureCtLogState(stateDir),
  };
  writeFileSync(record, JSON.stringify(state, null, 2) + '\n');
  return state;
}

/** The URL bases every issuer of a shared state writes into its certificates. */
export function hierarchyUrls(publicHttpBase: string): HierarchyUrls {
  return {
    ocspBase: `${publicHttpBase}/ocsp`,
    crlBase: `${publicHttpBase}/crl`,
    caIssuersBase: `${publicHttpBase}/issuer`,
  };
}

/** The part of the shared state a CA key rotation changes. */
export type SharedIssuers = Pick<SharedState, 'issuers' | 'activeIssuer'>;

/**
 * Replaces the issuers of the shared state in `stateDir` with what `change` returns, writing
 * shared.json atomically: a crash leaves the old record or the new. The caller holds the state
 * lock, so no other run rewrites the record in between.
 */
export async function updateSharedIssuers(
  stateDir: string,
  change: (state: SharedState) => Promise<SharedIssuers> | SharedIssuers,
): Promise<SharedState> {
  if (!existsSync(join(resolve(stateDir), recordName))) {
    throw new Error(`no shared state in ${resolve(stateDir)}: run init first`);
  }
  const current = await ensureSharedState({ stateDir });
  const next: SharedState = { ...current, ...(await change(current)) };
  if (!next.issuers.some((i) => i.id === next.activeIssuer)) {
    throw new Error(`expected activeIssuer to be one of the issuers, got ${next.activeIssuer}`);
  }
  writeFileAtomic(join(current.stateDir, recordName), JSON.stringify(next, null, 2) + '\n');
  return next;
}

/** The CT log's files under `<stateDir>/ct-log`; the key is made once and kept. */
function ensureCtLogState(stateDir: string) {
  const dir = join(stateDir, 'ct-log');
  const files = {
    ctLogKeyFile: join(dir, 'log.key'),
    ctLogPublicKeyFile: join(dir, 'log.pub.pem'),
    ctLogDataFile: join(dir, 'entries.log'),
  };
  ensureLogKeyFiles(files.ctLogKeyFile, files.ctLogPublicKeyFile);
  return files;
}

async function migrate(dbUrl: string): Promise<void> {
  const db = await openDatabase(dbUrl);
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}
