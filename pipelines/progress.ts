/** Progress lines on stderr: `step name ... done in 1.2 s`. Stdout stays for results. */
export async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  process.stderr.write(`- ${name} ...\n`);
  const result = await work();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stderr.write(`  ${name}: done in ${seconds} s\n`);
  return result;
}

/** Ends the command with one line naming what failed and what to do. */
export function failAndExit(what: string, todo: string): never {
  process.stderr.write(`error: ${what}; ${todo}\n`);
  process.exit(1);
}
