// Runs a deployment graph as supervised child processes on this host: prefixed logs,
// readiness from each service's ready line, restart with backoff when one crashes (or not:
// tests kill replicas on purpose), replica counts changed at run time through the scale
// port, and an orderly stop (frontend first). It does not compile graphs or pick ports and
// directories: graph.ts and launch.ts do.
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LaunchError } from './errors.js';
import type { DeploymentGraph, ServiceSpec } from './graph.js';
import { spawnReplica, type ReplicaProcess } from '@armature/runtime';
import type { ScalePort } from './scale-port.js';
import { SERVICE_PROCESS, STOP_ORDER, WORKER_KINDS, type ServiceKind } from './service-kinds.js';

const COLORS = [36, 33, 35, 32, 34, 31, 96, 93, 95, 92];

export interface SupervisorOptions {
  /** Where prefixed log lines go (default process.stdout); null: nowhere. */
  out?: NodeJS.WritableStream | null;
  /** Keep each replica's whole output for output() (default false: its last 64 KiB). */
  keepAllOutput?: boolean;
  /** Restart a replica that exits on its own (default true). */
  restart?: boolean;
  /** Maximum restart backoff (default 30 s). */
  maxBackoffMs?: number;
  /** Extra environment for every replica, under the graph's own settings. */
  env?: Record<string, string>;
  /** Extra environment per service kind, over the graph's settings. */
  envByKind?: Partial<Record<ServiceKind, Record<string, string> | undefined>>;
  /** Node.js flags for every replica (default none; see nodeArgsFromEnv). */
  nodeArgs?: readonly string[];
  /**
   * Replica names: compact (default; `router` for a lone router or frontend, workers always
   * numbered: decode-0) or numbered (every replica: frontend-0, router-0, decode-0).
   */
  naming?: 'compact' | 'numbered';
  /**
   * What start() waits for: spawned (default: every process started), ready (every replica
   * wrote its ready line) or staged (workers ready, then routers and planner, then frontend).
   */
  readiness?: 'spawned' | 'ready' | 'staged';
  /** Longest wait for one replica's ready line (default 30 s). */
  readyTimeoutMs?: number;
  /** Stop order: frontend-first (default, kind by kind) or together. */
  stopOrder?: 'frontend-first' | 'together';
  /** SIGTERM to SIGKILL, for stop() and scaling down (default 10 s). */
  graceMs?: number;
  /** Remove the discovery directory after stop() (default false). */
  removeDiscoveryDirOnStop?: boolean;
}

/** One replica of a service: a stable name and number, and its current process if running. */
export interface Replica {
  readonly name: string;
  readonly kind: ServiceKind;
  readonly index: number;
  /** The running process; undefined before the first start, after exit and while restarting. */
  readonly process: ReplicaProcess | undefined;
  /** Restarts since the last minute-long run. */
  readonly restarts: number;
}

interface Member extends Replica {
  process: ReplicaProcess | undefined;
  restarts: number;
  startedAt: number;
  color: number;
  /** Being scaled away: its exit is expected. */
  retiring: boolean;
}

export class Supervisor implements ScalePort {
  private readonly members: Member[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly graphReplicas = new Map<ServiceKind, number>();
  private stopping: Promise<void> | undefined;
  private scaling: Promise<unknown> = Promise.resolve();
  private colors = 0;

  constructor(
    readonly graph: DeploymentGraph,
    private readonly options: SupervisorOptions = {},
  ) {
    for (const svc of graph.services) {
      if (svc.replicas > 0) this.checkRunnable(svc.kind);
      this.graphReplicas.set(svc.kind, svc.replicas);
      for (let r = 0; r < svc.replicas; r++) this.members.push(this.member(svc.kind, r));
    }
  }

  get url(): string {
    return `http://${this.graph.host}:${this.graph.httpPort}`;
  }

  get discoveryDir(): string {
    return resolve(this.graph.discoveryDir);
  }

  /**
   * Starts every replica, after clearing stale discovery records from an earlier run, and
   * waits as `readiness` says; if a replica fails to get ready, stops everything and throws.
   */
  async start(): Promise<void> {
    await rm(this.discoveryDir, { recursive: true, force: true });
    await mkdir(this.discoveryDir, { recursive: true });
    const readiness = this.options.readiness ?? 'spawned';
    try {
      if (readiness === 'staged') {
        for (const stage of [0, 1, 2]) {
          const batch = this.members.filter((m) => SERVICE_PROCESS[m.kind].stage === stage);
          await Promise.all(batch.map((m) => this.spawnReady(m)));
        }
      } else {
        const started = this.members.map((m) => (readiness === 'ready' ? this.spawnReady(m) : this.spawn(m)));
        await Promise.all(started);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Every replica of `kind` (or of every kind), in start order. */
  list(kind?: ServiceKind): Replica[] {
    return this.members.filter((m) => !m.retiring && (kind === undefined || m.kind === kind));
  }

  /** The replica named `name`. */
  replica(name: string): Replica | undefined {
    return this.members.find((m) => m.name === name && !m.retiring);
  }

  /** Process ids of the running replicas, by name. */
  pids(): Record<string, number | undefined> {
    return Object.fromEntries(this.list().map((m) => [m.name, m.process?.child.pid]));
  }

  replicas(kind: ServiceKind): number {
    return this.list(kind).length;
  }

  scale(kind: ServiceKind, replicas: number): Promise<void> {
    const next = this.scaling.then(() => this.applyScale(kind, replicas));
    this.scaling = next.catch(() => undefined);
    return next;
  }

  /**
   * Starts replica `name` of `kind` again after it exited (a test that killed it), or adds
   * it (default name: the next number); resolves with its process once it is ready.
   */
  async startReplica(kind: ServiceKind, name?: string): Promise<ReplicaProcess> {
    if (this.stopping) throw new LaunchError('the supervisor is stopping');
    this.checkRunnable(kind);
    this.specOf(kind);
    let m = name === undefined ? undefined : this.members.find((x) => x.name === name && !x.retiring);
    if (m?.process) throw new LaunchError(`${m.name} is already running`);
    if (!m) {
      m = this.member(kind, this.nextIndex(kind), name);
      this.members.push(m);
    }
    await this.spawnReady(m);
    return m.process!;
  }

  /** Stops everything: SIGTERM, then SIGKILL after `graceMs` (default the option, else 10 s). */
  stop(graceMs = this.options.graceMs ?? 10_000): Promise<void> {
    this.stopping ??= this.stopAll(graceMs);
    return this.stopping;
  }

  private async stopAll(graceMs: number): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const stopKind = (kinds: readonly ServiceKind[]): Promise<unknown> =>
      Promise.all(this.members.filter((m) => kinds.includes(m.kind)).map((m) => m.process?.stop(graceMs)));
    if (this.options.stopOrder === 'together') await stopKind(STOP_ORDER);
    else for (const kind of STOP_ORDER) await stopKind([kind]);
    if (this.options.removeDiscoveryDirOnStop) await rm(this.discoveryDir, { recursive: true, force: true });
  }

  private async applyScale(kind: ServiceKind, replicas: number): Promise<void> {
    if (this.stopping) throw new LaunchError('the supervisor is stopping');
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > 256)
      throw new LaunchError(`scale ${kind}: replicas must be an integer in [0, 256], got ${replicas}`);
    if (replicas > 0) this.checkRunnable(kind);
    if (kind === 'frontend' && replicas > 1)
      throw new LaunchError(`scale frontend: one frontend per host (it binds port ${this.graph.httpPort})`);
    this.specOf(kind);
    const current = this.list(kind) as Member[];
    if (replicas > current.length) {
      const added: Member[] = [];
      for (let i = current.length; i < replicas; i++) {
        const m = this.member(kind, this.nextIndex(kind));
        this.members.push(m);
        added.push(m);
      }
      await Promise.all(added.map((m) => this.spawnReady(m)));
      return;
    }
    const surplus = [...current].sort((a, b) => b.index - a.index).slice(0, current.length - replicas);
    for (const m of surplus) m.retiring = true;
    await Promise.all(surplus.map((m) => m.process?.stop(this.options.graceMs ?? 10_000)));
    for (const m of surplus) this.members.splice(this.members.indexOf(m), 1);
  }

  private checkRunnable(kind: ServiceKind): void {
    if (SERVICE_PROCESS[kind].entry === null)
      throw new LaunchError(
        `services.${kind}: there is no ${kind} service to run yet (${SERVICE_PROCESS[kind].home}); ` +
          'set its replicas to 0 to keep its settings in the graph',
      );
  }

  private specOf(kind: ServiceKind): ServiceSpec {
    const spec = this.graph.services.find((s) => s.kind === kind);
    if (!spec) throw new LaunchError(`the graph has no ${kind} service`);
    return spec;
  }

  private nextIndex(kind: ServiceKind): number {
    const indexes = this.members.filter((m) => m.kind === kind).map((m) => m.index);
    return indexes.length === 0 ? 0 : Math.max(...indexes) + 1;
  }

  private member(kind: ServiceKind, index: number, name?: string): Member {
    const numbered =
      this.options.naming === 'numbered' ||
      WORKER_KINDS.includes(kind) ||
      (this.graphReplicas.get(kind) ?? 0) > 1 ||
      index > 0;
    return {
      name: name ?? (numbered ? `${kind}-${index}` : kind),
      kind,
      index,
      process: undefined,
      restarts: 0,
      startedAt: 0,
      color: COLORS[this.colors++ % COLORS.length]!,
      retiring: false,
    };
  }

  private envFor(m: Member): Record<string, string> {
    return {
      ARMATURE_HOST: this.graph.host,
      ARMATURE_DISCOVERY_BACKEND: 'file',
      ARMATURE_DISCOVERY_DIR: this.discoveryDir,
      ...this.options.env,
      ARMATURE_INSTANCE_ID: m.name,
      ...this.specOf(m.kind).env,
      ...this.options.envByKind?.[m.kind],
    };
  }

  private prefix(m: Member): string {
    return `\x1b[${m.color}m${m.name.padEnd(10)}|\x1b[0m `;
  }

  private async spawnReady(m: Member): Promise<void> {
    await this.spawn(m);
    await m.process?.waitForOutput(SERVICE_PROCESS[m.kind].ready, this.options.readyTimeoutMs ?? 30_000);
  }

  private async spawn(m: Member): Promise<void> {
    if (this.stopping) return;
    const out = this.options.out === undefined ? process.stdout : this.options.out;
    const prefix = this.prefix(m);
    const proc = spawnReplica({
      entry: SERVICE_PROCESS[m.kind].entry!,
      nodeArgs: this.options.nodeArgs,
      env: this.envFor(m),
      keepAllOutput: this.options.keepAllOutput,
      onLine: out ? (line) => out.write(prefix + line + '\n') : undefined,
    });
    m.process = proc;
    m.startedAt = Date.now();
    proc.child.once('exit', (code, signal) => {
      if (m.process === proc) m.process = undefined;
      if (this.stopping || m.retiring) return;
      const how = signal ?? `code ${code}`;
      if (this.options.restart === false) {
        out?.write(`${prefix}exited (${how})\n`);
        return;
      }
      // Reset the backoff once a process has stayed up for a minute.
      if (Date.now() - m.startedAt > 60_000) m.restarts = 0;
      const delay = Math.min(this.options.maxBackoffMs ?? 30_000, 500 * 2 ** m.restarts);
      m.restarts++;
      out?.write(`${prefix}exited (${how}); restarting in ${delay} ms\n`);
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (!this.stopping && !m.retiring && !m.process) void this.spawn(m);
      }, delay);
      this.timers.add(t);
    });
  }
}
