import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Stand-ins for `cdktf` and `terraform`, for tests of the cloud targets: no cluster or cloud
 * can be reached here. cdktf records each call with the variables the targets pass it;
 * terraform answers `output -json` for a stack from a file the test writes with `outputs`.
 */
export function fakeTerraform(dir: string) {
  const bin = join(dir, 'bin');
  const outputsDir = join(dir, 'outputs');
  const log = join(dir, 'calls.log');
  mkdirSync(bin, { recursive: true });
  mkdirSync(outputsDir, { recursive: true });

  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  script(
    'cdktf',
    `echo "cdktf $* color=$BLUEGREEN_ACTIVE_COLOR release=$BLUEGREEN_RELEASE id=$BLUEGREEN_DEPLOYMENT_ID target=$BLUEGREEN_TARGET password=$TF_HTTP_PASSWORD" >> "${log}"`,
  );
  script(
    'terraform',
    [
      'stack=$(basename "$(echo "$1" | sed s/^-chdir=//)")',
      `if [ "$2" = output ]; then cat "${outputsDir}/$stack.json" 2>/dev/null || echo "{}"; fi`,
    ].join('\n'),
  );

  return {
    bin,
    cdktf: join(bin, 'cdktf'),
    /** What cdktf was asked to do, a line per call. */
    calls: (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []),
    /** Sets what `terraform output -json` says for `stack`. */
    outputs(stack: string, values: Record<string, unknown>): void {
      const wrapped = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { value: v }]));
      writeFileSync(join(outputsDir, `${stack}.json`), JSON.stringify(wrapped));
    },
    /** Forgets the calls and every stack's outputs. */
    reset(): void {
      rmSync(log, { force: true });
      rmSync(outputsDir, { recursive: true, force: true });
      mkdirSync(outputsDir);
    },
  };
}
