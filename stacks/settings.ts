import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../pipelines/local/processes.js';
import { loadDeploymentConfig, type ConfigOverrides, type DeploymentConfig } from './config.js';

/**
 * Where the deployment config comes from, shared by `npm run synth`, the cloud targets and
 * cdktf.json's app: --config, else BLUEGREEN_DEPLOYMENT_CONFIG, else deployment.yaml at the
 * top of the checkout.
 */

export const exampleConfigFile = join(repoRoot, 'stacks', 'deployment.example.yaml');
export const defaultConfigFile = join(repoRoot, 'deployment.yaml');

/** The config file to read; `null` when none was named and deployment.yaml does not exist. */
export function configFileFrom(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  const named = explicit ?? env.BLUEGREEN_DEPLOYMENT_CONFIG;
  if (named) return named;
  return existsSync(defaultConfigFile) ? defaultConfigFile : null;
}

/**
 * Overrides from the environment, which is how the cloud targets tell cdktf's app what to
 * synthesize: BLUEGREEN_TARGET, BLUEGREEN_ACTIVE_COLOR (a flip), BLUEGREEN_RELEASE.
 */
export function envOverrides(env: NodeJS.ProcessEnv = process.env): ConfigOverrides {
  return {
    ...(env.BLUEGREEN_TARGET ? { target: env.BLUEGREEN_TARGET } : {}),
    ...(env.BLUEGREEN_ACTIVE_COLOR ? { activeColor: env.BLUEGREEN_ACTIVE_COLOR } : {}),
  };
}

/** Reads the config and applies a release override. */
export function readDeploymentConfig(file: string, overrides: ConfigOverrides & { release?: string }): DeploymentConfig {
  const config = loadDeploymentConfig(file, overrides);
  return overrides.release ? { ...config, release: { ...config.release, version: overrides.release } } : config;
}
