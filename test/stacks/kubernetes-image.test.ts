import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { ctLogConfig } from '../../components/ct-log/config.js';
import { repoRoot } from '../../pipelines/local/processes.js';
import { findComponents, migrationJobFile } from '../../pipelines/release.js';
import { componentConfigText, components, layout, type Component } from '../../stacks/model.js';
import { exampleConfig, parse, synthAll } from './helpers.js';

// A Kubernetes color runs the image images/Dockerfile builds and .gitlab-ci.yml tags: its
// entrypoint takes the component first, it works in /opt/bluegreen-ca as user 10001, and its
// root file system is read-only, so whatever a component writes must be on a volume.

const config = exampleConfig({ target: 'kubernetes' });
const blue = parse(synthAll(config).blue);

interface Mount {
  name: string;
  mount_path: string;
  read_only?: boolean;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: unknown[];
  security_context: Record<string, unknown>;
  volume_mount: Mount[];
}
interface Volume {
  name: string;
  secret?: { secret_name: string; items?: { key: string; path: string }[] };
  config_map?: { items: { key: string; path: string }[] };
  empty_dir?: { medium?: string };
  persistent_volume_claim?: { claim_name: string };
}
interface PodSpec {
  container: Container[];
  init_container?: Container[];
  volume: Volume[];
  security_context: Record<string, unknown>;
}

const podOf = (c: Component) => (blue.resource?.kubernetes_deployment_v1[`${c}-deployment`] as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
const job = blue.resource?.kubernetes_job_v1.migrate as { spec: { template: { spec: PodSpec } } };

const dockerfile = readFileSync(join(repoRoot, 'images', 'Dockerfile'), 'utf8');
const instruction = (keyword: string) => [...dockerfile.matchAll(new RegExp(`^${keyword}\\s+(.+)$`, 'gm'))].map((m) => m[1]).at(-1);
const [imageUser, imageGroup] = instruction('USER')!.split(':');

/** Names the entrypoint accepts first: the release's bundles, components/<name>.mjs. */
const runnable = [...findComponents(repoRoot), basename(migrationJobFile, '.mjs')];

t.test('the image works in the release folder as a numeric user the pods run as', async (t) => {
  t.equal(instruction('WORKDIR'), layout.app);
  t.same(JSON.parse(instruction('ENTRYPOINT')!), ['/usr/local/bin/bluegreen-ca']);
  t.match(dockerfile, /^COPY images\/entrypoint\.sh \/usr\/local\/bin\/bluegreen-ca$/m);
  // Mount points of the config, PKI and CT log volumes exist in the image.
  for (const dir of [layout.config, layout.pki, '/var/lib/bluegreen-ca']) t.match(dockerfile, new RegExp(`mkdir -p .*${dir}( |$)`, 'm'), dir);
  for (const pod of [...components.map(podOf), job.spec.template.spec]) {
    t.match(pod.security_context, { run_as_user: imageUser, run_as_group: imageGroup, fs_group: imageGroup });
    for (const container of [...pod.container, ...(pod.init_container ?? [])]) {
      t.match(container.security_context, { run_as_user: imageUser, run_as_group: imageGroup, read_only_root_filesystem: true }, container.name);
    }
  }
});

t.test('deployments run the release image tagged as the pipeline tags it', async (t) => {
  const ci = readFileSync(join(repoRoot, '.gitlab-ci.yml'), 'utf8');
  t.match(ci, /"\$\(printf %s "\$version" \| tr \+ _\)"/, 'build:bundle writes BLUEGREEN_IMAGE_TAG with tr + _');
  t.match(ci, /--destination "\$BLUEGREEN_IMAGE:\$BLUEGREEN_IMAGE_TAG"/);
  const tag = execFileSync('sh', ['-c', 'printf %s "$1" | tr + _', 'sh', config.release.version], { encoding: 'utf8' });
  for (const c of components) t.equal(podOf(c).container[0].image, `${config.release.image}:${tag}`, c);
  t.equal(job.spec.template.spec.container[0].image, `${config.release.image}:${tag}`, 'migration job');
});

t.test('each container hands its component and config file to the entrypoint', async (t) => {
  for (const c of components) {
    const pod = podOf(c);
    const [container] = pod.container;
    t.equal(container.command, undefined, `${c} keeps the image's entrypoint`);
    t.same(container.args, [c, '--config', `${layout.config}/${c}.json`], c);
    t.ok(runnable.includes(container.args![0]), `${c} is a bundle of the release`);
    const mount = container.volume_mount.find((m) => m.mount_path === layout.config)!;
    const volume = pod.volume.find((v) => v.name === mount.name)!;
    const items = volume.secret?.items ?? volume.config_map?.items ?? [];
    t.same(items.map((i) => i.path), [`${c}.json`], `${c}'s config file is in its config volume`);
  }
});

t.test('the migration job runs the release\'s migrate bundle with the SA config, not a URL', async (t) => {
  const spec = job.spec.template.spec;
  const [container] = spec.container;
  t.equal(container.command, undefined);
  t.same(container.args, ['migrate', '--config', `${layout.config}/sa.json`]);
  t.ok(runnable.includes('migrate'), 'the release bundles components/migrate.mjs');
  t.notOk(container.env?.length, 'no environment: no DATABASE_URL');
  t.notMatch(JSON.stringify(job), /database_url|database_secret/, 'the job spec references no database URL');
  const mount = container.volume_mount.find((m) => m.mount_path === layout.config)!;
  t.match(spec.volume.find((v) => v.name === mount.name), { secret: { secret_name: '${kubernetes_secret_v1.config-secret.metadata[0].name}', items: [{ key: 'sa.json', path: 'sa.json' }] } });
});

t.test('on a read-only root, what a component writes is on a writable volume', async (t) => {
  for (const c of components) {
    const mounts = podOf(c).container[0].volume_mount;
    t.match(mounts.find((m) => m.mount_path === '/tmp'), { read_only: undefined }, `${c} has a writable /tmp`);
    for (const m of mounts.filter((x) => x.mount_path !== '/tmp')) {
      if (!(c === 'ct-log' && m.mount_path === layout.ctLogData)) t.equal(m.read_only, true, `${c}: ${m.mount_path} is read-only`);
    }
  }
  const pod = podOf('ct-log');
  const ct = ctLogConfig.parse(JSON.parse(componentConfigText('ct-log', { config, hostOf: (x) => x, databaseUrl: '', eabKeysJson: '{}' })));
  const data = pod.container[0].volume_mount.find((m) => ct.dataFile.startsWith(`${m.mount_path}/`));
  t.ok(data, `${ct.dataFile} is on a volume`);
  t.notOk(data!.read_only, 'which is writable');
  t.match(pod.volume.find((v) => v.name === data!.name), { persistent_volume_claim: { claim_name: '${data.terraform_remote_state.state.outputs.ct_log_claim}' } }, 'the shared claim');
});

t.test('the CT log gets its key with mode 0600, as the service user, through an init container', async (t) => {
  const pod = podOf('ct-log');
  const [init] = pod.init_container ?? [];
  t.ok(init, 'an init container');
  t.equal(init.image, pod.container[0].image);
  t.same(init.command, ['sh', '-c', `install -m 0600 ${layout.pki}-secret/ct-log.key ${layout.pki}/ct-log.key`]);
  const pki = pod.container[0].volume_mount.find((m) => m.mount_path === layout.pki)!;
  t.match(pod.volume.find((v) => v.name === pki.name), { empty_dir: { medium: 'Memory' } }, 'the key is copied into memory, not onto the node disk');
  for (const c of components.filter((x) => x !== 'ct-log')) t.equal(podOf(c).init_container, undefined, `${c} reads its secret volume directly`);
});
