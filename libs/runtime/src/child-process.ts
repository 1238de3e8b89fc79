// One run of one service process: a Node child whose output is drained (so a chatty child
// never blocks on a full pipe), optionally copied line by line to a log with a prefix, and
// kept for readiness checks. The launcher in @armature/deploy runs replicas with it, and
// @armature/testing's spawnNode is the same handle, so integration tests treat a launched
// replica and a spawned one alike.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ReplicaProcess {
  child: ChildProcess;
  /** Output so far (stdout and stderr together): all of it, or the last 64 KiB. */
  output(): string;
  /** Resolves when the output matches `pattern`; rejects on exit or after `timeoutMs` (default 30 s). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  /** Sends a signal (default SIGKILL). */
  kill(signal?: NodeJS.Signals): void;
  /** The exit code (null after a signal). */
  exited: Promise<number | null>;
}

export interface SpawnReplicaOptions {
  entry: string;
  /** Node.js flags before the entry point. */
  nodeArgs?: readonly string[];
  /** Arguments after the entry point. */
  args?: readonly string[];
  cwd?: string;
  /** Environment over process.env. */
  env: Record<string, string>;
  /** Receives each complete output line; none by default. */
  onLine?: (line: string) => void;
  /** Keep all output (tests) instead of its last 64 KiB (long-running supervisors). */
  keepAllOutput?: boolean;
  /**
   * Run in a process group of its own (default false), so a terminal's Ctrl-C reaches only
   * the parent, which then stops its children in its own order.
   */
  detached?: boolean;
}

const TAIL_CHARS = 64 * 1024;

/** Starts `node [...nodeArgs] entry` with the given environment. */
export function spawnReplica(options: SpawnReplicaOptions): ReplicaProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.entry, ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let out = '';
  const waiters: Array<() => void> = [];
  const keep = (text: string): void => {
    out += text;
    if (!options.keepAllOutput && out.length > 2 * TAIL_CHARS) out = out.slice(-TAIL_CHARS);
    for (const w of waiters.slice()) w();
  };
  const onLine = options.onLine;
  const pipe = (stream: NodeJS.ReadableStream | null): void => {
    let partial = '';
    stream?.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      keep(text);
      if (!onLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
  };
  pipe(child.stdout);
  pipe(child.stderr);
  // A failed spawn also ends in 'exit' or leaves exitCode null; never an unhandled 'error'.
  child.on('error', (err) => keep(`spawn failed: ${err.message}\n`));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const hasExited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    output: () => out,
    exited,
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = out.match(pattern);
          if (m) {
            cleanup();
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern} in output:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const onExit = (): void => {
          cleanup();
          reject(new Error(`process exited before ${pattern}; output:\n${out.slice(-4000)}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          const i = waiters.indexOf(check);
          if (i >= 0) waiters.splice(i, 1);
          child.off('exit', onExit);
        };
        waiters.push(check);
        child.once('exit', onExit);
        check();
        if (waiters.includes(check) && hasExited()) onExit();
      });
    },
    async stop(graceMs = 5_000) {
      if (hasExited()) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    kill(signal = 'SIGKILL') {
      child.kill(signal);
    },
  };
}
