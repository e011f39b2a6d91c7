import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { webcrypto, randomBytes } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/**
 * The internal PKI: one root and a certificate per component identity, for gRPC over mTLS
 * and for the ACME endpoint's HTTPS (the role minica plays for Boulder).
 */

/** DNS suffix of component identities: `ra` proves `ra.bluegreen-ca.internal`. */
export const identitySuffix = 'bluegreen-ca.internal';

export function serverNameOf(identity: string): string {
  return `${identity}.${identitySuffix}`;
}

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const lifetimeDays = { root: 3650, leaf: 825 };

export interface PkiPaths {
  dir: string;
  rootCert: string;
  rootKey: string;
}

export function pkiPaths(dir: string): PkiPaths {
  return { dir, rootCert: join(dir, 'root.pem'), rootKey: join(dir, 'root.key') };
}

export interface IdentityFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export function identityFiles(dir: string, identity: string): IdentityFiles {
  return {
    certFile: join(dir, `${identity}.pem`),
    keyFile: join(dir, `${identity}.key`),
    caFile: join(dir, 'root.pem'),
  };
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString('hex');
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  return (await webcrypto.subtle.importKey('pkcs8', der, algorithm, true, [
    'sign',
  ])) as unknown as CryptoKey;
}

function days(n: number): Date {
  return new Date(Date.now() + n * 86_400_000);
}

/** Creates the internal root in `dir` unless one is there; returns its paths. */
export async function ensureRoot(dir: string, name = 'bluegreen-ca internal root'): Promise<PkiPaths> {
  const paths = pkiPaths(dir);
  if (existsSync(paths.rootCert) && existsSync(paths.rootKey)) return paths;
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: days(lifetimeDays.root),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });

  writeFileSync(paths.rootKey, await exportKeyPem(keys.privateKey), { mode: 0o600 });
  writeFileSync(paths.rootCert, cert.toString('pem') + '\n');
  return paths;
}

export interface IssueIdentityOptions {
  /** Extra DNS names, e.g. `localhost` for an HTTPS endpoint. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Overwrite an existing certificate for this identity. */
  replace?: boolean;
}

/**
 * Issues (or keeps) the certificate of one component identity: CN = identity, SAN =
 * `<identity>.bluegreen-ca.internal` plus any extra names, usable as TLS server and client.
 */
export async function ensureIdentity(
  dir: string,
  identity: string,
  options: IssueIdentityOptions = {},
): Promise<IdentityFiles> {
  const files = identityFiles(dir, identity);
  if (!options.replace && existsSync(files.certFile) && existsSync(files.keyFile)) return files;

  const paths = await ensureRoot(dir);
  const rootCert = new x509.X509Certificate(readFileSync(paths.rootCert, 'utf8'));
  const rootKey = await importKeyPem(readFileSync(paths.rootKey, 'utf8'));
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;

  const names: x509.JsonGeneralName[] = [
    { type: 'dns', value: serverNameOf(identity) },
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${identity}`,
    issuer: rootCert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: days(lifetimeDays.leaf),
    publicKey: keys.publicKey,
    signingKey: rootKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert, false),
    ],
  });

  writeFileSync(files.keyFile, await exportKeyPem(keys.privateKey), { mode: 0o600 });
  writeFileSync(files.certFile, cert.toString('pem') + '\n');
  return files;
}

/** Every identity the CA's components use. */
export const componentIdentities = [
  'wfe',
  'ra',
  'va',
  'ca',
  'sa',
  'publisher',
  'ct-log',
  'ocsp-responder',
  'admin',
] as const;
