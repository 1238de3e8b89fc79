// The live mocker: runs MockerCore against the wall clock. Each pass takes the time the
// perf model says (paced against a running deadline, so timer overshoot is caught up
// rather than accumulated); the loop idles when there is no work and wakes on a request.
// It turns step outputs into per-request streams (or, for a prefill-only request, a promise
// of its PrefillResult) and AbortSignals into cancellations. The disaggregation hooks (`kv`)
// are the core's, stamped with the wall clock. It does not publish anywhere: listeners (the
// worker service) forward events and load; nor does it move KV bytes between engines.
import type { KvEvent, KvEventBatch } from '@armature/kv';
import { ArmatureError, asArmatureError, createLogger, type ModelCard } from '@armature/runtime';
import { OutputStream } from '../output-stream.js';
import type {
  Engine,
  EngineLoad,
  EngineStep,
  EngineOutput,
  EngineRequest,
  ImportPlan,
  KvCacheLayout,
  KvTransferHooks,
  PrefillResult,
} from '../types.js';
import { kvBlockBytes } from './kv-memory.js';
import { compileMockerOptions, mockerCard, type MockerConfig, type MockerOptions } from './options.js';
import { MockerCore, type MockerStepOutput } from './scheduler.js';

const log = createLogger('engine/mocker');

/** A loop behind its schedule by more than this stops catching up (ms). */
const MAX_LAG_MS = 1000;

/** A request in flight: a stream of outputs, or a prefill awaiting its first token. */
type ActiveRequest =
  | {
      readonly kind: 'stream';
      readonly stream: OutputStream;
      readonly signal: AbortSignal;
      readonly onAbort: () => void;
    }
  | {
      readonly kind: 'prefill';
      readonly resolve: (result: PrefillResult) => void;
      readonly reject: (error: ArmatureError) => void;
      readonly signal: AbortSignal;
      readonly onAbort: () => void;
    };

const cancelledError = (requestId: string): ArmatureError =>
  new ArmatureError('cancelled', 'request_cancelled', `request ${requestId} was cancelled`);

export class MockerEngine implements Engine {
  readonly card: ModelCard;
  readonly kv: KvTransferHooks;
  private readonly core: MockerCore;
  private readonly active = new Map<string, ActiveRequest>();
  private readonly kvListeners = new Set<(batch: KvEventBatch) => void>();
  private readonly loadListeners = new Set<(load: EngineLoad) => void>();
  private readonly stepListeners = new Set<(step: EngineStep) => void>();
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly loop: Promise<void>;

  constructor(readonly config: MockerConfig) {
    this.card = mockerCard(config);
    const opaque = config.kvEvents === 'opaque';
    this.core = new MockerCore(config, {
      // Without listeners to feed the core records no events at all.
      onKvEvents:
        config.kvEvents === 'none'
          ? undefined
          : (batch) => this.emit(this.kvListeners, opaque ? scrambleBatch(batch) : batch),
      onLoad: (load) => this.emit(this.loadListeners, load),
    });
    this.kv = new MockerKvHooks(
      this.core,
      config,
      (request, signal) => this.prefill(request, signal),
      () => this.wake?.(),
    );
    this.loop = this.run();
  }

  generate(request: EngineRequest, signal: AbortSignal): AsyncIterable<EngineOutput> {
    if (this.closed) throw new ArmatureError('unavailable', 'engine_closed', 'the engine is shutting down');
    if (signal.aborted) {
      // A decode request cancelled before it starts leaves no imported KV behind.
      if (request.firstToken !== undefined && this.core.stateOf(request.requestId) === 'importing')
        this.kv.cancelImport(request.requestId);
      const stream = new OutputStream();
      stream.push({ tokenIds: [], finishReason: 'cancelled' });
      stream.end();
      return stream;
    }
    this.core.add(request, Date.now()); // throws for invalid requests
    const { requestId } = request;
    const stream = new OutputStream(() => this.cancel(requestId, false));
    const onAbort = (): void => this.cancel(requestId, true);
    signal.addEventListener('abort', onAbort, { once: true });
    this.active.set(requestId, { kind: 'stream', stream, signal, onAbort });
    this.wake?.();
    return stream;
  }

  private prefill(request: EngineRequest, signal: AbortSignal): Promise<PrefillResult> {
    return new Promise((resolve, reject) => {
      // Throwing here rejects: invalid requests reject as generate() throws.
      if (this.closed) throw new ArmatureError('unavailable', 'engine_closed', 'the engine is shutting down');
      if (signal.aborted) throw cancelledError(request.requestId);
      this.core.add(request, Date.now(), { prefillOnly: true });
      const { requestId } = request;
      const onAbort = (): void => this.cancel(requestId, true);
      signal.addEventListener('abort', onAbort, { once: true });
      this.active.set(requestId, { kind: 'prefill', resolve, reject, signal, onAbort });
      this.wake?.();
    });
  }

  load(): EngineLoad {
    return this.core.load();
  }

  onKvEvents(listener: (batch: KvEventBatch) => void): () => void {
    this.kvListeners.add(listener);
    return () => this.kvListeners.delete(listener);
  }

  onLoad(listener: (load: EngineLoad) => void): () => void {
    this.loadListeners.add(listener);
    return () => this.loadListeners.delete(listener);
  }

  onStep(listener: (step: EngineStep) => void): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
  }

  kvSnapshot(): KvEvent[] {
    if (this.config.kvEvents === 'none') return [];
    const events = this.core.kvSnapshot();
    return this.config.kvEvents === 'opaque' ? events.map(scrambleEvent) : events;
  }

  /** Throws if the core's bookkeeping is inconsistent (tests). */
  checkInvariants(): void {
    this.core.checkInvariants();
  }

  async close(): Promise<void> {
    if (this.closed) return this.loop;
    this.closed = true;
    this.failAll(new ArmatureError('unavailable', 'engine_closed', 'the engine shut down'));
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let deadline = performance.now();
    while (!this.closed) {
      if (!this.core.hasWork()) {
        this.core.flush(Date.now());
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        deadline = performance.now();
        continue;
      }
      let outputs: MockerStepOutput[];
      try {
        const step = this.core.step(Date.now());
        outputs = step.outputs;
        if (step.sequences > 0 || step.preempted.length > 0)
          this.emit(this.stepListeners, {
            sequences: step.sequences,
            prefillTokens: step.prefillTokens,
            preempted: step.preempted.length,
            durationMs: step.durationMs,
          });
        deadline = Math.max(deadline + step.durationMs, performance.now() - MAX_LAG_MS);
      } catch (err) {
        // Never let the loop die: fail what was in flight and go on with an empty core.
        log.error('mocker step failed', { error: err });
        this.failAll(asArmatureError(err));
        continue;
      }
      await sleepUntil(deadline);
      this.deliver(outputs);
    }
  }

  private deliver(outputs: MockerStepOutput[]): void {
    for (const { requestId, output, prefill } of outputs) {
      const entry = this.active.get(requestId);
      if (!entry) continue; // cancelled during the pass (a pinned prefill was released then)
      if (entry.kind === 'prefill') {
        this.active.delete(requestId);
        entry.signal.removeEventListener('abort', entry.onAbort);
        entry.resolve(prefill!);
        continue;
      }
      entry.stream.push(output);
      if (output.finishReason) {
        this.active.delete(requestId);
        entry.signal.removeEventListener('abort', entry.onAbort);
        entry.stream.end();
      }
    }
  }

  private cancel(requestId: string, notify: boolean): void {
    const entry = this.active.get(requestId);
    if (!entry) return;
    this.active.delete(requestId);
    entry.signal.removeEventListener('abort', entry.onAbort);
    this.drop(requestId, entry);
    if (entry.kind === 'prefill') entry.reject(cancelledError(requestId));
    else {
      if (notify) entry.stream.push({ tokenIds: [], finishReason: 'cancelled' });
      entry.stream.end();
    }
    this.wake?.();
  }

  private failAll(error: ArmatureError): void {
    for (const [requestId, entry] of this.active) {
      entry.signal.removeEventListener('abort', entry.onAbort);
      this.drop(requestId, entry);
      if (entry.kind === 'prefill') entry.reject(error);
      else entry.stream.fail(error);
    }
    this.active.clear();
  }

  /** Frees what a request holds in the core; a prefill whose first token came in the pass being paced is pinned already. */
  private drop(requestId: string, entry: ActiveRequest): void {
    if (!this.core.cancel(requestId) && entry.kind === 'prefill') this.core.release(requestId, Date.now());
  }

  private emit<T>(listeners: Set<(value: T) => void>, value: T): void {
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (err) {
        log.warn('engine listener threw', { error: err });
      }
    }
  }
}

/** The mocker's disaggregation hooks: the core's, stamped with the wall clock, waking the loop when blocks free up. */
class MockerKvHooks implements KvTransferHooks {
  readonly layout: KvCacheLayout;
  readonly blockBytes: number;
  readonly totalBlocks: number;

  constructor(
    private readonly core: MockerCore,
    config: MockerConfig,
    readonly prefill: (request: EngineRequest, signal: AbortSignal) => Promise<PrefillResult>,
    private readonly wake: () => void,
  ) {
    this.layout = config.kvLayout;
    this.blockBytes = kvBlockBytes(config.kvLayout);
    this.totalBlocks = config.totalKvBlocks;
  }

  attachMemory(memory: Uint8Array): void {
    this.core.attachMemory(memory);
  }

  release(requestId: string): boolean {
    const released = this.core.release(requestId, Date.now());
    if (released) this.wake();
    return released;
  }

  pinned(): { requests: number; blocks: number } {
    return this.core.pinned();
  }

  reserveImport(requestId: string, tokenIds: readonly number[]): ImportPlan | undefined {
    return this.core.reserveImport(requestId, tokenIds, Date.now());
  }

  commitImport(requestId: string): boolean {
    const committed = this.core.commitImport(requestId, Date.now());
    if (!committed) this.wake(); // the reservation's blocks are free again
    return committed;
  }

  cancelImport(requestId: string): void {
    this.core.cancelImport(requestId, Date.now());
    this.wake();
  }
}

/** Creates a live mocker from raw options (see MockerOptions for the defaults). */
export function createMockerEngine(options: MockerOptions = {}): MockerEngine {
  return new MockerEngine(compileMockerOptions(options));
}

function sleepUntil(deadline: number): Promise<void> {
  const remaining = deadline - performance.now();
  // Timers cannot wait less than a millisecond; yield to I/O instead and let the deadline catch up.
  if (remaining < 1) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, remaining));
}

// An engine-private hash scheme for kvEvents 'opaque': a bijection of ours, so parents and
// removals stay consistent, yet no hash equals the router's own.
const SCRAMBLE = 0x9e3779b97f4a7c15n;
const scramble = (hash: bigint): bigint => hash ^ SCRAMBLE;

function scrambleEvent(event: KvEvent): KvEvent {
  switch (event.type) {
    case 'BlockStored':
      return {
        ...event,
        blockHashes: event.blockHashes.map(scramble),
        parentBlockHash: event.parentBlockHash === null ? null : scramble(event.parentBlockHash),
      };
    case 'BlockRemoved':
      return { ...event, blockHashes: event.blockHashes.map(scramble) };
    default:
      return event;
  }
}

function scrambleBatch(batch: KvEventBatch): KvEventBatch {
  return { ...batch, events: batch.events.map(scrambleEvent) };
}
