// Graceful shutdown: on SIGTERM or SIGINT stop accepting work, drain what is in flight
// (bounded by a timeout; past it, what is left is handed back), run cleanup, and exit.
// A second signal exits at once.
import { shutdownTracing } from './tracing.js';
import { createLogger } from './log.js';

export interface ShutdownHooks {
  /** Stop taking new work (unregister from discovery, close listeners). */
  stopAccepting?: () => Promise<void> | void;
  /** Resolve once in-flight work is done. */
  drain?: () => Promise<void>;
  /**
   * The drain timed out: hand back what is still in flight (a worker ends its streams with
   * a retryable error, so the frontend migrates them) before cleanup cuts it.
   */
  abandon?: () => Promise<void> | void;
  /** Release everything else (sockets, timers). */
  cleanup?: () => Promise<void> | void;
  /** Upper bound on drain (default 30 s). */
  drainTimeoutMs?: number;
}

const log = createLogger('shutdown');

/** Runs the shutdown sequence once; later calls return the same promise. */
export function createShutdown(hooks: ShutdownHooks): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= (async () => {
      try {
        await hooks.stopAccepting?.();
        if (hooks.drain) {
          const timeoutMs = hooks.drainTimeoutMs ?? 30_000;
          let timer: NodeJS.Timeout | undefined;
          const timedOut = new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), timeoutMs);
          });
          const outcome = await Promise.race([hooks.drain().then(() => 'drained' as const), timedOut]);
          clearTimeout(timer);
          if (outcome === 'timeout') {
            log.warn('drain timed out; handing back the work in flight', { timeoutMs });
            await hooks.abandon?.();
          }
        }
        await hooks.cleanup?.();
      } catch (err) {
        log.error('shutdown step failed', { err });
      }
      await shutdownTracing(); // the spans of the last requests, drained above
    })();
    return running;
  };
}

/** Installs SIGTERM/SIGINT handlers that run the shutdown and exit the process. */
export function installSignalHandlers(shutdown: () => Promise<void>): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(130);
    signalled = true;
    log.info('shutting down', { signal, pid: process.pid });
    void shutdown().finally(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Counts in-flight work so drain can wait for it to reach zero. */
export class InFlight {
  private count = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Marks one unit of work started; call the returned function when it ends. */
  begin(): () => void {
    this.count++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.count--;
      if (this.count === 0) for (const w of this.waiters.splice(0)) w();
    };
  }

  /** Resolves when no work is in flight. */
  idle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * Whether a process with this pid exists (on this host), for sweeping what a crashed
 * process left behind (shared memory, temporary files). EPERM: it exists, owned by another user.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
