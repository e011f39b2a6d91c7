import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';

/**
 * SoftHSM2 tokens in a folder of their own: a softhsm2.conf that points SoftHSM2 at
 * `<dir>/tokens`, the token, and its PINs in files beside it. Nothing touches the system's
 * /etc/softhsm/softhsm2.conf or /var/lib/softhsm.
 */

/** Where Debian, Ubuntu, Fedora and Homebrew install the module. */
const moduleCandidates = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib64/pkcs11/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so',
];

export interface SoftHsmTokenOptions {
  /** The token's own folder; created with mode 0700. */
  dir: string;
  /** Token label, at most 32 bytes. */
  label: string;
  /**
   * The SoftHSM2 module to record in the config.
   * @default the first of the usual install paths that exists
   */
  module?: string;
}

/** The `pkcs11` key-store config of a SoftHSM2 token made by `initSoftHsmToken`. */
export interface SoftHsmKeyStoreConfig {
  type: 'pkcs11';
  module: string;
  tokenLabel: string;
  pin: { file: string };
  softhsmConf: string;
}

/** The SoftHSM2 module's path; fails naming the paths tried and the package to install. */
export function findSoftHsmModule(): string {
  const found = moduleCandidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(
      `no SoftHSM2 module at ${moduleCandidates.join(', ')}; install softhsm2 ` +
        '(apt-get install softhsm2) or pass its path',
    );
  }
  return found;
}

/** Runs softhsm2-util under this folder's config; a missing tool fails saying how to get it. */
async function softhsmUtil(conf: string, args: string[]) {
  try {
    return await execa('softhsm2-util', args, { env: { SOFTHSM2_CONF: conf }, stdin: 'ignore' });
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') {
      throw new Error('softhsm2-util is not installed (apt-get install softhsm2)');
    }
    // Its own message, never the command line: that carries the PINs.
    const said = (e.stderr || e.stdout || '').trim().split('\n')[0];
    throw new Error(`softhsm2-util ${args[0]} failed (exit ${e.exitCode}): ${said}`);
  }
}

/** Labels of the initialized tokens `softhsm2-util --show-slots` reports. */
async function tokenLabels(conf: string): Promise<string[]> {
  const { stdout } = await softhsmUtil(conf, ['--show-slots']);
  return [...stdout.matchAll(/^\s*Label:[ \t]*(.*?)\s*$/gm)].map((m) => m[1]).filter(Boolean);
}

async function writeSecret(file: string, secret: string): Promise<void> {
  await writeFile(file, secret + '\n', { mode: 0o600 });
  // A file left by an earlier run keeps its mode through writeFile; narrow it either way.
  await chmod(file, 0o600);
}

/**
 * Creates, or finds again, the SoftHSM2 token `label` in `dir`: writes `<dir>/softhsm2.conf`,
 * initializes the token with random user and SO PINs kept in `<dir>/pin` and `<dir>/so-pin`
 * (mode 0600), and returns the key-store config that opens it. Run again, it reuses the token.
 */
export async function initSoftHsmToken(
  options: SoftHsmTokenOptions,
): Promise<SoftHsmKeyStoreConfig> {
  const { label } = options;
  if (!label || Buffer.byteLength(label) > 32 || /[\r\n]/.test(label)) {
    throw new Error(`expected a token label of 1 to 32 bytes, got ${JSON.stringify(label)}`);
  }
  const dir = resolve(options.dir);
  const module = options.module ?? findSoftHsmModule();
  const tokenDir = join(dir, 'tokens');
  const conf = join(dir, 'softhsm2.conf');
  const pinFile = join(dir, 'pin');
  const soPinFile = join(dir, 'so-pin');

  await mkdir(tokenDir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeFile(
    conf,
    [
      '# SoftHSM2 configuration of this folder only, written by bluegreen-ca.',
      `directories.tokendir = ${tokenDir}`,
      'objectstore.backend = file',
      'log.level = ERROR',
      'slots.removable = false',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  const config: SoftHsmKeyStoreConfig = {
    type: 'pkcs11',
    module,
    tokenLabel: label,
    pin: { file: pinFile },
    softhsmConf: conf,
  };

  if ((await tokenLabels(conf)).includes(label)) {
    const pin = await readFile(pinFile, 'utf8').catch(() => '');
    if (!pin.trim()) {
      throw new Error(
        `token ${label} exists in ${tokenDir} but its PIN file ${pinFile} is missing or empty; ` +
          `remove ${dir} to start over`,
      );
    }
    return config;
  }

  // 32 hex digits each: well inside SoftHSM2's 4 to 255 bytes, and safe on a command line.
  const pin = randomBytes(16).toString('hex');
  const soPin = randomBytes(16).toString('hex');
  await writeSecret(pinFile, pin);
  await writeSecret(soPinFile, soPin);

  // Limitation: softhsm2-util takes the PINs as arguments, visible to local users in the
  // process list while it runs. See docs/limitations.md#hsm.
  await softhsmUtil(conf, [
    '--init-token',
    '--free',
    '--label',
    label,
    '--pin',
    pin,
    '--so-pin',
    soPin,
  ]);
  return config;
}
