import { ConfigMapV1 } from '@cdktf/provider-kubernetes/lib/config-map-v1/index.js';
import { DeploymentV1, type DeploymentV1SpecTemplateSpec } from '@cdktf/provider-kubernetes/lib/deployment-v1/index.js';
import { JobV1 } from '@cdktf/provider-kubernetes/lib/job-v1/index.js';
import { NetworkPolicyV1, type NetworkPolicyV1SpecEgress, type NetworkPolicyV1SpecIngress } from '@cdktf/provider-kubernetes/lib/network-policy-v1/index.js';
import { PodDisruptionBudgetV1 } from '@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1/index.js';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider/index.js';
import { SecretV1 } from '@cdktf/provider-kubernetes/lib/secret-v1/index.js';
import { ServiceV1 } from '@cdktf/provider-kubernetes/lib/service-v1/index.js';
import { TerraformOutput, TerraformStack, type TerraformRemoteState } from 'cdktf';
import type { Construct } from 'constructs';
import type { DeploymentConfig, KubernetesSettings } from '../config.js';
import {
  componentArgs,
  componentConfigText,
  components,
  edges,
  hsmPinEnv,
  imageTag,
  layout,
  migrationArgs,
  outputId,
  pkiFilesOf,
  ports,
  publicEntries,
  servingPort,
  type Color,
  type Component,
} from '../model.js';
import { appLabel, labelValue, nameSafe, podLabels } from './labels.js';

export interface KubernetesColorStackProps {
  readonly config: DeploymentConfig;
  readonly settings: KubernetesSettings;
  readonly color: Color;
  /** Reads the state stack's outputs; the color stack knows shared state through nothing else. */
  readonly readState: (scope: Construct) => TerraformRemoteState;
  /** Recorded on the pods and in the outputs, so status can tell deployments apart. */
  readonly deploymentId?: string;
}

/** Configs holding a secret (database URL, EAB keys) go into a Secret, the others into a ConfigMap. */
const secretConfigs: ReadonlySet<Component> = new Set(['sa', 'wfe']);

/** The image's service user and group (images/Dockerfile `USER 10001:10001`). */
const nonRootUser = '10001';

/**
 * Keys a component refuses when its group may read them (the CT log key, mode 0600). Secret
 * volumes give files to root and the pod's fsGroup, so an init container copies these into a
 * memory volume as the service user.
 */
const ownerOnlyFiles: ReadonlySet<string> = new Set(['ct-log.key']);
const pkiSecretMount = `${layout.pki}-secret`;

/**
 * One color: a Deployment, Service, PodDisruptionBudget and NetworkPolicy per component, the
 * component configs, preview Services for the smoke tests, and the release's migration Job.
 * Every container runs the release image of images/Dockerfile, whose entrypoint takes the
 * component (or `migrate`) as its first argument. Destroying it removes only these; shared
 * state lives in the state stack.
 */
export class KubernetesColorStack extends TerraformStack {
  constructor(scope: Construct, id: string, props: KubernetesColorStackProps) {
    super(scope, id);
    const { config, settings, color } = props;
    new KubernetesProvider(this, 'kubernetes', settings.context ? { configContext: settings.context } : {});

    const state = props.readState(this);
    const ns = state.getString('namespace');
    const release = config.release.version;
    const image = `${config.release.image}:${imageTag(release)}`;
    const labels = (c: Component | 'migrate') => ({ ...podLabels(c, color), release: labelValue(release) });
    const annotations = props.deploymentId ? { 'bluegreen-ca/deployment-id': props.deploymentId } : undefined;

    const hostOf = (c: Component) => `${c}-${color}.${settings.namespace}.svc`;
    const texts = Object.fromEntries(
      components.map((c) => [
        c,
        componentConfigText(c, {
          config,
          hostOf,
          databaseUrl: state.getString('database_url'),
          eabKeysJson: state.getString('eab_keys'),
        }),
      ]),
    ) as Record<Component, string>;
    const configMap = new ConfigMapV1(this, 'config', {
      metadata: { name: `config-${color}`, namespace: ns, labels: { ...appLabel, color } },
      data: Object.fromEntries(components.filter((c) => !secretConfigs.has(c)).map((c) => [`${c}.json`, texts[c]])),
    });
    const configSecret = new SecretV1(this, 'config-secret', {
      metadata: { name: `config-secret-${color}`, namespace: ns, labels: { ...appLabel, color } },
      data: Object.fromEntries([...secretConfigs].map((c) => [`${c}.json`, texts[c]])),
    });

    // The root file system is read-only: components write only to /tmp and the CT log to its volume.
    const securityContext = {
      runAsNonRoot: true,
      runAsUser: nonRootUser,
      runAsGroup: nonRootUser,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    };
    const podSecurityContext = { runAsNonRoot: true, runAsUser: nonRootUser, runAsGroup: nonRootUser, fsGroup: nonRootUser, seccompProfile: { type: 'RuntimeDefault' } };
    const resources = {
      requests: { cpu: config.sizes.cpuRequest, memory: config.sizes.memoryRequest },
      limits: { cpu: config.sizes.cpuLimit, memory: config.sizes.memoryLimit },
    };

    const migration = new JobV1(this, 'migrate', {
      metadata: { name: `migrate-${color}-${nameSafe(release)}`, namespace: ns, labels: labels('migrate') },
      spec: {
        backoffLimit: 2,
        template: {
          metadata: { labels: labels('migrate') },
          spec: {
            restartPolicy: 'Never',
            automountServiceAccountToken: false,
            securityContext: podSecurityContext,
            container: [
              {
                name: 'migrate',
                image,
                // The SA's config names the database: its URL stays out of the pod spec.
                args: migrationArgs(),
                securityContext,
                resources,
                volumeMount: [
                  { name: 'config', mountPath: layout.config, readOnly: true },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volume: [
              { name: 'config', secret: { secretName: configSecret.metadata.name, items: [{ key: 'sa.json', path: 'sa.json' }] } },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
      waitForCompletion: true,
      timeouts: { create: '10m', update: '10m' },
    });

    for (const c of components) {
      const configVolume = secretConfigs.has(c)
        ? { name: 'config', secret: { secretName: configSecret.metadata.name, items: [{ key: `${c}.json`, path: `${c}.json` }] } }
        : { name: 'config', configMap: { name: configMap.metadata.name, items: [{ key: `${c}.json`, path: `${c}.json` }] } };
      const pkiFiles = pkiFilesOf(c, config);
      const copyPki = pkiFiles.some((f) => ownerOnlyFiles.has(f));
      const pkiSecret = { secretName: state.getString('pki_secret'), defaultMode: '0440', items: pkiFiles.map((f) => ({ key: f, path: f })) };
      const volumes = [
        configVolume,
        ...(copyPki
          ? [{ name: 'pki-secret', secret: pkiSecret }, { name: 'pki', emptyDir: { medium: 'Memory' } }]
          : [{ name: 'pki', secret: pkiSecret }]),
        { name: 'tmp', emptyDir: {} },
        ...(c === 'ct-log' ? [{ name: 'ct-log-data', persistentVolumeClaim: { claimName: state.getString('ct_log_claim') } }] : []),
      ];
      const initContainers = copyPki
        ? [
            {
              name: 'owner-only-keys',
              image,
              // Every file of the pki volume, the owner-only keys with mode 0600.
              command: ['sh', '-c', pkiFiles.map((f) => `install -m ${ownerOnlyFiles.has(f) ? '0600' : '0440'} ${pkiSecretMount}/${f} ${layout.pki}/${f}`).join(' && ')],
              securityContext,
              resources,
              volumeMount: [
                { name: 'pki-secret', mountPath: pkiSecretMount, readOnly: true },
                { name: 'pki', mountPath: layout.pki },
              ],
            },
          ]
        : [];
      const mounts = [
        { name: 'config', mountPath: layout.config, readOnly: true },
        { name: 'pki', mountPath: layout.pki, readOnly: true },
        { name: 'tmp', mountPath: '/tmp' },
        ...(c === 'ct-log' ? [{ name: 'ct-log-data', mountPath: layout.ctLogData }] : []),
      ];
      const probe = (delaySeconds: number) => ({
        httpGet: { path: '/health', port: String(ports.admin[c]) },
        initialDelaySeconds: delaySeconds,
        periodSeconds: 10,
        failureThreshold: 3,
      });

      const podSpec: DeploymentV1SpecTemplateSpec = {
        automountServiceAccountToken: false,
        securityContext: podSecurityContext,
        topologySpreadConstraint: [
          { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: [{ matchLabels: podLabels(c, color) }] },
        ],
        ...(initContainers.length ? { initContainer: initContainers } : {}),
        container: [
          {
            name: c,
            image,
            args: componentArgs(c),
            port: [
              { name: 'serve', containerPort: servingPort[c] },
              { name: 'admin', containerPort: ports.admin[c] },
            ],
            env: c === 'ca' ? [{ name: hsmPinEnv, valueFrom: { secretKeyRef: { name: state.getString('hsm_secret'), key: 'pin' } } }] : [],
            readinessProbe: probe(2),
            livenessProbe: probe(15),
            resources,
            securityContext,
            volumeMount: mounts,
          },
        ],
        volume: volumes,
      };

      new DeploymentV1(this, `${c}-deployment`, {
        metadata: { name: `${c}-${color}`, namespace: ns, labels: labels(c) },
        spec: {
          replicas: String(config.sizes.replicas),
          selector: { matchLabels: podLabels(c, color) },
          template: { metadata: { labels: labels(c), ...(annotations ? { annotations } : {}) }, spec: podSpec },
        },
        dependsOn: [migration],
      });

      new ServiceV1(this, `${c}-service`, {
        metadata: { name: `${c}-${color}`, namespace: ns, labels: labels(c) },
        spec: {
          type: 'ClusterIP',
          selector: podLabels(c, color),
          port: [{ name: 'serve', port: servingPort[c], targetPort: String(servingPort[c]) }],
        },
      });

      new PodDisruptionBudgetV1(this, `${c}-pdb`, {
        metadata: { name: `${c}-${color}`, namespace: ns, labels: labels(c) },
        spec: { maxUnavailable: '1', selector: { matchLabels: podLabels(c, color) } },
      });

      new NetworkPolicyV1(this, `${c}-policy`, {
        metadata: { name: `${c}-${color}`, namespace: ns, labels: labels(c) },
        spec: { podSelector: { matchLabels: podLabels(c, color) }, policyTypes: ['Ingress', 'Egress'], ...this.rules(c, color, config) },
      });
    }

    new NetworkPolicyV1(this, 'migrate-policy', {
      metadata: { name: `migrate-${color}`, namespace: ns, labels: labels('migrate') },
      spec: {
        podSelector: { matchLabels: podLabels('migrate', color) },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [],
        egress: [dnsEgress(), databaseEgress(config)],
      },
    });

    const previews: Record<keyof typeof publicEntries, ServiceV1> = {} as never;
    for (const [entry, e] of Object.entries(publicEntries) as [keyof typeof publicEntries, (typeof publicEntries)[keyof typeof publicEntries]][]) {
      previews[entry] = new ServiceV1(this, `${entry}-preview`, {
        metadata: { name: `${entry}-preview-${color}`, namespace: ns, labels: { ...appLabel, color } },
        spec: {
          type: settings.serviceType,
          selector: podLabels(e.component, color),
          port: [{ name: entry, port: e.publicPort, targetPort: String(e.port), protocol: 'TCP' }],
        },
        waitForLoadBalancer: settings.serviceType === 'LoadBalancer',
      });
    }

    const previewHost = (s: ServiceV1) =>
      settings.serviceType === 'LoadBalancer' ? s.status.get(0).loadBalancer.get(0).ingress.get(0).ip : `${s.metadata.name}.${settings.namespace}.svc`;
    new TerraformOutput(this, outputId('color'), { value: color }).overrideLogicalId('color');
    new TerraformOutput(this, outputId('release'), { value: release }).overrideLogicalId('release');
    new TerraformOutput(this, outputId('deployment_id'), { value: props.deploymentId ?? '' }).overrideLogicalId('deployment_id');
    new TerraformOutput(this, outputId('preview_acme'), { value: `https://${previewHost(previews.acme)}/directory` }).overrideLogicalId('preview_acme');
    new TerraformOutput(this, outputId('preview_http'), { value: `http://${previewHost(previews.http)}` }).overrideLogicalId('preview_http');
  }

  /** Ingress and egress of one component: exactly its edges, plus DNS and its outside peers. */
  private rules(c: Component, color: Color, config: DeploymentConfig): { ingress: NetworkPolicyV1SpecIngress[]; egress: NetworkPolicyV1SpecEgress[] } {
    const tcp = (port: number) => ({ port: String(port), protocol: 'TCP' });
    const ingress: NetworkPolicyV1SpecIngress[] = edges
      .filter((e) => e.to === c)
      .map((e) => ({ from: [{ podSelector: { matchLabels: podLabels(e.from, color) } }], ports: [tcp(e.port)] }));
    const entry = Object.values(publicEntries).find((e) => e.component === c);
    // Public entries take traffic from the public and preview Services, whatever the source.
    if (entry) ingress.push({ ports: [tcp(entry.port)] });

    const egress: NetworkPolicyV1SpecEgress[] = edges
      .filter((e) => e.from === c)
      .map((e) => ({ to: [{ podSelector: { matchLabels: podLabels(e.to, color) } }], ports: [tcp(e.port)] }));
    egress.push(dnsEgress());
    if (c === 'sa') egress.push(databaseEgress(config));
    if (c === 'ca') egress.push({ to: [{ ipBlock: { cidr: config.hsm.cidr } }], ports: [tcp(config.hsm.port)] });
    // The VA reaches applicants' servers for http-01 (80) and tls-alpn-01 (443), wherever they are.
    if (c === 'va') egress.push({ ports: [tcp(80), tcp(443)] });
    return { ingress, egress };
  }
}

function dnsEgress(): NetworkPolicyV1SpecEgress {
  return { ports: [{ port: '53', protocol: 'UDP' }, { port: '53', protocol: 'TCP' }] };
}

function databaseEgress(config: DeploymentConfig): NetworkPolicyV1SpecEgress {
  const ports = [{ port: String(config.database.port), protocol: 'TCP' }];
  return config.database.cidr ? { to: [{ ipBlock: { cidr: config.database.cidr } }], ports } : { ports };
}
