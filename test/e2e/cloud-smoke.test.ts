import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { deploy } from '../../pipelines/deploy.js';
import { flipColor } from '../../pipelines/flip-color.js';
import { repoRoot } from '../../pipelines/local/processes.js';
import { smokeTest } from '../../pipelines/smoke.js';
import { KubernetesTarget } from '../../pipelines/targets/kubernetes.js';
import { startTestCa } from '../helpers/ca.js';
import { fakeTerraform } from '../helpers/fake-terraform.js';

// The smoke gate of a cloud target. No cluster can be reached here, so `cdktf` and `terraform`
// are stand-ins: cdktf records what it was asked to apply, and terraform's outputs name a
// whole CA running on this machine as the color's preview endpoints. Everything the smoke
// tests do against those endpoints is real: an ACME order, the chain, SCTs, OCSP, revocation.

// Config names need two labels; the CA's VA answers for every name under its allowed domain.
const ca = await startTestCa({ logLevel: 'warn', allowedDomains: ['cloud.test'] });
const dir = mkdtempSync(join(tmpdir(), 'bluegreen-cloud-smoke-'));
t.teardown(async () => {
  await ca.stop();
  rmSync(dir, { recursive: true, force: true });
});

const fake = fakeTerraform(dir);
const { bin, outputs } = fake;
const applied = () => fake.calls().filter((l) => l.startsWith('cdktf deploy'));

/** The example deployment config, pointed at the CA above for everything the smoke needs. */
function writeConfig(file: string, smoke: boolean): string {
  const config = parse(readFileSync(join(repoRoot, 'stacks', 'deployment.example.yaml'), 'utf8'));
  config.allowedDomains = ['cloud.test'];
  config.trustBundle = ca.shared.trustBundle;
  if (smoke) {
    config.smoke = { domain: 'cloud.test', httpPort: ca.httpPort, ctLogPublicKey: ca.shared.ctLogPublicKeyFile };
  }
  writeFileSync(file, stringify(config));
  return file;
}

const target = (configFile: string, stateDir: string) =>
  new KubernetesTarget({
    configFile,
    stateDir,
    cdktf: join(bin, 'cdktf'),
    env: { PATH: `${bin}:/usr/bin:/bin` },
  });

outputs('kubernetes-state', { active_color: 'blue' });
outputs('kubernetes-green', {
  release: '0.9.0+cloud',
  preview_acme: ca.directoryUrl,
  preview_http: `http://127.0.0.1:${ca.instance.ports.publicHttp}`,
});

t.test('a cloud color is smoke-tested through its preview endpoints, and only then flipped', async (t) => {
  const k8s = target(writeConfig(join(dir, 'smoke.yaml'), true), join(dir, 'state'));
  const deployed = await deploy({ target: k8s, color: 'green', release: '0.9.0+cloud' });
  t.equal(deployed.color, 'green');
  t.match(applied(), [/^cdktf deploy kubernetes-green --auto-approve .*release=0\.9\.0\+cloud/]);

  const refused = await flipColor({ target: k8s, to: 'green' }).catch((e: Error) => e);
  t.match(String(refused), /no passing smoke record/, 'no flip before a smoke test');
  t.equal(applied().length, 1, 'and the state stack was not applied');

  const record = await smokeTest({ target: k8s, color: 'green' });
  t.ok(record.passed, record.steps.map((s) => `${s.name}:${s.status}`).join(' '));
  t.same(record.steps.filter((s) => s.status !== 'passed').map((s) => s.name), [], 'no check skipped');
  t.equal(record.deploymentId, deployed.deploymentId);

  // With a passing record the flip applies the state stack with green active. Its check of
  // the public name then fails, since no cloud answers here, and it flips back by itself.
  const flipped = await flipColor({ target: k8s, to: 'green' }).catch((e: Error) => e);
  t.match(String(flipped), /after the flip the public endpoint failed/);
  t.match(applied().slice(1), [
    /^cdktf deploy kubernetes-state --auto-approve color=green/,
    /^cdktf deploy kubernetes-state --auto-approve color=blue/,
  ]);
});

t.test('a deployment config without a smoke section says what to add', async (t) => {
  const k8s = target(writeConfig(join(dir, 'nosmoke.yaml'), false), join(dir, 'state-nosmoke'));
  await deploy({ target: k8s, color: 'green', release: '0.9.0+cloud' });
  const err = await smokeTest({ target: k8s, color: 'green' }).catch((e: Error) => e);
  t.match(String(err), /the deployment config has no smoke section/);
});

t.test('a smoke domain outside allowedDomains is refused when the config is read', async (t) => {
  const file = join(dir, 'outside.yaml');
  writeConfig(file, true);
  writeFileSync(file, readFileSync(file, 'utf8').replace('domain: cloud.test\n  httpPort', 'domain: elsewhere.example\n  httpPort'));
  t.throws(() => target(file, join(dir, 'state-outside')), /smoke\.domain: expected a name under one of allowedDomains/);
});
