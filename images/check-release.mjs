// Checks that a release directory can run on this Node: its release.json is readable, its
// addons were built for this Node ABI and platform, and the named addon packages load.
// Used by images/Dockerfile and by the OpenStack install script; exits 1 with one line.
//
//   node check-release.mjs <release dir> [package ...]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

function fail(message) {
  process.stderr.write(`check-release: ${message}\n`);
  process.exit(1);
}

const [dirArg, ...packages] = process.argv.slice(2);
if (!dirArg) fail('usage: check-release.mjs <release dir> [package ...]');
const dir = resolve(dirArg);

let info;
try {
  info = JSON.parse(readFileSync(join(dir, 'release.json'), 'utf8'));
} catch (err) {
  fail(`${dir}/release.json: cannot read: ${err.message.split('\n')[0]}`);
}

const runtime = { modulesAbi: process.versions.modules, platform: process.platform, arch: process.arch };
for (const [field, here] of Object.entries(runtime)) {
  if (String(info[field]) !== here) {
    fail(`release ${info.version} was built for ${field} ${info[field]} (Node ${info.node}); this Node ${process.version} has ${here}`);
  }
}

// Resolve from inside the release, as its bundles do, never from anywhere else.
const requireFromRelease = createRequire(join(dir, 'components', 'index.cjs'));
for (const name of packages) {
  try {
    requireFromRelease(name);
  } catch (err) {
    fail(`release ${info.version}: ${name} does not load: ${err.message.split('\n')[0]}`);
  }
}

process.stdout.write(`release ${info.version} runs on Node ${process.version} (${packages.join(', ') || 'no addons checked'})\n`);
