import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHierarchy, type IssuerDescription } from '../../components/ca/hierarchy.js';
import { openKeyStore, type KeyAlgorithm } from '../../components/keys/index.js';
import { componentIdentities, ensureIdentity, ensureRoot } from '../../components/lib/pki.js';
import { openDatabase } from '../../components/sa/db.js';
import { migrateToLatest } from '../../components/sa/migrations.js';

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
}

export interface SharedStateOptions {
  stateDir: string;
  /** @default sqlite file in the state directory */
  dbUrl?: string;
  /** @default 'ecdsa-p256' */
  keyAlgorithm?: KeyAlgorithm;
  /** @default http://127.0.0.1:4002 */
  publicHttpBase?: string;
}

const recordName = 'shared.json';

/** Creates whatever is missing of the shared state, keeps what exists, and migrates the db. */
export async function ensureSharedState(options: SharedStateOptions): Promise<SharedState> {
  const stateDir = resolve(options.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const record = join(stateDir, recordName);
  if (existsSync(record)) {
    const state = JSON.parse(readFileSync(record, 'utf8')) as SharedState;
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

  const keyStore = openKeyStore({ type: 'file', dir: keysDir });
  const issuer = await createHierarchy({
    keyStore,
    dir: caDir,
    algorithm: options.keyAlgorithm ?? 'ecdsa-p256',
    rootName: 'bluegreen-ca root',
    issuerName: 'bluegreen-ca issuer',
    urls: {
      ocspBase: `${publicHttpBase}/ocsp`,
      crlBase: `${publicHttpBase}/crl`,
      caIssuersBase: `${publicHttpBase}/issuer`,
    },
  });
  await keyStore.close();

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
  };
  writeFileSync(record, JSON.stringify(state, null, 2) + '\n');
  return state;
}

async function migrate(dbUrl: string): Promise<void> {
  const db = await openDatabase(dbUrl);
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}
