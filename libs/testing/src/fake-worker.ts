// In-memory workers for unit tests of the frontend pipeline. A FakeWorker is scripted (the
// tokens it streams, where it fails or hangs, what Prefill answers) and records every call
// it got; a FakeWorkerPool addresses several by gRPC address with the shape of the
// frontend's WorkerPort (services/frontend/src/pipeline/ports.ts, checked there with
// `satisfies`). They behave as the gRPC client does: cancelling or aborting a call ends
// its stream with CANCELLED, and a Prefill past its deadline fails with DEADLINE_EXCEEDED.
import {
  FinishReason,
  type GenerateRequest,
  type GenerateResponse,
  type KvTransferDescriptor,
  type PrefillResponse,
  type WorkerTarget,
} from '@armature/proto';
import { ArmatureError } from '@armature/runtime';

export interface FakeWorkerScript {
  /** Token ids Generate streams, one message per inner array; default [[1], [2], [3]]. */
  tokens?: number[][];
  /** On the last message; default STOP. UNSPECIFIED: the stream ends without finishing. */
  finishReason?: FinishReason;
  /** Prompt tokens found in the prefix cache, on the first message (and in Prefill's answer). */
  cachedTokens?: number;
  /** Generate fails after this many messages: 0 before its first, as a worker that died. */
  failAfter?: number;
  /** The failure; default UNAVAILABLE (`grpc_unavailable`), as a dead worker's connection. */
  failWith?: ArmatureError;
  /** Generate stops answering after this many messages, until the call is cancelled. */
  hangAfter?: number;
  /** Generate waits this long before its first message (a queued or prefilling worker). */
  firstDelayMs?: number;
  /** Generate never accepts the call nor answers, until cancelled (a stopped process). */
  unresponsive?: boolean;
  /** Prefill's answer (merged over defaults: first token 1, a descriptor pinned under the request id). */
  prefill?: Partial<PrefillResponse> | 'hang' | ArmatureError;
}

/** A Generate call's stream, as the frontend's WorkerStream. */
export type FakeStream = AsyncIterable<GenerateResponse> & { cancel(): void; readonly accepted: Promise<void> };

export interface FakeGenerateCall {
  request: GenerateRequest;
  signal: AbortSignal;
  /** Messages sent so far. */
  sent: number;
  /** The call was cancelled: by `cancel()` or by its signal. */
  cancelled: boolean;
  /** running; finished (last message sent); failed (scripted or cancelled); closed (the caller left early). */
  outcome: 'running' | 'finished' | 'failed' | 'closed';
}

export interface FakePrefillCall {
  request: GenerateRequest;
  deadline: number;
  /** What Prefill answered; undefined while waiting or when it failed. */
  response?: PrefillResponse;
}

const cancelledError = (): ArmatureError => new ArmatureError('cancelled', 'grpc_cancelled', 'Cancelled on client');

export class FakeWorker {
  readonly generateCalls: FakeGenerateCall[] = [];
  readonly prefillCalls: FakePrefillCall[] = [];
  /** Pin ids ReleaseKv was called with. */
  readonly released: string[] = [];

  constructor(
    readonly instanceId: string,
    /** What the worker does; may be replaced between calls. */
    public script: FakeWorkerScript = {},
    readonly grpcAddress = `fake://${instanceId}`,
  ) {}

  /** Where the router sends requests for this worker. */
  get target(): WorkerTarget {
    return { instanceId: this.instanceId, grpcAddress: this.grpcAddress, dpRank: 0 };
  }

  generate(request: GenerateRequest, signal: AbortSignal): FakeStream {
    const call: FakeGenerateCall = {
      request,
      signal,
      sent: 0,
      cancelled: false,
      outcome: 'running',
    };
    this.generateCalls.push(call);
    const stop = new AbortController();
    const cancel = (): void => {
      call.cancelled = true;
      stop.abort();
    };
    signal.addEventListener('abort', cancel, { once: true });
    const script = this.script;
    const chunks = script.tokens ?? [[1], [2], [3]];
    const finish = script.finishReason ?? FinishReason.FINISH_REASON_STOP;
    async function* messages(): AsyncGenerator<GenerateResponse> {
      try {
        if (script.unresponsive) {
          await untilAborted(stop.signal);
          throw cancelledError();
        }
        for (let i = 0; i <= chunks.length; i++) {
          if (script.failAfter === i)
            throw script.failWith ?? new ArmatureError('unavailable', 'grpc_unavailable', 'No connection established');
          if (script.hangAfter === i) await untilAborted(stop.signal);
          if (i === 0 && script.firstDelayMs) await untilAborted(stop.signal, Date.now() + script.firstDelayMs);
          await new Promise((resolve) => setImmediate(resolve));
          if (stop.signal.aborted) throw cancelledError();
          if (i === chunks.length) break;
          call.sent++;
          yield {
            tokenIds: chunks[i],
            finishReason: i === chunks.length - 1 ? finish : FinishReason.FINISH_REASON_UNSPECIFIED,
            cachedTokens: i === 0 ? (script.cachedTokens ?? 0) : 0,
            promptTokens: request.tokenIds.length,
          };
        }
        call.outcome = 'finished';
      } catch (err) {
        call.outcome = 'failed';
        throw err;
      } finally {
        signal.removeEventListener('abort', cancel);
        if (call.outcome === 'running') call.outcome = 'closed';
      }
    }
    // A live worker takes the call at once (response headers); a stopped one never does.
    const accepted: Promise<void> = script.unresponsive ? untilAborted(stop.signal) : Promise.resolve();
    return Object.assign(messages(), { cancel, accepted });
  }

  async prefill(request: GenerateRequest, signal: AbortSignal, deadline: number): Promise<PrefillResponse> {
    const call: FakePrefillCall = { request, deadline };
    this.prefillCalls.push(call);
    const answer = this.script.prefill ?? {};
    await new Promise((resolve) => setImmediate(resolve));
    if (signal.aborted) throw cancelledError();
    if (answer instanceof ArmatureError) throw answer;
    if (answer === 'hang') {
      await untilAborted(signal, deadline);
      throw signal.aborted
        ? cancelledError()
        : new ArmatureError('deadline_exceeded', 'grpc_deadline_exceeded', 'Deadline exceeded');
    }
    call.response = {
      firstToken: 1,
      finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
      cachedTokens: this.script.cachedTokens ?? 0,
      promptTokens: request.tokenIds.length,
      descriptor: this.descriptor(request),
      ...answer,
    };
    return call.response;
  }

  releaseKv(pinId: string): void {
    this.released.push(pinId);
  }

  private descriptor(request: GenerateRequest): KvTransferDescriptor {
    return {
      prefillInstanceId: this.instanceId,
      prefillGrpcAddress: this.grpcAddress,
      pinId: request.requestId,
      transferMetadata: '{}',
      regionId: 0,
      blockIds: [],
      blockHashes: Buffer.alloc(0),
      layout: undefined,
      promptTokens: request.tokenIds.length,
      expiresAtUnixMs: Date.now() + 60_000,
      stateBytes: 0,
    };
  }
}

/** Several FakeWorkers by gRPC address: the frontend's WorkerPort, in memory. */
export class FakeWorkerPool {
  /** Addresses forgetWorker was called with, in order. */
  readonly forgotten: string[] = [];
  private readonly byAddress = new Map<string, FakeWorker>();

  constructor(workers: FakeWorker[]) {
    for (const w of workers) this.byAddress.set(w.grpcAddress, w);
  }

  /** The worker at an address; throws if there is none. */
  at(address: string): FakeWorker {
    const w = this.byAddress.get(address);
    if (!w) throw noWorkerAt(address);
    return w;
  }

  /** Generate on the worker at `address`; with no worker there, the stream fails `unavailable`. */
  generate(address: string, request: GenerateRequest, signal: AbortSignal): FakeStream {
    const w = this.byAddress.get(address);
    if (w) return w.generate(request, signal);
    const failing: AsyncIterable<GenerateResponse> = {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(noWorkerAt(address)) }),
    };
    return Object.assign(failing, { cancel: () => undefined, accepted: Promise.resolve() });
  }

  async prefill(
    address: string,
    request: GenerateRequest,
    signal: AbortSignal,
    deadline: number,
  ): Promise<PrefillResponse> {
    return this.at(address).prefill(request, signal, deadline);
  }

  releaseKv(address: string, pinId: string): void {
    this.byAddress.get(address)?.releaseKv(pinId);
  }

  forgetWorker(address: string): void {
    this.forgotten.push(address);
  }
}

const noWorkerAt = (address: string): ArmatureError =>
  new ArmatureError('unavailable', 'grpc_unavailable', `no fake worker at ${address}`);

/** Resolves when `signal` aborts, or at `deadline` (epoch ms) when given. */
function untilAborted(signal: AbortSignal, deadline?: number): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = deadline === undefined ? undefined : setTimeout(done, Math.max(0, deadline - Date.now()));
    function done(): void {
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
