import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { saConfig } from '../../components/sa/config.js';
import { wfeConfig } from '../../components/wfe/config.js';
import { ctLogConfig } from '../../components/ct-log/config.js';
import { serviceName, stateDirOf } from '../../images/cloud-init.js';
import { repoRoot } from '../../pipelines/local/processes.js';
import { components, pkiFilesOf, releaseUrlOf, type Component } from '../../stacks/model.js';
import { requireTool } from '../helpers/tools.js';
import { exampleConfig, parse, synthAll } from './helpers.js';
import { renderTemplate } from './terraform-template.js';

// The user data of synthesized OpenStack stacks, rendered as Terraform renders it at apply
// (references replaced by sample values, base64encode evaluated), then read as cloud-init
// reads it: valid for its schema, and writing exactly the files the components need.

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'bluegreen-os-user-data-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const config = exampleConfig({ target: 'openstack' });
const synthesized = synthAll(config);
const colorStack = parse(synthesized.blue);
const stateStack = parse(synthesized.state);

// Sample secrets with the characters that break YAML or JSON when substituted raw.
const pem = (label: string) => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().replace(/PRIVATE KEY/g, label);
const pkiFiles = Object.fromEntries(
  [...new Set(components.flatMap((c) => pkiFilesOf(c, config)))].map((f) => [f, pem(f.endsWith('.key') ? 'PRIVATE KEY' : 'CERTIFICATE')]),
);
const outputs = 'data.terraform_remote_state.state.outputs';
const samples = {
  [`${outputs}.database_url`]: 'postgres://bluegreen:p%40ss%22w0rd@10.42.0.5:5432/bluegreen',
  [`${outputs}.eab_keys`]: '{"kid-1": "c2VjcmV0LWhtYWMta2V5LXRlc3Q"}',
  [`${outputs}.hsm_pin`]: '123456',
  [`${outputs}.pki_files`]: pkiFiles,
  'var.database_password': 'pa"ss\\w:rd #$x %{y}',
};

interface WriteFile {
  path: string;
  content: string;
  encoding?: string;
  owner?: string;
  permissions?: string;
}

const instances = colorStack.resource?.openstack_compute_instance_v2 ?? {};
const userDataOf = (c: Component) => renderTemplate(String(instances[`${c}-0`].user_data), samples);
const databaseUserData = renderTemplate(String(stateStack.resource?.openstack_compute_instance_v2.database.user_data), samples);

/** The files cloud-init writes, decoded. */
function filesOf(userData: string): Map<string, WriteFile> {
  const doc = parseYaml(userData) as { write_files: WriteFile[] };
  return new Map(
    doc.write_files.map((f) => [f.path, { ...f, content: f.encoding === 'b64' ? Buffer.from(f.content, 'base64').toString() : f.content }]),
  );
}

async function schema(name: string, text: string): Promise<{ code: number; output: string }> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return run('cloud-init', ['schema', '--config-file', file]).then(
    (r) => ({ code: 0, output: r.stdout + r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, output: err.stdout + err.stderr }),
  );
}

t.test('renders Terraform templates: escapes, references, base64encode; fails on unknown forms', async (t) => {
  t.equal(renderTemplate('a $${x} %%{y} ${base64encode("q\\"\\n${var.v}")}', { 'var.v': 'z' }), `a \${x} %{y} ${Buffer.from('q"\nz').toString('base64')}`);
  t.equal(renderTemplate('${data.s.outputs.m["k"]}', { 'data.s.outputs.m': { k: 'v' } }), 'v');
  t.throws(() => renderTemplate('${var.nothing}', {}), /no sample value for var\.nothing/);
  t.throws(() => renderTemplate('${upper("x")}', {}), /unknown function upper/);
  t.throws(() => renderTemplate('%{ if true }x%{ endif }', {}), /directives are not supported/);
});

t.test('cloud-init schema accepts every instance\'s user data as Terraform renders it', async (t) => {
  if (!requireTool(t, 'cloud-init', 'apt-get install cloud-init')) return;
  const texts: [string, string][] = [...components.map((c) => [c, userDataOf(c)] as [string, string]), ['database', databaseUserData]];
  const results = await Promise.all(texts.map(([name, text]) => schema(name, text)));
  texts.forEach(([name], i) => {
    t.equal(results[i].code, 0, `${name}: ${results[i].output}`);
    t.match(results[i].output, /Valid cloud-config/, name);
  });
});

t.test('every instance gets its config and PKI files byte for byte, whatever characters the secrets hold', async (t) => {
  for (const c of components) {
    const files = filesOf(userDataOf(c));
    const configText = files.get(`/etc/bluegreen-ca/config/${c}.json`)?.content;
    t.ok(configText, `${c} config`);
    t.doesNotThrow(() => JSON.parse(configText!), `${c} config is JSON`);
    for (const f of pkiFilesOf(c, config)) {
      t.equal(files.get(`/etc/bluegreen-ca/pki/${f}`)?.content, pkiFiles[f], `${c}: ${f}`);
    }
  }
  const sa = saConfig.parse(JSON.parse(filesOf(userDataOf('sa')).get('/etc/bluegreen-ca/config/sa.json')!.content));
  t.equal(sa.db.url, samples[`${outputs}.database_url`]);
  const wfe = wfeConfig.parse(JSON.parse(filesOf(userDataOf('wfe')).get('/etc/bluegreen-ca/config/wfe.json')!.content));
  t.same(wfe.eabKeys, JSON.parse(samples[`${outputs}.eab_keys`] as string));
  t.match(filesOf(userDataOf('ca')).get('/etc/bluegreen-ca/ca.env'), { permissions: '0600', content: /^BLUEGREEN_HSM_PIN="123456"$/m });
});

t.test('the CT log key belongs to the service user alone, and its entries go to its state directory', async (t) => {
  const files = filesOf(userDataOf('ct-log'));
  // The CT log refuses a key file whose group or others may read it.
  t.match(files.get('/etc/bluegreen-ca/pki/ct-log.key'), { owner: 'bluegreen-ca:bluegreen-ca', permissions: '0600' });
  const ct = ctLogConfig.parse(JSON.parse(files.get('/etc/bluegreen-ca/config/ct-log.json')!.content));
  const unit = files.get(`/etc/systemd/system/${serviceName('ct-log')}`)!.content;
  t.match(unit, /^ProtectSystem=strict$/m, 'everything else is read-only');
  const stateDir = `/var/lib/${/^StateDirectory=(.+)$/m.exec(unit)![1]}`;
  t.equal(stateDir, stateDirOf('ct-log'));
  t.ok(ct.dataFile.startsWith(`${stateDir}/`), `${ct.dataFile} is under ${stateDir}`);
});

t.test('the sa applies the migrations with its own config before it starts; no URL is on a command line', async (t) => {
  const unit = filesOf(userDataOf('sa')).get(`/etc/systemd/system/${serviceName('sa')}`)!.content;
  t.match(unit, /^ExecStartPre=\/opt\/node\/bin\/node --enable-source-maps \/opt\/bluegreen-ca\/components\/migrate\.mjs --config \/etc\/bluegreen-ca\/config\/sa\.json$/m);
  for (const c of components) {
    const text = userDataOf(c);
    t.notMatch(text, /--db\b/, `${c}: no --db`);
    const units = [...filesOf(text).values()].filter((f) => f.path.startsWith('/etc/systemd/')).map((f) => f.content).join('\n');
    if (c !== 'sa') t.notMatch(units, /ExecStartPre/, `${c} runs no migration`);
    t.notMatch(units, /postgres:|p%40ss/, `${c}: the database URL is in no unit`);
  }
});

t.test('instances boot the stock image and install the release from where build:package uploads it', async (t) => {
  for (const c of components) {
    t.equal(instances[`${c}-0`].image_name, config.openstack!.image, `${c} image`);
  }
  const ci = parseYaml(readFileSync(join(repoRoot, '.gitlab-ci.yml'), 'utf8')) as Record<string, { script: string[] }>;
  const upload = ci['build:package'].script.join('\n').match(/"(\$CI_API_V4_URL\/projects\/\$CI_PROJECT_ID\/packages\/generic\/[^"]+)"/)?.[1];
  t.ok(upload, 'build:package uploads to the generic package registry');
  // The example config's project: https://gitlab.example.com/api/v4, project 1234.
  const uploaded = upload!
    .replace('$CI_API_V4_URL', 'https://gitlab.example.com/api/v4')
    .replace('$CI_PROJECT_ID', '1234')
    .replace('$BLUEGREEN_RELEASE', config.release.version);
  t.equal(releaseUrlOf(config), uploaded);
  const script = filesOf(userDataOf('wfe')).get('/usr/local/sbin/bluegreen-ca-install')!.content;
  t.match(script, `release_url='${uploaded}'`);
  t.match(script, `release='${config.release.version}'`);
  t.match(script, '"${node_url%/*}/SHASUMS256.txt"', 'shell expansions survive Terraform untouched');
});

t.test('the database instance writes its password to a root-only file and nowhere else', async (t) => {
  const files = filesOf(databaseUserData);
  t.match(files.get('/etc/bluegreen-ca/database.password'), { permissions: '0600', content: samples['var.database_password'] });
  const script = files.get('/usr/local/sbin/bluegreen-ca-database')!;
  t.notMatch(script.content, 'pa"ss', 'the script does not hold the password');
  t.match(script.content, "clients='10.42.0.0/24'");
  const file = join(dir, 'database.sh');
  writeFileSync(file, script.content);
  t.doesNotThrow(() => execFileSync('bash', ['-n', file]), 'bash parses the setup script');
  t.equal(stateStack.resource?.openstack_compute_instance_v2.database.image_name, config.openstack!.image, 'the stock image by default');
});

t.test('every instance\'s user data stays within the 64 KiB OpenStack accepts', async (t) => {
  for (const c of components) {
    const size = Buffer.from(userDataOf(c)).toString('base64').length;
    t.ok(size < 65_535, `${c}: ${size} bytes as base64`);
  }
});
