import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse } from 'yaml';
import { renderUserData, serviceName, type UserDataOptions } from '../../images/cloud-init.js';
import { components } from '../../pipelines/local/configs.js';
import { requireTool } from '../helpers/tools.js';

// The OpenStack user data: valid for cloud-init's own schema, and doing what it says.
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'bluegreen-cloud-init-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const base: UserDataOptions = {
  component: 'ca',
  release: '0.1.0+abc1234',
  releaseUrl: 'https://packages.example.com/bluegreen-ca/0.1.0+abc1234/release.tar.gz',
  releaseSha256: 'a'.repeat(64),
  config: { listen: '0.0.0.0:9093', keyStore: { type: 'pkcs11', pin: { env: 'BLUEGREEN_HSM_PIN' } } },
  files: [
    { path: 'root.pem', content: '-----BEGIN CERTIFICATE-----\n' },
    { path: 'ca.key', content: '-----BEGIN PRIVATE KEY-----\n', secret: true },
  ],
  environment: { BLUEGREEN_HSM_PIN: 'pin with "quotes" and \\ backslash' },
};

interface WriteFile {
  path: string;
  content: string;
  permissions?: string;
  owner?: string;
  defer?: boolean;
}

const docOf = (text: string) => parse(text) as { write_files: WriteFile[]; runcmd: string[][]; users: unknown[] };
const fileOf = (text: string, path: string) => docOf(text).write_files.find((f) => f.path === path);

async function schema(text: string): Promise<{ code: number; output: string }> {
  const file = join(dir, `user-data-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return run('cloud-init', ['schema', '--config-file', file]).then(
    (r) => ({ code: 0, output: r.stdout + r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, output: err.stdout + err.stderr }),
  );
}

t.test('cloud-init schema accepts the user data of every component', async (t) => {
  if (!requireTool(t, 'cloud-init', 'apt-get install cloud-init')) return;
  for (const component of components) {
    const text = renderUserData({ ...base, component });
    t.match(text, /^#cloud-config\n/);
    const r = await schema(text);
    t.equal(r.code, 0, `${component}: ${r.output}`);
    t.match(r.output, /Valid cloud-config/);
  }
});

t.test('cloud-init schema rejects user data with a malformed module', async (t) => {
  if (!requireTool(t, 'cloud-init', 'apt-get install cloud-init')) return;
  // Proves the check above can fail: runcmd must be a list.
  const broken = renderUserData(base).replace(/^runcmd:[\s\S]*$/m, 'runcmd: 42\n');
  const r = await schema(broken);
  t.not(r.code, 0);
  t.match(r.output, /runcmd/);
});

t.test('runs the component as a systemd service of the release', async (t) => {
  const text = renderUserData({ ...base, component: 'wfe' });
  const unit = fileOf(text, `/etc/systemd/system/${serviceName('wfe')}`);
  t.ok(unit, 'the unit is written');
  t.match(unit!.content, /^User=bluegreen-ca$/m);
  t.match(
    unit!.content,
    /^ExecStart=\/opt\/node\/bin\/node --enable-source-maps \/opt\/bluegreen-ca\/components\/wfe\.mjs --config \/etc\/bluegreen-ca\/config\/wfe\.json$/m,
  );
  t.match(unit!.content, /^Description=.*release 0\.1\.0\+abc1234/m);
  t.same(docOf(text).runcmd, [
    ['/usr/local/sbin/bluegreen-ca-install'],
    ['systemctl', 'daemon-reload'],
    ['systemctl', 'enable', '--now', 'bluegreen-ca-wfe.service'],
  ]);
});

t.test('writes the config and secrets readable by the service user only, after the user exists', async (t) => {
  const text = renderUserData(base);
  const config = fileOf(text, '/etc/bluegreen-ca/config/ca.json')!;
  t.same(JSON.parse(config.content), base.config);
  t.match(config, { owner: 'root:bluegreen-ca', permissions: '0640', defer: true });
  t.match(fileOf(text, '/etc/bluegreen-ca/pki/ca.key'), { permissions: '0640', defer: true });
  t.match(fileOf(text, '/etc/bluegreen-ca/pki/root.pem'), { permissions: '0644' });
  const env = fileOf(text, '/etc/bluegreen-ca/ca.env')!;
  t.equal(env.permissions, '0600');
  t.match(env.content, /^BLUEGREEN_HSM_PIN="pin with \\"quotes\\" and \\\\ backslash"$/m);
});

t.test('runs the release\'s migrations with the SA config before the sa starts, and only when asked', async (t) => {
  const unitOf = (o: UserDataOptions) => fileOf(renderUserData(o), `/etc/systemd/system/${serviceName(o.component)}`)!.content;
  const sa = unitOf({ ...base, component: 'sa', migrate: true });
  t.match(sa, /^ExecStartPre=\/opt\/node\/bin\/node --enable-source-maps \/opt\/bluegreen-ca\/components\/migrate\.mjs --config \/etc\/bluegreen-ca\/config\/sa\.json$/m);
  t.ok(sa.indexOf('ExecStartPre=') < sa.indexOf('ExecStart='), 'before the service');
  t.notMatch(unitOf({ ...base, component: 'sa' }), /ExecStartPre/);
});

t.test('writes every file base64-encoded when the caller encodes, with the same content', async (t) => {
  const encoded: string[] = [];
  const base64 = (text: string) => {
    encoded.push(text);
    return Buffer.from(text).toString('base64');
  };
  const plain = docOf(renderUserData(base)).write_files;
  const b64 = docOf(renderUserData({ ...base, base64 })).write_files as (WriteFile & { encoding?: string })[];
  t.equal(b64.length, plain.length);
  b64.forEach((f, i) => {
    t.equal(f.encoding, 'b64', f.path);
    t.equal(Buffer.from(f.content, 'base64').toString(), plain[i].content, f.path);
    t.same({ ...f, content: '', encoding: undefined }, { ...plain[i], content: '', encoding: undefined }, `${f.path}: same path, owner and mode`);
  });
  t.equal(encoded.length, plain.length, 'every file went through the encoder');
});

t.test('installs the extra packages the HSM module comes in', async (t) => {
  const doc = parse(renderUserData({ ...base, packages: ['softhsm2'] })) as { packages: string[] };
  t.same(doc.packages, ['ca-certificates', 'curl', 'xz-utils', 'softhsm2']);
});

t.test('gives a user-only file to the service user with mode 0600', async (t) => {
  const text = renderUserData({ ...base, component: 'ct-log', files: [{ path: 'ct-log.key', content: 'k', userOnly: true }] });
  t.match(fileOf(text, '/etc/bluegreen-ca/pki/ct-log.key'), { owner: 'bluegreen-ca:bluegreen-ca', permissions: '0600', defer: true });
});

t.test('leaves the host name to the instance\'s metadata unless one is named', async (t) => {
  t.notOk('hostname' in (parse(renderUserData(base)) as object));
  t.match(parse(renderUserData({ ...base, hostname: 'ca-1' })), { hostname: 'ca-1' });
});

t.test('installs the named release, checked against its hash, with a script bash accepts', async (t) => {
  const script = fileOf(renderUserData(base), '/usr/local/sbin/bluegreen-ca-install')!;
  t.equal(script.permissions, '0755');
  t.match(script.content, `release_url='${base.releaseUrl}'`);
  t.match(script.content, `release_sha256='${'a'.repeat(64)}'`);
  t.match(script.content, "release='0.1.0+abc1234'");
  t.match(script.content, /check-release\.mjs' "\$work\/release" pkcs11js better-sqlite3/);
  const file = join(dir, 'install.sh');
  writeFileSync(file, script.content);
  await t.resolves(run('bash', ['-n', file]), 'bash parses it');
});

t.test('rejects options that cannot make a working instance', async (t) => {
  const cases: Array<[string, Partial<UserDataOptions>, RegExp]> = [
    ['an unknown component', { component: 'nope' as never }, /^component: expected one of sa, ocsp-responder, .*, got nope$/],
    ['a plain-HTTP release URL', { releaseUrl: 'http://example.com/r.tar.gz' }, /^releaseUrl: expected an https URL/],
    ['a malformed hash', { releaseSha256: 'abc' }, /^releaseSha256: expected 64 lower-case hex digits, got "abc"/],
    ['a release name with a quote', { release: "0.1.0'x" }, /^release: expected a release version/],
    ['a file outside /etc/bluegreen-ca', { files: [{ path: '/etc/passwd', content: '' }] }, /^files: expected paths under/],
    ['a bad environment name', { environment: { 'A-B': '1' } }, /^environment: expected variable names/],
    ['migrations for a component other than the sa', { migrate: true }, /^migrate: only the sa's config names the database, got component ca$/],
    ['a package name a shell would split', { packages: ['hsm-client; rm -rf /'] }, /^packages: expected Debian package names/],
  ];
  for (const [name, change, message] of cases) {
    t.throws(() => renderUserData({ ...base, ...change }), { name: 'UserDataError', message }, name);
  }
});
