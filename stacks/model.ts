import { basename } from 'node:path';
import { serverNameOf } from '../components/lib/pki.js';
import { instanceLayout, stateDirOf } from '../images/cloud-init.js';
import { defaultPorts } from '../pipelines/local/ports.js';
import { components, type Component } from '../pipelines/local/configs.js';
import { colors, type Color } from '../pipelines/local/state.js';
import { migrationJobFile } from '../pipelines/release.js';
import { DeploymentConfigError, versionPlaceholder, type DeploymentConfig } from './config.js';

/**
 * What both cloud targets deploy, independent of how: the components, the ports they listen
 * on, which component may talk to which (the only traffic the stacks let through), where a
 * release keeps its files, and each component's config file.
 */

export { colors, components, type Color, type Component };

/** Every component gets its own host (pod or instance), so the embedded default ports serve. */
export const ports = defaultPorts;

/** The port each component serves its callers on. */
export const servingPort: Record<Component, number> = {
  wfe: ports.acme,
  'ocsp-responder': ports.publicHttp,
  'ct-log': ports.ctLog,
  ra: ports.rpc.ra,
  sa: ports.rpc.sa,
  va: ports.rpc.va,
  ca: ports.rpc.ca,
  publisher: ports.rpc.publisher,
};

/** One allowed connection between two components of the same color. */
export interface Edge {
  readonly from: Component;
  readonly to: Component;
  readonly port: number;
}

/**
 * The component edges of DESIGN.md, as the component configs wire them: the wfe calls the ra
 * and the sa; the ra calls the sa, va, ca and publisher; the ca and the OCSP responder read
 * from the sa; the publisher submits to the CT log.
 */
export const edges: readonly Edge[] = (
  [
    ['wfe', 'ra'],
    ['wfe', 'sa'],
    ['ra', 'sa'],
    ['ra', 'va'],
    ['ra', 'ca'],
    ['ra', 'publisher'],
    ['ca', 'sa'],
    ['ocsp-responder', 'sa'],
    ['publisher', 'ct-log'],
  ] as const
).map(([from, to]) => ({ from, to, port: servingPort[to] }));

/** Components clients reach from outside through the load balancer, and on which port. */
export const publicEntries = {
  acme: { component: 'wfe', port: ports.acme, publicPort: 443 },
  http: { component: 'ocsp-responder', port: ports.publicHttp, publicPort: 80 },
} as const satisfies Record<string, { component: Component; port: number; publicPort: number }>;

/**
 * Where a release keeps its files inside the image (container) or on the instance: the
 * images' own layout. The CT log's entry file lives in its component's writable directory
 * (a volume in a cluster, systemd's StateDirectory on an instance).
 */
export const layout = {
  app: instanceLayout.app,
  config: instanceLayout.config,
  pki: instanceLayout.pki,
  ctLogData: stateDirOf('ct-log'),
} as const;

/** A component's config file inside the image or on the instance. */
export function configFileOf(c: Component): string {
  return `${layout.config}/${c}.json`;
}

/**
 * Container arguments that run one component: images/entrypoint.sh (the image's entrypoint)
 * takes the component's name first and hands the rest to it.
 */
export function componentArgs(c: Component): string[] {
  return [c, '--config', configFileOf(c)];
}

/**
 * Container arguments of the migration job (components/migrate.mjs of the release): it reads
 * the database URL from the SA's config, so the password is never on a command line.
 */
export function migrationArgs(): string[] {
  return [basename(migrationJobFile, '.mjs'), '--config', configFileOf('sa')];
}

/** The image tag of a release: its version, `+` written `_` (as .gitlab-ci.yml tags it). */
export function imageTag(version: string): string {
  return version.replace(/\+/g, '_');
}

/** The release tarball's URL: `release.url` with the version in place of `{version}`. */
export function releaseUrlOf(config: DeploymentConfig): string {
  if (!config.release.url) throw new DeploymentConfigError('release.url: required when the target is openstack');
  return config.release.url.split(versionPlaceholder).join(config.release.version);
}

/** Environment variable that carries the HSM PIN into the CA; the PIN is never in a file. */
export const hsmPinEnv = 'BLUEGREEN_HSM_PIN';

/** The public names of a deployment. */
export function publicNames(config: DeploymentConfig) {
  return {
    acme: `acme.${config.domain}`,
    crl: `crl.${config.domain}`,
    ocsp: Object.fromEntries(config.issuers.map((i) => [i.id, `ocsp-${i.id}.${config.domain}`])),
  };
}

/** The PKI files one component needs; all of them come from the shared `pki` secret. */
export function pkiFilesOf(c: Component, config: DeploymentConfig): string[] {
  const identity = c === 'ct-log' ? [] : ['root.pem', `${c}.pem`, `${c}.key`];
  const issuers = config.issuers;
  const extra: Record<Component, string[]> = {
    wfe: ['acme-https.pem', 'acme-https.key', 'nonce.key', ...issuers.map((i) => `issuer-${i.id}-chain.pem`)],
    ca: issuers.flatMap((i) => [`issuer-${i.id}.pem`, `issuer-${i.id}-chain.pem`]),
    'ocsp-responder': issuers.map((i) => `issuer-${i.id}.pem`),
    'ct-log': ['ct-log.key'],
    publisher: ['ct-log.pub.pem'],
    ra: [],
    sa: [],
    va: [],
  };
  return [...identity, ...extra[c]];
}

/** How one color's components find each other and the values only known at apply time. */
export interface ConfigContext {
  readonly config: DeploymentConfig;
  /** `host` of a component's service in this color. */
  readonly hostOf: (c: Component) => string;
  /** PostgreSQL URL (usually a Terraform reference to a sensitive output). */
  readonly databaseUrl: string;
  /** EAB keys as a JSON object text (usually a Terraform reference). */
  readonly eabKeysJson: string;
}

const eabPlaceholder = '__EAB_KEYS__';

/** One component's config file text; the component validates it again at start-up. */
export function componentConfigText(c: Component, x: ConfigContext): string {
  const value = componentConfig(c, x);
  const text = JSON.stringify(value, null, 2) + '\n';
  // The EAB keys object is spliced in as JSON text that Terraform knows only at apply time.
  return text.replace(`"${eabPlaceholder}"`, x.eabKeysJson);
}

function componentConfig(c: Component, x: ConfigContext): Record<string, unknown> {
  const { config } = x;
  const file = (name: string) => `${layout.pki}/${name}`;
  const tls = { certFile: file(`${c}.pem`), keyFile: file(`${c}.key`), caFile: file('root.pem') };
  const listen = (port: number) => `0.0.0.0:${port}`;
  const peer = (to: Component) => ({
    address: `${x.hostOf(to)}:${servingPort[to]}`,
    serverName: serverNameOf(to),
  });
  const common = { adminListen: listen(ports.admin[c]), log: { level: 'info' } };
  const names = publicNames(config);
  const issuers = config.issuers.map((i) => ({
    id: i.id,
    certFile: file(`issuer-${i.id}.pem`),
    chainFile: file(`issuer-${i.id}-chain.pem`),
    keyId: i.keyId,
    ocspUrl: `http://${names.ocsp[i.id]}/ocsp/${i.id}`,
    crlUrl: `http://${names.crl}/crl/${i.id}.crl`,
    caIssuersUrl: `http://${names.crl}/issuer/${i.id}.der`,
  }));

  switch (c) {
    case 'sa':
      return { ...common, listen: listen(servingPort.sa), tls, db: { url: x.databaseUrl } };
    case 'ca':
      return {
        ...common,
        listen: listen(servingPort.ca),
        tls,
        sa: peer('sa'),
        keyStore: {
          type: 'pkcs11',
          module: config.hsm.module,
          tokenLabel: config.hsm.tokenLabel,
          pin: { env: hsmPinEnv },
        },
        issuers,
        activeIssuer: config.activeIssuer,
      };
    case 'ocsp-responder':
      return {
        ...common,
        listen: listen(servingPort['ocsp-responder']),
        tls,
        sa: peer('sa'),
        issuers: issuers.map((i) => ({ id: i.id, certFile: i.certFile })),
      };
    case 'ct-log':
      return {
        ...common,
        listen: listen(servingPort['ct-log']),
        logKeyFile: file('ct-log.key'),
        dataFile: `${layout.ctLogData}/entries`,
      };
    case 'publisher':
      return {
        ...common,
        listen: listen(servingPort.publisher),
        tls,
        logs: [{ name: 'bluegreen-ca', url: `http://${x.hostOf('ct-log')}:${servingPort['ct-log']}`, publicKeyFile: file('ct-log.pub.pem') }],
      };
    case 'va':
      return { ...common, listen: listen(servingPort.va), tls, httpPort: 80, tlsAlpnPort: 443 };
    case 'ra':
      return {
        ...common,
        listen: listen(servingPort.ra),
        tls,
        sa: peer('sa'),
        va: { ...peer('va'), timeoutMs: 30_000 },
        ca: peer('ca'),
        publisher: { ...peer('publisher'), timeoutMs: 15_000 },
        allowedDomains: config.allowedDomains,
      };
    case 'wfe':
      return {
        ...common,
        listen: listen(servingPort.wfe),
        tls,
        https: { certFile: file('acme-https.pem'), keyFile: file('acme-https.key') },
        ra: { ...peer('ra'), timeoutMs: 30_000 },
        sa: peer('sa'),
        nonceKeyFile: file('nonce.key'),
        issuers: issuers.map((i) => ({ id: i.id, chainFile: i.chainFile })),
        externalAccountRequired: config.externalAccountRequired,
        eabKeys: eabPlaceholder,
      };
  }
}

/** Output construct ids may clash with resource ids; the Terraform name stays `name`. */
export function outputId(name: string): string {
  return `output-${name}`;
}
