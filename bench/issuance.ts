import * as acme from 'acme-client';
import { readFileSync } from 'node:fs';
import { issueOverHttp01, startHttp01Server } from '../test/helpers/challenge-servers.js';
import { startTestCa } from '../test/helpers/ca.js';

export interface IssuanceFigures {
  concurrency: number;
  issued: number;
  failed: number;
  seconds: number;
  perSecond: number;
  /** CPU milliseconds per issuance: the CA's processes together, and this bench's own client. */
  cpuMsPerIssuance: { ca: number; client: number };
}

/** CPU time a process has used, in ms, from /proc (Linux); 0 elsewhere. */
function processCpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1000 / clockTicksPerSecond);
  } catch {
    return 0;
  }
}
const clockTicksPerSecond = 100;

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
      await issueOverHttp01(client, http01.tokens, csr);
    };

    await issueOne(); // warm up every process's code paths once
    const pids = [...ca.instance.processes.values()].map((p) => p.child.pid);
    const caCpuMs = () => pids.reduce<number>((sum, pid) => sum + processCpuMs(pid), 0);
    const clientCpuMs = () => {
      const used = process.cpuUsage();
      return (used.user + used.system) / 1000;
    };

    for (const concurrency of options.concurrencies) {
      let issued = 0;
      let failed = 0;
      const caBefore = caCpuMs();
      const clientBefore = clientCpuMs();
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
      const per = (ms: number) => (issued > 0 ? ms / issued : 0);
      results.push({
        concurrency,
        issued,
        failed,
        seconds,
        perSecond: issued / seconds,
        cpuMsPerIssuance: { ca: per(caCpuMs() - caBefore), client: per(clientCpuMs() - clientBefore) },
      });
    }
  } finally {
    await http01.close();
    await ca.stop();
  }
  return results;
}
