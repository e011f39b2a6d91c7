/**
 * What every place the CA can run offers the pipeline verbs. Pipelines never know which
 * target runs: `deploy`, `smoke`, `flip-color`, `teardown`, `rollback` and `status` call these.
 */

import { colors, type Color } from '../local/state.js';

export { colors, type Color };

export function otherColor(color: Color): Color {
  return color === 'blue' ? 'green' : 'blue';
}

/** Where clients reach one color, or the public (active) side. */
export interface Endpoints {
  /** ACME directory URL. */
  readonly acme: string;
  /** OCSP responder URLs, one per issuer. */
  readonly ocsp: readonly string[];
  /** CRL URLs, one per issuer. */
  readonly crl: readonly string[];
  /** Origin of OCSP, CRL and issuer URLs (`http://host:port`), for rewriting certificate URLs. */
  readonly httpBase: string;
}

export interface TargetDeployRequest {
  readonly color: Color;
  /** Release version to run. */
  readonly release: string;
  readonly deploymentId: string;
}

/** What runs in a color, as the target sees it (not as the state file remembers it). */
export interface ColorRuntime {
  readonly state: 'absent' | 'running' | 'failed' | 'stopped';
  readonly detail?: string;
}

export interface Target {
  readonly name: 'local' | 'kubernetes' | 'openstack';
  /** Applies migrations and starts `release` in `color`; resolves once it is healthy. */
  deploy(req: TargetDeployRequest): Promise<void>;
  /** Preview endpoints of one color. */
  previewEndpoints(color: Color): Endpoints;
  /** Endpoints of whichever color the load balancer sends traffic to. */
  publicEndpoints(): Endpoints;
  /** Sends new connections to `color` (null: to no color); open ones finish where they are. */
  flip(color: Color | null): Promise<void>;
  /** The color the load balancer sends traffic to now, if it runs. */
  activeColor(): Promise<Color | null>;
  /** Stops and removes one color; never touches shared state. */
  destroy(color: Color): Promise<void>;
  runtime(color: Color): Promise<ColorRuntime>;
  /** PEM file with every root a client must trust. */
  trustBundle(): string;
  /** Where the VA looks for answers and which domains it allows. */
  validation(): { httpPort: number; tlsAlpnPort: number; allowedDomains: readonly string[] };
}

/** A target the pipeline verbs run against: they keep their records under `stateDir`. */
/** What the smoke tests need of a color besides its preview endpoints. */
export interface SmokeSetup {
  /** PEM of the CT log's public key, for checking the certificate's SCTs. */
  readonly ctLogPublicKeyPem: string;
  /** A name under an allowed domain whose subdomains reach the machine running the smoke. */
  readonly domain: string;
  /** The port on this machine the color's VA fetches http-01 answers from. */
  readonly httpPort: number;
}

export interface PipelineTarget extends Target {
  /** Reads what the smoke tests need; also loads the color's preview endpoints. */
  smokeSetup(color: Color): Promise<SmokeSetup>;
  readonly stateDir: string;
  /** Where releases built on this machine go. */
  readonly releasesDir: string;
  /** Waits until `color` holds no open connection, at most `timeoutMs`; returns those left. */
  drain(color: Color, timeoutMs: number): Promise<number>;
}
