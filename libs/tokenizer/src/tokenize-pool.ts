// Tokenizes large prompts on a few worker threads, so that a long prompt costs its own
// latency only and the event loop serving every other request (and /live) never waits on
// it. Each thread loads tokenizers by id itself and runs the same code as the main thread
// (tokenize-worker.ts), so the tokens are the same. A job has a deadline: past it the job is
// rejected and its thread terminated and replaced (a gguf thread inside one llama.cpp call
// stops when that call returns). Idle threads are unref'd, so the pool never keeps a process
// alive; close() ends them. Threads run the built dist/tokenize-worker.js, from src/ and dist/ alike.
import { Worker } from 'node:worker_threads';
import { ArmatureError, asArmatureError } from '@armature/runtime';
import type { TokenizeJob, TokenizeJobRequest, TokenizeJobResult } from './tokenize-worker.js';
import type { ChatMessage } from './types.js';

const WORKER_URL = new URL('../dist/tokenize-worker.js', import.meta.url);

export interface TokenizePoolOptions {
  /** Threads, started as jobs need them (default 2). */
  threads?: number;
  /** Milliseconds a job may take from submission, waiting for a thread included (default 10000). */
  deadlineMs?: number;
}

export interface TokenizeJobOptions {
  /** Cancels the job, a running one by terminating its thread; it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** This job's deadline in milliseconds, instead of the pool's. */
  deadlineMs?: number;
}

interface Job {
  readonly request: TokenizeJobRequest;
  readonly resolve: (ids: number[]) => void;
  readonly reject: (error: ArmatureError) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  thread: Thread | undefined;
}

interface Thread {
  readonly worker: Worker;
  job: Job | undefined;
}

export class TokenizePool {
  private readonly threadLimit: number;
  private readonly deadlineMs: number;
  private readonly queue: Job[] = [];
  private readonly threads = new Set<Thread>();
  private nextJob = 1;
  private closed = false;

  constructor(options: TokenizePoolOptions = {}) {
    this.threadLimit = positiveInteger('threads', options.threads ?? 2);
    this.deadlineMs = positiveInteger('deadlineMs', options.deadlineMs ?? 10_000);
  }

  /** `loadTokenizer(tokenizerId).encode(text)`, on a pool thread. */
  encode(tokenizerId: string, text: string, options?: TokenizeJobOptions): Promise<number[]> {
    return this.submit({ kind: 'encode', tokenizerId, text }, options);
  }

  /** `applyChatTemplate(templateId, messages, tokenizer)` (BOS as it adds it), on a pool thread. */
  applyChatTemplate(
    tokenizerId: string,
    templateId: string,
    messages: readonly ChatMessage[],
    options?: TokenizeJobOptions,
  ): Promise<number[]> {
    return this.submit({ kind: 'chat', tokenizerId, templateId, messages }, options);
  }

  /** Rejects every job not yet done (`unavailable`) and ends the threads; later jobs reject at once. */
  async close(): Promise<void> {
    this.closed = true;
    const error = () => new ArmatureError('unavailable', 'tokenize_pool_closed', 'the tokenizer pool is closed');
    for (const job of [...this.queue]) this.finish(job, error(), 'retire');
    for (const thread of this.threads) if (thread.job) this.finish(thread.job, error(), 'retire');
    await Promise.all([...this.threads].map((thread) => this.retire(thread)));
  }

  private submit(request: TokenizeJob, options: TokenizeJobOptions = {}): Promise<number[]> {
    if (this.closed) {
      return Promise.reject(new ArmatureError('unavailable', 'tokenize_pool_closed', 'the tokenizer pool is closed'));
    }
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(asArmatureError(signal.reason));
    const deadlineMs =
      options.deadlineMs === undefined ? this.deadlineMs : positiveInteger('deadlineMs', options.deadlineMs);
    return new Promise<number[]>((resolve, reject) => {
      const job: Job = {
        request: { ...request, job: this.nextJob++ },
        resolve,
        reject,
        signal,
        thread: undefined,
        timer: setTimeout(() => {
          const message = `tokenizing the prompt took longer than ${deadlineMs} ms`;
          this.finish(job, new ArmatureError('deadline_exceeded', 'tokenize_deadline_exceeded', message), 'retire');
        }, deadlineMs).unref(),
        onAbort: () => this.finish(job, asArmatureError(signal!.reason), 'retire'),
      };
      signal?.addEventListener('abort', job.onAbort, { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      let thread = [...this.threads].find((t) => !t.job);
      if (!thread && this.threads.size < this.threadLimit) thread = this.spawn();
      if (!thread) return;
      const job = this.queue.shift()!;
      thread.job = job;
      job.thread = thread;
      thread.worker.ref(); // a running job keeps the process alive until it is done
      thread.worker.postMessage(job.request);
    }
  }

  private spawn(): Thread {
    const thread: Thread = { worker: new Worker(WORKER_URL, { execArgv: threadExecArgv() }), job: undefined };
    thread.worker.unref();
    thread.worker.on('message', (result: TokenizeJobResult) => this.onResult(thread, result));
    thread.worker.on('error', (error) => this.onThreadGone(thread, error.stack ?? error.message));
    thread.worker.on('exit', (code) => this.onThreadGone(thread, `the thread exited with code ${code}`));
    this.threads.add(thread);
    return thread;
  }

  private onResult(thread: Thread, result: TokenizeJobResult): void {
    const job = thread.job;
    if (!job || job.request.job !== result.job) return;
    if ('ids' in result) this.finish(job, Array.from(result.ids), 'keep');
    else {
      const { cls, reason, message, param, detail } = result.error;
      this.finish(job, new ArmatureError(cls, reason, message, { param, detail }), 'keep');
    }
  }

  private onThreadGone(thread: Thread, detail: string): void {
    if (!this.threads.delete(thread)) return; // retired by us, or its error came before its exit
    if (thread.job) {
      const error = new ArmatureError('internal', 'tokenizer_thread_failed', 'the tokenizer thread failed', { detail });
      this.finish(thread.job, error, 'retire');
    }
    this.dispatch();
  }

  /**
   * Settles a job: its ids or an error. Its thread, if it has one, is kept when it answered,
   * and retired when it did not (a deadline, a cancellation, close, a failed thread).
   */
  private finish(job: Job, outcome: number[] | ArmatureError, thread: 'keep' | 'retire'): void {
    clearTimeout(job.timer);
    job.signal?.removeEventListener('abort', job.onAbort);
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    const running = job.thread;
    job.thread = undefined;
    if (running?.job === job) {
      running.job = undefined;
      if (thread === 'keep') running.worker.unref();
      else void this.retire(running);
    }
    if (Array.isArray(outcome)) job.resolve(outcome);
    else job.reject(outcome);
    this.dispatch();
  }

  private async retire(thread: Thread): Promise<void> {
    this.threads.delete(thread);
    thread.job = undefined;
    await thread.worker.terminate().catch(() => undefined);
  }
}

let shared: TokenizePool | undefined;

/** The process's TokenizePool with the default options, created on first use. */
export function sharedTokenizePool(): TokenizePool {
  shared ??= new TokenizePool();
  return shared;
}

/** The process's Node options less those about its main script, which a thread refuses (`--input-type`). */
function threadExecArgv(): string[] {
  const kept: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (['--input-type', '-e', '--eval', '-p', '--print'].includes(arg)) i++;
    else if (!arg.startsWith('--input-type=') && !arg.startsWith('--eval=') && !arg.startsWith('--print='))
      kept.push(arg);
  }
  return kept;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, not ${value}`);
  return value;
}
