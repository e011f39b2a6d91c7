import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { stringify } from 'yaml';
import { components, type Component } from '../pipelines/local/configs.js';
import { migrationJobFile } from '../pipelines/release.js';

/**
 * Cloud-init user data for one OpenStack instance: installs Node.js and one release of the CA,
 * writes one component's config and files, and runs that component as a systemd service. The
 * instance image needs only a stock Debian 12 with cloud-init. The OpenStack color stacks
 * render every instance's user data here.
 */

/**
 * Where a release and its component's files live on an instance, and in the container image
 * (images/Dockerfile); stacks/model.ts builds its layout from this one.
 */
export const instanceLayout = {
  app: '/opt/bluegreen-ca',
  config: '/etc/bluegreen-ca/config',
  pki: '/etc/bluegreen-ca/pki',
  state: '/var/lib/bluegreen-ca',
  node: '/opt/node',
  installer: '/usr/local/sbin/bluegreen-ca-install',
  checker: '/usr/local/lib/bluegreen-ca/check-release.mjs',
} as const;

/** The system user every component runs as. */
export const serviceUser = 'bluegreen-ca';

/** Node.js version installed when the caller names none: the major the releases are built with. */
export const defaultNodeVersion = 'v20.19.5';

/** A component's writable directory on an instance (systemd's StateDirectory). */
export function stateDirOf(component: Component): string {
  return `${instanceLayout.state}/${component}`;
}

export interface UserDataFile {
  /** Absolute, or relative to /etc/bluegreen-ca/pki. */
  readonly path: string;
  readonly content: string;
  /** Readable by root and the service user only (mode 0640) instead of everyone (0644). @default false */
  readonly secret?: boolean;
  /**
   * Owned by the service user and readable by it alone (mode 0600), for a key its component
   * refuses when its group may read it (the CT log key). @default false
   */
  readonly userOnly?: boolean;
}

export interface UserDataOptions {
  readonly component: Component;
  /** Release version, as `npm run build` names it (`0.1.0+abc1234`). */
  readonly release: string;
  /**
   * HTTPS URL of the release as a .tar.gz of its directory (release.json at the top), as the
   * pipeline's build:bundle job packs it. The instance fetches it without credentials: a
   * public package or an object-store temporary URL.
   */
  readonly releaseUrl: string;
  /** SHA-256 of that tarball; a download with another hash is refused. @default not checked */
  readonly releaseSha256?: string;
  /** The component's config, written to /etc/bluegreen-ca/config/<component>.json. */
  readonly config: Readonly<Record<string, unknown>> | string;
  /** Files the config names (PKI certificates and keys, the CT log key). @default none */
  readonly files?: readonly UserDataFile[];
  /** Environment of the service (BLUEGREEN_HSM_PIN for the ca), in a root-only file. @default none */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Node.js to install. The release's addons need the Node major it was built with.
   * @default defaultNodeVersion from nodejs.org, checked against its SHASUMS256.txt
   */
  readonly node?: { readonly version: string; readonly url?: string; readonly sha256?: string };
  /**
   * Debian packages to install as well: for the ca, the one that provides the HSM's PKCS#11
   * module (the image's PKCS11_PACKAGES build argument). @default none
   */
  readonly packages?: readonly string[];
  /** @default the instance's name, which cloud-init reads from the metadata */
  readonly hostname?: string;
  /**
   * Applies the release's migrations (components/migrate.mjs with the SA's config) before
   * every start of the service; only the sa's config names the database. @default false
   */
  readonly migrate?: boolean;
  /**
   * Returns the base64 of a file's text. When given, every file is written base64-encoded
   * (cloud-init `encoding: b64`): a caller whose texts hold values known only later, such as
   * Terraform references, encodes them there (Terraform's base64encode), so that no PEM or
   * JSON is ever substituted raw into the YAML. @default files are plain YAML strings
   */
  readonly base64?: (text: string) => string;
}

/** Raised for options that cannot make valid user data; the message names the field. */
export class UserDataError extends Error {
  override name = 'UserDataError';
}

/** The systemd unit name of a component. */
export function serviceName(component: Component): string {
  return `bluegreen-ca-${component}.service`;
}

/** Renders `#cloud-config` user data for one component of one release. */
export function renderUserData(o: UserDataOptions): string {
  check(o);
  const node = nodeDownload(o.node);
  const configText = typeof o.config === 'string' ? o.config : JSON.stringify(o.config, null, 2) + '\n';
  const content = (text: string) => (o.base64 ? { encoding: 'b64', content: o.base64(text) } : { content: text });
  const owned = (path: string, text: string, access: 'everyone' | 'group' | 'user') => ({
    path,
    ...content(text),
    owner: access === 'user' ? `${serviceUser}:${serviceUser}` : `root:${serviceUser}`,
    permissions: { everyone: '0644', group: '0640', user: '0600' }[access],
    // Deferred to the final stage, after the users module has created the user.
    defer: true,
  });

  const writeFiles = [
    {
      path: instanceLayout.installer,
      permissions: '0755',
      ...content(installScript(o, node)),
    },
    { path: instanceLayout.checker, permissions: '0644', ...content(checkReleaseScript) },
    owned(`${instanceLayout.config}/${o.component}.json`, configText, 'group'),
    ...(o.files ?? []).map((f) =>
      owned(posix.resolve(instanceLayout.pki, f.path), f.content, f.userOnly ? 'user' : f.secret ? 'group' : 'everyone'),
    ),
    {
      path: `/etc/bluegreen-ca/${o.component}.env`,
      permissions: '0600',
      ...content(environmentFile(o.environment ?? {})),
    },
    {
      path: `/etc/systemd/system/${serviceName(o.component)}`,
      permissions: '0644',
      ...content(unit(o)),
    },
  ];

  const doc = {
    ...(o.hostname ? { hostname: o.hostname } : {}),
    users: [
      'default',
      {
        name: serviceUser,
        system: true,
        homedir: instanceLayout.state,
        no_create_home: true,
        shell: '/usr/sbin/nologin',
        lock_passwd: true,
      },
    ],
    package_update: true,
    packages: ['ca-certificates', 'curl', 'xz-utils', ...(o.packages ?? [])],
    write_files: writeFiles,
    runcmd: [
      [instanceLayout.installer],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', serviceName(o.component)],
    ],
  };
  return '#cloud-config\n' + stringify(doc, { lineWidth: 0 });
}

function check(o: UserDataOptions): void {
  if (!(components as readonly string[]).includes(o.component)) {
    throw new UserDataError(`component: expected one of ${components.join(', ')}, got ${o.component}`);
  }
  if (!/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/.test(o.release)) {
    throw new UserDataError(`release: expected a release version such as 0.1.0+abc1234, got ${JSON.stringify(o.release)}`);
  }
  if (!/^https:\/\/\S+$/.test(o.releaseUrl)) {
    throw new UserDataError(`releaseUrl: expected an https URL, got ${JSON.stringify(o.releaseUrl)}`);
  }
  for (const [field, value] of [['releaseSha256', o.releaseSha256], ['node.sha256', o.node?.sha256]] as const) {
    if (value !== undefined && !/^[0-9a-f]{64}$/.test(value)) {
      throw new UserDataError(`${field}: expected 64 lower-case hex digits, got ${JSON.stringify(value)}`);
    }
  }
  if (o.node && !/^v\d+\.\d+\.\d+$/.test(o.node.version)) {
    throw new UserDataError(`node.version: expected a version such as v20.19.5, got ${JSON.stringify(o.node.version)}`);
  }
  for (const name of Object.keys(o.environment ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new UserDataError(`environment: expected variable names of letters, digits and _, got ${JSON.stringify(name)}`);
    }
  }
  if (o.migrate && o.component !== 'sa') {
    throw new UserDataError(`migrate: only the sa's config names the database, got component ${o.component}`);
  }
  for (const name of o.packages ?? []) {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) {
      throw new UserDataError(`packages: expected Debian package names, got ${JSON.stringify(name)}`);
    }
  }
  for (const f of o.files ?? []) {
    const path = posix.resolve(instanceLayout.pki, f.path);
    if (!path.startsWith('/etc/bluegreen-ca/')) {
      throw new UserDataError(`files: expected paths under /etc/bluegreen-ca, got ${JSON.stringify(f.path)}`);
    }
  }
}

function nodeDownload(node: UserDataOptions['node']): { version: string; url: string; sha256: string } {
  const version = node?.version ?? defaultNodeVersion;
  const url = node?.url ?? `https://nodejs.org/dist/${version}/node-${version}-linux-x64.tar.xz`;
  return { version, url, sha256: node?.sha256 ?? '' };
}

/** A systemd EnvironmentFile; values are double-quoted with `\` and `"` escaped. */
function environmentFile(env: Readonly<Record<string, string>>): string {
  const lines = Object.entries(env).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return ['# Environment of the component; root only (it may hold the HSM PIN).', ...lines].join('\n') + '\n';
}

/** The migration job's command line: the SA config names the database, so no URL is on it. */
export function migrationCommandLine(): string {
  const job = posix.join(instanceLayout.app, migrationJobFile);
  return `${instanceLayout.node}/bin/node --enable-source-maps ${job} --config ${instanceLayout.config}/sa.json`;
}

function unit(o: UserDataOptions): string {
  const entry = `${instanceLayout.app}/components/${o.component}.mjs`;
  // Expand-only migrations may take a while; the migration Job in a cluster gets 10 minutes too.
  const migrate = o.migrate ? `ExecStartPre=${migrationCommandLine()}\nTimeoutStartSec=10min\n` : '';
  return `[Unit]
Description=bluegreen-ca ${o.component} (release ${o.release})
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=${serviceUser}
Group=${serviceUser}
WorkingDirectory=${instanceLayout.app}
Environment=NODE_ENV=production
EnvironmentFile=/etc/bluegreen-ca/${o.component}.env
${migrate}ExecStart=${instanceLayout.node}/bin/node --enable-source-maps ${entry} --config ${instanceLayout.config}/${o.component}.json
# SIGUSR2 starts the drain before a teardown: public servers close keep-alive connections.
ExecReload=/bin/kill -USR2 $MAINPID
Restart=on-failure
RestartSec=2
TimeoutStopSec=15
StateDirectory=${posix.relative('/var/lib', stateDirOf(o.component))}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`;
}

/** Single-quotes a value for the shell. */
function sh(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function installScript(o: UserDataOptions, node: { version: string; url: string; sha256: string }): string {
  return `#!/bin/bash
# Installs Node.js ${node.version} and release ${o.release} of bluegreen-ca; run once by cloud-init.
set -euo pipefail

node_version=${sh(node.version)}
node_url=${sh(node.url)}
node_sha256=${sh(node.sha256)}
release=${sh(o.release)}
release_url=${sh(o.releaseUrl)}
release_sha256=${sh(o.releaseSha256 ?? '')}
app=${sh(instanceLayout.app)}
node_dir=${sh(instanceLayout.node)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() { curl --fail --silent --show-error --location --retry 5 --retry-connrefused -o "$2" "$1"; }

if [ "$("$node_dir/bin/node" --version 2>/dev/null || true)" != "$node_version" ]; then
  fetch "$node_url" "$work/node.tar.xz"
  if [ -z "$node_sha256" ]; then
    fetch "\${node_url%/*}/SHASUMS256.txt" "$work/SHASUMS256.txt"
    node_sha256=$(awk -v f="\${node_url##*/}" '$2 == f { print $1 }' "$work/SHASUMS256.txt")
  fi
  echo "$node_sha256  $work/node.tar.xz" | sha256sum --check --quiet -
  rm -rf "$node_dir" && mkdir -p "$node_dir"
  tar -xJf "$work/node.tar.xz" --strip-components=1 -C "$node_dir"
fi

fetch "$release_url" "$work/release.tar.gz"
if [ -n "$release_sha256" ]; then
  echo "$release_sha256  $work/release.tar.gz" | sha256sum --check --quiet -
fi
mkdir -p "$work/release"
tar -xzf "$work/release.tar.gz" -C "$work/release"
found=$("$node_dir/bin/node" -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version' "$work/release/release.json")
if [ "$found" != "$release" ]; then
  echo "bluegreen-ca-install: $release_url holds release $found, expected $release" >&2
  exit 1
fi
"$node_dir/bin/node" ${sh(instanceLayout.checker)} "$work/release" pkcs11js better-sqlite3

# Owned by root and read-only for the service user, as in the container image.
chown -R root:root "$work/release"
rm -rf "$app.old"
if [ -e "$app" ]; then mv "$app" "$app.old"; fi
mv "$work/release" "$app"
chmod 0755 "$app"
rm -rf "$app.old"
`;
}

/** images/check-release.mjs, inlined: the instance checks a release as the image build does. */
const checkReleaseScript = readFileSync(new URL('./check-release.mjs', import.meta.url), 'utf8');
