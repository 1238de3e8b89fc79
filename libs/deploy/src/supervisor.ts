// Runs a deployment graph as supervised child processes on this host: prefixed logs,
// readiness from each service's ready line, restart with backoff when one crashes (or not:
// tests kill replicas on purpose), no restart for one that fails the same way at every
// start (crash-loop.ts), a kill and restart for one that stops answering (liveness.ts),
// replica counts changed at run time through the scale port, and an orderly stop (frontend
// first, each replica given its drain timeout). It does not compile graphs or pick the
// frontend's port and directories: graph.ts and launch.ts do. One file past 450 lines
// because it is one state machine (a replica's start, readiness, restart, scale and stop
// share its members' state); the policies it applies live beside it (crash-loop.ts,
// liveness.ts).
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { spawnReplica, type ReplicaProcess } from '@armature/runtime';
import { CrashLoop, lastErrorLine, type CrashLoopOptions } from './crash-loop.js';
import { LaunchError } from './errors.js';
import { freePort } from './free-port.js';
import type { DeploymentGraph, ServiceSpec } from './graph.js';
import { compileLiveness, probeHost, watchLiveness, type CompiledLiveness, type LivenessOptions } from './liveness.js';
import type { ScalePort } from './scale-port.js';
import { SERVICE_PROCESS, STOP_ORDER, WORKER_KINDS, type ServiceKind } from './service-kinds.js';
import { PROCESS_SETTINGS } from './settings/tables.js';

const COLORS = [36, 33, 35, 32, 34, 31, 96, 93, 95, 92];
/** What a replica's stop allows beyond its drain timeout: unregistering before, cleanup after. */
export const DRAIN_MARGIN_MS = 5_000;

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
  /**
   * SIGTERM to SIGKILL, for stop() and scaling down (default: each replica's drain timeout,
   * ARMATURE_DRAIN_TIMEOUT_MS from its environment or 30 s, plus DRAIN_MARGIN_MS).
   */
  graceMs?: number;
  /**
   * Stop restarting a replica that exits `exits` times in a row within `withinMs` of its
   * start, each time with the same last error line (default 3 within 10 s); false: always
   * restart. Its state turns `failed`, with the reason.
   */
  crashLoop?: CrashLoopOptions | false;
  /**
   * Probe each ready replica (the frontend's /live, a router's or worker's /metrics, on a
   * metrics port the supervisor picks unless the environment sets one) and SIGKILL one that
   * misses `failures` probes in a row, so that it restarts (default off; armature up turns
   * it on with liveness.ts's defaults). Needs restart.
   */
  liveness?: LivenessOptions | false;
  /** Run each replica in its own process group (default false; see SpawnReplicaOptions.detached). */
  detached?: boolean;
  /** Entry points instead of the built services, by kind (a test's stand-in; default SERVICE_PROCESS). */
  entries?: Partial<Record<ServiceKind, string>>;
  /** Remove the discovery directory after stop() (default false). */
  removeDiscoveryDirOnStop?: boolean;
}

/**
 * Where a replica is: pending (not started yet), starting (spawned, no ready line yet),
 * ready, restarting (waiting out its backoff), exited (stopped, or restart is off) or failed
 * (a crash loop: not restarted again until startReplica).
 */
export type ReplicaState = 'pending' | 'starting' | 'ready' | 'restarting' | 'exited' | 'failed';

/** One replica of a service: a stable name and number, and its current process if running. */
export interface Replica {
  readonly name: string;
  readonly kind: ServiceKind;
  readonly index: number;
  /** The running process; undefined before the first start, after exit and while restarting. */
  readonly process: ReplicaProcess | undefined;
  /** Restarts since the last minute-long run. */
  readonly restarts: number;
  readonly state: ReplicaState;
  /** How its last run ended (restarting, exited), or why it failed; undefined while it runs. */
  readonly reason: string | undefined;
  /** SIGTERM to SIGKILL when it is stopped, ms. */
  readonly graceMs: number;
}

interface Member extends Replica {
  process: ReplicaProcess | undefined;
  restarts: number;
  state: ReplicaState;
  reason: string | undefined;
  graceMs: number;
  startedAt: number;
  color: number;
  /** Being scaled away: its exit is expected. */
  retiring: boolean;
  crashLoop: CrashLoop | undefined;
  /** The metrics port it was given for liveness probes, kept across restarts. */
  metricsPort: number | undefined;
  stopProbe: (() => void) | undefined;
}

export class Supervisor implements ScalePort {
  private readonly members: Member[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly graphReplicas = new Map<ServiceKind, number>();
  private stopping: Promise<void> | undefined;
  private scaling: Promise<unknown> = Promise.resolve();
  private colors = 0;
  private readonly liveness: CompiledLiveness | undefined;
  private readonly afterStopTasks: Array<() => Promise<void>> = [];

  constructor(
    readonly graph: DeploymentGraph,
    private readonly options: SupervisorOptions = {},
  ) {
    if (options.crashLoop) new CrashLoop(options.crashLoop); // a bad setting throws here, before any replica exists
    this.liveness = options.liveness && options.restart !== false ? compileLiveness(options.liveness) : undefined;
    for (const svc of graph.services) {
      if (svc.replicas > 0) this.checkRunnable(svc.kind);
      this.graphReplicas.set(svc.kind, svc.replicas);
      for (let r = 0; r < svc.replicas; r++) this.members.push(this.member(svc.kind, r));
    }
  }

  /** The first frontend's URL. */
  get url(): string {
    return `http://${this.graph.host}:${this.graph.httpPort}`;
  }

  /** Every frontend replica's URL (replica i binds the graph's port + i), in replica order. */
  get urls(): string[] {
    return this.list('frontend').map((m) => `http://${this.graph.host}:${this.graph.httpPort + m.index}`);
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
   * Starts replica `name` of `kind` again after it exited (a test that killed it) or failed, or adds
   * it (default name: the next number); resolves with its process once it is ready.
   */
  async startReplica(kind: ServiceKind, name?: string): Promise<ReplicaProcess> {
    if (this.stopping) throw new LaunchError('the supervisor is stopping');
    this.checkRunnable(kind);
    this.specOf(kind);
    let m = name === undefined ? undefined : this.members.find((x) => x.name === name && !x.retiring);
    if (m?.process) throw new LaunchError(`${m.name} is already running`);
    m?.crashLoop?.reset();
    if (!m) {
      m = this.member(kind, this.nextIndex(kind), name);
      this.members.push(m);
    }
    await this.spawnReady(m);
    return m.process!;
  }

  /**
   * Stops everything in the stop order: SIGTERM, then SIGKILL after `graceMs` (default each
   * replica's own graceMs: the option, else its drain timeout plus DRAIN_MARGIN_MS).
   */
  stop(graceMs?: number): Promise<void> {
    this.stopping ??= this.stopAll(graceMs);
    return this.stopping;
  }

  /** Runs `task` once stop() has stopped every replica (launch() closes its control API so). */
  afterStop(task: () => Promise<void>): void {
    this.afterStopTasks.push(task);
  }

  /** SIGKILLs every running replica now, without a drain (a second Ctrl-C, the launcher's own exit). */
  killAll(): void {
    for (const m of this.members) m.process?.kill('SIGKILL');
  }

  private async stopAll(graceMs: number | undefined): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const m of this.members) {
      m.stopProbe?.();
      if (m.state === 'restarting' || m.state === 'pending') m.state = 'exited';
    }
    const stopKind = (kinds: readonly ServiceKind[]): Promise<unknown> =>
      Promise.all(this.members.filter((m) => kinds.includes(m.kind)).map((m) => m.process?.stop(graceMs ?? m.graceMs)));
    if (this.options.stopOrder === 'together') await stopKind(STOP_ORDER);
    else for (const kind of STOP_ORDER) await stopKind([kind]);
    if (this.options.removeDiscoveryDirOnStop) await rm(this.discoveryDir, { recursive: true, force: true });
    for (const task of this.afterStopTasks) await task();
  }

  private async applyScale(kind: ServiceKind, replicas: number): Promise<void> {
    if (this.stopping) throw new LaunchError('the supervisor is stopping');
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > 256)
      throw new LaunchError(`scale ${kind}: replicas must be an integer in [0, 256], got ${replicas}`);
    if (replicas > 0) this.checkRunnable(kind);
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
    await Promise.all(surplus.map((m) => m.process?.stop(m.graceMs)));
    for (const m of surplus) this.members.splice(this.members.indexOf(m), 1);
  }

  private entryOf(kind: ServiceKind): string | null {
    return this.options.entries?.[kind] ?? SERVICE_PROCESS[kind].entry;
  }

  private checkRunnable(kind: ServiceKind): void {
    if (this.entryOf(kind) === null)
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
    const m: Member = {
      name: name ?? (numbered ? `${kind}-${index}` : kind),
      kind,
      index,
      process: undefined,
      restarts: 0,
      state: 'pending',
      reason: undefined,
      graceMs: 0,
      startedAt: 0,
      color: COLORS[this.colors++ % COLORS.length]!,
      retiring: false,
      crashLoop: this.options.crashLoop === false ? undefined : new CrashLoop(this.options.crashLoop || {}),
      metricsPort: undefined,
      stopProbe: undefined,
    };
    m.graceMs = this.options.graceMs ?? this.drainTimeoutOf(m) + DRAIN_MARGIN_MS;
    return m;
  }

  /** The drain timeout the replica will read (its environment over ours); a bad value is its own start error. */
  private drainTimeoutOf(m: Member): number {
    const setting = PROCESS_SETTINGS.drainTimeoutMs;
    try {
      return setting.fromEnv({ ...process.env, ...this.envFor(m) });
    } catch {
      return setting.default;
    }
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
      ...(m.kind === 'frontend' && m.index > 0 ? { ARMATURE_HTTP_PORT: String(this.graph.httpPort + m.index) } : {}),
    };
  }

  private get out(): NodeJS.WritableStream | null {
    return this.options.out === undefined ? process.stdout : this.options.out;
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
    const out = this.out;
    const prefix = this.prefix(m);
    const env = this.envFor(m);
    if (
      this.liveness &&
      m.kind !== 'frontend' &&
      !Number(env.ARMATURE_METRICS_PORT ?? process.env.ARMATURE_METRICS_PORT)
    ) {
      m.metricsPort ??= await freePort(this.graph.host);
      env.ARMATURE_METRICS_PORT = String(m.metricsPort);
      if (this.stopping || m.process || m.retiring) return;
    }
    const ready = SERVICE_PROCESS[m.kind].ready;
    const run: ReplicaProcess = spawnReplica({
      entry: this.entryOf(m.kind)!,
      nodeArgs: this.options.nodeArgs,
      env,
      keepAllOutput: this.options.keepAllOutput,
      detached: this.options.detached,
      onLine: (line) => {
        out?.write(prefix + line + '\n');
        if (m.process === run && m.state === 'starting' && ready.test(line)) this.becameReady(m, run, env, line);
      },
    });
    m.process = run;
    m.state = 'starting';
    m.reason = undefined;
    m.startedAt = Date.now();
    run.child.once('exit', (code, signal) => {
      if (m.process === run) {
        m.process = undefined;
        m.stopProbe?.();
        m.stopProbe = undefined;
      }
      const how = signal ?? `code ${code}`;
      const line = lastErrorLine(run.output());
      m.reason = `exited (${how})${line === '' ? '' : `: ${line}`}`;
      if (this.stopping || m.retiring) {
        m.state = 'exited';
        return;
      }
      if (this.options.restart === false) {
        m.state = 'exited';
        out?.write(`${prefix}exited (${how})\n`);
        return;
      }
      if (m.crashLoop?.exited(Date.now() - m.startedAt, signal, line)) {
        const exits = m.crashLoop.quickExits;
        const within = `${m.crashLoop.windowMs / 1000} s`;
        m.state = 'failed';
        m.reason = `exited ${exits} times within ${within} of its start, each time with: ${line}`;
        out?.write(
          `${prefix}${m.name} failed: exited ${exits} times within ${within} of its start, ` +
            `each time with: ${line}; not restarting it\n`,
        );
        return;
      }
      // Reset the backoff once a process has stayed up for a minute.
      if (Date.now() - m.startedAt > 60_000) m.restarts = 0;
      const delay = Math.min(this.options.maxBackoffMs ?? 30_000, 500 * 2 ** m.restarts);
      m.restarts++;
      m.state = 'restarting';
      out?.write(`${prefix}exited (${how}); restarting in ${delay} ms\n`);
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (!this.stopping && !m.retiring && !m.process) void this.spawn(m);
      }, delay);
      this.timers.add(t);
    });
  }

  private becameReady(m: Member, run: ReplicaProcess, env: Record<string, string>, readyLine: string): void {
    m.state = 'ready';
    if (!this.liveness) return;
    const url = this.livenessUrl(m, env, readyLine);
    m.stopProbe = watchLiveness(url, this.liveness, (failures) => {
      if (m.process !== run || this.stopping || m.retiring) return;
      this.out?.write(
        `${this.prefix(m)}${m.name} did not answer ${url} ${failures} times in a row; killing it (SIGKILL) to restart it\n`,
      );
      run.kill('SIGKILL');
    });
  }

  /** The frontend's /live (at the URL its ready line names), a router's or worker's /metrics. */
  private livenessUrl(m: Member, env: Record<string, string>, readyLine: string): string {
    const host = probeHost(this.graph.host);
    if (m.kind === 'frontend') {
      const listening = /listening on (https?:\/\/[^\s"]+)/.exec(readyLine)?.[1];
      const port = env.ARMATURE_HTTP_PORT ?? String(this.graph.httpPort);
      return `${listening?.replace(/\/+$/, '') ?? `http://${host}:${port}`}/live`;
    }
    return `http://${host}:${env.ARMATURE_METRICS_PORT ?? process.env.ARMATURE_METRICS_PORT}/metrics`;
  }
}
