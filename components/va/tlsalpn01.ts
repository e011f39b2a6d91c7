import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash } from 'node:crypto';
import { connect } from 'node:tls';
import { CaError } from '../lib/errors.js';
import { hostPort, socketFailure, timeoutFailure, type ValidationContext } from './context.js';
import { excerpt, failure } from './problems.js';

/** RFC 8737 §6.2: the ALPN protocol id of the validation handshake. */
export const acmeTlsProtocol = 'acme-tls/1';

/** RFC 8737 §6.1: id-pe-acmeIdentifier. */
export const acmeIdentifierOid = '1.3.6.1.5.5.7.1.31';

const subjectAltNameOid = '2.5.29.17';

/**
 * RFC 8737 §3: the extension value is the DER of `OCTET STRING (SIZE (32))` holding
 * SHA-256(keyAuthorization); DER allows exactly one encoding, tag 0x04 and length 0x20.
 */
export function acmeIdentifierValue(keyAuthorization: string): Buffer {
  const digest = createHash('sha256').update(keyAuthorization).digest();
  return Buffer.concat([Buffer.from([0x04, 0x20]), digest]);
}

const noAcmeTls = (target: string) =>
  failure('tls', `${target} did not negotiate the ${acmeTlsProtocol} protocol`);

interface Handshake {
  protocol: string | false | null;
  certificate: Buffer | undefined;
}

/**
 * RFC 8737 §3: connects to the name's address on the tls-alpn-01 port with SNI = name and ALPN
 * `acme-tls/1`, then checks the self-signed certificate the server presents. Throws a CaError
 * of a validation kind when anything is off.
 */
export async function validateTlsAlpn01(
  ctx: ValidationContext,
  name: string,
  keyAuthorization: string,
): Promise<void> {
  const port = ctx.tlsAlpnPort;
  let addresses: string[];
  try {
    addresses = await ctx.resolver.resolveAddresses(name, ctx.signal);
  } catch (err) {
    ctx.records.push({ hostname: name, port });
    throw err;
  }
  // Limitation: only the first address is tried. See docs/limitations.md#va-address-fallback.
  const address = addresses[0];
  ctx.records.push({ hostname: name, port, addressesResolved: addresses, addressUsed: address });
  const target = `${hostPort(address, port)} (SNI ${name})`;

  const { protocol, certificate } = await handshake(ctx, address, port, name, target);
  if (protocol !== acmeTlsProtocol) throw noAcmeTls(target);
  if (!certificate || certificate.length === 0) {
    throw failure('unauthorized', `${target} presented no certificate`);
  }
  checkCertificate(certificate, name, keyAuthorization, target);
}

function handshake(
  ctx: ValidationContext,
  address: string,
  port: number,
  name: string,
  target: string,
): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    // The chain is not verified: RFC 8737 §3 makes the certificate self-signed on purpose.
    const socket = connect({
      host: address,
      port,
      servername: name,
      ALPNProtocols: [acmeTlsProtocol],
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      // RFC 8737 §4: TLS 1.2 or later.
      minVersion: 'TLSv1.2',
    });

    let settled = false;
    const settle = (err: Error | null, result?: Handshake) => {
      if (settled) return;
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve(result!);
    };
    const onAbort = () => settle(timeoutFailure(ctx, `in the TLS handshake with ${target}`));

    if (ctx.signal.aborted) return onAbort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });

    socket.on('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      settle(null, { protocol: socket.alpnProtocol ?? null, certificate: peer?.raw });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A server that speaks ALPN but not acme-tls/1 answers with no_application_protocol.
      if (err.code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') {
        return settle(noAcmeTls(target));
      }
      settle(socketFailure(err, `TLS handshake with ${target}`));
    });
    socket.on('close', () =>
      settle(failure('connection', `${target} closed the connection during the TLS handshake`)),
    );
  });
}

function checkCertificate(der: Buffer, name: string, keyAuthorization: string, target: string) {
  const wrong = (why: string) =>
    failure('unauthorized', `incorrect tls-alpn-01 certificate from ${target}: ${why}`);

  let cert: x509.X509Certificate;
  let dnsNames: string[];
  let others: number;
  try {
    cert = new x509.X509Certificate(new Uint8Array(der));
    const sans = cert.extensions.filter((e) => e.type === subjectAltNameOid);
    if (sans.length !== 1) throw wrong(`expected one subjectAltName extension, got ${sans.length}`);
    const items = new x509.SubjectAlternativeNameExtension(sans[0].rawData).names.items;
    dnsNames = items.filter((n) => n.type === 'dns').map((n) => n.value);
    others = items.length - dnsNames.length;
  } catch (err) {
    if (err instanceof CaError) throw err;
    throw wrong('the certificate cannot be parsed');
  }

  // RFC 8737 §3: the dNSName being validated "and no other entries".
  if (dnsNames.length !== 1 || others !== 0 || dnsNames[0].toLowerCase() !== name) {
    const seen = dnsNames.slice(0, 3).map((n) => excerpt(n)).join(', ') || 'none';
    throw wrong(
      `subjectAltName must hold exactly one dNSName ${name} and nothing else; ` +
        `got dNSNames ${seen}${others ? ` and ${others} other names` : ''}`,
    );
  }

  const ids = cert.extensions.filter((e) => e.type === acmeIdentifierOid);
  if (ids.length !== 1) {
    throw wrong(`expected one id-pe-acmeIdentifier extension, got ${ids.length}`);
  }
  if (!ids[0].critical) throw wrong('the id-pe-acmeIdentifier extension is not critical');

  const value = Buffer.from(ids[0].value);
  const expected = acmeIdentifierValue(keyAuthorization);
  if (value.length !== expected.length || value[0] !== 0x04 || value[1] !== 0x20) {
    throw wrong('the id-pe-acmeIdentifier value is not an OCTET STRING of 32 bytes');
  }
  if (!value.equals(expected)) {
    throw wrong(
      `the id-pe-acmeIdentifier digest ${value.subarray(2).toString('hex')} does not match ` +
        `SHA-256 of the key authorization, ${expected.subarray(2).toString('hex')}`,
    );
  }
}
