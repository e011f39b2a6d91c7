import { spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t from 'tap';
import { ensureIdentity } from '../components/lib/pki.js';
import { openDatabase } from '../components/sa/db.js';
import { migrationState } from '../components/sa/migrations.js';
import { freePort } from './local/ports.js';
import { buildRelease, listReleases, migrationJobFile, readRelease, releaseEntry } from './release.js';

/**
 * Releases built from this repository and from a throw-away git repository: a bundled
 * component runs from a copy of its release with plain node, far from the source tree; a
 * release never changes once written.
 */

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'release-test-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('a bundled SA runs from a copy of its release with plain node', async (t) => {
  const outDir = join(tmp, 'state', 'releases');
  const release = await buildRelease({ repoRoot, outDir });
  t.ok(release.built);
  t.match(release.version, /^\d+\.\d+\.\d+\+[0-9a-f]{7,}(\.dirty)?$/);
  t.comment(`built ${release.version} in ${release.durationMs} ms`);
  t.ok(release.info.components.includes('sa'));
  const shipped = release.info.packages.map((p) => p.name);
  t.match(shipped, ['better-sqlite3', 'bindings', 'file-uri-to-path']);
  t.same(listReleases(outDir).map((r) => r.info.version), [release.version]);

  // Elsewhere, with no node_modules on the way up, as a deployment would have it.
  const copy = join(tmp, 'elsewhere', release.version);
  cpSync(release.dir, copy, { recursive: true });
  const work = join(tmp, 'elsewhere', 'run');
  mkdirSync(work);

  const tls = await ensureIdentity(join(work, 'pki'), 'sa');
  const dbFile = join(work, 'sa.sqlite');
  const envWithoutLoaders = { ...process.env };
  delete envWithoutLoaders.NODE_OPTIONS;
  delete envWithoutLoaders.NODE_PATH;

  // The release's own migration job creates the schema, as a color's deploy runs it.
  const job = await execa(process.execPath, [join(copy, migrationJobFile), '--db', `sqlite:${dbFile}`], {
    cwd: work,
    env: envWithoutLoaders,
    reject: false,
  });
  t.equal(job.exitCode, 0, `the migration job runs with plain node: ${job.stderr}`);
  t.match(job.stderr, /applied 0001/);
  const db = openDatabase(`sqlite:${dbFile}`);
  t.same(await migrationState(db).then((m) => m.pending), [], 'and leaves nothing pending');
  await db.destroy();
  const again = await execa(process.execPath, [join(copy, migrationJobFile), '--db', `sqlite:${dbFile}`], {
    cwd: work,
    env: envWithoutLoaders,
  });
  t.match(again.stderr, /is up to date/, 'a second run changes nothing');
  const adminPort = await freePort();
  const configFile = join(work, 'sa.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      listen: `127.0.0.1:${await freePort()}`,
      adminListen: `127.0.0.1:${adminPort}`,
      tls,
      log: { level: 'warn' },
      db: { url: `sqlite:${dbFile}` },
    }),
  );

  const entry = releaseEntry(copy, 'sa');
  t.equal(entry, join(copy, 'components', 'sa.mjs'));
  const sa = spawn(process.execPath, [entry, '--config', configFile], {
    cwd: work,
    env: envWithoutLoaders,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  sa.stderr!.on('data', (c) => (stderr += c));
  const exited = new Promise<number | string>((r) => sa.once('exit', (c, s) => r(c ?? s!)));
  t.teardown(() => void sa.kill('SIGKILL'));

  let status = 0;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && sa.exitCode === null) {
    try {
      status = (await fetch(`http://127.0.0.1:${adminPort}/health`)).status;
      if (status === 200) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(status, 200, `the SA from the release is healthy ${stderr}`);

  sa.kill('SIGTERM');
  t.equal(await exited, 0, 'and stops cleanly on SIGTERM');
});

/** A git repository with one component, committed, so that its version is clean. */
async function tinyRepo(): Promise<string> {
  const repo = mkdtempSync(join(tmp, 'repo-'));
  const pkg = { name: 'tiny', version: '1.2.3', type: 'module' };
  writeFileSync(join(repo, 'package.json'), JSON.stringify(pkg));
  mkdirSync(join(repo, 'components', 'hello'), { recursive: true });
  writeFileSync(join(repo, 'components', 'hello', 'main.ts'), "console.log('hello');\n");
  mkdirSync(join(repo, 'components', 'lib'));
  writeFileSync(join(repo, 'components', 'lib', 'util.ts'), 'export const x = 1;\n');
  const identity = ['-c', 'user.name=test', '-c', 'user.email=test@example.test'];
  const git = (...args: string[]) => execa('git', [...identity, ...args], { cwd: repo });
  await git('init', '-q');
  await git('add', '.');
  await git('commit', '-q', '-m', 'tiny');
  return repo;
}

t.test('rebuilding a version that exists with the same content is a no-op', async (t) => {
  const repo = await tinyRepo();
  const outDir = join(tmp, 'tiny-noop');
  const first = await buildRelease({ repoRoot: repo, outDir });
  t.ok(first.built);
  t.match(first.version, /^1\.2\.3\+[0-9a-f]+$/);
  t.same(first.info.components, ['hello'], 'only folders with a main.ts');
  t.same(first.info.packages, []);

  const again = await buildRelease({ repoRoot: repo, outDir });
  t.equal(again.built, false);
  t.equal(again.info.builtAt, first.info.builtAt, 'release.json is untouched');
  t.equal(readRelease(again.dir).contentHash, first.info.contentHash);

  const run = await execa(process.execPath, [releaseEntry(again.dir, 'hello')]);
  t.equal(run.stdout, 'hello');
});

t.test('refuses to overwrite a committed version whose content differs', async (t) => {
  const repo = await tinyRepo();
  const outDir = join(tmp, 'tiny-refuse');
  const first = await buildRelease({ repoRoot: repo, outDir });
  const bundle = join(first.dir, 'components', 'hello.mjs');
  chmodSync(bundle, 0o644);
  writeFileSync(bundle, readFileSync(bundle, 'utf8') + '// changed\n');

  await t.rejects(buildRelease({ repoRoot: repo, outDir }), {
    name: 'ReleaseError',
    message: new RegExp(`^release ${first.version.replace('+', '\\+')} exists in .* with different content`),
  });
  t.match(readFileSync(bundle, 'utf8'), /\/\/ changed\n$/, 'the existing release is left alone');
});

t.test('a .dirty version is rebuilt when the working tree changes', async (t) => {
  const repo = await tinyRepo();
  const outDir = join(tmp, 'tiny-dirty');
  writeFileSync(join(repo, 'components', 'hello', 'main.ts'), "console.log('one');\n");
  const one = await buildRelease({ repoRoot: repo, outDir });
  t.match(one.version, /^1\.2\.3\+[0-9a-f]+\.dirty$/);

  writeFileSync(join(repo, 'components', 'hello', 'main.ts'), "console.log('two');\n");
  const two = await buildRelease({ repoRoot: repo, outDir });
  t.equal(two.version, one.version);
  t.ok(two.built, 'replaced');
  t.not(two.info.contentHash, one.info.contentHash);
  t.equal((await execa(process.execPath, [releaseEntry(two.dir, 'hello')])).stdout, 'two');
  t.equal(listReleases(outDir).length, 1);
  t.same(readdirSync(outDir), [two.version], 'no staging or replaced folders left');
});

t.test('releaseEntry rejects a component the release does not have', async (t) => {
  const repo = await tinyRepo();
  const { dir } = await buildRelease({ repoRoot: repo, outDir: join(tmp, 'tiny-entry') });
  t.throws(() => releaseEntry(dir, 'wfe'), /^release 1\.2\.3\+\w+ has no component wfe; it has hello$/);
  t.throws(() => releaseEntry(join(tmp, 'nowhere'), 'wfe'), /^release .*release\.json: cannot read/);
});
