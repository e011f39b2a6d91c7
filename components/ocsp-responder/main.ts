import { createLogger } from '../lib/log.js';
import { runComponent } from '../lib/run.js';
import { ocspResponderConfig } from './config.js';
import { startOcspResponder } from './server.js';

/** `tsx components/ocsp-responder/main.ts --config <file>`: the OCSP and CRL HTTP server. */
await runComponent('ocsp-responder', ocspResponderConfig, (config) =>
  startOcspResponder(config, createLogger('ocsp-responder', { level: config.log.level })),
);
