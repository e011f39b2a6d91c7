import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { identityFiles, serverNameOf } from '../../components/lib/pki.js';
import type { CaPorts } from './ports.js';
import type { SharedState } from './shared-state.js';

/** The components a color runs, in start order (servers before their clients). */
export const components = [
  'sa',
  'ocsp-responder',
  'ct-log',
  'ca',
  'va',
  'publisher',
  'ra',
  'wfe',
] as const;
export type Component = (typeof components)[number];

export interface ColorSettings {
  /** Domains the RA allows; names under them resolve to 127.0.0.1 for the VA. */
  allowedDomains: string[];
  /** A DNS server for dns-01 look-ups, `host:port`; the system resolver when absent. */
  dnsResolver?: string;
  logLevel?: string;
  /** EAB key id to base64url HMAC key; setting any makes EAB required. */
  eabKeys?: Record<string, string>;
}

const local = (port: number) => `127.0.0.1:${port}`;

/** Writes one JSON config per component into `dir`; returns their paths. */
export function writeConfigs(
  dir: string,
  shared: SharedState,
  ports: CaPorts,
  settings: ColorSettings,
): Record<Component, string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tls = (identity: string) => identityFiles(shared.pkiDir, identity);
  const peer = (c: 'ra' | 'sa' | 'va' | 'ca' | 'publisher') => ({
    address: local(ports.rpc[c]),
    serverName: serverNameOf(c),
  });
  const log = { level: settings.logLevel ?? 'info' };
  const profiles = {
    default: { description: 'server certificate, 90 days', lifetimeSeconds: 90 * 86_400 },
    shortlived: { description: 'short-lived server certificate, 160 hours', lifetimeSeconds: 160 * 3_600 },
  };

  const configs: Record<Component, unknown> = {
    sa: {
      listen: local(ports.rpc.sa),
      adminListen: local(ports.admin.sa),
      tls: tls('sa'),
      log,
      db: { url: shared.dbUrl },
    },
    ca: {
      listen: local(ports.rpc.ca),
      adminListen: local(ports.admin.ca),
      tls: tls('ca'),
      log,
      sa: peer('sa'),
      keyStore: shared.keyStore,
      issuers: shared.issuers,
      activeIssuer: shared.activeIssuer,
      profiles,
      defaultProfile: 'default',
    },
    'ocsp-responder': {
      listen: local(ports.publicHttp),
      adminListen: local(ports.admin['ocsp-responder']),
      tls: tls('ocsp-responder'),
      log,
      sa: peer('sa'),
      issuers: shared.issuers.map((i) => ({ id: i.id, certFile: i.certFile })),
    },
    'ct-log': {
      listen: local(ports.ctLog),
      adminListen: local(ports.admin['ct-log']),
      log,
      logKeyFile: shared.ctLogKeyFile,
      dataFile: shared.ctLogDataFile,
    },
    publisher: {
      listen: local(ports.rpc.publisher),
      adminListen: local(ports.admin.publisher),
      tls: tls('publisher'),
      log,
      logs: [
        {
          name: 'local',
          url: `http://127.0.0.1:${ports.ctLog}`,
          publicKeyFile: shared.ctLogPublicKeyFile,
        },
      ],
      timeoutMs: 5_000,
      minimumScts: 1,
    },
    va: {
      listen: local(ports.rpc.va),
      adminListen: local(ports.admin.va),
      tls: tls('va'),
      log,
      httpPort: ports.validation.httpPort,
      tlsAlpnPort: ports.validation.tlsAlpnPort,
      ...(settings.dnsResolver ? { dnsResolver: settings.dnsResolver } : {}),
      hostOverrides: settings.allowedDomains.map((suffix) => ({ suffix, address: '127.0.0.1' })),
    },
    ra: {
      listen: local(ports.rpc.ra),
      adminListen: local(ports.admin.ra),
      tls: tls('ra'),
      log,
      sa: peer('sa'),
      va: { ...peer('va'), timeoutMs: 30_000 },
      ca: peer('ca'),
      // Longer than the publisher's per-log timeout, so its answer names the logs that failed.
      publisher: { ...peer('publisher'), timeoutMs: 15_000 },
      allowedDomains: settings.allowedDomains,
      profiles: Object.keys(profiles),
      defaultProfile: 'default',
    },
    wfe: {
      listen: local(ports.acme),
      adminListen: local(ports.admin.wfe),
      tls: tls('wfe'),
      https: { certFile: tls('acme-https').certFile, keyFile: tls('acme-https').keyFile },
      log,
      ra: { ...peer('ra'), timeoutMs: 30_000 },
      sa: peer('sa'),
      nonceKeyFile: shared.nonceKeyFile,
      issuers: shared.issuers.map((i) => ({ id: i.id, chainFile: i.chainFile })),
      directory: {
        caaIdentities: ['bluegreen-ca.internal'],
        profiles: Object.fromEntries(
          Object.entries(profiles).map(([name, p]) => [name, p.description]),
        ),
      },
      externalAccountRequired: Object.keys(settings.eabKeys ?? {}).length > 0,
      eabKeys: settings.eabKeys ?? {},
    },
  };

  const files = {} as Record<Component, string>;
  for (const c of components) {
    files[c] = join(dir, `${c}.json`);
    writeFileSync(files[c], JSON.stringify(configs[c], null, 2) + '\n', { mode: 0o600 });
  }
  return files;
}
