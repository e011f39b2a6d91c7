import { App, type TerraformStack } from 'cdktf';
import { addBackend, remoteState, type BackendEnv } from './backend.js';
import type { CloudTarget, DeploymentConfig } from './config.js';
import { KubernetesColorStack } from './kubernetes/color-stack.js';
import { KubernetesStateStack } from './kubernetes/state-stack.js';
import { colors, type Color } from './model.js';
import { OpenStackColorStack } from './openstack/color-stack.js';
import { OpenStackStateStack } from './openstack/state-stack.js';

/**
 * The model of a cloud deployment: per target one `state` stack and one stack per color. cdktf
 * only turns it into Terraform JSON; nothing here depends on a HashiCorp service.
 */

/** Stack names, which are also the names of their Terraform states. */
export function stackName(target: CloudTarget, part: 'state' | Color): string {
  return `${target}-${part}`;
}

export interface CloudStacks {
  readonly state: TerraformStack;
  readonly colors: Record<Color, TerraformStack>;
}

export interface BuildOptions {
  readonly config: DeploymentConfig;
  /** Deployment id recorded in a color stack's outputs. @default none */
  readonly deploymentId?: string;
  /** Where the backend finds GitLab CI's variables. @default process.env */
  readonly env?: BackendEnv;
}

/** Adds the stacks of `config.target` to `app`. */
export function buildStacks(app: App, o: BuildOptions): CloudStacks {
  const { config } = o;
  const env = o.env ?? process.env;
  const target = config.target;
  const stateName = stackName(target, 'state');
  const readState = (scope: Parameters<typeof remoteState>[0]) => remoteState(scope, 'state', config.backend, stateName, env);

  let state: TerraformStack;
  const byColor = {} as Record<Color, TerraformStack>;
  if (target === 'kubernetes') {
    const settings = config.kubernetes!;
    state = new KubernetesStateStack(app, stateName, { config, settings, activeColor: config.activeColor });
    for (const color of colors) {
      byColor[color] = new KubernetesColorStack(app, stackName(target, color), { config, settings, color, readState, deploymentId: o.deploymentId });
    }
  } else {
    const settings = config.openstack!;
    state = new OpenStackStateStack(app, stateName, { config, settings, activeColor: config.activeColor });
    for (const color of colors) {
      byColor[color] = new OpenStackColorStack(app, stackName(target, color), { config, settings, color, readState, deploymentId: o.deploymentId });
    }
  }

  addBackend(state, config.backend, stateName, env);
  for (const color of colors) addBackend(byColor[color], config.backend, stackName(target, color), env);
  return { state, colors: byColor };
}

/** Synthesizes every stack of the config's target into `outdir`; returns the stack names. */
export function synthesize(o: BuildOptions & { outdir: string }): string[] {
  const app = new App({ outdir: o.outdir, skipValidation: false });
  const stacks = buildStacks(app, o);
  app.synth();
  return [stacks.state, ...Object.values(stacks.colors)].map((s) => s.node.id);
}
