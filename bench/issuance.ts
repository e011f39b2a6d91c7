import * as acme from 'acme-client';
import { startHttp01Server } from '../test/helpers/challenge-servers.js';
import { startTestCa } from '../test/helpers/ca.js';

export interface IssuanceFigures {
  concurrency: number;
  issued: number;
  failed: number;
  seconds: number;
  perSecond: number;
}

/**
 * Full ACME issuances per second against every component as a real process: one account, one
 * reused certificate key, a fresh name (so a fresh authorization and a real http-01
 * validation) for every issuance, answered by this process's own http-01 server.
 */
export async function benchIssuance(options: { seconds: number; concurrencies: number[] }) {
  const ca = await startTestCa({ logLevel: 'warn' });
  const http01 = await startHttp01Server(ca.httpPort);
  acme.axios.defaults.httpsAgent = ca.agent;
  const results: IssuanceFigures[] = [];

  try {
    const client = new acme.Client({
      directoryUrl: ca.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffMin: 10,
      backoffMax: 200,
      backoffAttempts: 50,
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    const certKey = await acme.crypto.createPrivateEcdsaKey();
    let n = 0;

    const issueOne = async () => {
      const name = `b${process.pid}-${n++}.bench.test`;
      const [, csr] = await acme.crypto.createCsr({ commonName: name }, certKey);
      await client.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        skipChallengeVerification: true,
        challengeCreateFn: async (_a, c, keyAuthorization) => {
          http01.tokens.set(c.token, keyAuthorization);
        },
        challengeRemoveFn: async (_a, c) => {
          http01.tokens.delete(c.token);
        },
      });
    };

    await issueOne(); // warm up every process's code paths once
    for (const concurrency of options.concurrencies) {
      let issued = 0;
      let failed = 0;
      const started = performance.now();
      const deadline = started + options.seconds * 1000;
      const worker = async () => {
        while (performance.now() < deadline) {
          await issueOne().then(
            () => issued++,
            () => failed++,
          );
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const seconds = (performance.now() - started) / 1000;
      results.push({ concurrency, issued, failed, seconds, perSecond: issued / seconds });
    }
  } finally {
    await http01.close();
    await ca.stop();
  }
  return results;
}
