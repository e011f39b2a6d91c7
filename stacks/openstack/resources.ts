import { TerraformDataSource, TerraformResource, type TerraformMetaArguments } from 'cdktf';
import type { Construct } from 'constructs';
import { withoutUndefined } from './provider.js';

/**
 * Typed constructs over the terraform-provider-openstack resources the stacks use. Props are
 * camelCase; each class writes the snake_case attributes the provider documents.
 */

const providerGenerator = { providerName: 'openstack', providerVersionConstraint: '~> 3.0' };

abstract class OpenStackResource extends TerraformResource {
  constructor(scope: Construct, id: string, type: string, private readonly attrs: Record<string, unknown>, meta: TerraformMetaArguments = {}) {
    super(scope, id, { terraformResourceType: type, terraformGeneratorMetadata: providerGenerator, ...meta });
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return withoutUndefined(this.attrs);
  }

  /** The resource's id, known after apply. */
  get id(): string {
    return this.getStringAttribute('id');
  }
}

export interface NetworkProps {
  readonly name: string;
}
export class NetworkingNetworkV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: NetworkProps, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_networking_network_v2', { name: p.name, admin_state_up: true }, meta);
  }
}

export interface SubnetProps {
  readonly name: string;
  readonly networkId: string;
  readonly cidr: string;
  readonly dnsNameservers?: string[];
}
export class NetworkingSubnetV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: SubnetProps, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_networking_subnet_v2', {
      name: p.name,
      network_id: p.networkId,
      cidr: p.cidr,
      ip_version: 4,
      dns_nameservers: p.dnsNameservers?.length ? p.dnsNameservers : undefined,
    }, meta);
  }
}

export class NetworkingRouterV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { name: string; externalNetworkId: string }, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_networking_router_v2', { name: p.name, external_network_id: p.externalNetworkId }, meta);
  }
}

export class NetworkingRouterInterfaceV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { routerId: string; subnetId: string }, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_networking_router_interface_v2', { router_id: p.routerId, subnet_id: p.subnetId }, meta);
  }
}

export class NetworkingSecgroupV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { name: string; description: string }, meta?: TerraformMetaArguments) {
    // Without the default allow-all egress rules, the rules below are all the group lets out.
    super(scope, id, 'openstack_networking_secgroup_v2', { name: p.name, description: p.description, delete_default_rules: true }, meta);
  }

  get name(): string {
    return this.getStringAttribute('name');
  }
}

export interface SecgroupRuleProps {
  readonly securityGroupId: string;
  readonly direction: 'ingress' | 'egress';
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  /** The other side as a security group. */
  readonly remoteGroupId?: string;
  /** The other side as addresses. */
  readonly remoteIpPrefix?: string;
  readonly description?: string;
}
export class NetworkingSecgroupRuleV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: SecgroupRuleProps, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_networking_secgroup_rule_v2', {
      security_group_id: p.securityGroupId,
      direction: p.direction,
      ethertype: 'IPv4',
      protocol: p.protocol,
      port_range_min: p.port,
      port_range_max: p.port,
      remote_group_id: p.remoteGroupId,
      remote_ip_prefix: p.remoteIpPrefix,
      description: p.description,
    }, meta);
  }
}

export class NetworkingFloatingipV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { pool: string; portId: string; description?: string }, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_networking_floatingip_v2', { pool: p.pool, port_id: p.portId, description: p.description }, meta);
  }

  get address(): string {
    return this.getStringAttribute('address');
  }
}

export class BlockstorageVolumeV3 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { name: string; sizeGb: number }, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_blockstorage_volume_v3', { name: p.name, size: p.sizeGb }, meta);
  }
}

export interface InstanceProps {
  readonly name: string;
  readonly imageName: string;
  readonly flavorName: string;
  readonly networkId: string;
  readonly securityGroups: string[];
  readonly userData: string;
  readonly keyPair?: string;
  /** Server group the scheduler places the instance in. */
  readonly serverGroupId?: string;
  readonly metadata?: Record<string, string>;
}
export class ComputeInstanceV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: InstanceProps, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_compute_instance_v2', {
      name: p.name,
      image_name: p.imageName,
      flavor_name: p.flavorName,
      key_pair: p.keyPair,
      security_groups: p.securityGroups,
      user_data: p.userData,
      network: [{ uuid: p.networkId }],
      scheduler_hints: p.serverGroupId ? [{ group: p.serverGroupId }] : undefined,
      metadata: p.metadata,
    }, meta);
  }

  /** The instance's fixed IPv4 address. */
  get accessIpV4(): string {
    return this.getStringAttribute('access_ip_v4');
  }
}

export class ComputeVolumeAttachV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { instanceId: string; volumeId: string }, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_compute_volume_attach_v2', { instance_id: p.instanceId, volume_id: p.volumeId }, meta);
  }
}

export class ComputeServergroupV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { name: string; policy: 'anti-affinity' | 'soft-anti-affinity' }, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_compute_servergroup_v2', { name: p.name, policies: [p.policy] }, meta);
  }
}

export interface RecordsetProps {
  readonly zoneId: string;
  /** Fully qualified, with the trailing dot. */
  readonly name: string;
  readonly type: 'A' | 'CNAME';
  readonly records: string[];
  readonly ttlSeconds?: number;
}
export class DnsRecordsetV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: RecordsetProps, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_dns_recordset_v2', { zone_id: p.zoneId, name: p.name, type: p.type, ttl: p.ttlSeconds ?? 300, records: p.records }, meta);
  }
}

export class LbLoadbalancerV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { name: string; vipSubnetId: string; securityGroupIds?: string[] }, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_lb_loadbalancer_v2', { name: p.name, vip_subnet_id: p.vipSubnetId, security_group_ids: p.securityGroupIds }, meta);
  }

  get vipPortId(): string {
    return this.getStringAttribute('vip_port_id');
  }
}

export interface ListenerProps {
  readonly name: string;
  readonly loadbalancerId: string;
  readonly protocol: 'TCP' | 'HTTP';
  readonly protocolPort: number;
  /** The pool that receives the listener's connections. */
  readonly defaultPoolId: string;
}
export class LbListenerV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: ListenerProps, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_lb_listener_v2', {
      name: p.name,
      loadbalancer_id: p.loadbalancerId,
      protocol: p.protocol,
      protocol_port: p.protocolPort,
      default_pool_id: p.defaultPoolId,
    }, meta);
  }
}

export class LbPoolV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: { name: string; loadbalancerId: string; protocol: 'TCP' | 'HTTP' }, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_lb_pool_v2', { name: p.name, loadbalancer_id: p.loadbalancerId, protocol: p.protocol, lb_method: 'LEAST_CONNECTIONS' }, meta);
  }
}

export interface MonitorProps {
  readonly poolId: string;
  readonly urlPath: string;
  readonly delaySeconds?: number;
  readonly timeoutSeconds?: number;
  readonly maxRetries?: number;
}
export class LbMonitorV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: MonitorProps, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_lb_monitor_v2', {
      pool_id: p.poolId,
      type: 'HTTP',
      http_method: 'GET',
      url_path: p.urlPath,
      expected_codes: '200',
      delay: p.delaySeconds ?? 5,
      timeout: p.timeoutSeconds ?? 3,
      max_retries: p.maxRetries ?? 3,
    }, meta);
  }
}

export interface MemberProps {
  readonly poolId: string;
  readonly name: string;
  readonly address: string;
  readonly protocolPort: number;
  readonly subnetId: string;
  /** Where the health monitor checks this member (the admin port), if not protocolPort. */
  readonly monitorPort?: number;
}
export class LbMemberV2 extends OpenStackResource {
  constructor(scope: Construct, id: string, p: MemberProps, meta?: TerraformMetaArguments) {
    super(scope, id, 'openstack_lb_member_v2', {
      pool_id: p.poolId,
      name: p.name,
      address: p.address,
      protocol_port: p.protocolPort,
      subnet_id: p.subnetId,
      monitor_port: p.monitorPort,
    }, meta);
  }
}

/** Looks up an existing network by name (the external network). */
export class DataNetworkingNetworkV2 extends TerraformDataSource {
  constructor(scope: Construct, id: string, private readonly networkName: string) {
    super(scope, id, { terraformResourceType: 'openstack_networking_network_v2', terraformGeneratorMetadata: providerGenerator });
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return { name: this.networkName, external: true };
  }

  get id(): string {
    return this.getStringAttribute('id');
  }
}
