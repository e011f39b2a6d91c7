import t from 'tap';
import { DeploymentConfigError, parseDeploymentConfig } from '../../stacks/config.js';
import { exampleConfigObject } from './helpers.js';

t.test('the documented example validates for both targets', async (t) => {
  for (const target of ['kubernetes', 'openstack']) {
    const config = parseDeploymentConfig(exampleConfigObject(), 'example', { target });
    t.equal(config.target, target);
    t.equal(config.activeColor, 'blue');
  }
});

const cases: [string, (c: Record<string, any>) => void, RegExp][] = [
  ['rejects a missing domain', (c) => delete c.domain, /^bad: domain: .*expected string/],
  ['rejects a color that is neither blue nor green', (c) => (c.activeColor = 'red'), /^bad: activeColor: .*"blue"\|"green"/],
  ['rejects an active issuer that is not listed', (c) => (c.activeIssuer = 'nope'), /^bad: activeIssuer: expected one of the issuers' ids \(int-2025\)$/],
  ['rejects a target without its section', (c) => delete c.kubernetes, /^bad: kubernetes: required when the target is kubernetes$/],
  ['rejects a bad quantity', (c) => (c.sizes.memoryLimit = 'lots'), /^bad: sizes\.memoryLimit: expected a Kubernetes quantity/],
  ['rejects an unknown field', (c) => (c.colour = 'blue'), /^bad: \(top level\): .*colour/],
  ['rejects an unknown backend type', (c) => (c.backend = { type: 's3' }), /^bad: backend\.type: /],
  ['rejects an openstack config without a release URL', (c) => {
    c.target = 'openstack';
    delete c.release.url;
  }, /^bad: release\.url: required when the target is openstack: the instances download the release from it$/],
  ['rejects a release URL without {version}', (c) => (c.release.url = 'https://gitlab.example.com/release.tar.gz'), /^bad: release\.url: expected an https URL with \{version\} where the release version goes$/],
  ['rejects a plain-HTTP release URL', (c) => (c.release.url = 'http://gitlab.example.com/{version}/release.tar.gz'), /^bad: release\.url: expected an https URL/],
  ['rejects the Glance image prefix of earlier configs', (c) => (c.openstack.imagePrefix = 'bluegreen-ca-'), /^bad: openstack: .*imagePrefix/],
];
for (const [name, change, message] of cases) {
  t.test(name, async (t) => {
    const c = exampleConfigObject() as Record<string, any>;
    change(c);
    let caught: unknown;
    try {
      parseDeploymentConfig(c, 'bad');
    } catch (err) {
      caught = err;
    }
    t.type(caught, DeploymentConfigError);
    const text = (caught as Error).message;
    t.notMatch(text, /\n/, 'one line');
    t.match(text, message);
  });
}

t.test('a kubernetes config needs no release URL', async (t) => {
  const c = exampleConfigObject() as Record<string, any>;
  delete c.release.url;
  t.equal(parseDeploymentConfig(c, 'k8s', { target: 'kubernetes' }).release.url, undefined);
});

t.test('refuses an unknown target or color override before validating anything else', async (t) => {
  t.throws(() => parseDeploymentConfig(null, 'bad', { target: 'aws' }), { message: 'target: expected kubernetes or openstack, got aws' });
  t.throws(() => parseDeploymentConfig(null, 'bad', { activeColor: 'purple' }), { message: 'activeColor: expected blue or green, got purple' });
});
