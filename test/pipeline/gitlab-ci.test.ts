import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { repoRoot } from '../../pipelines/local/processes.js';
import { LocalTarget } from '../../pipelines/targets/local.js';
import { lockFixedPorts } from '../helpers/fixed-ports.js';
import { requireTool } from '../helpers/tools.js';

// The repository's .gitlab-ci.yml driving a full blue/green cycle of the local target through
// gitlab-ci-local's shell executor, one stage at a time, with the job selection an operator
// would use. The pipeline runs in a copy of this checkout (uncommitted changes included) so
// that its artifacts and gitlab-ci-local's own state stay out of the working tree; the
// toolkit's state lives in a temporary directory every job shares through BLUEGREEN_STATE.

interface Status {
  active: string | null;
  previous: string | null;
  colors: Record<'blue' | 'green', { state: string; release?: string; smoke?: { passed: boolean } }>;
}

const ready = requireTool(t, 'rsync', 'apt-get install rsync') && requireTool(t, 'git', 'apt-get install git');

if (ready) {
  const ports = await lockFixedPorts({ test: t });
  t.teardown(() => ports.release());
  // About twenty CLI runs, three of them smoke tests; slow on a busy machine.
  t.setTimeout(15 * 60_000);

  const work = mkdtempSync(join(tmpdir(), 'bluegreen-gitlab-ci-'));
  const checkout = join(work, 'checkout');
  const stateDir = join(work, 'state');
  const target = new LocalTarget({ stateDir, settings: { allowedDomains: ['test'] } });
  const cleanup = async () => {
    for (const c of ['blue', 'green'] as const) await target.destroy(c).catch(() => undefined);
    await target.stopLoadBalancer().catch(() => undefined);
    if (process.env.KEEP_TEST_STATE !== '1') rmSync(work, { recursive: true, force: true });
  };
  t.teardown(cleanup);

  await copyCheckout(checkout);

  const gitlabCiLocal = join(repoRoot, 'node_modules', 'gitlab-ci-local', 'dist', 'index.js');
  const pipeline = (...jobs: string[]) =>
    execa(
      process.execPath,
      [
        gitlabCiLocal,
        '--home', join(work, 'gitlab-ci-local-home'),
        '--force-shell-executor',
        '--no-color',
        '--variable', `BLUEGREEN_STATE=${stateDir}`,
        '--variable', 'BLUEGREEN_TARGET=local',
        '--variable', 'BLUEGREEN_ENV=local',
        '--variable', 'BLUEGREEN_DRAIN_SECONDS=2',
        ...jobs,
      ],
      { cwd: checkout, all: true, reject: false },
    );
  const cli = (...args: string[]) =>
    execa(process.execPath, ['--import', 'tsx', join(repoRoot, 'pipelines/cli.ts'), '--state', stateDir, ...args], {
      cwd: repoRoot,
    });
  /** What `status --json` said at the end of a job (the job's after_script records it). */
  const statusAfter = (job: string): Status =>
    JSON.parse(readFileSync(join(checkout, 'records', `status-after-${job.replace(/:/g, '-')}.json`), 'utf8'));

  // Set-up, before any subtest: tap ends the root test (and runs its teardown) once its
  // queue of subtests is empty, even while top-level code still awaits.
  const { build, current, previous } = await prepare().catch(async (err: unknown) => {
    await cleanup();
    throw err;
  });

  async function prepare() {
    const build = await pipeline('build:bundle');
    const buildEnv = join(checkout, 'build.env');
    const current = existsSync(buildEnv) ? /^BLUEGREEN_RELEASE=(.+)$/m.exec(readFileSync(buildEnv, 'utf8'))?.[1] : undefined;
    if (!current) throw new Error(`build:bundle did not name a release:\n${build.all}`);

    // An older release serves before the pipeline runs, so that the rollback job has one to go
    // back to: the same bundle under another version, deployed and flipped by hand.
    const previous = '0.0.1+previous';
    const previousDir = join(stateDir, 'releases', previous);
    cpSync(join(stateDir, 'releases', String(current)), previousDir, { recursive: true });
    const infoFile = join(previousDir, 'release.json');
    chmodSync(infoFile, 0o644);
    writeFileSync(infoFile, JSON.stringify({ ...JSON.parse(readFileSync(infoFile, 'utf8')), version: previous }, null, 2));
    await cli('deploy', '--color', 'blue', '--release', previous);
    await cli('smoke', '--color', 'blue');
    await cli('flip-color', '--to', 'blue');
    return { build, current, previous };
  }

  t.test('builds the release of this checkout and hands its version to later jobs', async (t) => {
    t.equal(build.exitCode, 0, build.all);
    t.ok(current, 'build.env names the release');
    t.ok(existsSync(join(stateDir, 'releases', String(current), 'release.json')), 'the release is in the shared state');
    t.ok(existsSync(join(checkout, 'dist', 'release', 'components', 'ca.mjs')), 'the bundle is an artifact');
  });

  t.test('deploys the new release to the idle color only', async (t) => {
    const run = await pipeline('deploy:blue', 'deploy:green');
    t.equal(run.exitCode, 0, run.all);
    t.match(run.all, /blue is not the idle color \(active: blue\); deploy:green deploys/);
    t.match(run.all, /WARN\s+deploy:blue/, 'the job for the active color is an allowed failure');

    const s = statusAfter('deploy:green');
    t.equal(s.active, 'blue', 'traffic stays on blue');
    t.match(s.colors.green, { state: 'running', release: current });
    t.match(s.colors.blue, { state: 'running', release: previous });
  });

  t.test('smoke-tests the idle color and records the result', async (t) => {
    const run = await pipeline('smoke');
    t.equal(run.exitCode, 0, run.all);
    const record = JSON.parse(readFileSync(join(checkout, 'records', 'smoke.json'), 'utf8'));
    t.match(record, { color: 'green', passed: true });
    t.match(statusAfter('smoke').colors.green, { smoke: { passed: true } });
  });

  t.test('flips to the smoke-tested color', async (t) => {
    const run = await pipeline('flip');
    t.equal(run.exitCode, 0, run.all);
    const s = statusAfter('flip');
    t.equal(s.active, 'green');
    t.equal(s.previous, 'blue');
  });

  t.test('tears down the old color and keeps the active one', async (t) => {
    const run = await pipeline('teardown:blue', 'teardown:green');
    t.equal(run.exitCode, 0, run.all);
    t.match(run.all, /green serves traffic and stays/);
    const s = statusAfter('teardown:blue');
    t.equal(s.colors.blue.state, 'absent');
    t.match(s.colors.green, { state: 'running', release: current });
  });

  t.test('fails the flip job when no idle color has passed a smoke test', async (t) => {
    const run = await pipeline('flip');
    t.not(run.exitCode, 0, 'gitlab-ci-local reports the failed job');
    t.match(run.all, /FAIL\s+flip/);
    t.equal(statusAfter('flip').active, 'green', 'traffic stays where it was');
  });

  t.test('rolls back to the previous release with the manual job', async (t) => {
    const run = await pipeline('rollback');
    t.equal(run.exitCode, 0, run.all);
    const s = statusAfter('rollback');
    t.equal(s.active, 'blue');
    t.match(s.colors.blue, { state: 'running', release: previous, smoke: { passed: true } });
  });

  t.test('tears down the rolled-back release, and status agrees when asked directly', async (t) => {
    const run = await pipeline('teardown:blue', 'teardown:green');
    t.equal(run.exitCode, 0, run.all);
    const s = JSON.parse((await cli('status', '--json')).stdout) as Status;
    t.equal(s.active, 'blue');
    t.equal(s.colors.green.state, 'absent');
    t.match(s.colors.blue, { state: 'running', release: previous });
  });
}

/** Copies the tracked and untracked (not ignored) files and the git metadata of this checkout. */
async function copyCheckout(dest: string): Promise<void> {
  const files = await execa('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repoRoot,
  });
  await execa('rsync', ['-a', '--from0', '--ignore-missing-args', '--files-from=-', './', `${dest}/`], {
    cwd: repoRoot,
    input: files.stdout,
  });
  cpSync(join(repoRoot, '.git'), join(dest, '.git'), { recursive: true });
  symlinkSync(join(repoRoot, 'node_modules'), join(dest, 'node_modules'));
}
