import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider/index.js';
import { NamespaceV1 } from '@cdktf/provider-kubernetes/lib/namespace-v1/index.js';
import { PersistentVolumeClaimV1 } from '@cdktf/provider-kubernetes/lib/persistent-volume-claim-v1/index.js';
import { SecretV1 } from '@cdktf/provider-kubernetes/lib/secret-v1/index.js';
import { ServiceV1 } from '@cdktf/provider-kubernetes/lib/service-v1/index.js';
import { TerraformOutput, TerraformStack, TerraformVariable, Token } from 'cdktf';
import type { Construct } from 'constructs';
import type { DeploymentConfig, KubernetesSettings } from '../config.js';
import { outputId, publicEntries, publicNames, type Color } from '../model.js';
import { appLabel } from './labels.js';

/** Outputs of the Kubernetes state stack: the only way a color stack learns about it. */
export const kubernetesStateOutputs = [
  'namespace',
  'active_color',
  'database_url',
  'database_secret',
  'eab_keys',
  'hsm_secret',
  'pki_secret',
  'ct_log_claim',
  'acme_url',
  'ocsp_urls',
  'crl_urls',
] as const;

export interface KubernetesStateStackProps {
  readonly config: DeploymentConfig;
  readonly settings: KubernetesSettings;
  /** The color the public Services select; a flip changes nothing else. */
  readonly activeColor: Color;
}

/**
 * What every color shares and no flip replaces: the namespace, the secrets (database URL, HSM
 * PIN, EAB keys, internal PKI), the CT log's volume, and the public Services whose selector
 * picks the active color.
 */
export class KubernetesStateStack extends TerraformStack {
  constructor(scope: Construct, id: string, props: KubernetesStateStackProps) {
    super(scope, id);
    const { config, settings, activeColor } = props;
    new KubernetesProvider(this, 'kubernetes', settings.context ? { configContext: settings.context } : {});

    // Secret values come from TF_VAR_* variables at apply time, never from the synthesized JSON.
    const databaseUrl = new TerraformVariable(this, 'database_url', {
      type: 'string',
      sensitive: true,
      description: 'PostgreSQL URL of the shared database (postgres://user:password@host:port/name)',
    });
    const hsmPin = new TerraformVariable(this, 'hsm_pin', { type: 'string', sensitive: true, description: 'user PIN of the HSM token' });
    const eabKeys = new TerraformVariable(this, 'eab_keys', {
      type: 'string',
      sensitive: true,
      default: '{}',
      description: 'EAB key id to base64url HMAC key, as a JSON object',
    });
    const pkiFiles = new TerraformVariable(this, 'pki_files', {
      type: 'map(string)',
      sensitive: true,
      description: 'internal PKI, nonce key, CT log key and issuer certificates: file name to PEM text',
    });

    const namespace = new NamespaceV1(this, 'namespace', {
      metadata: { name: settings.namespace, labels: { ...appLabel } },
      lifecycle: { preventDestroy: true },
    });
    const ns = namespace.metadata.name;

    const secret = (id: string, data: Record<string, string>) =>
      new SecretV1(this, id, { metadata: { name: id, namespace: ns, labels: { ...appLabel } }, data });
    const database = secret('database', { url: databaseUrl.stringValue });
    const hsm = secret('hsm', { pin: hsmPin.stringValue });
    secret('eab', { 'keys.json': eabKeys.stringValue });
    const pki = new SecretV1(this, 'pki', {
      metadata: { name: 'pki', namespace: ns, labels: { ...appLabel } },
      data: Token.asStringMap(pkiFiles.value),
    });

    // Both colors' CT log processes append to one entry file (see docs/limitations.md#cloud-ct-log).
    const ctLog = new PersistentVolumeClaimV1(this, 'ct-log', {
      metadata: { name: 'ct-log', namespace: ns, labels: { ...appLabel } },
      spec: {
        accessModes: ['ReadWriteMany'],
        resources: { requests: { storage: settings.ctLogStorage } },
        ...(settings.storageClass ? { storageClassName: settings.storageClass } : {}),
      },
      waitUntilBound: false,
      lifecycle: { preventDestroy: true },
    });

    const names = publicNames(config);
    const publicService = (id: string, hostname: string, entry: keyof typeof publicEntries) => {
      const e = publicEntries[entry];
      return new ServiceV1(this, id, {
        metadata: {
          name: id,
          namespace: ns,
          labels: { ...appLabel },
          // Read by external-dns where the cluster runs it; harmless elsewhere.
          annotations: { 'external-dns.alpha.kubernetes.io/hostname': hostname },
        },
        spec: {
          type: settings.serviceType,
          selector: { ...appLabel, component: e.component, color: activeColor },
          port: [{ name: entry, port: e.publicPort, targetPort: String(e.port), protocol: 'TCP' }],
        },
        waitForLoadBalancer: false,
      });
    };
    publicService('acme', names.acme, 'acme');
    publicService('crl', names.crl, 'http');
    for (const issuer of config.issuers) publicService(`ocsp-${issuer.id}`, names.ocsp[issuer.id], 'http');

    const output = (id: (typeof kubernetesStateOutputs)[number], value: unknown, sensitive = false) =>
      new TerraformOutput(this, outputId(id), { value, sensitive }).overrideLogicalId(id);
    output('namespace', ns);
    output('active_color', activeColor);
    output('database_url', databaseUrl.stringValue, true);
    output('eab_keys', eabKeys.stringValue, true);
    output('database_secret', database.metadata.name);
    output('hsm_secret', hsm.metadata.name);
    output('pki_secret', pki.metadata.name);
    output('ct_log_claim', ctLog.metadata.name);
    output('acme_url', `https://${names.acme}/directory`);
    output('ocsp_urls', config.issuers.map((i) => `http://${names.ocsp[i.id]}/ocsp/${i.id}`));
    output('crl_urls', config.issuers.map((i) => `http://${names.crl}/crl/${i.id}.crl`));
  }
}
