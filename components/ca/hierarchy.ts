import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { KeyAlgorithm, KeyStore, SigningKey } from '../keys/types.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  buildCertificate,
  certificatePoliciesExtension,
  certificateToPem,
  extKeyUsageExtension,
  inspectCertificate,
  keyIdentifierOf,
  keyUsageExtension,
  oids,
  pemToDer,
  randomSerialHex,
  subjectKeyIdentifierExtension,
} from '../lib/x509.js';
import { issuerIdOf, type IssuerDescription } from './issuer.js';

export type { IssuerDescription } from './issuer.js';

/**
 * The CA hierarchy the toolkit creates: a self-signed root and issuing intermediates under it,
 * their keys in a key store and their certificates in one directory. `hierarchy.json` in that
 * directory records which key belongs to which certificate, so a re-run changes nothing and a
 * rotation adds an intermediate beside the others.
 */

/** Bases of the URLs written into certificates; each issuer's id is appended to them. */
export interface HierarchyUrls {
  /** `http://host/ocsp` gives `http://host/ocsp/<issuerId>`. */
  ocspBase: string;
  /** `http://host/crl` gives `http://host/crl/<issuerId>.crl`. */
  crlBase: string;
  /** `http://host/issuer` gives `http://host/issuer/<issuerId>.der`. */
  caIssuersBase: string;
}

export interface HierarchyOptions {
  keyStore: KeyStore;
  /** Where root.pem, issuer-<id>.pem, issuer-<id>-chain.pem and hierarchy.json are kept. */
  dir: string;
  /**
   * Key algorithm of what is created. An existing hierarchy of another algorithm is refused
   * rather than silently kept.
   * @default 'ecdsa-p256', or the existing root's algorithm
   */
  algorithm?: KeyAlgorithm;
  /** Common name of the root. */
  rootName: string;
  /** Common name of issuing intermediates. */
  issuerName: string;
  urls: HierarchyUrls;
}

const manifestName = 'hierarchy.json';
const rootFile = 'root.pem';
const rootKeyId = 'root';

/** CA certificates start an hour back, so a verifier whose clock lags still accepts them. */
const backdateMs = 3_600_000;

interface ManifestIssuer {
  id: string;
  keyId: string;
  algorithm: KeyAlgorithm;
  createdAt: string;
}

interface Manifest {
  version: 1;
  root: { keyId: string; algorithm: KeyAlgorithm } | null;
  issuers: ManifestIssuer[];
}

interface RootCa {
  key: SigningKey;
  subjectDer: Buffer;
  subjectKeyId: Buffer;
  notAfter: Date;
  pem: string;
}

function checkUrls(urls: HierarchyUrls): void {
  for (const [field, value] of Object.entries(urls)) {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    // CA/B BR §7.1.2.7.7 and §7.1.2.11.2: AIA and CRL locations are plain HTTP.
    if (url?.protocol !== 'http:') {
      throw new Error(`expected urls.${field} to be an http:// URL, got ${JSON.stringify(value)}`);
    }
  }
}

function urlUnder(base: string, tail: string): string {
  return `${base.replace(/\/+$/, '')}/${tail}`;
}

function describe(dir: string, issuer: ManifestIssuer, urls: HierarchyUrls): IssuerDescription {
  return {
    id: issuer.id,
    certFile: join(dir, `issuer-${issuer.id}.pem`),
    chainFile: join(dir, `issuer-${issuer.id}-chain.pem`),
    keyId: issuer.keyId,
    ocspUrl: urlUnder(urls.ocspBase, issuer.id),
    crlUrl: urlUnder(urls.crlBase, `${issuer.id}.crl`),
    caIssuersUrl: urlUnder(urls.caIssuersBase, `${issuer.id}.der`),
  };
}

async function readManifest(dir: string): Promise<Manifest> {
  const text = await readFile(join(dir, manifestName), 'utf8').catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    },
  );
  if (text === null) return { version: 1, root: null, issuers: [] };

  const manifest = JSON.parse(text) as Manifest;
  if (manifest.version !== 1) {
    throw new Error(`${join(dir, manifestName)}: version ${manifest.version}; expected 1`);
  }
  return manifest;
}

/** Replaces a file whole: readers see the old content or the new, never a part. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode: 0o644 });
  await rename(temporary, file);
}

async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await writeAtomic(join(dir, manifestName), JSON.stringify(manifest, null, 2) + '\n');
}

/**
 * The key with this id: a new one, or the one an earlier run made before it stopped short of
 * recording it (nothing was signed under it then, so reusing it is safe).
 */
async function ensureKey(
  keyStore: KeyStore,
  keyId: string,
  algorithm: KeyAlgorithm,
): Promise<SigningKey> {
  if (!(await keyStore.list()).includes(keyId)) return keyStore.generate(keyId, algorithm);

  const key = await keyStore.load(keyId);
  if (key.algorithm !== algorithm) {
    throw new Error(`key ${keyId} exists as ${key.algorithm}, but ${algorithm} was asked for`);
  }
  return key;
}

function yearsAfter(date: Date, years: number): Date {
  const out = new Date(date);
  out.setUTCFullYear(out.getUTCFullYear() + years);
  return out;
}

async function createRoot(options: HierarchyOptions, algorithm: KeyAlgorithm): Promise<RootCa> {
  const key = await ensureKey(options.keyStore, rootKeyId, algorithm);
  const notBefore = new Date(Date.now() - backdateMs);
  const keyId = keyIdentifierOf(key.publicKeySpki);

  const der = await buildCertificate(
    {
      serialHex: randomSerialHex(),
      issuerName: 'self',
      subject: options.rootName,
      spki: key.publicKeySpki,
      notBefore,
      notAfter: yearsAfter(notBefore, 10),
      extensions: [
        basicConstraintsExtension(true),
        keyUsageExtension(['keyCertSign', 'cRLSign']),
        subjectKeyIdentifierExtension(key.publicKeySpki),
        authorityKeyIdentifierExtension(keyId),
      ],
    },
    key,
  );

  const pem = certificateToPem(der);
  await writeAtomic(join(resolve(options.dir), rootFile), pem);
  return rootFromPem(pem, key);
}

function rootFromPem(pem: string, key: SigningKey): RootCa {
  const facts = inspectCertificate(pemToDer(pem));
  if (!facts.spki.equals(key.publicKeySpki)) {
    throw new Error(`${rootFile} does not certify key ${key.id}`);
  }
  return {
    key,
    pem,
    subjectDer: facts.subjectDer,
    subjectKeyId: facts.subjectKeyId ?? keyIdentifierOf(facts.spki),
    notAfter: facts.notAfter,
  };
}

async function loadRoot(dir: string, keyStore: KeyStore, keyId: string): Promise<RootCa> {
  const file = join(dir, rootFile);
  const pem = await readFile(file, 'utf8').catch((err: Error) => {
    throw new Error(`${file} is recorded in ${manifestName} but cannot be read: ${err.message}`);
  });
  return rootFromPem(pem, await keyStore.load(keyId));
}

/** Signs a new issuing intermediate under the root and records it in the manifest. */
async function createIssuer(
  options: Omit<HierarchyOptions, 'rootName'>,
  root: RootCa,
  manifest: Manifest,
  algorithm: KeyAlgorithm,
): Promise<ManifestIssuer> {
  const dir = resolve(options.dir);
  const keyId = `issuer-${manifest.issuers.length + 1}`;
  const key = await ensureKey(options.keyStore, keyId, algorithm);

  const id = issuerIdOf(key.publicKeySpki);
  if (manifest.issuers.some((i) => i.id === id)) {
    throw new Error(`key ${keyId} has issuer id ${id}, which an existing issuer already has`);
  }

  // An intermediate never outlives its root; a late rotation gets a shorter one.
  const notBefore = new Date(Date.now() - backdateMs);
  const fiveYears = yearsAfter(notBefore, 5);
  const notAfter = fiveYears < root.notAfter ? fiveYears : root.notAfter;

  const der = await buildCertificate(
    {
      serialHex: randomSerialHex(),
      issuerName: root.subjectDer,
      subject: options.issuerName,
      spki: key.publicKeySpki,
      notBefore,
      notAfter,
      extensions: [
        basicConstraintsExtension(true, 0),
        keyUsageExtension(['digitalSignature', 'keyCertSign', 'cRLSign']),
        extKeyUsageExtension([oids.serverAuth]),
        subjectKeyIdentifierExtension(key.publicKeySpki),
        authorityKeyIdentifierExtension(root.subjectKeyId),
        certificatePoliciesExtension([oids.domainValidated]),
      ],
    },
    root.key,
  );

  const entry: ManifestIssuer = { id, keyId, algorithm, createdAt: new Date().toISOString() };
  const files = describe(dir, entry, options.urls);
  const pem = certificateToPem(der);
  await writeAtomic(files.certFile, pem);
  await writeAtomic(files.chainFile, pem + root.pem);

  manifest.issuers.push(entry);
  await writeManifest(dir, manifest);
  return entry;
}

/**
 * Creates what is missing of the hierarchy in `dir` (root key and self-signed root for 10
 * years, then one issuing intermediate for 5) and returns the newest issuer. Re-running it
 * changes nothing.
 */
export async function createHierarchy(options: HierarchyOptions): Promise<IssuerDescription> {
  checkUrls(options.urls);
  const dir = resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const manifest = await readManifest(dir);

  const recorded = manifest.root?.algorithm ?? manifest.issuers.at(-1)?.algorithm;
  if (options.algorithm && recorded && recorded !== options.algorithm) {
    throw new Error(`the hierarchy in ${dir} uses ${recorded}, not ${options.algorithm}`);
  }
  const algorithm = options.algorithm ?? recorded ?? 'ecdsa-p256';

  let root: RootCa;
  if (manifest.root) {
    root = await loadRoot(dir, options.keyStore, manifest.root.keyId);
  } else {
    root = await createRoot(options, algorithm);
    manifest.root = { keyId: rootKeyId, algorithm };
    await writeManifest(dir, manifest);
  }

  const newest =
    manifest.issuers.at(-1) ?? (await createIssuer(options, root, manifest, algorithm));
  return describe(dir, newest, options.urls);
}

/**
 * Adds an issuing intermediate with a new key under the existing root of `dir`, for a CA key
 * rotation; the earlier issuers stay as they are.
 */
export async function addIssuer(
  options: Omit<HierarchyOptions, 'rootName'>,
): Promise<IssuerDescription> {
  checkUrls(options.urls);
  const dir = resolve(options.dir);
  const manifest = await readManifest(dir);
  if (!manifest.root) throw new Error(`no hierarchy in ${dir}: create it first`);

  const root = await loadRoot(dir, options.keyStore, manifest.root.keyId);
  const algorithm = options.algorithm ?? manifest.root.algorithm;
  return describe(dir, await createIssuer(options, root, manifest, algorithm), options.urls);
}

/** Every issuer of the hierarchy in `dir`, oldest first. */
export async function listIssuers(dir: string, urls: HierarchyUrls): Promise<IssuerDescription[]> {
  checkUrls(urls);
  const manifest = await readManifest(resolve(dir));
  return manifest.issuers.map((issuer) => describe(resolve(dir), issuer, urls));
}

/** The root certificate's file in a hierarchy directory. */
export function rootCertFile(dir: string): string {
  return join(resolve(dir), rootFile);
}
