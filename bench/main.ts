import { availableParallelism } from 'node:os';
import { benchIssuance } from './issuance.js';
import { benchOcsp } from './ocsp.js';
import { benchPipeline } from './pipeline.js';
import { benchSign } from './sign.js';

/** `npm run bench -- <name>`: prints figures to stdout, one line each. */
const benches: Record<string, () => Promise<void>> = {
  async issuance() {
    const seconds = Number(process.env.BENCH_SECONDS ?? 20);
    const figures = await benchIssuance({ seconds, concurrencies: [1, 8] });
    const cores = availableParallelism();
    for (const f of figures) {
      const { ca, client } = f.cpuMsPerIssuance;
      process.stdout.write(
        `issuance concurrency=${f.concurrency}: ${f.perSecond.toFixed(1)} issuances/s ` +
          `(${f.issued} issued, ${f.failed} failed in ${f.seconds.toFixed(1)} s); CPU per ` +
          `issuance: CA ${ca.toFixed(1)} ms, client ${client.toFixed(1)} ms\n`,
      );
    }
    // The client shares the machine: even a CA that cost nothing would stop at this rate.
    const last = figures[figures.length - 1];
    if (last && last.cpuMsPerIssuance.client > 0) {
      const clientBound = (cores * 1000) / last.cpuMsPerIssuance.client;
      const bothBound = (cores * 1000) / (last.cpuMsPerIssuance.client + last.cpuMsPerIssuance.ca);
      process.stdout.write(
        `issuance ceiling on ${cores} cores: ${clientBound.toFixed(0)}/s for the client alone, ` +
          `${bothBound.toFixed(0)}/s for client and CA together\n`,
      );
    }
  },

  async sign() {
    const seconds = Number(process.env.BENCH_SECONDS ?? 3);
    const { figures, ratios } = await benchSign({ seconds });
    for (const f of figures) {
      process.stdout.write(
        `sign ecdsa-p256 store=${f.store} concurrency=${f.concurrency}: ` +
          `${f.perSecond.toFixed(0)} signatures/s (${f.signatures} in ${f.seconds.toFixed(1)} s)\n`,
      );
    }
    for (const r of ratios) {
      process.stdout.write(
        `sign ecdsa-p256 concurrency=${r.concurrency}: pkcs11/file = ` +
          `${r.pkcs11OverFile.toFixed(2)}\n`,
      );
    }
  },

  async pipeline() {
    const f = await benchPipeline();
    const steps = Object.entries(f.steps).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ');
    process.stdout.write(`pipeline release build: ${f.buildSeconds.toFixed(1)} s (not in the cycle)\n`);
    process.stdout.write(`pipeline cycle: ${f.cycleSeconds.toFixed(1)} s (${steps}; target < 20 s)\n`);
    process.stdout.write(`pipeline under load: ${f.served} requests served, ${f.failed} failed\n`);
    for (const e of f.errors.slice(0, 5)) process.stdout.write(`  failed: ${e}\n`);
  },

  async ocsp() {
    const seconds = Number(process.env.BENCH_SECONDS ?? 10);
    const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);
    const { responder, nginx, ratio } = await benchOcsp({ seconds, connections });
    for (const f of [responder, nginx]) {
      process.stdout.write(
        `ocsp GET keep-alive ${f.target.padEnd(9)} connections=${f.connections}: ` +
          `${f.perSecond.toFixed(0)} requests/s (${f.requests} ok, ${f.errors} errors in ` +
          `${f.seconds.toFixed(1)} s)\n`,
      );
    }
    process.stdout.write(`ocsp responder/nginx = ${ratio.toFixed(2)} (target >= 0.60)\n`);
  },
};

const name = process.argv[2];
const bench = name ? benches[name] : undefined;
if (!bench) {
  process.stderr.write(`bench: expected one of ${Object.keys(benches).join(', ')}, got ${name ?? 'nothing'}\n`);
  process.exit(2);
}
await bench();
