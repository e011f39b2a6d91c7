import { interruptedOperation, readState } from './local/state.js';
import { LocalTarget } from './targets/local.js';
import { colors, type Color, type PipelineTarget } from './targets/types.js';

/** `status --json`: a contract that pipelines and tests read (see DESIGN.md). */
export interface StatusReport {
  target: string;
  active: Color | null;
  previous: Color | null;
  public: { acme: string; ocsp: string[]; crl: string[]; trustBundle: string };
  validation: { httpPort: number; tlsAlpnPort: number; allowedDomains: string[] };
  colors: Record<Color, Record<string, unknown>>;
  /** An operation in progress, or one whose process died half-way. */
  operation: Record<string, unknown> | null;
}

/**
 * Reports what runs, trusting what the load balancer and the supervisors say over what the
 * state file remembers, so a run killed half-way is reported as it really left things.
 */
export async function status(o: { target: PipelineTarget }): Promise<StatusReport> {
  const state = readState(o.target.stateDir);
  if (o.target instanceof LocalTarget) await o.target.sharedState();
  const active = await o.target.activeColor();
  const pub = o.target.publicEndpoints();

  const report: StatusReport = {
    target: o.target.name,
    active,
    previous: state.previous,
    public: { acme: pub.acme, ocsp: [...pub.ocsp], crl: [...pub.crl], trustBundle: o.target.trustBundle() },
    validation: { ...o.target.validation(), allowedDomains: [...o.target.validation().allowedDomains] },
    colors: { blue: { state: 'absent' }, green: { state: 'absent' } },
    operation: null,
  };

  for (const color of colors) {
    const d = state.colors[color];
    const runtime = await o.target.runtime(color);
    const entry: Record<string, unknown> = { ...d };
    delete entry.resources;
    if (d.state === 'running' && runtime.state !== 'running') {
      entry.state = 'failed';
      entry.detail = runtime.detail ?? `its processes are ${runtime.state}`;
    } else if (d.state === 'absent' && runtime.state === 'running') {
      entry.state = 'running';
      entry.detail = 'running but not recorded in the state file';
    }
    report.colors[color] = entry;
  }

  const marker = state.operation;
  if (marker) {
    const dead = interruptedOperation(state);
    report.operation = { ...marker, interrupted: dead !== null };
  }
  if (state.active !== active) {
    report.operation = {
      ...(report.operation ?? {}),
      mismatch: `the state file says ${state.active ?? 'none'} is active, the load balancer serves ${active ?? 'none'}`,
    };
  }
  return report;
}
