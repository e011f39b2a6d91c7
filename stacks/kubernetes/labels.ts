import type { Color, Component } from '../model.js';

/** Labels every object of the deployment carries; Service selectors and policies match them. */
export const appLabel = { app: 'bluegreen-ca' } as const;

/** Labels of one component's pods in one color. */
export function podLabels(component: Component | 'migrate', color: Color): Record<string, string> {
  return { ...appLabel, component, color };
}

/** Kubernetes label values allow [A-Za-z0-9._-]; a release version's `+` becomes `_`. */
export function labelValue(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 63);
}

/** Names allow [a-z0-9-]: a release version as part of a Job name. */
export function nameSafe(value: string): string {
  return value.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/-+/g, '-').slice(0, 40).replace(/-$/, '');
}
