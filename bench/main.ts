import { benchIssuance } from './issuance.js';

/** `npm run bench -- <name>`: prints figures to stdout, one line each. */
const benches: Record<string, () => Promise<void>> = {
  async issuance() {
    const seconds = Number(process.env.BENCH_SECONDS ?? 20);
    const figures = await benchIssuance({ seconds, concurrencies: [1, 8] });
    for (const f of figures) {
      process.stdout.write(
        `issuance concurrency=${f.concurrency}: ${f.perSecond.toFixed(1)} issuances/s ` +
          `(${f.issued} issued, ${f.failed} failed in ${f.seconds.toFixed(1)} s)\n`,
      );
    }
  },
};

const name = process.argv[2];
const bench = name ? benches[name] : undefined;
if (!bench) {
  process.stderr.write(`bench: expected one of ${Object.keys(benches).join(', ')}, got ${name ?? 'nothing'}\n`);
  process.exit(2);
}
await bench();
