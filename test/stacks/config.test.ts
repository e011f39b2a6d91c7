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

t.test('refuses an unknown target or color override before validating anything else', async (t) => {
  t.throws(() => parseDeploymentConfig(null, 'bad', { target: 'aws' }), { message: 'target: expected kubernetes or openstack, got aws' });
  t.throws(() => parseDeploymentConfig(null, 'bad', { activeColor: 'purple' }), { message: 'activeColor: expected blue or green, got purple' });
});
