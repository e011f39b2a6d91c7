import { resolve } from 'node:path';
import {
  DataTerraformRemoteStateHttp,
  DataTerraformRemoteStateLocal,
  HttpBackend,
  LocalBackend,
  type TerraformRemoteState,
  type TerraformStack,
} from 'cdktf';
import type { Construct } from 'constructs';
import { DeploymentConfigError, type BackendSettings } from './config.js';

/**
 * Where each stack keeps its Terraform state, and how a color stack reads the state stack's
 * outputs. Only Terraform's own `http` and `local` backends: GitLab's Terraform state speaks
 * the first; nothing here needs a HashiCorp service.
 */

/** Environment the backend falls back to (GitLab CI's predefined variables). */
export type BackendEnv = Readonly<Record<string, string | undefined>>;

/** The HTTP address of one stack's state. */
export function httpStateAddress(settings: BackendSettings & { type: 'http' }, stackName: string, env: BackendEnv): string {
  const base =
    settings.address ??
    (env.CI_API_V4_URL && env.CI_PROJECT_ID
      ? `${env.CI_API_V4_URL}/projects/${env.CI_PROJECT_ID}/terraform/state`
      : undefined);
  if (!base) {
    throw new DeploymentConfigError(
      'backend.address: expected the Terraform state URL (https://<gitlab>/api/v4/projects/<id>/terraform/state), ' +
        'or CI_API_V4_URL and CI_PROJECT_ID in the environment',
    );
  }
  return `${base.replace(/\/+$/, '')}/${stackName}`;
}

function httpConfig(settings: BackendSettings & { type: 'http' }, stackName: string, env: BackendEnv) {
  const address = httpStateAddress(settings, stackName, env);
  // Credentials stay out of the synthesized JSON: Terraform reads TF_HTTP_USERNAME and
  // TF_HTTP_PASSWORD (in GitLab CI: gitlab-ci-token and $CI_JOB_TOKEN).
  return settings.lock
    ? { address, lockAddress: `${address}/lock`, lockMethod: 'POST', unlockAddress: `${address}/lock`, unlockMethod: 'DELETE', retryWaitMin: 5 }
    : { address };
}

/** Gives `stack` its backend. */
export function addBackend(stack: TerraformStack, settings: BackendSettings, stackName: string, env: BackendEnv): void {
  if (settings.type === 'http') {
    new HttpBackend(stack, httpConfig(settings, stackName, env));
  } else {
    new LocalBackend(stack, { path: resolve(settings.dir, `${stackName}.tfstate`) });
  }
}

/** A data source reading another stack's outputs through the same backend. */
export function remoteState(scope: Construct, id: string, settings: BackendSettings, stackName: string, env: BackendEnv): TerraformRemoteState {
  if (settings.type === 'http') {
    return new DataTerraformRemoteStateHttp(scope, id, { address: httpStateAddress(settings, stackName, env) });
  }
  return new DataTerraformRemoteStateLocal(scope, id, { path: resolve(settings.dir, `${stackName}.tfstate`) });
}
