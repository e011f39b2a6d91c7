import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Testing, type TerraformStack } from 'cdktf';
import { parse as parseYaml } from 'yaml';
import { buildStacks } from '../../stacks/app.js';
import { parseDeploymentConfig, type DeploymentConfig } from '../../stacks/config.js';
import { repoRoot } from '../../pipelines/local/processes.js';

/** The documented example config, as a plain object a test may change before validating. */
export function exampleConfigObject(): Record<string, unknown> {
  return parseYaml(readFileSync(join(repoRoot, 'stacks', 'deployment.example.yaml'), 'utf8')) as Record<string, unknown>;
}

export function exampleConfig(overrides: { target?: string; activeColor?: string } = {}): DeploymentConfig {
  return parseDeploymentConfig(exampleConfigObject(), 'example', overrides);
}

/** Synthesized Terraform JSON of one stack, parsed. */
export type StackJson = {
  resource?: Record<string, Record<string, Record<string, unknown>>>;
  data?: Record<string, Record<string, Record<string, unknown>>>;
  output?: Record<string, { value: unknown; sensitive?: boolean }>;
  variable?: Record<string, unknown>;
  terraform?: Record<string, unknown>;
  provider?: Record<string, unknown[]>;
};

export interface Synthesized {
  state: string;
  blue: string;
  green: string;
}

/** Synthesizes every stack of a config with cdktf's Testing app (no files kept). */
export function synthAll(config: DeploymentConfig): Synthesized {
  const app = Testing.app();
  const stacks = buildStacks(app, { config, env: {} });
  const synth = (s: TerraformStack) => Testing.synth(s);
  return { state: synth(stacks.state), blue: synth(stacks.colors.blue), green: synth(stacks.colors.green) };
}

export function parse(json: string): StackJson {
  return JSON.parse(json) as StackJson;
}

/** Every string anywhere in a value. */
export function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

/**
 * References inside `${...}` that do not resolve: resources, data sources and variables of
 * the same stack, and outputs of the state stack read through terraform_remote_state.
 */
export function unresolvedReferences(stack: StackJson, state: StackJson | null): string[] {
  const missing: string[] = [];
  for (const text of strings({ resource: stack.resource, data: stack.data, output: stack.output, provider: stack.provider })) {
    if (!text.includes('${')) continue;
    for (const m of text.matchAll(/data\.terraform_remote_state\.([\w-]+)\.outputs\.(\w+)/g)) {
      if (!stack.data?.terraform_remote_state?.[m[1]]) missing.push(m[0]);
      else if (!state?.output?.[m[2]]) missing.push(m[0]);
    }
    for (const m of text.matchAll(/data\.((?!terraform_remote_state)[a-z0-9_]+)\.([\w-]+)/g)) {
      if (!stack.data?.[m[1]]?.[m[2]]) missing.push(m[0]);
    }
    for (const m of text.matchAll(/(?<![\w.])var\.(\w+)/g)) {
      if (!stack.variable?.[m[1]]) missing.push(m[0]);
    }
    for (const m of text.matchAll(/(?<![\w.])((?:kubernetes|openstack)_[a-z0-9_]+)\.([\w-]+)/g)) {
      if (!stack.resource?.[m[1]]?.[m[2]]) missing.push(m[0]);
    }
  }
  return missing;
}

/** Resource addresses whose bodies differ between two syntheses (metadata comments ignored). */
export function changedResources(a: StackJson, b: StackJson): string[] {
  const bodies = (s: StackJson) => {
    const map = new Map<string, string>();
    for (const [type, byName] of Object.entries(s.resource ?? {})) {
      for (const [name, body] of Object.entries(byName)) {
        const { ['//']: _comment, ...rest } = body;
        map.set(`${type}.${name}`, JSON.stringify(rest));
      }
    }
    return map;
  };
  const left = bodies(a);
  const right = bodies(b);
  const names = new Set([...left.keys(), ...right.keys()]);
  return [...names].filter((n) => left.get(n) !== right.get(n)).sort();
}

/** Every `${...}`-bearing string's references to the other stacks' resources. */
export { Testing };
