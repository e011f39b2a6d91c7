import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as pkijs from 'pkijs';
import { signTbs } from '../../components/ca/precertificate.js';
import { FileKeyStore } from '../../components/keys/file-store.js';
import type { SigningKey } from '../../components/keys/types.js';
import { extensionDer, poisonExtension, swapPoison, tbsOf } from '../../components/lib/sct.js';
import {
  basicConstraintsExtension,
  buildCertificate,
  inspectCertificate,
  randomSerialHex,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  type CertificateTemplate,
} from '../../components/lib/x509.js';

/**
 * Certificates for CT tests, made with the CA's own building blocks: an issuer (a self-signed
 * CA), precertificates under it, and final certificates from them with a given extension in
 * place of the poison.
 */
export interface CtFixture {
  readonly issuerDer: Buffer;
  readonly issuerSpki: Buffer;
  readonly issuerKey: SigningKey;
  /** A fresh precertificate for `name`, signed by the issuer. */
  precertificate(name?: string): Promise<Buffer>;
  /** A leaf without poison, as add-chain takes. */
  certificate(name?: string): Promise<Buffer>;
  /** The final certificate: the precertificate's TBS with `replacement` for the poison. */
  finalCertificate(precertDer: Buffer, replacement: pkijs.Extension | null): Promise<Buffer>;
  close(): void;
}

/** A fresh issuer key and certificate in a temporary directory; `close` removes it. */
export async function ctFixture(): Promise<CtFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-fixture-'));
  const store = new FileKeyStore(join(dir, 'keys'));
  const issuerKey = await store.generate('issuer', 'ecdsa-p256');
  const issuerDer = await buildCertificate(
    {
      serialHex: randomSerialHex(),
      issuerName: 'self',
      subject: 'ct fixture issuer',
      spki: issuerKey.publicKeySpki,
      notBefore: new Date(Date.now() - 3_600_000),
      notAfter: new Date(Date.now() + 86_400_000),
      extensions: [
        basicConstraintsExtension(true, 0),
        subjectKeyIdentifierExtension(issuerKey.publicKeySpki),
      ],
    },
    issuerKey,
  );
  const issuerName = inspectCertificate(issuerDer).subjectDer;

  const leaf = (name: string, poisoned: boolean): Promise<Buffer> => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const template: CertificateTemplate = {
      serialHex: randomSerialHex(),
      issuerName,
      subject: name,
      spki: publicKey.export({ type: 'spki', format: 'der' }),
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      extensions: [
        basicConstraintsExtension(false),
        subjectAltNameExtension([name]),
        ...(poisoned ? [poisonExtension()] : []),
      ],
    };
    return buildCertificate(template, issuerKey);
  };

  return {
    issuerDer,
    issuerSpki: issuerKey.publicKeySpki,
    issuerKey,
    precertificate: (name = 'ct.example.test') => leaf(name, true),
    certificate: (name = 'ct.example.test') => leaf(name, false),
    finalCertificate: (precertDer, replacement) =>
      signTbs(swapPoison(tbsOf(precertDer), replacement && extensionDer(replacement)), issuerKey),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
