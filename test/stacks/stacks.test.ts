import t from 'tap';
import { componentConfigText, components, edges, type Component } from '../../stacks/model.js';
import { kubernetesStateOutputs } from '../../stacks/kubernetes/state-stack.js';
import { caConfig } from '../../components/ca/config.js';
import { saConfig } from '../../components/sa/config.js';
import { raConfig } from '../../components/ra/config.js';
import { wfeConfig } from '../../components/wfe/config.js';
import { vaConfigSchema } from '../../components/va/config.js';
import { publisherConfig } from '../../components/publisher/config.js';
import { ctLogConfig } from '../../components/ct-log/config.js';
import { ocspResponderConfig } from '../../components/ocsp-responder/config.js';
import { changedResources, exampleConfig, parse, strings, synthAll, Testing, unresolvedReferences, type StackJson } from './helpers.js';

const targets = ['kubernetes', 'openstack'] as const;
const synthesized = Object.fromEntries(
  targets.map((target) => [
    target,
    {
      blue: synthAll(exampleConfig({ target, activeColor: 'blue' })),
      green: synthAll(exampleConfig({ target, activeColor: 'green' })),
    },
  ]),
) as Record<(typeof targets)[number], { blue: ReturnType<typeof synthAll>; green: ReturnType<typeof synthAll> }>;

t.test('the kubernetes state stack selects the active color in its public Services', async (t) => {
  const { blue, green } = synthesized.kubernetes;
  for (const name of ['acme', 'crl', 'ocsp-int-2025']) {
    t.ok(Testing.toHaveResourceWithProperties(blue.state, 'kubernetes_service_v1', { metadata: { name }, spec: { selector: { color: 'blue' } } }), `${name} selects blue`);
    t.ok(Testing.toHaveResourceWithProperties(green.state, 'kubernetes_service_v1', { metadata: { name }, spec: { selector: { color: 'green' } } }), `${name} selects green`);
  }
  t.ok(Testing.toHaveResourceWithProperties(blue.state, 'kubernetes_namespace_v1', { metadata: { name: 'bluegreen-ca' }, lifecycle: { prevent_destroy: true } }));
  for (const name of ['database', 'hsm', 'eab', 'pki']) {
    t.ok(Testing.toHaveResourceWithProperties(blue.state, 'kubernetes_secret_v1', { metadata: { name } }), `secret ${name}`);
  }
  t.ok(Testing.toHaveResourceWithProperties(blue.state, 'kubernetes_persistent_volume_claim_v1', { lifecycle: { prevent_destroy: true } }));
  const state = parse(blue.state);
  t.same(Object.keys(state.output ?? {}).sort(), [...kubernetesStateOutputs].sort());
  t.equal(state.output?.database_url.sensitive, true, 'the database URL output is sensitive');
  t.notOk(strings({ resource: state.resource, output: state.output }).some((v) => v.includes('postgres://')), 'no database URL is written into the JSON');
});

t.test('a kubernetes color runs each component hardened, probed and sized', async (t) => {
  const blue = parse(synthesized.kubernetes.blue.blue);
  const deployments = blue.resource?.kubernetes_deployment_v1 ?? {};
  t.equal(Object.keys(deployments).length, components.length);
  for (const c of components) {
    t.ok(
      Testing.toHaveResourceWithProperties(synthesized.kubernetes.blue.blue, 'kubernetes_deployment_v1', {
        metadata: { name: `${c}-blue`, labels: { component: c, color: 'blue', release: '0.1.0_abc1234' } },
        spec: {
          template: {
            spec: {
              container: [
                {
                  image: 'registry.example.com/bluegreen-ca:0.1.0_abc1234',
                  security_context: { run_as_non_root: true, read_only_root_filesystem: true, allow_privilege_escalation: false },
                  readiness_probe: { http_get: { path: '/health' } },
                  liveness_probe: { http_get: { path: '/health' } },
                  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
                },
              ],
            },
          },
        },
      }),
      `${c} deployment`,
    );
    t.ok(Testing.toHaveResourceWithProperties(synthesized.kubernetes.blue.blue, 'kubernetes_service_v1', { metadata: { name: `${c}-blue` } }), `${c} service`);
    t.ok(Testing.toHaveResourceWithProperties(synthesized.kubernetes.blue.blue, 'kubernetes_pod_disruption_budget_v1', { metadata: { name: `${c}-blue` } }), `${c} pdb`);
  }
  t.ok(Testing.toHaveResourceWithProperties(synthesized.kubernetes.blue.blue, 'kubernetes_job_v1', { wait_for_completion: true }), 'a migration job');
  for (const name of ['acme-preview-blue', 'http-preview-blue']) {
    t.ok(Testing.toHaveResourceWithProperties(synthesized.kubernetes.blue.blue, 'kubernetes_service_v1', { metadata: { name } }), name);
  }
});

t.test('kubernetes network policies allow exactly the component edges', async (t) => {
  const blue = parse(synthesized.kubernetes.blue.blue);
  const policies = blue.resource?.kubernetes_network_policy_v1 ?? {};
  type Rule = { from?: { pod_selector?: { match_labels: Record<string, string> } }[]; to?: { pod_selector?: { match_labels: Record<string, string> } }[]; ports: { port: string }[] };
  const inPods = new Set<string>();
  const outPods = new Set<string>();
  for (const c of components) {
    const spec = policies[`${c}-policy`].spec as { policy_types: string[]; ingress: Rule[]; egress: Rule[] };
    t.same(spec.policy_types, ['Ingress', 'Egress'], `${c} restricts both directions`);
    for (const r of spec.ingress) for (const f of r.from ?? []) if (f.pod_selector) {
      t.equal(f.pod_selector.match_labels.color, 'blue');
      inPods.add(`${f.pod_selector.match_labels.component}>${c}:${r.ports[0].port}`);
    }
    for (const r of spec.egress) for (const to of r.to ?? []) if (to.pod_selector) {
      outPods.add(`${c}>${to.pod_selector.match_labels.component}:${r.ports[0].port}`);
    }
  }
  const expected = edges.map((e) => `${e.from}>${e.to}:${e.port}`).sort();
  t.same([...inPods].sort(), expected, 'ingress between pods is the edge list');
  t.same([...outPods].sort(), expected, 'egress between pods is the edge list');
});

t.test('component configs in the stacks pass the components own validation', async (t) => {
  const config = exampleConfig({ target: 'kubernetes' });
  const schemas: Record<Component, { safeParse(v: unknown): { success: boolean; error?: unknown } }> = {
    ca: caConfig, sa: saConfig, ra: raConfig, wfe: wfeConfig, va: vaConfigSchema, publisher: publisherConfig, 'ct-log': ctLogConfig, 'ocsp-responder': ocspResponderConfig,
  };
  for (const c of components) {
    const text = componentConfigText(c, { config, hostOf: (x) => `${x}-blue.bluegreen-ca.svc`, databaseUrl: 'postgres://u:p@db:5432/bluegreen', eabKeysJson: '{}' });
    const result = schemas[c].safeParse(JSON.parse(text));
    t.ok(result.success, `${c} config is valid${result.success ? '' : `: ${String(result.error)}`}`);
  }
});

t.test('openstack state: network, edges-only security groups, database, load balancer, DNS', async (t) => {
  const { blue } = synthesized.openstack;
  const s = blue.state;
  for (const type of ['openstack_networking_network_v2', 'openstack_networking_subnet_v2', 'openstack_networking_router_v2', 'openstack_lb_loadbalancer_v2', 'openstack_compute_instance_v2']) {
    t.ok(Testing.toHaveResource(s, type), type);
  }
  t.ok(Testing.toHaveResourceWithProperties(s, 'openstack_blockstorage_volume_v3', { size: 20, lifecycle: { prevent_destroy: true } }));
  t.ok(Testing.toHaveResourceWithProperties(s, 'openstack_lb_listener_v2', { protocol_port: 443, protocol: 'TCP' }));
  t.ok(Testing.toHaveResourceWithProperties(s, 'openstack_lb_listener_v2', { protocol_port: 80, protocol: 'HTTP' }));
  t.ok(Testing.toHaveResourceWithProperties(s, 'openstack_lb_monitor_v2', { type: 'HTTP', url_path: '/health' }));
  for (const name of ['acme.ca.example.com.', 'crl.ca.example.com.', 'ocsp-int-2025.ca.example.com.']) {
    t.ok(Testing.toHaveResourceWithProperties(s, 'openstack_dns_recordset_v2', { name, type: 'A' }), name);
  }
  t.ok(Testing.toHaveProviderWithProperties(s, 'openstack', {}), 'the openstack provider');

  const json = parse(s);
  for (const g of Object.values(json.resource?.openstack_networking_secgroup_v2 ?? {})) {
    t.equal(g.delete_default_rules, true, `${String(g.name)} has no allow-all default rules`);
  }
  const rules = Object.values(json.resource?.openstack_networking_secgroup_rule_v2 ?? {});
  const groupOf = (ref: unknown) => String(ref).match(/secgroup-([\w-]+)\.id/)?.[1];
  const between = rules
    .filter((r) => r.direction === 'ingress' && r.remote_group_id && groupOf(r.remote_group_id) !== 'database' && groupOf(r.security_group_id) !== 'database')
    .map((r) => `${groupOf(r.remote_group_id)}>${groupOf(r.security_group_id)}:${String(r.port_range_min)}`)
    .sort();
  t.same(between, edges.map((e) => `${e.from}>${e.to}:${e.port}`).sort(), 'ingress between groups is the edge list');
});

t.test('an openstack color: server groups with anti-affinity, instances of the stock image, pool members', async (t) => {
  const b = synthesized.openstack.blue.blue;
  t.ok(Testing.toHaveResourceWithProperties(b, 'openstack_compute_servergroup_v2', { policies: ['anti-affinity'] }));
  t.ok(Testing.toHaveResourceWithProperties(b, 'openstack_compute_instance_v2', { image_name: 'debian-12', metadata: { component: 'wfe', color: 'blue', release: '0.1.0+abc1234' } }));
  t.ok(Testing.toHaveResourceWithProperties(b, 'openstack_lb_member_v2', { protocol_port: 14000, monitor_port: 8010 }));
  const json = parse(b);
  const userData = String((json.resource?.openstack_compute_instance_v2['wfe-0'] as { user_data: string }).user_data);
  t.match(userData, /^#cloud-config\n/);
  t.match(userData, /bluegreen-ca-wfe\.service/, "the unit images/cloud-init.ts writes");
});

t.test('openstack instances may fetch packages, Node.js and the release, and nothing else new', async (t) => {
  const rules = parse(synthesized.openstack.blue.state).resource?.openstack_networking_secgroup_rule_v2 ?? {};
  for (const c of [...components.filter((x) => x !== 'va'), 'database']) {
    for (const port of [80, 443]) {
      t.match(rules[`out-${c}-install-${port}`], { direction: 'egress', port_range_min: port, remote_ip_prefix: '0.0.0.0/0' }, `${c} ${port}`);
    }
  }
  // The VA's validation rules already open 80 and 443; a second identical rule would be refused.
  t.notOk(rules['out-va-install-443']);
  t.ok(rules['out-va-validation-443']);
});

t.test('the openstack provider keeps an alias that the cdktf base class drops', async (t) => {
  const { OpenStackProvider } = await import('../../stacks/openstack/provider.js');
  const { TerraformStack } = await import('cdktf');
  const app = Testing.app();
  const stack = new TerraformStack(app, 'alias');
  const p = new OpenStackProvider(stack, 'second', { cloud: 'other', alias: 'other' });
  const json = parse(Testing.synth(stack)) as { provider: { openstack: Record<string, unknown>[] } };
  t.same(json.provider.openstack, [{ alias: 'other', cloud: 'other' }]);
  t.equal(p.fqn, 'openstack.other');
});

for (const target of targets) {
  t.test(`${target}: a flip changes only the public selectors or listeners`, async (t) => {
    const { blue, green } = synthesized[target];
    const a = parse(blue.state);
    const b = parse(green.state);
    const expected =
      target === 'kubernetes'
        ? ['kubernetes_service_v1.acme', 'kubernetes_service_v1.crl', 'kubernetes_service_v1.ocsp-int-2025']
        : ['openstack_lb_listener_v2.listener-acme', 'openstack_lb_listener_v2.listener-http'];
    t.same(changedResources(a, b), expected);
    const changedOutputs = Object.keys(a.output ?? {}).filter((k) => JSON.stringify(a.output?.[k]) !== JSON.stringify(b.output?.[k]));
    t.same(changedOutputs, ['active_color']);
    t.same(a.variable, b.variable);
    t.equal(blue.blue, green.blue, 'the blue stack is the same whichever color is active');
    t.equal(blue.green, green.green, 'the green stack is the same whichever color is active');
  });

  t.test(`${target}: the state stack depends on no color, the colors on state only through outputs`, async (t) => {
    const { blue } = synthesized[target];
    const state = parse(blue.state);
    t.notOk(state.data?.terraform_remote_state, 'the state stack reads no other state');
    t.same(unresolvedReferences(state, null), [], 'every state reference resolves inside the state stack');
    for (const color of ['blue', 'green'] as const) {
      const stack = parse(blue[color]);
      t.same(Object.keys(stack.data ?? {}), ['terraform_remote_state'], `${color} reads only remote state`);
      t.same(unresolvedReferences(stack, state), [], `every ${color} reference resolves`);
      const stateTypes = new Set(Object.keys(state.resource ?? {}));
      const shared = Object.keys(stack.resource ?? {}).filter((type) => stateTypes.has(type) && ['kubernetes_namespace_v1', 'kubernetes_persistent_volume_claim_v1', 'openstack_blockstorage_volume_v3', 'openstack_lb_loadbalancer_v2', 'openstack_lb_pool_v2', 'openstack_lb_listener_v2', 'openstack_networking_network_v2'].includes(type));
      t.same(shared, [], `${color} owns no shared-state resource`);
      t.ok(strings(stack.resource).some((s) => s.includes('data.terraform_remote_state.state.outputs.')), `${color} uses state outputs`);
    }
  });

  t.test(`${target}: the reference check catches a dangling reference`, async (t) => {
    const state = parse(synthesized[target].blue.state);
    const broken: StackJson = { ...state, output: { ...state.output, bogus: { value: '${openstack_lb_pool_v2.nowhere.id} ${var.nothing} ${kubernetes_service_v1.nothing.id}' } } };
    t.equal(unresolvedReferences(broken, null).length, 3);
  });
}

t.test('the synthesized JSON uses only Terraform\'s own backends', async (t) => {
  for (const target of targets) {
    for (const json of Object.values(synthesized[target].blue)) {
      const backend = Object.keys((parse(json).terraform as { backend: object }).backend);
      t.same(backend, ['http'], `${target}: the http backend`);
      t.notMatch(json, /"cloud"\s*:\s*\{|"remote"\s*:\s*\{/, 'no Terraform Cloud block');
    }
  }
});
