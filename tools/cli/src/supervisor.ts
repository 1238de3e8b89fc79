// Runs a deployment graph as supervised child processes on this host: prefixed logs,
// restart with backoff when one crashes, and an orderly stop of all on SIGINT/SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm, mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DeploymentGraph, ServiceKind } from './graph.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const ENTRY: Record<ServiceKind, string> = {
  frontend: resolve(ROOT, 'services/frontend/dist/main.js'),
  router: resolve(ROOT, 'services/router/dist/main.js'),
  prefill: resolve(ROOT, 'services/prefill/dist/main.js'),
  decode: resolve(ROOT, 'services/decode/dist/main.js'),
};
const COLORS = [36, 33, 35, 32, 34, 31, 96, 93, 95, 92];

interface Member {
  name: string;
  kind: ServiceKind;
  env: Record<string, string>;
  child?: ChildProcess;
  restarts: number;
  startedAt: number;
  color: number;
}

export interface SupervisorOptions {
  /** Where log lines go (default process.stdout). */
  out?: NodeJS.WritableStream;
  /** Maximum restart backoff (default 30 s). */
  maxBackoffMs?: number;
}

export class Supervisor {
  private readonly members: Member[] = [];
  private stopping = false;
  private readonly out: NodeJS.WritableStream;
  private readonly maxBackoffMs: number;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly graph: DeploymentGraph,
    options: SupervisorOptions = {},
  ) {
    this.out = options.out ?? process.stdout;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    let i = 0;
    for (const svc of graph.services) {
      for (let r = 0; r < svc.replicas; r++) {
        const name =
          svc.replicas > 1 || svc.kind === 'decode' || svc.kind === 'prefill' ? `${svc.kind}-${r}` : svc.kind;
        this.members.push({
          name,
          kind: svc.kind,
          env: svc.env,
          restarts: 0,
          startedAt: 0,
          color: COLORS[i++ % COLORS.length]!,
        });
      }
    }
  }

  get url(): string {
    return `http://${this.graph.host}:${this.graph.httpPort}`;
  }

  /** Starts every member; stale discovery records from an earlier run are cleared first. */
  async start(): Promise<void> {
    const dir = resolve(this.graph.discoveryDir);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const m of this.members) this.spawn(m);
  }

  private envFor(m: Member): Record<string, string> {
    return {
      ARMATURE_INSTANCE_ID: m.name,
      ARMATURE_HOST: this.graph.host,
      ARMATURE_DISCOVERY_BACKEND: 'file',
      ARMATURE_DISCOVERY_DIR: resolve(this.graph.discoveryDir),
      ...(m.kind === 'frontend' ? { ARMATURE_HTTP_PORT: String(this.graph.httpPort) } : {}),
      ...m.env,
    };
  }

  private spawn(m: Member): void {
    const child = spawn(process.execPath, [ENTRY[m.kind]], {
      env: { ...process.env, ...this.envFor(m) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    m.child = child;
    m.startedAt = Date.now();
    const prefix = `\x1b[${m.color}m${m.name.padEnd(10)}|\x1b[0m `;
    const pipe = (stream: NodeJS.ReadableStream | null): void => {
      let partial = '';
      stream?.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.out.write(prefix + line + '\n');
      });
    };
    pipe(child.stdout);
    pipe(child.stderr);
    child.on('exit', (code, signal) => {
      m.child = undefined;
      if (this.stopping) return;
      // Reset the backoff once a process has stayed up for a minute.
      if (Date.now() - m.startedAt > 60_000) m.restarts = 0;
      const delay = Math.min(this.maxBackoffMs, 500 * 2 ** m.restarts);
      m.restarts++;
      this.out.write(`${prefix}exited (${signal ?? `code ${code}`}); restarting in ${delay} ms\n`);
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (!this.stopping) this.spawn(m);
      }, delay);
      this.timers.add(t);
    });
  }

  /** Process ids of the running members, by name. */
  pids(): Record<string, number | undefined> {
    return Object.fromEntries(this.members.map((m) => [m.name, m.child?.pid]));
  }

  /** Stops everything: SIGTERM, then SIGKILL after `graceMs` (default 10 s). */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    // Frontend first, so no new requests arrive while workers drain.
    const order: ServiceKind[] = ['frontend', 'router', 'prefill', 'decode'];
    for (const kind of order) {
      await Promise.all(
        this.members
          .filter((m) => m.kind === kind && m.child)
          .map(
            (m) =>
              new Promise<void>((done) => {
                const child = m.child!;
                const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
                child.once('exit', () => {
                  clearTimeout(timer);
                  done();
                });
                child.kill('SIGTERM');
              }),
          ),
      );
    }
  }
}
