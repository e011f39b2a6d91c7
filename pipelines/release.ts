import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { execa } from 'execa';
import { z } from 'zod';

/**
 * Releases: each component bundled into one ESM file, plus the native addons it cannot bundle,
 * in `<outDir>/<version>/`. A release runs with plain `node` and no access to the source tree,
 * and never changes once written, so a rollback redeploys exactly what ran before.
 */

/**
 * Packages with a compiled addon: esbuild cannot bundle a `.node` file loaded through
 * `bindings`, so these stay external and are copied whole, with their runtime dependencies.
 */
export const nativePackages = ['better-sqlite3', 'pkcs11js'] as const;

/** Dependencies needed only to compile or fetch an addon, never at run time. */
const installOnly = new Set(['prebuild-install', 'node-gyp', 'node-addon-api', 'nan']);

/**
 * Gives the bundle the CommonJS globals that ESM lacks, for the CJS dependencies inside it.
 * Constant text, so that one commit always builds to the same bytes.
 */
const banner = [
  "import { createRequire as __bgcaCreateRequire } from 'node:module';",
  "import { fileURLToPath as __bgcaFileURLToPath } from 'node:url';",
  "import { dirname as __bgcaDirname } from 'node:path';",
  'const require = __bgcaCreateRequire(import.meta.url);',
  'const __filename = __bgcaFileURLToPath(import.meta.url);',
  'const __dirname = __bgcaDirname(__filename);',
].join('\n');

/** `release.json`, the record each release directory carries. */
export const releaseInfoSchema = z.looseObject({
  version: z.string().min(1),
  commit: z.string().min(1),
  dirty: z.boolean(),
  builtAt: z.iso.datetime(),
  /** The addons are built for this Node ABI; another Node major cannot load them. */
  node: z.string(),
  modulesAbi: z.string(),
  platform: z.string(),
  arch: z.string(),
  components: z.array(z.string().min(1)),
  packages: z.array(z.strictObject({ name: z.string(), version: z.string() })),
  /** sha256 over every file but release.json: what "same release" means. */
  contentHash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ReleaseInfo = z.output<typeof releaseInfoSchema>;

export interface BuildReleaseOptions {
  /** Where package.json, components/ and node_modules/ are. */
  readonly repoRoot: string;
  /** `<stateDir>/releases`. */
  readonly outDir: string;
  /** @default every folder of components/ with a main.ts */
  readonly components?: readonly string[];
}

export interface BuiltRelease {
  readonly version: string;
  readonly dir: string;
  readonly info: ReleaseInfo;
  /** False when the same release was there already and nothing was written. */
  readonly built: boolean;
  readonly durationMs: number;
}

/** Raised for a release that cannot be built or read; the message is one line. */
export class ReleaseError extends Error {
  override name = 'ReleaseError';
}

/**
 * Builds the release of the working tree at `repoRoot` into `<outDir>/<version>/`, version =
 * package version + `+` + short commit (+ `.dirty` with uncommitted changes). An existing
 * release with the same content is kept as is; one with other content is refused, except a
 * `.dirty` build, which is replaced.
 */
export async function buildRelease(o: BuildReleaseOptions): Promise<BuiltRelease> {
  const started = performance.now();
  const { version, commit, dirty } = await versionOf(o.repoRoot);
  const components = o.components ?? findComponents(o.repoRoot);
  if (components.length === 0) {
    throw new ReleaseError(`no components/*/main.ts under ${o.repoRoot}`);
  }

  mkdirSync(o.outDir, { recursive: true });
  const staging = join(o.outDir, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const imported = await bundle(o.repoRoot, components, join(staging, 'components'));
    const packages = copyNativePackages(o.repoRoot, imported, join(staging, 'node_modules'));
    await checkSyntax(staging, components);

    const info: ReleaseInfo = {
      version,
      commit,
      dirty,
      builtAt: new Date().toISOString(),
      node: process.version,
      modulesAbi: process.versions.modules,
      platform: process.platform,
      arch: process.arch,
      components: [...components],
      packages,
      contentHash: hashTree(staging),
    };
    writeFileSync(join(staging, 'release.json'), JSON.stringify(info, null, 2) + '\n');
    makeReadOnly(staging);

    const dir = join(o.outDir, version);
    const built = install(staging, dir, info);
    const kept = built ? info : readRelease(dir);
    return { version, dir, info: kept, built, durationMs: Math.round(performance.now() - started) };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Moves a finished staging directory into place, or decides it is not needed. */
function install(staging: string, dir: string, info: ReleaseInfo): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (!existsSync(dir)) {
      try {
        renameSync(staging, dir);
        return true;
      } catch (err) {
        // Another build of the same version won the race; compare with what it wrote.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
      }
    }

    // Hash what is on disk, not what its release.json claims: a file changed by hand counts.
    const existing = existsSync(join(dir, 'release.json')) ? hashTree(dir) : null;
    if (existing === info.contentHash) return false;

    if (!info.dirty) {
      throw new ReleaseError(
        `release ${info.version} exists in ${dir} with different content (contentHash ${existing ?? 'unreadable'}, built now ${info.contentHash}); releases are immutable: commit the change to get a new version`,
      );
    }

    // A .dirty version names a working tree, not a commit: the newest build replaces it.
    const old = join(dirname(dir), `.replaced-${process.pid}-${randomBytes(4).toString('hex')}`);
    renameSync(dir, old);
    rmSync(old, { recursive: true, force: true });
  }
  throw new ReleaseError(`release ${info.version} in ${dir} keeps changing under this build`);
}

async function versionOf(
  repoRoot: string,
): Promise<{ version: string; commit: string; dirty: boolean }> {
  const pkgFile = join(repoRoot, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version?: string };
  if (!pkg.version) throw new ReleaseError(`${pkgFile} has no version`);

  let commit: string;
  let status: string;
  try {
    const git = async (...args: string[]) =>
      (await execa('git', args, { cwd: repoRoot })).stdout.trim();
    commit = await git('rev-parse', '--short', 'HEAD');
    // Untracked files count: a new source file changes what gets bundled.
    status = await git('status', '--porcelain');
  } catch (err) {
    const message = (err as { shortMessage?: string }).shortMessage ?? (err as Error).message;
    const reason = message.split('\n')[0];
    throw new ReleaseError(`cannot read the git commit of ${repoRoot}: ${reason}`);
  }

  const dirty = status !== '';
  return { version: `${pkg.version}+${commit}${dirty ? '.dirty' : ''}`, commit, dirty };
}

/** The components with an entry point: folders of components/ holding a main.ts. */
export function findComponents(repoRoot: string): string[] {
  const dir = join(repoRoot, 'components');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'main.ts')))
    .map((d) => d.name)
    .sort();
}

/** The migration job a color runs before its components start: this release's migrations. */
const migrationJobSource = 'components/sa/migrate.ts';

/** Where a release keeps its migration job, relative to the release folder. */
export const migrationJobFile = join('components', 'migrate.mjs');

function hasMigrationJob(repoRoot: string): boolean {
  return existsSync(join(repoRoot, migrationJobSource));
}

/** Bundles every component and the migration job; returns the bare packages they still import. */
async function bundle(
  repoRoot: string,
  components: readonly string[],
  outdir: string,
): Promise<Set<string>> {
  let result: esbuild.BuildResult<{ metafile: true }>;
  try {
    result = await esbuild.build({
      absWorkingDir: repoRoot,
      entryPoints: [
        ...components.map((c) => ({ in: `components/${c}/main.ts`, out: c })),
        ...(hasMigrationJob(repoRoot) ? [{ in: migrationJobSource, out: 'migrate' }] : []),
      ],
      outdir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: [...nativePackages],
      banner: { js: banner },
      // Run with --enable-source-maps for stack traces that name source files.
      sourcemap: 'linked',
      sourcesContent: false,
      metafile: true,
      logLevel: 'silent',
    });
  } catch (err) {
    const first = (err as esbuild.BuildFailure).errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}: ` : '';
    throw new ReleaseError(`bundling failed: ${where}${first?.text ?? (err as Error).message}`);
  }

  // Map sources are relative to the output folder; make them name repository files instead,
  // so that where the release is built does not change its content.
  for (const c of [...components, ...(hasMigrationJob(repoRoot) ? ['migrate'] : [])]) {
    const mapFile = join(outdir, `${c}.mjs.map`);
    const map = JSON.parse(readFileSync(mapFile, 'utf8')) as { sources: string[] };
    map.sources = map.sources.map((s) => `source:${relative(repoRoot, resolve(outdir, s))}`);
    writeFileSync(mapFile, JSON.stringify(map));
  }

  const builtins = new Set(builtinModules);
  const imported = new Set<string>();
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    for (const imp of output.imports) {
      if (!imp.external || imp.path.startsWith('node:') || builtins.has(imp.path)) continue;
      const name = packageName(imp.path);
      const native = (nativePackages as readonly string[]).includes(name);
      // esbuild leaves a require() it cannot resolve external only inside try/catch: an
      // optional dependency (pg-native) whose absence the caller handles.
      if (!native && imp.kind === 'require-call') continue;
      if (!native) {
        throw new ReleaseError(
          `${basename(file)} imports ${imp.path}, which esbuild left out of the bundle and the release does not ship`,
        );
      }
      imported.add(name);
    }
  }
  return imported;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/**
 * Copies the native packages (the installed ones, and any a bundle imports must be installed)
 * with their runtime dependencies into `dest`, flat. Returns what was copied.
 */
function copyNativePackages(
  repoRoot: string,
  imported: ReadonlySet<string>,
  dest: string,
): { name: string; version: string }[] {
  const found = new Map<string, string>();
  const queue: Array<{ name: string; from: string }> = [];
  for (const name of nativePackages) {
    const dir = resolvePackage(name, join(repoRoot, 'node_modules'));
    if (dir) queue.push({ name, from: dir });
    else if (imported.has(name)) {
      throw new ReleaseError(`a component imports ${name}, which is not installed under ${repoRoot}`);
    }
  }

  while (queue.length > 0) {
    const { name, from } = queue.shift()!;
    if (found.has(name)) continue;
    found.set(name, from);
    const pkg = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8'));
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      if (installOnly.has(dep)) continue;
      const dir =
        resolvePackage(dep, join(from, 'node_modules')) ??
        resolvePackage(dep, join(repoRoot, 'node_modules'));
      if (!dir) throw new ReleaseError(`${name} needs ${dep} at run time, which is not installed`);
      queue.push({ name: dep, from: dir });
    }
  }

  const copied: { name: string; version: string }[] = [];
  for (const [name, from] of [...found].sort(([a], [b]) => a.localeCompare(b))) {
    copyPackage(from, join(dest, name));
    const { version } = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8'));
    copied.push({ name, version });
  }
  return copied;
}

function resolvePackage(name: string, nodeModules: string): string | null {
  const dir = join(nodeModules, name);
  return existsSync(join(dir, 'package.json')) ? dir : null;
}

/** Top-level folders of an addon package needed only to compile it. */
const buildOnlyDirs = new Set(['src', 'deps', 'include', 'includes', 'build', 'test', 'tests']);

function copyPackage(from: string, to: string): void {
  const native = existsSync(join(from, 'binding.gyp'));
  cpSync(from, to, {
    recursive: true,
    dereference: true,
    filter: (src) => {
      const rel = relative(from, src);
      if (rel === '') return true;
      const top = rel.split('/')[0];
      if (top === 'node_modules') return false;
      return !(native && (buildOnlyDirs.has(top) || rel === 'binding.gyp'));
    },
  });

  // Of an addon's build output, only the compiled modules load at run time.
  const release = join(from, 'build', 'Release');
  if (!native || !existsSync(release)) return;
  mkdirSync(join(to, 'build', 'Release'), { recursive: true });
  for (const f of readdirSync(release)) {
    if (f.endsWith('.node') && !f.startsWith('test_')) {
      cpSync(join(release, f), join(to, 'build', 'Release', f), { dereference: true });
    }
  }
}

/** Parses each bundle with node: a name the banner declares twice fails here, not at deploy. */
async function checkSyntax(staging: string, components: readonly string[]): Promise<void> {
  await Promise.all(
    components.map(async (c) => {
      const file = join(staging, 'components', `${c}.mjs`);
      const run = await execa(process.execPath, ['--check', file], { reject: false });
      if (run.exitCode !== 0) {
        const lines = run.stderr.split('\n');
        const line = lines.find((l) => /Error/.test(l)) ?? lines[0];
        throw new ReleaseError(`bundle of ${c} does not parse: ${line}`);
      }
    }),
  );
}

function walk(dir: string, base = dir): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...walk(path, base));
    else files.push(relative(base, path));
  }
  return files.sort();
}

function hashTree(dir: string): string {
  const hash = createHash('sha256');
  for (const file of walk(dir)) {
    if (file === 'release.json') continue;
    const content = createHash('sha256').update(readFileSync(join(dir, file))).digest('hex');
    hash.update(`${file}\0${content}\n`);
  }
  return hash.digest('hex');
}

function makeReadOnly(dir: string): void {
  // Files only: directories stay writable so that a replaced .dirty build can be removed.
  for (const file of walk(dir)) chmodSync(join(dir, file), 0o444);
}

/** Reads and validates a release directory's release.json. */
export function readRelease(releaseDir: string): ReleaseInfo {
  const file = join(releaseDir, 'release.json');
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ReleaseError(`release ${file}: cannot read: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = releaseInfoSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ReleaseError(`release ${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** A release on disk: its directory and record. */
export interface Release {
  readonly dir: string;
  readonly info: ReleaseInfo;
}

/** The releases in `outDir`, oldest build first; folders with no valid release.json are skipped. */
export function listReleases(outDir: string): Release[] {
  if (!existsSync(outDir)) return [];
  const releases: Release[] = [];
  for (const entry of readdirSync(outDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = join(outDir, entry.name);
    try {
      releases.push({ dir, info: readRelease(dir) });
    } catch {
      // A partly removed or foreign folder is not a release.
    }
  }
  return releases.sort((a, b) => a.info.builtAt.localeCompare(b.info.builtAt));
}

/** The file `node` runs for `component` of a release: `<releaseDir>/components/<name>.mjs`. */
export function releaseEntry(releaseDir: string, component: string): string {
  const info = readRelease(releaseDir);
  if (!info.components.includes(component)) {
    throw new ReleaseError(
      `release ${info.version} has no component ${component}; it has ${info.components.join(', ')}`,
    );
  }

  const file = join(releaseDir, 'components', `${component}.mjs`);
  if (!statSync(file, { throwIfNoEntry: false })?.isFile()) {
    throw new ReleaseError(`release ${info.version} lacks ${file}`);
  }
  return file;
}
