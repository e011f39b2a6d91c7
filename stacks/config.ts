import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { colors } from '../pipelines/local/state.js';

/**
 * The deployment config: one YAML file that says where the CA runs in a cluster or cloud and
 * with what. Both cloud targets read the same file; each uses its own section.
 * stacks/deployment.example.yaml documents every field.
 */

export const cloudTargets = ['kubernetes', 'openstack'] as const;
export type CloudTarget = (typeof cloudTargets)[number];

/** Raised for a config that cannot be synthesized; its message is the one line the CLI prints. */
export class DeploymentConfigError extends Error {
  override readonly name = 'DeploymentConfigError';
}

const dnsName = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'expected a lower-case DNS name such as ca.example.com');

/** Kubernetes and OpenStack names: lower-case letters, digits and dashes. */
const slug = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, 'expected lower-case letters, digits and dashes (at most 40)');

const quantity = z.string().regex(/^\d+(\.\d+)?(m|Ki|Mi|Gi)?$/, 'expected a Kubernetes quantity such as 250m, 1 or 512Mi');

const cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'expected an IPv4 CIDR such as 10.42.0.0/24');

/** Where `release.url` takes the release version. */
export const versionPlaceholder = '{version}';

const release = z.strictObject({
  /** Container image repository (Kubernetes); the tag is the version with `+` written `_`. */
  image: z.string().regex(/^[a-z0-9][a-z0-9./_:-]*[a-z0-9]$/, 'expected an image repository such as registry.example.com/bluegreen-ca'),
  /** The release version, the image tag: package version and commit. */
  version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/, 'expected a release version such as 0.1.0+abc1234'),
  /**
   * Where OpenStack instances download the release tarball, `{version}` standing for the
   * version: the GitLab generic package the pipeline's build:package job uploads,
   * `<api>/projects/<id>/packages/generic/bluegreen-ca/{version}/release.tar.gz`. Required for
   * openstack. @default none
   */
  url: z
    .string()
    .regex(/^https:\/\/\S*\{version\}\S*$/, `expected an https URL with ${versionPlaceholder} where the release version goes`)
    .optional(),
});

const sizes = z
  .strictObject({
    /** Copies of each component per color (Kubernetes replicas, OpenStack instances). */
    replicas: z.number().int().min(1).max(9).default(2),
    cpuRequest: quantity.default('100m'),
    memoryRequest: quantity.default('128Mi'),
    cpuLimit: quantity.default('1'),
    memoryLimit: quantity.default('512Mi'),
  })
  .default({ replicas: 2, cpuRequest: '100m', memoryRequest: '128Mi', cpuLimit: '1', memoryLimit: '512Mi' });

const hsm = z.strictObject({
  /** Path of the PKCS#11 module inside the image or instance. */
  module: z.string().startsWith('/', 'expected an absolute path'),
  tokenLabel: z.string().min(1).max(32),
  /** Where the network HSM answers; the CA's egress is opened to this and nothing else. */
  cidr,
  port: z.number().int().min(1).max(65535),
  /**
   * OpenStack: Debian packages the CA's instances install to get `module` (images take the
   * PKCS11_PACKAGES build argument instead). @default none
   */
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'expected a Debian package name')).default([]),
});

const database = z
  .strictObject({
    name: slug.default('bluegreen'),
    user: slug.default('bluegreen'),
    /** Kubernetes: where the PostgreSQL server is; the SA's egress is opened to it only. */
    cidr: cidr.optional(),
    port: z.number().int().min(1).max(65535).default(5432),
  })
  .default({ name: 'bluegreen', user: 'bluegreen', port: 5432 });

const kubernetes = z.strictObject({
  namespace: slug,
  /** kubeconfig context; the provider's default (KUBE_CONFIG_PATH, KUBE_CTX) when absent. */
  context: z.string().min(1).optional(),
  serviceType: z.enum(['LoadBalancer', 'NodePort', 'ClusterIP']).default('LoadBalancer'),
  /** Storage class of the CT log's volume; the cluster default when absent. */
  storageClass: z.string().min(1).optional(),
  ctLogStorage: quantity.default('1Gi'),
});

const openstack = z.strictObject({
  /** Entry in clouds.yaml; OS_* variables work as well when absent. */
  cloud: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  /** External network: the router's gateway and the load balancer's floating IP. */
  externalNetwork: z.string().min(1),
  cidr: cidr.default('10.42.0.0/24'),
  dnsNameservers: z.array(z.string().min(1)).default([]),
  /** Designate zone holding `domain`; records acme, crl and ocsp-<issuer> go into it. */
  dnsZoneId: z.string().min(1),
  flavor: z.string().min(1),
  /**
   * Glance image every component instance boots: a stock Debian 12 with cloud-init. The user
   * data installs Node.js and the release (`release.url`) on it.
   */
  image: z.string().min(1),
  databaseFlavor: z.string().min(1),
  /** Glance image of the PostgreSQL instance, a Debian 12 as well. @default image */
  databaseImage: z.string().min(1).optional(),
  databaseVolumeGb: z.number().int().min(1).max(16_384).default(20),
  keyPair: z.string().min(1).optional(),
});

const httpBackend = z.strictObject({
  type: z.literal('http'),
  /**
   * Base URL of the Terraform states; each stack's state is `<address>/<stack>`. In GitLab CI
   * it defaults to `$CI_API_V4_URL/projects/$CI_PROJECT_ID/terraform/state`.
   */
  address: z.url({ protocol: /^https?$/ }).optional(),
  /** Whether the backend locks states with POST/DELETE on `<state>/lock` (GitLab does). */
  lock: z.boolean().default(true),
});

const localBackend = z.strictObject({
  type: z.literal('local'),
  /** Folder holding one `<stack>.tfstate` per stack, relative to the working directory. */
  dir: z.string().min(1),
});

export const deploymentConfigSchema = z
  .strictObject({
    target: z.enum(cloudTargets),
    /** Public names live under this domain: acme.<domain>, crl.<domain>, ocsp-<issuer>.<domain>. */
    domain: dnsName,
    activeColor: z.enum(colors).default('blue'),
    release,
    /** Issuing intermediates by id, with the label of each one's key on the HSM token. */
    issuers: z.array(z.strictObject({ id: slug, keyId: z.string().min(1) })).min(1),
    activeIssuer: slug,
    /** Domains the RA may issue for. */
    allowedDomains: z.array(dnsName).min(1),
    /** Whether new ACME accounts need an external account binding (keys come from a secret). */
    externalAccountRequired: z.boolean().default(false),
    sizes,
    hsm,
    database,
    kubernetes: kubernetes.optional(),
    openstack: openstack.optional(),
    backend: z.discriminatedUnion('type', [httpBackend, localBackend]).default({ type: 'http', lock: true }),
    /** PEM file with the roots a client must trust, for `status` and the post-flip check. */
    trustBundle: z.string().min(1).optional(),
    /**
     * Where the smoke tests, run by the pipeline's smoke job, answer the color's VA: names under
     * `domain` must resolve to the machine running the job, and `httpPort` there must be
     * reachable from the color's VA (http-01 asks port 80). `ctLogPublicKey` is the CT log's
     * public key as a PEM file, against which the SCTs are checked.
     */
    smoke: z
      .strictObject({
        domain: dnsName,
        httpPort: z.number().int().min(1).max(65535).default(80),
        ctLogPublicKey: z.string().min(1),
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    if (!c.issuers.some((i) => i.id === c.activeIssuer)) {
      ctx.addIssue({
        code: 'custom',
        path: ['activeIssuer'],
        message: `expected one of the issuers' ids (${c.issuers.map((i) => i.id).join(', ')})`,
      });
    }
    if (!c[c.target]) {
      ctx.addIssue({ code: 'custom', path: [c.target], message: `required when the target is ${c.target}` });
    }
    if (c.smoke && !c.allowedDomains.some((d) => c.smoke!.domain === d || c.smoke!.domain.endsWith(`.${d}`))) {
      ctx.addIssue({
        code: 'custom',
        path: ['smoke', 'domain'],
        message: `expected a name under one of allowedDomains (${c.allowedDomains.join(', ')})`,
      });
    }
    if (c.target === 'openstack' && !c.release.url) {
      ctx.addIssue({ code: 'custom', path: ['release', 'url'], message: 'required when the target is openstack: the instances download the release from it' });
    }
  });

export type DeploymentConfig = z.output<typeof deploymentConfigSchema>;
export type KubernetesSettings = z.output<typeof kubernetes>;
export type OpenStackSettings = z.output<typeof openstack>;
export type BackendSettings = DeploymentConfig['backend'];

/** Overrides the command line and environment may apply before validation. */
export interface ConfigOverrides {
  readonly target?: string;
  readonly activeColor?: string;
}

/** Refuses a target name that is not a cloud target, before anything else happens. */
export function parseTarget(value: string): CloudTarget {
  if (!(cloudTargets as readonly string[]).includes(value)) {
    throw new DeploymentConfigError(`target: expected ${cloudTargets.join(' or ')}, got ${value}`);
  }
  return value as CloudTarget;
}

/** Refuses a color that is neither blue nor green. */
export function parseColor(value: string): (typeof colors)[number] {
  if (!(colors as readonly string[]).includes(value)) {
    throw new DeploymentConfigError(`activeColor: expected ${colors.join(' or ')}, got ${value}`);
  }
  return value as (typeof colors)[number];
}

/** Validates a parsed config object; the error names the first bad field and what it accepts. */
export function parseDeploymentConfig(value: unknown, source: string, overrides: ConfigOverrides = {}): DeploymentConfig {
  const target = overrides.target === undefined ? undefined : parseTarget(overrides.target);
  const activeColor = overrides.activeColor === undefined ? undefined : parseColor(overrides.activeColor);
  const input =
    value && typeof value === 'object' && !Array.isArray(value)
      ? { ...value, ...(target ? { target } : {}), ...(activeColor ? { activeColor } : {}) }
      : value;

  const result = deploymentConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.length ? issue.path.join('.') : '(top level)';
    throw new DeploymentConfigError(`${source}: ${path}: ${issue.message.replace(/\s+/g, ' ')}`);
  }
  return result.data;
}

/** Reads and validates a YAML deployment config file. */
export function loadDeploymentConfig(file: string, overrides: ConfigOverrides = {}): DeploymentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DeploymentConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }

  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new DeploymentConfigError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseDeploymentConfig(value, file, overrides);
}
