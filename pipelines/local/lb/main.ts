import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../../../components/lib/config.js';
import { createLogger } from '../../../components/lib/log.js';
import { proxyConfig } from './config.js';
import { startProxy } from './proxy.js';
import { defaultPidFile } from './route-file.js';

/**
 * `node --import tsx pipelines/local/lb/main.ts --config <file>`: the load balancer as its own
 * long-lived process, so it keeps serving after the command that started it exits. SIGHUP
 * re-reads the route file; SIGTERM or SIGINT drains, then exits 0. A bad config or a port in
 * use prints one line and exits 2.
 */

const argv = process.argv.slice(2);
const i = argv.indexOf('--config');
const file = i >= 0 ? argv[i + 1] : undefined;
if (!file) fail('missing --config <file>');

let config;
try {
  config = loadConfig(proxyConfig, file);
} catch (err) {
  fail((err as Error).message);
}

const log = createLogger('lb');
const pidFile = config.pidFile ?? defaultPidFile(config.routeFile);

let proxy;
try {
  proxy = await startProxy(config, log);
} catch (err) {
  fail((err as Error).message);
}

writeFileSync(pidFile, `${process.pid}\n`);
log.info({ adminUrl: proxy.adminUrl, addresses: proxy.addresses, pidFile }, 'load balancer ready');

process.on('SIGHUP', () => proxy.reload('SIGHUP'));

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal, graceMs: config.drainGraceMs }, 'load balancer draining');
  proxy.stop().then(
    () => {
      removePidFile();
      process.exit(0);
    },
    () => process.exit(1),
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

function removePidFile(): void {
  // Only our own: a successor may already have written its pid there.
  try {
    if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile);
  } catch {
    // already gone
  }
}

function fail(message: string): never {
  process.stderr.write(`lb: ${message.split('\n')[0]}\n`);
  process.exit(2);
}
