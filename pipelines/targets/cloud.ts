import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { execa } from 'execa';
import { stackName } from '../../stacks/app.js';
import type { CloudTarget, DeploymentConfig } from '../../stacks/config.js';
import { publicNames } from '../../stacks/model.js';
import { readDeploymentConfig } from '../../stacks/settings.js';
import { repoRoot } from '../local/processes.js';
import { PipelineError } from '../operation.js';
import {
  colors,
  type Color,
  type ColorRuntime,
  type Endpoints,
  type SmokeSetup,
  type Target,
  type TargetDeployRequest,
} from './types.js';

export interface CloudTargetOptions {
  readonly target: CloudTarget;
  /** The deployment config file (YAML). */
  readonly configFile: string;
  /** Where the verbs keep their records (deployment state, lock) on the machine that runs them. */
  readonly stateDir: string;
  /** Environment of cdktf and terraform. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** The cdktf executable. @default node_modules/.bin/cdktf of this checkout */
  readonly cdktf?: string;
}

type Outputs = Record<string, unknown>;

/** Finds an executable on PATH the way a shell would; null when there is none. */
export function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/**
 * A cluster or cloud: cdktf synthesizes the stacks and Terraform applies them. Deploy and
 * destroy apply one color stack; a flip re-applies the state stack with the other active
 * color; status reads the stacks' outputs. Nothing runs without a terraform binary.
 */
export class CloudTargetBase implements Target {
  readonly name: CloudTarget;
  readonly stateDir: string;
  readonly releasesDir: string;
  readonly config: DeploymentConfig;
  private readonly env: NodeJS.ProcessEnv;
  private readonly cdktf: string;
  private readonly outputs = new Map<string, Outputs>();

  constructor(private readonly o: CloudTargetOptions) {
    this.name = o.target;
    this.stateDir = resolve(o.stateDir);
    this.releasesDir = join(this.stateDir, 'releases');
    // A bad config fails here, with one line naming the field, before any command runs.
    this.config = readDeploymentConfig(o.configFile, { target: o.target });
    this.env = o.env ?? process.env;
    this.cdktf = o.cdktf ?? join(repoRoot, 'node_modules', '.bin', 'cdktf');
  }

  private stack(part: 'state' | Color): string {
    return stackName(this.name, part);
  }

  /** Environment for cdktf's app and for terraform: config, overrides, GitLab credentials. */
  private commandEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...this.env,
      BLUEGREEN_DEPLOYMENT_CONFIG: isAbsolute(this.o.configFile) ? this.o.configFile : resolve(this.o.configFile),
      BLUEGREEN_TARGET: this.name,
      CHECKPOINT_DISABLE: '1',
      CI: this.env.CI ?? 'true',
      ...extra,
    };
    // GitLab's Terraform state accepts the job token; credentials never enter the JSON.
    if (this.config.backend.type === 'http' && env.CI_JOB_TOKEN && !env.TF_HTTP_PASSWORD) {
      env.TF_HTTP_USERNAME ??= 'gitlab-ci-token';
      env.TF_HTTP_PASSWORD = env.CI_JOB_TOKEN;
    }
    return env;
  }

  private requireTerraform(): string {
    const terraform = onPath('terraform', this.env);
    if (!terraform) {
      throw new PipelineError(
        `no terraform binary on PATH, so nothing can be applied to ${this.name}`,
        'install terraform (or OpenTofu as `terraform`); `npm run synth` works without it',
      );
    }
    return terraform;
  }

  private async cdktfRun(args: string[], extra: Record<string, string> = {}): Promise<void> {
    this.requireTerraform();
    const result = await execa(this.cdktf, args, {
      cwd: repoRoot,
      env: this.commandEnv(extra),
      extendEnv: false,
      stdin: 'ignore',
      // Progress goes to stderr; stdout stays for the verb's result.
      stdout: 2,
      stderr: 'inherit',
      reject: false,
    });
    if (result.exitCode !== 0) {
      throw new PipelineError(`cdktf ${args.slice(0, 2).join(' ')} exited with ${result.exitCode ?? result.signal}`, 'see the Terraform output above');
    }
  }

  /** Applies one stack, synthesized with `extra` overrides. */
  private async apply(part: 'state' | Color, extra: Record<string, string> = {}): Promise<void> {
    await this.cdktfRun(['deploy', this.stack(part), '--auto-approve'], extra);
    this.outputs.delete(this.stack(part));
  }

  /** A stack's outputs from its Terraform state; empty when it was never applied. */
  async readOutputs(part: 'state' | Color): Promise<Outputs> {
    const name = this.stack(part);
    const cached = this.outputs.get(name);
    if (cached) return cached;

    const terraform = this.requireTerraform();
    await this.cdktfRun(['synth']);
    const dir = join(repoRoot, 'cdktf.out', 'stacks', name);
    const run = (args: string[]) =>
      execa(terraform, [`-chdir=${dir}`, ...args], { env: this.commandEnv(), extendEnv: false, stdin: 'ignore', reject: false });
    const init = await run(['init', '-input=false', '-no-color']);
    if (init.exitCode !== 0) {
      throw new PipelineError(`terraform init of ${name} failed: ${lastLine(init.stderr)}`, 'check the backend settings and credentials');
    }
    const shown = await run(['output', '-json', '-no-color']);
    if (shown.exitCode !== 0) {
      throw new PipelineError(`terraform output of ${name} failed: ${lastLine(shown.stderr)}`, 'check the backend settings and credentials');
    }
    const raw = JSON.parse(shown.stdout || '{}') as Record<string, { value: unknown }>;
    const outputs = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v.value]));
    this.outputs.set(name, outputs);
    return outputs;
  }

  async deploy(req: TargetDeployRequest): Promise<void> {
    // The first deploy creates the shared state; later ones never touch it.
    const state = await this.readOutputs('state');
    if (state.active_color === undefined) await this.apply('state');
    await this.apply(req.color, { BLUEGREEN_RELEASE: req.release, BLUEGREEN_DEPLOYMENT_ID: req.deploymentId });
    await this.readOutputs(req.color);
  }

  previewEndpoints(color: Color): Endpoints {
    const out = this.outputs.get(this.stack(color)) ?? {};
    const httpBase = String(out.preview_http ?? '');
    const ids = this.config.issuers.map((i) => i.id);
    return {
      acme: String(out.preview_acme ?? ''),
      ocsp: ids.map((id) => `${httpBase}/ocsp/${id}`),
      crl: ids.map((id) => `${httpBase}/crl/${id}.crl`),
      httpBase,
    };
  }

  publicEndpoints(): Endpoints {
    const names = publicNames(this.config);
    const ids = this.config.issuers.map((i) => i.id);
    return {
      acme: `https://${names.acme}/directory`,
      ocsp: ids.map((id) => `http://${names.ocsp[id]}/ocsp/${id}`),
      crl: ids.map((id) => `http://${names.crl}/crl/${id}.crl`),
      httpBase: `http://${names.crl}`,
    };
  }

  async flip(color: Color | null): Promise<void> {
    if (color === null) {
      throw new PipelineError(`${this.name} always sends traffic to a color`, 'flip to the other color instead');
    }
    await this.apply('state', { BLUEGREEN_ACTIVE_COLOR: color });
  }

  async activeColor(): Promise<Color | null> {
    const active = (await this.readOutputs('state')).active_color;
    return (colors as readonly unknown[]).includes(active) ? (active as Color) : null;
  }

  // Limitation: no connection count is read from the cloud; the drain time is waited out.
  // See docs/limitations.md#cloud-targets.
  async drain(_color: Color, timeoutMs: number): Promise<number> {
    await new Promise((r) => setTimeout(r, timeoutMs));
    return 0;
  }

  async destroy(color: Color): Promise<void> {
    await this.cdktfRun(['destroy', this.stack(color), '--auto-approve']);
    this.outputs.delete(this.stack(color));
  }

  async runtime(color: Color): Promise<ColorRuntime> {
    const out = await this.readOutputs(color);
    if (out.release === undefined) return { state: 'absent' };
    return { state: 'running', detail: `release ${String(out.release)}` };
  }

  async smokeSetup(color: Color): Promise<SmokeSetup> {
    const smoke = this.config.smoke;
    if (!smoke) {
      throw new PipelineError(
        'the deployment config has no smoke section, so no color can be smoke-tested',
        'add smoke: {domain, httpPort, ctLogPublicKey} (see stacks/deployment.example.yaml)',
      );
    }
    // The preview endpoints come from the color stack's outputs.
    await this.readOutputs(color);
    let ctLogPublicKeyPem: string;
    try {
      ctLogPublicKeyPem = readFileSync(resolve(smoke.ctLogPublicKey), 'utf8');
    } catch (err) {
      throw new PipelineError(
        `smoke.ctLogPublicKey: cannot read ${smoke.ctLogPublicKey}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        'name the ct-log.pub.pem that npm run init wrote',
      );
    }
    return { ctLogPublicKeyPem, domain: smoke.domain, httpPort: smoke.httpPort };
  }

  trustBundle(): string {
    if (!this.config.trustBundle) {
      throw new PipelineError('the deployment config names no trustBundle', 'add trustBundle: <PEM file with the roots clients trust>');
    }
    return resolve(this.config.trustBundle);
  }

  validation() {
    return { httpPort: 80, tlsAlpnPort: 443, allowedDomains: this.config.allowedDomains };
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}
