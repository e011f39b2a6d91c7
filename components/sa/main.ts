import { createLogger } from '../lib/log.js';
import { runComponent } from '../lib/run.js';
import { saConfig } from './config.js';
import { startStorageAuthority } from './server.js';

/** `tsx components/sa/main.ts --config <file>`: the storage authority process. */
await runComponent('sa', saConfig, (config) =>
  startStorageAuthority(config, createLogger('sa', { level: config.log.level })),
);
