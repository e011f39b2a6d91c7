import { Fn, TerraformOutput, TerraformStack, TerraformVariable } from 'cdktf';
import type { Construct } from 'constructs';
import type { DeploymentConfig, OpenStackSettings } from '../config.js';
import { colors, components, edges, outputId, ports, publicEntries, publicNames, type Color, type Component } from '../model.js';
import { OpenStackProvider } from './provider.js';
import {
  BlockstorageVolumeV3,
  ComputeInstanceV2,
  ComputeVolumeAttachV2,
  DataNetworkingNetworkV2,
  DnsRecordsetV2,
  LbListenerV2,
  LbLoadbalancerV2,
  LbMonitorV2,
  LbPoolV2,
  NetworkingFloatingipV2,
  NetworkingNetworkV2,
  NetworkingRouterInterfaceV2,
  NetworkingRouterV2,
  NetworkingSecgroupRuleV2,
  NetworkingSecgroupV2,
  NetworkingSubnetV2,
} from './resources.js';
import { renderDatabaseUserData } from '../../images/database-init.js';
import { terraformBase64 } from './base64.js';

export type Entry = keyof typeof publicEntries;
export const entries = Object.keys(publicEntries) as Entry[];

/** Ports of the preview listeners, per color: where smoke tests reach a color before a flip. */
export const previewPorts: Record<Color, Record<Entry, number>> = {
  blue: { acme: 8443, http: 8080 },
  green: { acme: 9443, http: 9080 },
};

/** Output names the color stacks read. */
export const openstackOutputs = {
  securityGroup: (c: Component) => `secgroup_${c.replace(/-/g, '_')}`,
  pool: (entry: Entry, color: Color) => `pool_${entry}_${color}`,
  previewPool: (entry: Entry, color: Color) => `preview_pool_${entry}_${color}`,
};

export interface OpenStackStateStackProps {
  readonly config: DeploymentConfig;
  readonly settings: OpenStackSettings;
  /** The color whose pools the public listeners send to; a flip changes nothing else. */
  readonly activeColor: Color;
}

const anywhere = '0.0.0.0/0';
const metadataService = '169.254.169.254/32';

/**
 * What every color shares: the network, security groups that let exactly the component edges
 * through, the PostgreSQL instance and its volume, the load balancer with its listeners and a
 * pool per color, and the public DNS names.
 */
export class OpenStackStateStack extends TerraformStack {
  constructor(scope: Construct, id: string, props: OpenStackStateStackProps) {
    super(scope, id);
    const { config, settings, activeColor } = props;
    new OpenStackProvider(this, 'openstack', { cloud: settings.cloud, region: settings.region });

    const secret = (name: string, description: string, type = 'string') =>
      new TerraformVariable(this, name, { type, sensitive: true, description });
    const databasePassword = secret('database_password', 'password of the CA database user');
    const hsmPin = secret('hsm_pin', 'user PIN of the HSM token');
    const eabKeys = new TerraformVariable(this, 'eab_keys', { type: 'string', sensitive: true, default: '{}', description: 'EAB key id to base64url HMAC key, as a JSON object' });
    const pkiFiles = secret('pki_files', 'internal PKI, nonce key, CT log key and issuer certificates: file name to PEM text', 'map(string)');

    const external = new DataNetworkingNetworkV2(this, 'external-network', settings.externalNetwork);
    const network = new NetworkingNetworkV2(this, 'network', { name: 'bluegreen-ca' });
    const subnet = new NetworkingSubnetV2(this, 'subnet', { name: 'bluegreen-ca', networkId: network.id, cidr: settings.cidr, dnsNameservers: settings.dnsNameservers });
    const router = new NetworkingRouterV2(this, 'router', { name: 'bluegreen-ca', externalNetworkId: external.id });
    new NetworkingRouterInterfaceV2(this, 'router-interface', { routerId: router.id, subnetId: subnet.id });

    const groups = Object.fromEntries(
      components.map((c) => [c, new NetworkingSecgroupV2(this, `secgroup-${c}`, { name: `bluegreen-ca-${c}`, description: `bluegreen-ca ${c}: its component edges only` })]),
    ) as Record<Component, NetworkingSecgroupV2>;
    const databaseGroup = new NetworkingSecgroupV2(this, 'secgroup-database', { name: 'bluegreen-ca-database', description: 'bluegreen-ca PostgreSQL: the SA only' });
    this.rules(groups, databaseGroup, config, settings);

    const database = this.database(config, settings, network, databaseGroup, databasePassword);

    const lb = new LbLoadbalancerV2(this, 'lb', { name: 'bluegreen-ca', vipSubnetId: subnet.id });
    const floating = new NetworkingFloatingipV2(this, 'lb-address', { pool: settings.externalNetwork, portId: lb.vipPortId, description: 'bluegreen-ca public address' });

    const protocol = (entry: Entry) => (entry === 'acme' ? 'TCP' : 'HTTP');
    const pool = (id: string, entry: Entry) => {
      const p = new LbPoolV2(this, id, { name: `bluegreen-ca-${id}`, loadbalancerId: lb.id, protocol: protocol(entry) });
      new LbMonitorV2(this, `${id}-monitor`, { poolId: p.id, urlPath: '/health' });
      return p;
    };
    const pools = {} as Record<Color, Record<Entry, LbPoolV2>>;
    const previewPools = {} as Record<Color, Record<Entry, LbPoolV2>>;
    for (const color of colors) {
      pools[color] = { acme: pool(`pool-acme-${color}`, 'acme'), http: pool(`pool-http-${color}`, 'http') };
      previewPools[color] = { acme: pool(`preview-pool-acme-${color}`, 'acme'), http: pool(`preview-pool-http-${color}`, 'http') };
      for (const entry of entries) {
        new LbListenerV2(this, `preview-${entry}-${color}`, {
          name: `bluegreen-ca-preview-${entry}-${color}`,
          loadbalancerId: lb.id,
          protocol: protocol(entry),
          protocolPort: previewPorts[color][entry],
          defaultPoolId: previewPools[color][entry].id,
        });
      }
    }
    // The flip: the public listeners' default pools are the active color's.
    for (const entry of entries) {
      new LbListenerV2(this, `listener-${entry}`, {
        name: `bluegreen-ca-${entry}`,
        loadbalancerId: lb.id,
        protocol: protocol(entry),
        protocolPort: publicEntries[entry].publicPort,
        defaultPoolId: pools[activeColor][entry].id,
      });
    }

    const names = publicNames(config);
    const record = (id: string, name: string) =>
      new DnsRecordsetV2(this, id, { zoneId: settings.dnsZoneId, name: `${name}.`, type: 'A', records: [floating.address] });
    record('dns-acme', names.acme);
    record('dns-crl', names.crl);
    for (const issuer of config.issuers) record(`dns-ocsp-${issuer.id}`, names.ocsp[issuer.id]);

    const output = (id: string, value: unknown, sensitive = false) => new TerraformOutput(this, outputId(id), { value, sensitive }).overrideLogicalId(id);
    output('active_color', activeColor);
    output('network_id', network.id);
    output('subnet_id', subnet.id);
    output('lb_address', floating.address);
    for (const c of components) output(openstackOutputs.securityGroup(c), groups[c].name);
    for (const color of colors) {
      for (const entry of entries) {
        output(openstackOutputs.pool(entry, color), pools[color][entry].id);
        output(openstackOutputs.previewPool(entry, color), previewPools[color][entry].id);
      }
    }
    output(
      'database_url',
      `postgres://${config.database.user}:${Fn.urlencode(databasePassword.stringValue)}@${database.accessIpV4}:${config.database.port}/${config.database.name}`,
      true,
    );
    output('hsm_pin', hsmPin.stringValue, true);
    output('eab_keys', eabKeys.stringValue, true);
    output('pki_files', pkiFiles.value, true);
    output('acme_url', `https://${names.acme}/directory`);
    output('ocsp_urls', config.issuers.map((i) => `http://${names.ocsp[i.id]}/ocsp/${i.id}`));
    output('crl_urls', config.issuers.map((i) => `http://${names.crl}/crl/${i.id}.crl`));
  }

  /** Security group rules: the component edges, the load balancer's entries, and outside peers. */
  private rules(groups: Record<Component, NetworkingSecgroupV2>, databaseGroup: NetworkingSecgroupV2, config: DeploymentConfig, settings: OpenStackSettings): void {
    const rule = (id: string, p: Omit<ConstructorParameters<typeof NetworkingSecgroupRuleV2>[2], 'protocol'> & { protocol?: 'tcp' | 'udp' }) =>
      new NetworkingSecgroupRuleV2(this, id, { protocol: 'tcp', ...p });

    for (const e of edges) {
      rule(`in-${e.to}-from-${e.from}`, { securityGroupId: groups[e.to].id, direction: 'ingress', port: e.port, remoteGroupId: groups[e.from].id, description: `${e.from} to ${e.to}` });
      rule(`out-${e.from}-to-${e.to}`, { securityGroupId: groups[e.from].id, direction: 'egress', port: e.port, remoteGroupId: groups[e.to].id, description: `${e.from} to ${e.to}` });
    }
    // Octavia's amphorae sit on the subnet: they forward client traffic and check /health.
    for (const entry of Object.values(publicEntries)) {
      const c = entry.component;
      rule(`in-${c}-from-lb`, { securityGroupId: groups[c].id, direction: 'ingress', port: entry.port, remoteIpPrefix: settings.cidr, description: 'load balancer' });
      rule(`in-${c}-health-from-lb`, { securityGroupId: groups[c].id, direction: 'ingress', port: ports.admin[c], remoteIpPrefix: settings.cidr, description: 'load balancer health monitor' });
    }
    for (const c of components) {
      // cloud-init installs Debian packages, Node.js and the release at first boot; the VA's
      // validation rules below already open these ports.
      if (c !== 'va') {
        for (const port of [80, 443]) {
          rule(`out-${c}-install-${port}`, { securityGroupId: groups[c].id, direction: 'egress', port, remoteIpPrefix: anywhere, description: 'cloud-init: packages, Node.js, release' });
        }
      }
      rule(`out-${c}-dns-udp`, { securityGroupId: groups[c].id, direction: 'egress', protocol: 'udp', port: 53, remoteIpPrefix: anywhere, description: 'DNS' });
      rule(`out-${c}-dns-tcp`, { securityGroupId: groups[c].id, direction: 'egress', port: 53, remoteIpPrefix: anywhere, description: 'DNS' });
      rule(`out-${c}-metadata`, { securityGroupId: groups[c].id, direction: 'egress', port: 80, remoteIpPrefix: metadataService, description: 'cloud-init metadata' });
    }
    const db = config.database.port;
    rule('out-sa-to-database', { securityGroupId: groups.sa.id, direction: 'egress', port: db, remoteGroupId: databaseGroup.id, description: 'sa to PostgreSQL' });
    rule('in-database-from-sa', { securityGroupId: databaseGroup.id, direction: 'ingress', port: db, remoteGroupId: groups.sa.id, description: 'sa to PostgreSQL' });
    for (const port of [80, 443]) {
      rule(`out-database-install-${port}`, { securityGroupId: databaseGroup.id, direction: 'egress', port, remoteIpPrefix: anywhere, description: 'cloud-init: PostgreSQL packages' });
    }
    rule('out-database-dns-udp', { securityGroupId: databaseGroup.id, direction: 'egress', protocol: 'udp', port: 53, remoteIpPrefix: anywhere, description: 'DNS' });
    rule('out-database-dns-tcp', { securityGroupId: databaseGroup.id, direction: 'egress', port: 53, remoteIpPrefix: anywhere, description: 'DNS' });
    rule('out-database-metadata', { securityGroupId: databaseGroup.id, direction: 'egress', port: 80, remoteIpPrefix: metadataService, description: 'cloud-init metadata' });
    rule('out-ca-to-hsm', { securityGroupId: groups.ca.id, direction: 'egress', port: config.hsm.port, remoteIpPrefix: config.hsm.cidr, description: 'ca to HSM' });
    for (const port of [80, 443]) {
      rule(`out-va-validation-${port}`, { securityGroupId: groups.va.id, direction: 'egress', port, remoteIpPrefix: anywhere, description: 'va to applicants' });
    }
  }

  /** The PostgreSQL instance; its data lives on a volume that outlives the instance. */
  private database(config: DeploymentConfig, settings: OpenStackSettings, network: NetworkingNetworkV2, group: NetworkingSecgroupV2, password: TerraformVariable): ComputeInstanceV2 {
    const volume = new BlockstorageVolumeV3(this, 'database-volume', { name: 'bluegreen-ca-database', sizeGb: settings.databaseVolumeGb }, { lifecycle: { preventDestroy: true } });
    const d = config.database;
    const instance = new ComputeInstanceV2(this, 'database', {
      name: 'bluegreen-ca-database',
      imageName: settings.databaseImage ?? settings.image,
      flavorName: settings.databaseFlavor,
      networkId: network.id,
      securityGroups: [group.name],
      keyPair: settings.keyPair,
      userData: renderDatabaseUserData({
        name: d.name,
        user: d.user,
        port: d.port,
        password: password.stringValue,
        clientCidr: settings.cidr,
        device: '/dev/vdb',
        base64: terraformBase64,
      }),
    });
    new ComputeVolumeAttachV2(this, 'database-attach', { instanceId: instance.id, volumeId: volume.id });
    return instance;
  }
}
