import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { repoRoot } from '../../pipelines/local/processes.js';
import { buildRelease } from '../../pipelines/release.js';
import { layout, migrationArgs } from '../../stacks/model.js';

// images/Dockerfile, read the way the builder reads it (no engine runs here), and the two
// scripts it puts in the image, run against a real release.
const run = promisify(execFile);

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Splits a Dockerfile into instructions: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending !== '' && line.startsWith('#')) return;
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    out.push({ keyword: m[1].toUpperCase(), args: m[2], line: start });
  });
  return out;
}

function stagesOf(instructions: Instruction[]): { globalArgs: Map<string, string>; stages: Stage[] } {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      stages.push({ from: m[1], name: m[2], instructions: [] });
    } else if (stages.length === 0 && ins.keyword === 'ARG') {
      const [name, value = ''] = ins.args.split('=');
      globalArgs.set(name, value.replace(/^"|"$/g, ''));
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

const dockerfile = parseDockerfile(readFileSync(join(repoRoot, 'images', 'Dockerfile'), 'utf8'));
const { globalArgs, stages } = stagesOf(dockerfile);
const final = stages[stages.length - 1];
const resolveArgs = (value: string) => value.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs.get(name) ?? '');
const inStage = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

t.test('has a release stage and a runtime stage, both on Node 20 slim', async (t) => {
  t.ok(stages.length >= 2, `stages: ${stages.map((s) => s.name).join(', ')}`);
  for (const stage of stages) {
    t.match(resolveArgs(stage.from), /^node:20(\.\d+)*-[a-z]+-slim$/, `stage ${stage.name} starts from ${stage.from}`);
  }
  t.equal(stages[0].name, 'release');
  t.equal(final.name, 'runtime');
});

t.test('checks in the release stage that the PKCS#11 addon loads for this Node', async (t) => {
  const runs = inStage(stages[0], 'RUN').map((i) => i.args);
  t.ok(runs.some((r) => /check-release\.mjs \/opt\/bluegreen-ca .*\bpkcs11js\b/.test(r)), runs.join('\n'));
});

t.test('copies the whole checked release, addons included, into the runtime stage', async (t) => {
  const copies = inStage(final, 'COPY').map((i) => i.args);
  t.ok(copies.includes('--from=release --chown=root:root /opt/bluegreen-ca /opt/bluegreen-ca'), copies.join('\n'));
});

t.test('copies only files that exist from the build context', async (t) => {
  for (const stage of stages) {
    for (const copy of inStage(stage, 'COPY').filter((i) => !i.args.includes('--from='))) {
      const [source] = copy.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      // The release itself comes from the build job's artifacts, not from the repository.
      if (source.startsWith('${RELEASE_DIR}')) continue;
      t.ok(existsSync(join(repoRoot, source)), `line ${copy.line}: ${source} exists`);
    }
  }
});

t.test('runs as a non-root user', async (t) => {
  const users = inStage(final, 'USER');
  t.equal(users.length, 1);
  const [user, group] = users[0].args.split(':');
  t.not(user, 'root');
  t.ok(/^\d+$/.test(user) && Number(user) > 0, `numeric uid ${user}`);
  t.ok(group === undefined || (/^\d+$/.test(group) && Number(group) > 0), `gid ${group}`);
});

t.test('takes the component as a build argument and hands it to the entrypoint', async (t) => {
  t.ok(inStage(final, 'ARG').some((i) => /^COMPONENT(=|$)/.test(i.args)));
  t.ok(inStage(final, 'ENV').some((i) => /BLUEGREEN_COMPONENT=\$\{COMPONENT\}/.test(i.args)));
  const entry = inStage(final, 'ENTRYPOINT');
  t.equal(entry.length, 1);
  t.same(JSON.parse(entry[0].args), ['/usr/local/bin/bluegreen-ca'], 'exec form, so signals reach the component');
  t.ok(inStage(final, 'COPY').some((i) => i.args === 'images/entrypoint.sh /usr/local/bin/bluegreen-ca'));
});

t.test('the scripts the image runs, against a built release', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bluegreen-image-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const built = await buildRelease({ repoRoot, outDir: dir });
  const entrypoint = join(repoRoot, 'images', 'entrypoint.sh');
  const checker = join(repoRoot, 'images', 'check-release.mjs');
  const sh = (env: Record<string, string>, ...args: string[]) =>
    run('sh', [entrypoint, ...args], { env: { ...process.env, BLUEGREEN_APP: built.dir, ...env } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );

  t.test('the entrypoint runs the component its first argument names', async (t) => {
    // Without a config every component stops at once and says which one it is.
    const r = await sh({}, 'ra');
    t.equal(r.code, 2);
    t.match(r.stderr, /^ra: missing --config/);
  });

  t.test('the entrypoint falls back to the COMPONENT build argument', async (t) => {
    const r = await sh({ BLUEGREEN_COMPONENT: 'sa' }, '--config', join(dir, 'absent.json'));
    t.equal(r.code, 2);
    t.match(r.stderr, /^sa: config .*absent\.json: cannot read/);
  });

  t.test('the entrypoint rejects a missing or unknown component', async (t) => {
    const none = await sh({});
    t.equal(none.code, 64);
    t.match(none.stderr, /name the component to run, one of: ca ct-log/);
    const unknown = await sh({}, 'nope');
    t.equal(unknown.code, 64);
    t.match(unknown.stderr, /no component nope/);
  });

  t.test('the entrypoint runs the migration job with the arguments the Kubernetes Job gives it', async (t) => {
    // The Job's arguments, with the SA config it mounts replaced by one naming a SQLite file.
    const file = join(dir, 'sa.json');
    const url = `sqlite:${join(dir, 'migrated.sqlite')}`;
    writeFileSync(file, JSON.stringify({ adminListen: '0.0.0.0:8015', listen: '0.0.0.0:9095', tls: { certFile: 'a', keyFile: 'b', caFile: 'c' }, db: { url } }));
    const args = migrationArgs().map((a) => (a === `${layout.config}/sa.json` ? file : a));
    t.equal(args[0], 'migrate');
    const r = await sh({}, ...args);
    t.equal(r.code, 0, r.stderr);
    const again = await run('sh', [entrypoint, ...args], { env: { ...process.env, BLUEGREEN_APP: built.dir } });
    t.match(again.stderr, `migrate: ${url} is up to date`, 'the first run applied every migration');
  });

  t.test('the release check accepts the release and loads its addons', async (t) => {
    const { stdout } = await run(process.execPath, [checker, built.dir, 'pkcs11js', 'better-sqlite3']);
    t.match(stdout, `release ${built.version} runs on Node ${process.version}`);
  });

  t.test('the release check rejects a release built for another Node ABI', async (t) => {
    const other = join(dir, 'other-abi');
    cpSync(built.dir, other, { recursive: true });
    const info = join(other, 'release.json');
    chmodSync(info, 0o644);
    writeFileSync(info, JSON.stringify({ ...JSON.parse(readFileSync(info, 'utf8')), modulesAbi: '1' }));
    const err = await run(process.execPath, [checker, other, 'pkcs11js']).catch((e: { code: number; stderr: string }) => e);
    t.match(err, { code: 1, stderr: /built for modulesAbi 1/ });
  });

  t.test('the release check rejects a release without the PKCS#11 addon', async (t) => {
    const other = join(dir, 'no-addon');
    cpSync(built.dir, other, { recursive: true });
    rmSync(join(other, 'node_modules', 'pkcs11js'), { recursive: true, force: true });
    const err = await run(process.execPath, [checker, other, 'pkcs11js']).catch((e: { code: number; stderr: string }) => e);
    t.match(err, { code: 1, stderr: /pkcs11js does not load/ });
  });
});
