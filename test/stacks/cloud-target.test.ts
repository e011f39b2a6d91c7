import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { KubernetesTarget } from '../../pipelines/targets/kubernetes.js';
import { OpenStackTarget } from '../../pipelines/targets/openstack.js';
import { PipelineError } from '../../pipelines/operation.js';
import { repoRoot } from '../../pipelines/local/processes.js';
import { fakeTerraform } from '../helpers/fake-terraform.js';

// No cluster or cloud can be reached here: `cdktf` and `terraform` below are stand-ins that
// record how they were called and answer `terraform output -json` from files, so the tests
// check what the targets ask Terraform to do, not what a cloud does with it.

const dir = mkdtempSync(join(tmpdir(), 'bluegreen-cloud-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const fake = fakeTerraform(dir);
const { bin, calls, reset, outputs } = fake;

const configFile = join(repoRoot, 'stacks', 'deployment.example.yaml');

const withFakes = (env: NodeJS.ProcessEnv = {}) =>
  new KubernetesTarget({ configFile, stateDir: join(dir, 'state'), cdktf: join(bin, 'cdktf'), env: { PATH: `${bin}:/usr/bin:/bin`, ...env } });

t.test('refuses to deploy without a terraform binary, and runs nothing', async (t) => {
  reset();
  const empty = join(dir, 'empty');
  mkdirSync(empty, { recursive: true });
  const target = new OpenStackTarget({ configFile, stateDir: join(dir, 'state'), cdktf: join(bin, 'cdktf'), env: { PATH: empty } });
  const err = await target.deploy({ color: 'green', release: '0.2.0', deploymentId: 'd1' }).then(() => null, (e: unknown) => e);
  t.type(err, PipelineError);
  t.match((err as Error).message, /^no terraform binary on PATH, so nothing can be applied to openstack$/);
  await t.rejects(target.flip('green'), /no terraform binary/);
  t.same(calls(), [], 'cdktf never ran');
});

t.test('the first deploy creates the state stack, then the color stack with the release', async (t) => {
  reset();
  await withFakes().deploy({ color: 'blue', release: '0.2.0+abc', deploymentId: 'd1' });
  const deploys = calls().filter((c) => c.startsWith('cdktf deploy'));
  t.equal(deploys.length, 2);
  t.match(deploys[0], /^cdktf deploy kubernetes-state --auto-approve color= /);
  t.match(deploys[1], /^cdktf deploy kubernetes-blue --auto-approve color= release=0\.2\.0\+abc id=d1 target=kubernetes/);
});

t.test('a later deploy leaves the state stack alone', async (t) => {
  reset();
  outputs('kubernetes-state', { active_color: 'blue' });
  await withFakes().deploy({ color: 'green', release: '0.3.0', deploymentId: 'd2' });
  const deploys = calls().filter((c) => c.startsWith('cdktf deploy'));
  t.equal(deploys.length, 1);
  t.match(deploys[0], /^cdktf deploy kubernetes-green --auto-approve .*release=0\.3\.0 id=d2/);
});

t.test('a flip re-applies only the state stack with the other active color', async (t) => {
  reset();
  await withFakes().flip('green');
  t.same(calls().filter((c) => c.startsWith('cdktf deploy')).map((c) => c.split(' release=')[0]), ['cdktf deploy kubernetes-state --auto-approve color=green']);
  await t.rejects(withFakes().flip(null), /always sends traffic to a color/);
});

t.test('destroy removes one color stack only', async (t) => {
  reset();
  await withFakes().destroy('blue');
  t.same(calls().map((c) => c.split(' color=')[0]), ['cdktf destroy kubernetes-blue --auto-approve']);
});

t.test('status reads the active color and each color from the stack outputs', async (t) => {
  reset();
  outputs('kubernetes-state', { active_color: 'green' });
  outputs('kubernetes-green', { release: '0.3.0', preview_acme: 'https://10.0.0.9/directory', preview_http: 'http://10.0.0.9' });
  const target = withFakes();
  t.equal(await target.activeColor(), 'green');
  t.same(await target.runtime('blue'), { state: 'absent' });
  t.same(await target.runtime('green'), { state: 'running', detail: 'release 0.3.0' });
  t.same(target.previewEndpoints('green'), {
    acme: 'https://10.0.0.9/directory',
    ocsp: ['http://10.0.0.9/ocsp/int-2025'],
    crl: ['http://10.0.0.9/crl/int-2025.crl'],
    httpBase: 'http://10.0.0.9',
  });
  t.equal(target.publicEndpoints().acme, 'https://acme.ca.example.com/directory');
});

t.test('in GitLab CI the job token authenticates to the Terraform state', async (t) => {
  reset();
  await withFakes({ CI_JOB_TOKEN: 'job-token-123' }).destroy('green');
  t.match(calls()[0], /password=job-token-123$/);
});

t.test('a bad deployment config fails when the target is made, naming the field', async (t) => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, readFileSync(configFile, 'utf8').replace('replicas: 2', 'replicas: 0'));
  t.throws(() => new KubernetesTarget({ configFile: file, stateDir: dir }), /bad\.yaml: sizes\.replicas: /);
});
