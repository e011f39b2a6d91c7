import { App } from 'cdktf';
import { buildStacks } from './app.js';
import { DeploymentConfigError } from './config.js';
import { configFileFrom, envOverrides, readDeploymentConfig } from './settings.js';

/**
 * cdktf.json's app: `cdktf synth|deploy|destroy` run this. The deployment config is the file
 * BLUEGREEN_DEPLOYMENT_CONFIG names (or deployment.yaml); BLUEGREEN_TARGET,
 * BLUEGREEN_ACTIVE_COLOR, BLUEGREEN_RELEASE and BLUEGREEN_DEPLOYMENT_ID override it.
 */
try {
  const file = configFileFrom(undefined);
  if (!file) throw new DeploymentConfigError('no deployment config: set BLUEGREEN_DEPLOYMENT_CONFIG or create deployment.yaml from stacks/deployment.example.yaml');
  const config = readDeploymentConfig(file, { ...envOverrides(), release: process.env.BLUEGREEN_RELEASE });
  const app = new App();
  buildStacks(app, { config, deploymentId: process.env.BLUEGREEN_DEPLOYMENT_ID });
  app.synth();
} catch (err) {
  if (!(err instanceof DeploymentConfigError)) throw err;
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
}
