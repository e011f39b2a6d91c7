import { Fn, TerraformOutput, TerraformStack, Token, type TerraformRemoteState } from 'cdktf';
import type { Construct } from 'constructs';
import { renderUserData } from '../../images/cloud-init.js';
import type { DeploymentConfig, OpenStackSettings } from '../config.js';
import { componentConfigText, components, hsmPinEnv, outputId, pkiFilesOf, ports, publicEntries, releaseUrlOf, servingPort, type Color, type Component } from '../model.js';
import { terraformBase64 } from './base64.js';
import { OpenStackProvider } from './provider.js';
import { ComputeInstanceV2, ComputeServergroupV2, DnsRecordsetV2, LbMemberV2 } from './resources.js';
import { entries, openstackOutputs, previewPorts } from './state-stack.js';

export interface OpenStackColorStackProps {
  readonly config: DeploymentConfig;
  readonly settings: OpenStackSettings;
  readonly color: Color;
  /** Reads the state stack's outputs; the color stack knows shared state through nothing else. */
  readonly readState: (scope: Construct) => TerraformRemoteState;
  readonly deploymentId?: string;
}

/** One writer per CT log entry file: a color runs a single CT log instance. */
export function instancesOf(c: Component, config: DeploymentConfig): number {
  return c === 'ct-log' ? 1 : config.sizes.replicas;
}

/**
 * One color: per component a server group with anti-affinity and instances of the stock
 * image, on which cloud-init (images/cloud-init.ts) installs the release and starts the
 * component; the public components join their color's pools; each component's instances are
 * found by a DNS name of this color.
 */
export class OpenStackColorStack extends TerraformStack {
  constructor(scope: Construct, id: string, props: OpenStackColorStackProps) {
    super(scope, id);
    const { config, settings, color } = props;
    new OpenStackProvider(this, 'openstack', { cloud: settings.cloud, region: settings.region });

    const state = props.readState(this);
    const release = config.release.version;
    const hostOf = (c: Component) => `${c}-${color}.${config.domain}`;
    const pki = (file: string) => Token.asString(Fn.lookup(state.get('pki_files'), file));
    const releaseUrl = releaseUrlOf(config);

    for (const c of components) {
      const group = new ComputeServergroupV2(this, `${c}-group`, { name: `bluegreen-ca-${color}-${c}`, policy: 'anti-affinity' });
      const userData = renderUserData({
        component: c,
        release,
        releaseUrl,
        config: componentConfigText(c, { config, hostOf, databaseUrl: state.getString('database_url'), eabKeysJson: state.getString('eab_keys') }),
        // The CT log refuses a key its group may read; other keys are the service group's.
        files: pkiFilesOf(c, config).map((f) => ({ path: f, content: pki(f), secret: f.endsWith('.key'), userOnly: f === 'ct-log.key' })),
        environment: c === 'ca' ? { [hsmPinEnv]: state.getString('hsm_pin') } : undefined,
        packages: c === 'ca' ? config.hsm.packages : [],
        // The SA applies the release's expand-only migrations before it serves.
        migrate: c === 'sa',
        base64: terraformBase64,
      });

      const instances = Array.from({ length: instancesOf(c, config) }, (_, i) =>
        new ComputeInstanceV2(this, `${c}-${i}`, {
          name: `bluegreen-ca-${color}-${c}-${i}`,
          imageName: settings.image,
          flavorName: settings.flavor,
          networkId: state.getString('network_id'),
          securityGroups: [state.getString(openstackOutputs.securityGroup(c))],
          keyPair: settings.keyPair,
          serverGroupId: group.id,
          userData,
          metadata: { component: c, color, release, ...(props.deploymentId ? { deployment_id: props.deploymentId } : {}) },
        }),
      );

      new DnsRecordsetV2(this, `${c}-dns`, { zoneId: settings.dnsZoneId, name: `${hostOf(c)}.`, type: 'A', records: instances.map((x) => x.accessIpV4), ttlSeconds: 60 });

      const entry = entries.find((e) => publicEntries[e].component === c);
      if (!entry) continue;
      instances.forEach((instance, i) => {
        for (const [kind, output] of [['public', openstackOutputs.pool], ['preview', openstackOutputs.previewPool]] as const) {
          new LbMemberV2(this, `${c}-${i}-${kind}`, {
            poolId: state.getString(output(entry, color)),
            name: `bluegreen-ca-${color}-${c}-${i}`,
            address: instance.accessIpV4,
            protocolPort: servingPort[c],
            subnetId: state.getString('subnet_id'),
            monitorPort: ports.admin[c],
          });
        }
      });
    }

    const lbAddress = state.getString('lb_address');
    new TerraformOutput(this, outputId('color'), { value: color }).overrideLogicalId('color');
    new TerraformOutput(this, outputId('release'), { value: release }).overrideLogicalId('release');
    new TerraformOutput(this, outputId('deployment_id'), { value: props.deploymentId ?? '' }).overrideLogicalId('deployment_id');
    new TerraformOutput(this, outputId('preview_acme'), { value: `https://${lbAddress}:${previewPorts[color].acme}/directory` }).overrideLogicalId('preview_acme');
    new TerraformOutput(this, outputId('preview_http'), { value: `http://${lbAddress}:${previewPorts[color].http}` }).overrideLogicalId('preview_http');
  }
}
