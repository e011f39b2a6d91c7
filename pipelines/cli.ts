import { Command, InvalidArgumentError } from 'commander';
import { join, resolve } from 'node:path';
import type { SmokeStep } from '../smoke-tests/steps.js';
import { deploy } from './deploy.js';
import { flipColor } from './flip-color.js';
import { PipelineError } from './operation.js';
import { buildRelease } from './release.js';
import { retireIssuer, rotateIssuer } from './rotate-ca-key.js';
import { rollback } from './rollback.js';
import { smokeTest } from './smoke.js';
import { status } from './status.js';
import { teardown } from './teardown.js';
import { LocalTarget } from './targets/local.js';
import type { Color, PipelineTarget } from './targets/types.js';
import { DeploymentConfigError, parseTarget } from '../stacks/config.js';
import { configFileFrom, exampleConfigFile, readDeploymentConfig } from '../stacks/settings.js';
import { repoRoot } from './local/processes.js';
import { initSoftHsmToken } from '../components/keys/softhsm.js';
import { ensureSharedState, sharedTokenLabel, type SharedKeyStore } from './local/shared-state.js';
import { failAndExit, step } from './progress.js';

const program = new Command('bluegreen-ca')
  .description('Runs an internal ACME CA as blue and green environments')
  .option('--state <dir>', 'where shared state lives', join(repoRoot, '.state'))
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode);
  });

function keyStoreKind(value: string): SharedKeyStore {
  if (value !== 'file' && value !== 'softhsm') {
    throw new InvalidArgumentError(`expected file or softhsm, got ${value}`);
  }
  return value;
}

const keysHelp =
  'where new CA keys go: file (PKCS#8 files) or softhsm (a SoftHSM2 token); default file';

function domains(value: string): string[] {
  const list = value.split(',').map((d) => d.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError('expected a comma-separated list of domains');
  return list;
}

program
  .command('init')
  .description('create the shared state: internal PKI, CA keys and hierarchy, nonce key, database')
  .option('--keys <store>', keysHelp, keyStoreKind)
  .action(async (opts: { keys?: SharedKeyStore }) => {
    const state = await step('shared state', () =>
      ensureSharedState({ stateDir: program.opts().state, keyStore: opts.keys }),
    );
    process.stdout.write(JSON.stringify({ stateDir: state.stateDir, trustBundle: state.trustBundle }) + '\n');
  });

function target(opts: { domains: string[]; dnsResolver?: string }): LocalTarget {
  return new LocalTarget({
    stateDir: resolve(program.opts().state),
    settings: { allowedDomains: opts.domains, dnsResolver: opts.dnsResolver },
  });
}

type TargetName = 'local' | 'kubernetes' | 'openstack';

function targetName(value: string): TargetName {
  if (value === 'local') return value;
  try {
    return parseTarget(value);
  } catch {
    throw new InvalidArgumentError(`expected local, kubernetes or openstack, got ${value}`);
  }
}

/**
 * The target the verb runs against: local, or a cluster or cloud described by --config. The
 * cloud targets load cdktf and its providers, which the local verbs never pay for.
 */
async function pipelineTarget(opts: TargetOpts): Promise<PipelineTarget> {
  if (opts.target === 'local') return target(opts);
  const name = parseTarget(opts.target);
  const configFile = configFileFrom(opts.config);
  if (!configFile) {
    throw new PipelineError(
      `target ${opts.target} needs a deployment config`,
      'pass --config <file> or create deployment.yaml from stacks/deployment.example.yaml',
    );
  }
  // Cloud verbs keep their records apart from the local target's.
  const stateDir = join(resolve(program.opts().state), opts.target);
  const o = { configFile, stateDir };
  if (name === 'kubernetes') return new (await import('./targets/kubernetes.js')).KubernetesTarget(o);
  return new (await import('./targets/openstack.js')).OpenStackTarget(o);
}

function color(value: string): Color {
  if (value !== 'blue' && value !== 'green') {
    throw new InvalidArgumentError(`expected blue or green, got ${value}`);
  }
  return value;
}

function printSmoke(record: { passed: boolean; steps: readonly SmokeStep[] }): void {
  for (const s of record.steps) {
    const mark = s.status === 'passed' ? 'ok  ' : s.status === 'skipped' ? 'skip' : 'FAIL';
    process.stderr.write(`  ${mark} ${s.name} (${s.ms} ms)${s.detail ? `: ${s.detail}` : ''}\n`);
  }
}

const targetOptions = (c: Command) =>
  c
    .option('--domains <list>', 'domains certificates may be issued for', domains, ['test'])
    .option('--dns-resolver <host:port>', 'DNS server the VA asks for dns-01 TXT records')
    .option(
      '--target <name>',
      'where the CA runs: local, kubernetes or openstack (default: $BLUEGREEN_TARGET, else local)',
      targetName,
      // Checked when used, so a bad $BLUEGREEN_TARGET fails as one line, not at start-up.
      (process.env.BLUEGREEN_TARGET || 'local') as TargetName,
    )
    .option('--config <file>', 'deployment config of a cloud target (default: $BLUEGREEN_DEPLOYMENT_CONFIG, else deployment.yaml)');

interface TargetOpts {
  domains: string[];
  dnsResolver?: string;
  target: TargetName;
  config?: string;
}

function localOnly(name: string): void {
  if (name !== 'local') {
    throw new PipelineError(`target ${name} is not deployable from this command yet`, 'use --target local');
  }
}

targetOptions(
  program
    .command('start')
    .description('demo on this machine: deploy, smoke-test and flip a color, then stay up until Ctrl-C')
    .option('--keys <store>', keysHelp, keyStoreKind),
).action(async (opts: { domains: string[]; dnsResolver?: string; keys?: SharedKeyStore; target: string }) => {
  localOnly(opts.target);
  const stateDir = resolve(program.opts().state);
  await step('shared state', () => ensureSharedState({ stateDir, keyStore: opts.keys }));
  const t = target(opts);
  const deployed = await deploy({ target: t });
  const record = await step(`smoke ${deployed.color}`, () => smokeTest({ target: t, color: deployed.color }));
  printSmoke(record);
  if (!record.passed) throw new PipelineError(`${deployed.color} failed its smoke test`, 'see the color logs');
  await flipColor({ target: t, to: deployed.color });
  const s = await status({ target: t });

  process.stderr.write(
    [
      '',
      `ACME directory: ${s.public.acme}`,
      `OCSP:           ${s.public.ocsp.join(' ')}`,
      `CRL:            ${s.public.crl.join(' ')}`,
      `trust bundle:   ${s.public.trustBundle}`,
      `allowed:        ${opts.domains.join(', ')} (names under them resolve to 127.0.0.1)`,
      `http-01 port:   ${s.validation.httpPort}, tls-alpn-01 port: ${s.validation.tlsAlpnPort}`,
      `active color:   ${s.active} (release ${deployed.release})`,
      'Ctrl-C stops the CA.',
      '',
    ].join('\n'),
  );

  const stop = async () => {
    for (const c of ['blue', 'green'] as const) await t.destroy(c);
    await t.stopLoadBalancer();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
});

targetOptions(
  program
    .command('deploy')
    .description('build (or take) a release and start it in the idle color')
    .option('--color <color>', 'the color to deploy to (default: the idle one)', color)
    .option('--release <version>', 'a built release (default: build this checkout)'),
).action(async (opts: TargetOpts & { color?: Color; release?: string }) => {
  if (opts.target !== 'local' && !opts.release) {
    throw new PipelineError(`deploying to ${opts.target} needs the release to run`, 'pass --release <version> (the image tag CI built)');
  }
  const result = await deploy({ target: await pipelineTarget(opts), color: opts.color, release: opts.release });
  process.stdout.write(JSON.stringify(result) + '\n');
});

targetOptions(
  program
    .command('smoke')
    .description("prove one color through its preview endpoints")
    .option('--color <color>', 'the color to test (default: the idle one when it runs)', color)
    .option('--json', 'print the smoke record as JSON on stdout'),
).action(async (opts: TargetOpts & { color?: Color; json?: boolean }) => {
  const record = await smokeTest({ target: await pipelineTarget(opts), color: opts.color });
  printSmoke(record);
  if (opts.json) process.stdout.write(JSON.stringify(record) + '\n');
  if (!record.passed) {
    throw new PipelineError(`${record.color} failed its smoke test`, 'see the steps above and the color logs');
  }
});

targetOptions(
  program
    .command('flip-color')
    .description('send new traffic to a color that passed its smoke test')
    .option('--to <color>', 'the color to flip to (default: the other one)', color)
    .option('--smoke-window <seconds>', 'how old a passing smoke record may be', Number, 3600),
).action(async (opts: TargetOpts & { to?: Color; smokeWindow: number }) => {
  const result = await flipColor({ target: await pipelineTarget(opts), to: opts.to, smokeWindowSeconds: opts.smokeWindow });
  process.stdout.write(JSON.stringify(result) + '\n');
});

targetOptions(
  program
    .command('teardown')
    .description('stop a color that does not serve; refuses the active color')
    .option('--color <color>', 'the color to remove (default: the inactive one)', color)
    .option('--drain <seconds>', 'how long open connections may finish', Number, 5),
).action(async (opts: TargetOpts & { color?: Color; drain: number }) => {
  const result = await teardown({ target: await pipelineTarget(opts), color: opts.color, drainSeconds: opts.drain });
  process.stdout.write(JSON.stringify(result) + '\n');
});

targetOptions(
  program.command('rollback').description('redeploy the previous release to the idle color, smoke-test it, flip'),
).action(async (opts: TargetOpts) => {
  const result = await rollback({ target: await pipelineTarget(opts) });
  process.stdout.write(JSON.stringify(result) + '\n');
});

targetOptions(
  program
    .command('status')
    .description('what runs where')
    .option('--json', 'print the status as JSON (the contract pipelines read)'),
).action(async (opts: TargetOpts & { json?: boolean }) => {
  const s = await status({ target: await pipelineTarget(opts) });
  if (opts.json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return;
  }
  const line = (c: Color) => {
    const e = s.colors[c] as { state: string; release?: string; smoke?: { passed: boolean } };
    const smoke = e.smoke ? (e.smoke.passed ? 'smoke passed' : 'smoke FAILED') : 'not smoke-tested';
    return `${c}: ${e.state}${e.release ? ` ${e.release}, ${smoke}` : ''}`;
  };
  process.stdout.write(
    [`active: ${s.active ?? 'none'} (previous: ${s.previous ?? 'none'})`, line('blue'), line('green'),
      `acme: ${s.public.acme}`, ...(s.operation ? [`operation: ${JSON.stringify(s.operation)}`] : [])].join('\n') + '\n',
  );
});

program
  .command('synth')
  .description('write the Terraform JSON of a cluster or cloud target to cdktf.out (offline)')
  .option('--target <name>', 'kubernetes or openstack (default: the config\'s target, or $BLUEGREEN_TARGET)')
  .option('--config <file>', 'deployment config (default: $BLUEGREEN_DEPLOYMENT_CONFIG, else deployment.yaml, else the example)')
  .option('--out <dir>', 'where the JSON goes', join(repoRoot, 'cdktf.out'))
  .action(async (opts: { target?: string; config?: string; out: string }) => {
    // An unknown target is refused before any file is read or written.
    const wanted = opts.target ?? (process.env.BLUEGREEN_TARGET || undefined);
    const target = wanted === undefined ? undefined : parseTarget(wanted);
    let file = configFileFrom(opts.config);
    if (!file) {
      file = exampleConfigFile;
      process.stderr.write(`no deployment config given; synthesizing ${file}\n`);
    }
    const config = readDeploymentConfig(file, target ? { target } : {});
    const outdir = resolve(opts.out);
    const { synthesize } = await import('../stacks/app.js');
    const stacks = synthesize({ config, outdir });
    process.stdout.write(JSON.stringify({ target: config.target, outdir, stacks }) + '\n');
  });

program
  .command('build')
  .description('bundle this checkout into an immutable release')
  .action(async () => {
    const built = await step('build release', () =>
      buildRelease({ repoRoot, outDir: join(resolve(program.opts().state), 'releases') }),
    );
    process.stdout.write(JSON.stringify({ version: built.version, dir: built.dir, built: built.built }) + '\n');
  });

program
  .command('rotate-ca-key')
  .description('make a new issuing key and intermediate the active issuer, or retire an old one')
  .option('--retire <issuerId>', 'remove an issuer none of whose certificates is still valid')
  .action(async (opts: { retire?: string }) => {
    const stateDir = resolve(program.opts().state);
    if (opts.retire) {
      const id = opts.retire;
      const retired = await step(`retire issuer ${id}`, () => retireIssuer(stateDir, id));
      process.stderr.write(`deploy, smoke and flip to stop serving OCSP and CRLs for ${id}\n`);
      process.stdout.write(JSON.stringify(retired) + '\n');
      return;
    }
    const rotated = await step('rotate CA key', () => rotateIssuer(stateDir));
    // Running colors keep the configs they were deployed with.
    process.stderr.write(`deploy, smoke and flip to start signing with ${rotated.active}\n`);
    process.stdout.write(JSON.stringify(rotated) + '\n');
  });

program
  .command('hsm-init')
  .description('initialize a SoftHSM2 token in a folder of its own; print its key-store config')
  .option('--dir <dir>', 'the token folder (default: <state>/hsm)')
  .option('--label <label>', 'the token label', sharedTokenLabel)
  .option('--module <path>', 'the SoftHSM2 module (default: where the OS package puts it)')
  .action(async (opts: { dir?: string; label: string; module?: string }) => {
    const dir = resolve(opts.dir ?? join(program.opts().state, 'hsm'));
    const config = await step('SoftHSM2 token', () =>
      initSoftHsmToken({ dir, label: opts.label, ...(opts.module ? { module: opts.module } : {}) }),
    );
    // The config names the PIN file, never the PIN.
    process.stdout.write(JSON.stringify(config) + '\n');
  });

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof PipelineError) failAndExit(err.message, err.todo);
  if (err instanceof DeploymentConfigError) failAndExit(err.message, 'fix the deployment config (see stacks/deployment.example.yaml)');
  failAndExit((err as Error).message.split('\n')[0], 'see the logs under the state directory');
}
