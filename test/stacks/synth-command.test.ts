import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { repoRoot } from '../../pipelines/local/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'bluegreen-synth-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// No network and no terraform are needed: the environment leaves PATH to node alone.
const run = (args: string[]) =>
  execa('npm', ['run', '-s', 'synth', '--', ...args], { cwd: repoRoot, reject: false, env: { BLUEGREEN_TARGET: '', BLUEGREEN_DEPLOYMENT_CONFIG: '' } });

// The three commands run at once; each test awaits its own.
const out = join(dir, 'out');
const unknownOut = join(dir, 'unknown');
const badOut = join(dir, 'bad');
const badFile = join(dir, 'bad.yaml');
writeFileSync(badFile, readFileSync(join(repoRoot, 'stacks', 'deployment.example.yaml'), 'utf8').replace('activeColor: blue', 'activeColor: teal'));
const good = run(['--target', 'openstack', '--config', join(repoRoot, 'stacks', 'deployment.example.yaml'), '--out', out]);
const unknown = run(['--target', 'azure', '--out', unknownOut]);
const bad = run(['--config', badFile, '--out', badOut]);

t.test('npm run synth writes a target\'s stacks offline', async (t) => {
  const result = await good;
  t.equal(result.exitCode, 0, result.stderr);
  t.same(JSON.parse(result.stdout).stacks, ['openstack-state', 'openstack-blue', 'openstack-green']);
  for (const part of ['state', 'blue', 'green']) {
    t.ok(existsSync(join(out, 'stacks', `openstack-${part}`, 'cdk.tf.json')), `openstack-${part}`);
  }
  t.ok(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).stacks['openstack-state']);
});

t.test('fails with one line for an unknown target, writing nothing', async (t) => {
  const result = await unknown;
  const out = unknownOut;
  t.equal(result.exitCode, 1);
  t.equal(result.stderr.trim().split('\n').length, 1);
  t.match(result.stderr, /target: expected kubernetes or openstack, got azure/);
  t.notOk(existsSync(out));
});

t.test('fails with one line naming the bad field of a config, writing nothing', async (t) => {
  const result = await bad;
  const out = badOut;
  t.equal(result.exitCode, 1);
  t.equal(result.stderr.trim().split('\n').length, 1);
  t.match(result.stderr, /activeColor: .*"blue"\|"green"/);
  t.notMatch(result.stderr, /\bat .*\.ts:\d+/, 'no stack trace');
  t.notOk(existsSync(out));
});
