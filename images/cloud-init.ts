import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { stringify } from 'yaml';
import { components, type Component } from '../pipelines/local/configs.js';

/**
 * Cloud-init user data for one OpenStack instance: installs Node.js and one release of the CA,
 * writes one component's config and files, and runs that component as a systemd service. The
 * instance image needs only a stock Debian 12 with cloud-init.
 */

/** Where a release and its component's files live on an instance (same as in the image). */
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

export interface UserDataFile {
  /** Absolute, or relative to /etc/bluegreen-ca/pki. */
  readonly path: string;
  readonly content: string;
  /** Readable by root and the service user only (mode 0640) instead of everyone (0644). @default false */
  readonly secret?: boolean;
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
  /** @default bluegreen-ca-<component> */
  readonly hostname?: string;
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
  const owned = (path: string, content: string, secret: boolean) => ({
    path,
    content,
    owner: `root:${serviceUser}`,
    permissions: secret ? '0640' : '0644',
    // Deferred to the final stage, after the users module has created the group.
    defer: true,
  });

  const writeFiles = [
    {
      path: instanceLayout.installer,
      permissions: '0755',
      content: installScript(o, node),
    },
    { path: instanceLayout.checker, permissions: '0644', content: checkReleaseScript },
    owned(`${instanceLayout.config}/${o.component}.json`, configText, true),
    ...(o.files ?? []).map((f) => owned(posix.resolve(instanceLayout.pki, f.path), f.content, f.secret ?? false)),
    {
      path: `/etc/bluegreen-ca/${o.component}.env`,
      permissions: '0600',
      content: environmentFile(o.environment ?? {}),
    },
    {
      path: `/etc/systemd/system/${serviceName(o.component)}`,
      permissions: '0644',
      content: unit(o),
    },
  ];

  const doc = {
    hostname: o.hostname ?? `bluegreen-ca-${o.component}`,
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
    packages: ['ca-certificates', 'curl', 'xz-utils'],
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

function unit(o: UserDataOptions): string {
  const entry = `${instanceLayout.app}/components/${o.component}.mjs`;
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
ExecStart=${instanceLayout.node}/bin/node --enable-source-maps ${entry} --config ${instanceLayout.config}/${o.component}.json
# SIGUSR2 starts the drain before a teardown: public servers close keep-alive connections.
ExecReload=/bin/kill -USR2 $MAINPID
Restart=on-failure
RestartSec=2
TimeoutStopSec=15
StateDirectory=bluegreen-ca/${o.component}
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
