import { Command, InvalidArgumentError } from 'commander';
import { join, resolve } from 'node:path';
import { startCaInstance } from './local/ca-instance.js';
import { defaultPorts } from './local/ports.js';
import { repoRoot } from './local/processes.js';
import { ensureSharedState } from './local/shared-state.js';
import { failAndExit, step } from './progress.js';

const program = new Command('bluegreen-ca')
  .description('Runs an internal ACME CA as blue and green environments')
  .option('--state <dir>', 'where shared state lives', join(repoRoot, '.state'))
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode);
  });

function domains(value: string): string[] {
  const list = value.split(',').map((d) => d.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError('expected a comma-separated list of domains');
  return list;
}

program
  .command('init')
  .description('create the shared state: internal PKI, CA keys and hierarchy, nonce key, database')
  .action(async () => {
    const state = await step('shared state', () => ensureSharedState({ stateDir: program.opts().state }));
    process.stdout.write(JSON.stringify({ stateDir: state.stateDir, trustBundle: state.trustBundle }) + '\n');
  });

program
  .command('start')
  .description('start the CA on this machine with embedded defaults and keep it up until Ctrl-C')
  .option('--domains <list>', 'domains certificates may be issued for', domains, ['test'])
  .option('--dns-resolver <host:port>', 'DNS server the VA asks for dns-01 TXT records')
  .action(async (opts: { domains: string[]; dnsResolver?: string }) => {
    const stateDir = resolve(program.opts().state);
    const shared = await step('shared state', () => ensureSharedState({ stateDir }));
    const ca = await step('components', () =>
      startCaInstance({
        shared,
        ports: defaultPorts,
        settings: { allowedDomains: opts.domains, dnsResolver: opts.dnsResolver },
        dir: join(stateDir, 'run'),
      }),
    );

    process.stderr.write(
      [
        '',
        `ACME directory: ${ca.directoryUrl}`,
        `trust bundle:   ${shared.trustBundle}`,
        `allowed:        ${opts.domains.join(', ')} (names under them resolve to 127.0.0.1)`,
        `http-01 port:   ${defaultPorts.validation.httpPort}, tls-alpn-01 port: ${defaultPorts.validation.tlsAlpnPort}`,
        `logs:           ${ca.logDir}`,
        'Ctrl-C stops the CA.',
        '',
      ].join('\n'),
    );

    const stop = () => void ca.stop().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

try {
  await program.parseAsync();
} catch (err) {
  failAndExit((err as Error).message.split('\n')[0], 'see the logs under the state directory');
}
