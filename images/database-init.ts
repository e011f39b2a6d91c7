import { stringify } from 'yaml';

/**
 * Cloud-init user data for the OpenStack PostgreSQL instance of the state stack: on a stock
 * Debian 12, installs Debian's PostgreSQL with its data on the attached volume (which outlives
 * the instance), and creates the CA's database and user. A replaced instance finds the data
 * already on the volume and registers it again.
 */

/** Where the volume is mounted; the cluster's data directory is `pgdata` inside it. */
export const databaseMount = '/srv/bluegreen-ca-db';

const setupScript = '/usr/local/sbin/bluegreen-ca-database';
const passwordFile = '/etc/bluegreen-ca/database.password';

export interface DatabaseUserDataOptions {
  readonly name: string;
  readonly user: string;
  readonly port: number;
  /** The user's password; may be a value known only later, written through `base64`. */
  readonly password: string;
  /** Addresses the SA connects from (the subnet), allowed in pg_hba.conf. */
  readonly clientCidr: string;
  /** Block device of the data volume. @default /dev/vdb */
  readonly device?: string;
  /** As in renderUserData: when given, every file is written base64-encoded. @default plain */
  readonly base64?: (text: string) => string;
}

/** Renders `#cloud-config` user data for the database instance. */
export function renderDatabaseUserData(o: DatabaseUserDataOptions): string {
  const content = (text: string) => (o.base64 ? { encoding: 'b64', content: o.base64(text) } : { content: text });
  const doc = {
    write_files: [
      // Apart from the script, so that no shell ever parses the password.
      { path: passwordFile, permissions: '0600', ...content(o.password) },
      { path: setupScript, permissions: '0755', ...content(script(o)) },
    ],
    runcmd: [[setupScript]],
  };
  return '#cloud-config\n' + stringify(doc, { lineWidth: 0 });
}

/** Single-quotes a value for the shell. */
function sh(value: string | number): string {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

function script(o: DatabaseUserDataOptions): string {
  return `#!/bin/bash
# Sets up PostgreSQL for bluegreen-ca; run by cloud-init at first boot of each instance.
set -euo pipefail

db_name=${sh(o.name)}
db_user=${sh(o.user)}
db_port=${sh(o.port)}
clients=${sh(o.clientCidr)}
device=${sh(o.device ?? '/dev/vdb')}
mount=${sh(databaseMount)}
password_file=${sh(passwordFile)}

# Terraform attaches the volume after the instance exists.
for _ in $(seq 1 120); do [ -b "$device" ] && break; sleep 5; done
if [ ! -b "$device" ]; then
  echo "bluegreen-ca-database: no volume at $device" >&2
  exit 1
fi
blkid "$device" >/dev/null 2>&1 || mkfs.ext4 -q -L bluegreen-ca-db "$device"
mkdir -p "$mount"
grep -q " $mount " /etc/fstab || echo "LABEL=bluegreen-ca-db $mount ext4 defaults,nofail 0 2" >> /etc/fstab
mountpoint -q "$mount" || mount "$mount"

# No cluster on the root disk: the one on the volume is created or registered below.
mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/bluegreen-ca.conf
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
chown postgres "$password_file"

data="$mount/pgdata"
mkdir -p "$data"
chown -R postgres:postgres "$data"
chmod 0700 "$data"
if [ ! -d "/etc/postgresql/$version/main" ]; then
  pg_createcluster --datadir "$data" --port "$db_port" "$version" main
fi
conf="/etc/postgresql/$version/main"
echo "listen_addresses = '*'" > "$conf/conf.d/bluegreen-ca.conf"
rule="host $db_name $db_user $clients scram-sha-256"
grep -qxF "$rule" "$conf/pg_hba.conf" || echo "$rule" >> "$conf/pg_hba.conf"
systemctl enable "postgresql@$version-main"
systemctl restart "postgresql@$version-main"

# psql reads the password file itself, so the password is on no command line.
runuser -u postgres -- psql --port "$db_port" -v ON_ERROR_STOP=1 -v user="$db_user" -v db="$db_name" <<'SQL'
\\set password \`cat ${passwordFile}\`
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user')\\gexec
ALTER ROLE :"user" PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec
SQL
`;
}
