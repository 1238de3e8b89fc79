// A real Prometheus beside a local stack (`armature up --prometheus`, and the dashboard
// tests): copies infra/prometheus (config and rules) into a working directory, writes the
// scrape targets there as a file-based service discovery file kept in step with Armature's
// own discovery records (so workers that come and go are followed), then runs the
// Prometheus binary on loopback until stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { createLogger, type Discovery, type InstanceRecord, type Watch } from '@armature/runtime';
import { LaunchError } from './errors.js';

const log = createLogger('prometheus');

export const DEFAULT_PROMETHEUS_ADDRESS = '127.0.0.1:9090';

export interface PrometheusOptions {
  /** Whose records become scrape targets (every record with a metricsAddress). */
  discovery: Discovery;
  /** Holds prometheus.yml and rules/ (the repository's infra/prometheus). */
  configDir: string;
  /** Where the config copy, targets/ and the TSDB go; created, and removed by stop() unless keepDir. */
  workDir: string;
  keepDir?: boolean;
  /** host:port of its web UI and API (default 127.0.0.1:9090). */
  address?: string;
  /** The binary (default PROMETHEUS_BIN, else `prometheus` on PATH). */
  bin?: string;
  /** Overrides the config's scrape and rule evaluation interval, in seconds (tests use 1). */
  scrapeIntervalS?: number;
  /** How long to wait for /-/ready (default 30 s). */
  readyTimeoutMs?: number;
}

/** One file_sd entry: a service's metrics address and the labels that name it. */
export interface ScrapeTarget {
  targets: [string];
  labels: Record<string, string>;
}

/** The file_sd entries for a set of discovery records (sorted, so a rewrite is stable). */
export function scrapeTargets(records: Iterable<InstanceRecord>): ScrapeTarget[] {
  const out: ScrapeTarget[] = [];
  for (const r of records) {
    if (!r.metricsAddress) continue;
    const labels: Record<string, string> = { role: r.role, instance_id: r.instanceId };
    if (r.model !== undefined) labels.model = r.model;
    out.push({ targets: [r.metricsAddress], labels });
  }
  return out.sort((a, b) => a.labels.instance_id!.localeCompare(b.labels.instance_id!));
}

/** The Prometheus binary to run, or a LaunchError that says how to get one. */
export async function findPrometheus(
  bin: string | undefined = process.env.PROMETHEUS_BIN,
  path: string = process.env.PATH ?? '',
): Promise<string> {
  const candidates = bin
    ? [bin]
    : path
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, 'prometheus'));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  throw new LaunchError(
    bin
      ? `PROMETHEUS_BIN=${bin} is not an executable file`
      : "no prometheus binary on PATH: install Debian's `prometheus` package (apt-get install prometheus) or set PROMETHEUS_BIN",
  );
}

export class PrometheusProcess {
  private stopped: Promise<void> | undefined;
  private writes: Promise<void> = Promise.resolve();
  private readonly records = new Map<string, InstanceRecord>();
  private watch: Watch | undefined;

  private constructor(
    private readonly options: PrometheusOptions,
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
    readonly address: string,
  ) {}

  /** Base URL of its API, e.g. http://127.0.0.1:9090. */
  get url(): string {
    return `http://${this.address}`;
  }

  /** The scrape targets written now (for tests and the CLI's summary). */
  async targets(): Promise<ScrapeTarget[]> {
    await this.writes;
    return JSON.parse(await readFile(targetsFile(this.options.workDir), 'utf8')) as ScrapeTarget[];
  }

  /** Starts Prometheus; rejects with a LaunchError when the binary, the config or the address is wrong. */
  static async start(options: PrometheusOptions): Promise<PrometheusProcess> {
    const bin = await findPrometheus(options.bin);
    const address = options.address ?? DEFAULT_PROMETHEUS_ADDRESS;
    if (!/^[^:\s]+:\d{1,5}$/.test(address))
      throw new LaunchError(`prometheus address must be host:port, got ${address}`);
    await prepareWorkDir(options);
    const child = spawn(
      bin,
      [
        `--config.file=${join(options.workDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(options.workDir, 'data')}`,
        `--web.listen-address=${address}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4_000);
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const p = new PrometheusProcess(options, child, exited, address);
    try {
      await p.waitReady(options.readyTimeoutMs ?? 30_000, () => stderr);
      p.follow();
    } catch (err) {
      await p.stop();
      throw err;
    }
    return p;
  }

  private async waitReady(timeoutMs: number, stderr: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    void this.exited.then(() => (gone = true));
    while (Date.now() < deadline) {
      if (gone) {
        throw new LaunchError(`prometheus exited at start (address ${this.address}): ${lastLines(stderr())}`);
      }
      try {
        const res = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new LaunchError(`prometheus at ${this.address} not ready after ${timeoutMs} ms: ${lastLines(stderr())}`);
  }

  /** Keeps targets/armature.json equal to the live records that serve metrics. */
  private follow(): void {
    this.watch = this.options.discovery.watch({}, (event) => {
      if (event.type === 'removed') this.records.delete(event.record.instanceId);
      else this.records.set(event.record.instanceId, event.record);
      const body = JSON.stringify(scrapeTargets(this.records.values()), null, 2);
      this.writes = this.writes
        .then(() => writeTargets(this.options.workDir, body))
        .catch((err: unknown) => log.warn('could not write scrape targets', { err }));
    });
  }

  /** Kills it at once (this process is exiting); leaves workDir behind. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** Stops following discovery, stops Prometheus (SIGTERM, then SIGKILL after 10 s) and removes workDir unless kept. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.watch?.close();
      await this.writes;
      if (this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
        await this.exited;
        clearTimeout(timer);
      }
      if (!this.options.keepDir) await rm(this.options.workDir, { recursive: true, force: true });
    })();
    return this.stopped;
  }
}

function targetsFile(workDir: string): string {
  return join(workDir, 'targets', 'armature.json');
}

/** Atomic: Prometheus never reads half a file. */
async function writeTargets(workDir: string, body: string): Promise<void> {
  const path = targetsFile(workDir);
  await writeFile(`${path}.tmp`, body);
  await rename(`${path}.tmp`, path);
}

async function prepareWorkDir(options: PrometheusOptions): Promise<void> {
  let config: { global?: Record<string, unknown> };
  try {
    config = parse(await readFile(join(options.configDir, 'prometheus.yml'), 'utf8')) as typeof config;
    await mkdir(join(options.workDir, 'targets'), { recursive: true });
    await cp(join(options.configDir, 'rules'), join(options.workDir, 'rules'), { recursive: true });
  } catch (err) {
    throw new LaunchError(`cannot use the Prometheus config in ${options.configDir}: ${(err as Error).message}`);
  }
  if (options.scrapeIntervalS !== undefined) {
    const every = `${options.scrapeIntervalS}s`;
    config.global = { ...config.global, scrape_interval: every, evaluation_interval: every };
  }
  await writeFile(join(options.workDir, 'prometheus.yml'), stringify(config));
  await writeTargets(options.workDir, '[]');
}

function lastLines(text: string): string {
  const lines = text.trim().split('\n').slice(-3).join(' | ');
  return lines || '(no output)';
}

/** Starts Prometheus beside a stack; see PrometheusProcess. */
export function startPrometheus(options: PrometheusOptions): Promise<PrometheusProcess> {
  return PrometheusProcess.start(options);
}
