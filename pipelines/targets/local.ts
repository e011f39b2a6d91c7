import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { join, resolve } from 'node:path';
import { launchProxy, stopProxy } from '../local/lb/launch.js';
import { flip as writeFlip, readRouteFile, waitForRoutes, writeRouteFile } from '../local/lb/route-file.js';
import type { ProxyConfig } from '../local/lb/config.js';
import { componentTiers } from '../local/ca-instance.js';
import { writeConfigs, type ColorSettings, type Component } from '../local/configs.js';
import { migrationJobFile } from '../release.js';
import type { CaPorts } from '../local/ports.js';
import { ensureSharedState, type SharedState } from '../local/shared-state.js';
import {
  launchSupervisor,
  readSupervisorStatus,
  stopSupervisor,
  alive,
  type SupervisorConfig,
} from '../local/supervisor.js';
import type { Color, ColorRuntime, Endpoints, SmokeSetup, Target, TargetDeployRequest } from './types.js';

/** Public and preview ports of the local load balancer. */
export const localLbPorts = {
  public: { acme: 14000, http: 4002 },
  preview: { blue: { acme: 14001, http: 4003 }, green: { acme: 14002, http: 4004 } },
  admin: 8090,
} as const;

/** The loopback ports one color's components use; the two colors never share one. */
export function colorPorts(color: Color): CaPorts {
  const base = color === 'blue' ? 20_000 : 21_000;
  return {
    acme: base,
    publicHttp: base + 1,
    ctLog: base + 2,
    rpc: { ra: base + 10, sa: base + 11, va: base + 12, ca: base + 13, publisher: base + 14 },
    admin: {
      wfe: base + 20,
      ra: base + 21,
      sa: base + 22,
      va: base + 23,
      ca: base + 24,
      'ocsp-responder': base + 25,
      'ct-log': base + 26,
      publisher: base + 27,
    },
    validation: { httpPort: 5002, tlsAlpnPort: 5001 },
  };
}

export interface LocalTargetOptions {
  readonly stateDir: string;
  readonly settings: ColorSettings;
  /** Where releases live. @default <stateDir>/releases */
  readonly releasesDir?: string;
}

/**
 * The embedded default: each color a supervisor process with every component on loopback,
 * a TCP load balancer in front, shared state in one folder.
 */
export class LocalTarget implements Target {
  readonly name = 'local' as const;
  readonly stateDir: string;
  readonly releasesDir: string;
  private shared: SharedState | undefined;

  constructor(private readonly o: LocalTargetOptions) {
    this.stateDir = resolve(o.stateDir);
    this.releasesDir = o.releasesDir ?? join(this.stateDir, 'releases');
  }

  private get lbDir() {
    return join(this.stateDir, 'lb');
  }

  private get routeFile() {
    return join(this.lbDir, 'routes.json');
  }

  private adminUrl() {
    return `http://127.0.0.1:${localLbPorts.admin}`;
  }

  colorDir(color: Color): string {
    return join(this.stateDir, 'colors', color);
  }

  private statusFile(color: Color) {
    return join(this.colorDir(color), 'supervisor-status.json');
  }

  /** Shared state: created once, migrated on every call (expand-only migrations). */
  async sharedState(): Promise<SharedState> {
    this.shared ??= await ensureSharedState({
      stateDir: this.stateDir,
      publicHttpBase: `http://127.0.0.1:${localLbPorts.public.http}`,
    });
    return this.shared;
  }

  /** Starts the load balancer unless it runs. */
  async ensureLoadBalancer(): Promise<void> {
    try {
      const res = await fetch(`${this.adminUrl()}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok && existsSync(join(this.lbDir, 'lb.pid'))) return;
      if (res.ok) {
        throw new Error(
          `another load balancer answers on port ${localLbPorts.admin}; stop it (npm run teardown in its state directory) first`,
        );
      }
    } catch (err) {
      if ((err as Error).message.startsWith('another')) throw err;
    }

    mkdirSync(this.lbDir, { recursive: true });
    if (!existsSync(this.routeFile)) writeRouteFile(this.routeFile, { active: null, preview: [] });
    const backends = (pick: (p: CaPorts) => number) => ({
      blue: `127.0.0.1:${pick(colorPorts('blue'))}`,
      green: `127.0.0.1:${pick(colorPorts('green'))}`,
    });
    const config: ProxyConfig = {
      routeFile: this.routeFile,
      adminListen: `127.0.0.1:${localLbPorts.admin}`,
      drainGraceMs: 10_000,
      routes: [
        { name: 'acme', listen: `127.0.0.1:${localLbPorts.public.acme}`, backends: backends((p) => p.acme) },
        { name: 'http', listen: `127.0.0.1:${localLbPorts.public.http}`, backends: backends((p) => p.publicHttp) },
        ...(['blue', 'green'] as const).flatMap((color) => [
          { name: 'acme', listen: `127.0.0.1:${localLbPorts.preview[color].acme}`, color },
          { name: 'http', listen: `127.0.0.1:${localLbPorts.preview[color].http}`, color },
        ]),
      ],
    };
    const configFile = join(this.lbDir, 'lb.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n');
    await launchProxy({ configFile, logFile: join(this.lbDir, 'lb.log') });
  }

  /** Stops the load balancer (the public endpoints go down). */
  async stopLoadBalancer(): Promise<void> {
    await stopProxy(join(this.lbDir, 'lb.pid'));
  }

  async deploy(req: TargetDeployRequest): Promise<void> {
    const shared = await this.sharedState();
    await this.ensureLoadBalancer();
    const releaseDir = join(this.releasesDir, req.release);
    if (!existsSync(join(releaseDir, 'release.json'))) {
      throw new Error(`release ${req.release} is not built under ${this.releasesDir}`);
    }

    await this.runMigrationJob(releaseDir, req.release, shared.dbUrl);

    const dir = this.colorDir(req.color);
    await stopSupervisor(this.statusFile(req.color));
    rmSync(join(dir, 'config'), { recursive: true, force: true });
    const ports = colorPorts(req.color);
    const files = writeConfigs(join(dir, 'config'), shared, ports, this.o.settings);

    const config: SupervisorConfig = {
      color: req.color,
      releaseDir,
      logDir: join(dir, 'logs'),
      statusFile: this.statusFile(req.color),
      tiers: componentTiers,
      components: Object.fromEntries(
        Object.entries(files).map(([c, configFile]) => [
          c,
          { configFile, adminPort: ports.admin[c as Component] },
        ]),
      ),
    };
    const configFile = join(dir, 'supervisor.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n');
    const status = await launchSupervisor(configFile);
    if (status.state !== 'running') {
      throw new Error(`${req.color} did not start: ${status.detail ?? status.state}`);
    }
    this.setPreview(req.color, true);
  }

  /**
   * Applies the release's own migrations, as a color's migration job does on a cluster, so a
   * release whose schema is newer than this toolkit's still deploys. A release built before
   * releases carried the job relies on the toolkit's migrations, applied in sharedState().
   */
  private async runMigrationJob(releaseDir: string, release: string, dbUrl: string): Promise<void> {
    const job = join(releaseDir, migrationJobFile);
    if (!existsSync(job)) return;
    const result = await execa(process.execPath, [job, '--db', dbUrl], {
      cwd: releaseDir,
      reject: false,
      timeout: 120_000,
    });
    if (result.exitCode !== 0) {
      const line = result.stderr.trim().split('\n').pop() ?? `exit code ${result.exitCode}`;
      throw new Error(`the migration job of release ${release} failed: ${line}`);
    }
  }

  private setPreview(color: Color, on: boolean): void {
    const routes = readRouteFile(this.routeFile);
    const preview = new Set(routes.preview);
    if (on) preview.add(color);
    else preview.delete(color);
    writeRouteFile(this.routeFile, { active: routes.active, preview: [...preview] });
  }

  private endpoints(acmePort: number, httpPort: number, issuerIds: readonly string[]): Endpoints {
    const httpBase = `http://127.0.0.1:${httpPort}`;
    return {
      acme: `https://127.0.0.1:${acmePort}/directory`,
      ocsp: issuerIds.map((id) => `${httpBase}/ocsp/${id}`),
      crl: issuerIds.map((id) => `${httpBase}/crl/${id}.crl`),
      httpBase,
    };
  }

  private issuerIds(): string[] {
    return this.shared?.issuers.map((i) => i.id) ?? [];
  }

  previewEndpoints(color: Color): Endpoints {
    const p = localLbPorts.preview[color];
    return this.endpoints(p.acme, p.http, this.issuerIds());
  }

  publicEndpoints(): Endpoints {
    return this.endpoints(localLbPorts.public.acme, localLbPorts.public.http, this.issuerIds());
  }

  async flip(color: Color | null): Promise<void> {
    await this.ensureLoadBalancer();
    const result = writeFlip(this.routeFile, color);
    await waitForRoutes(this.adminUrl(), { revision: result.revision }, 10_000);
  }

  async activeColor(): Promise<Color | null> {
    if (!existsSync(this.routeFile)) return null;
    return readRouteFile(this.routeFile).active;
  }

  /** Waits until the load balancer holds no open connection to `color`, at most `timeoutMs`. */
  async drain(color: Color, timeoutMs: number): Promise<number> {
    const supervisor = readSupervisorStatus(this.statusFile(color));
    if (supervisor && alive(supervisor.pid)) process.kill(supervisor.pid, 'SIGUSR2');
    const deadline = Date.now() + timeoutMs;
    let open = 0;
    do {
      try {
        const res = await fetch(`${this.adminUrl()}/status`, { signal: AbortSignal.timeout(1000) });
        const status = (await res.json()) as { open: Partial<Record<Color, number>> };
        open = status.open[color] ?? 0;
      } catch {
        return 0;
      }
      if (open === 0) return 0;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < deadline);
    return open;
  }

  async destroy(color: Color): Promise<void> {
    if (existsSync(this.routeFile)) this.setPreview(color, false);
    await stopSupervisor(this.statusFile(color));
    rmSync(this.colorDir(color), { recursive: true, force: true });
  }

  async runtime(color: Color): Promise<ColorRuntime> {
    const status = readSupervisorStatus(this.statusFile(color));
    if (!status) return { state: 'absent' };
    if (!alive(status.pid)) return { state: 'stopped', detail: 'its supervisor is not running' };
    if (status.state === 'running') return { state: 'running' };
    if (status.state === 'failed') return { state: 'failed', detail: status.detail };
    return { state: 'stopped', detail: status.state };
  }

  async smokeSetup(_color: Color): Promise<SmokeSetup> {
    const shared = await this.sharedState();
    return {
      ctLogPublicKeyPem: readFileSync(shared.ctLogPublicKeyFile, 'utf8'),
      domain: this.o.settings.allowedDomains[0],
      httpPort: this.validation().httpPort,
    };
  }

  trustBundle(): string {
    return join(this.stateDir, 'roots.pem');
  }

  validation() {
    const v = colorPorts('blue').validation;
    return { ...v, allowedDomains: this.o.settings.allowedDomains };
  }
}
