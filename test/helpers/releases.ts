import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildRelease, type BuiltRelease } from '../../pipelines/release.js';

/** The migration the next release adds: a nullable column where every issuance writes, and a table. */
export const nextMigration = {
  name: '0099_rollback-probe',
  table: 'rollback_probe',
  column: 'profile_hint',
} as const;

const migrationSource = `
  // Added by the rollback test: the older release must keep working on this schema.
  '${nextMigration.name}': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('certificates').addColumn('${nextMigration.column}', 'text').execute();
      await db.schema
        .createTable('${nextMigration.table}')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .execute();
    },
  },
`;

/**
 * Builds a release B that is this checkout's HEAD plus one committed expand-only migration, the
 * way the next version of the CA would arrive: a git worktree of HEAD, the migration added to
 * components/sa/migrations.ts, committed, bundled into `outDir`. The worktree is removed after.
 */
export async function buildNextRelease(repoRoot: string, outDir: string): Promise<BuiltRelease> {
  const dir = join(mkdtempSync(join(tmpdir(), 'next-release-')), 'tree');
  const identity = ['-c', 'user.name=release test', '-c', 'user.email=release@bluegreen-ca.test'];
  const git = (cwd: string, ...args: string[]) => execa('git', [...identity, ...args], { cwd });

  await git(repoRoot, 'worktree', 'add', '--detach', dir, 'HEAD');
  try {
    // The bundler resolves packages from the worktree; it shares the checkout's installed ones.
    symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'), 'dir');

    const file = join(dir, 'components', 'sa', 'migrations.ts');
    const opening = 'export const migrations: Readonly<Record<string, Migration>> = {\n';
    const text = readFileSync(file, 'utf8');
    if (!text.includes(opening)) throw new Error(`cannot find the migrations list in ${file}`);
    writeFileSync(file, text.replace(opening, opening + migrationSource));

    await git(dir, 'add', 'components/sa/migrations.ts');
    await git(dir, 'commit', '-q', '-m', `Add migration ${nextMigration.name}`);
    return await buildRelease({ repoRoot: dir, outDir });
  } finally {
    await git(repoRoot, 'worktree', 'remove', '--force', dir).catch(() => undefined);
    rmSync(join(dir, '..'), { recursive: true, force: true });
    await git(repoRoot, 'worktree', 'prune').catch(() => undefined);
  }
}
