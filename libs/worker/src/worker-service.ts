// The Worker gRPC service over an Engine: streams each request's tokens, maps cancellation
// of the call to the engine, reports health and load, and serves KV dumps for recovery.
// For disaggregated serving it also prefills (pinning the prompt's blocks and answering a
// transfer descriptor), releases pins, and decodes requests a prefill worker started:
// pulling their KV first, or prefilling locally when that fails.
import { Metadata, type ServerUnaryCall, type ServerWritableStream, type handleUnaryCall } from '@grpc/grpc-js';
import {
  FinishReason,
  HealthResponse_Status,
  modelCardToProto,
  workerLoadToProto,
  type DumpKvStateRequest,
  type DumpKvStateResponse,
  type GenerateRequest,
  type GenerateResponse,
  type HealthRequest,
  type HealthResponse,
  type PrefillResponse,
  type ReleaseKvRequest,
  type ReleaseKvResponse,
  type WorkerServer,
} from '@armature/proto';
import type { Engine, EngineOutput, FinishReason as EngineFinish } from '@armature/engine';
import type { MetricsRegistry } from '@armature/metrics';
import {
  ArmatureError,
  InFlight,
  annotateActiveSpan,
  asArmatureError,
  createLogger,
  toGrpcError,
} from '@armature/runtime';
import { encodeAgentMetadata, type TransferAgent } from '@armature/transfer';
import { encodeHashes, layoutToProto } from './descriptor.js';
import { checkedEngineRequest } from './engine-request.js';
import type { KvEventLog } from './kv-event-log.js';
import type { KvPuller } from './kv-puller.js';
import type { PinTable } from './pin-table.js';

const log = createLogger('worker');

const FINISH: Record<EngineFinish, FinishReason> = {
  stop: FinishReason.FINISH_REASON_STOP,
  length: FinishReason.FINISH_REASON_LENGTH,
  cancelled: FinishReason.FINISH_REASON_CANCELLED,
  error: FinishReason.FINISH_REASON_ERROR,
};

/**
 * Every finish_reason of armature_worker_requests_total: the engine's, a request handed
 * back at shutdown (evicted), and a prompt prefilled for a decode worker (prefilled).
 */
export const WORKER_FINISH_REASONS = [...(Object.keys(FINISH) as EngineFinish[]), 'evicted', 'prefilled'] as const;

export interface WorkerServiceOptions {
  instanceId: string;
  engine: Engine;
  kvLog: KvEventLog;
  metrics: MetricsRegistry;
  /** Disaggregated serving: this worker's transfer agent and the region its KV lives in. */
  transfer?: { agent: TransferAgent; regionId: number };
  /** Prefill side: pins of prefilled prompts (Prefill is refused without it). */
  pins?: PinTable;
  /** Decode side: pulls a remote prefill's KV (without it every remote prefill is redone locally). */
  puller?: KvPuller;
}

export class WorkerService {
  readonly inFlight = new InFlight();
  private draining = false;
  /** Ends each Generate call in progress with a failure of the caller's choosing. */
  private readonly running = new Set<(err: ArmatureError) => void>();

  constructor(private readonly options: WorkerServiceOptions) {}

  /** This worker's gRPC address, named in transfer descriptors (known once the server is bound). */
  grpcAddress = '';

  /** Refuse new requests from now on (SIGTERM). */
  startDraining(): void {
    this.draining = true;
  }

  /**
   * Hands back every Generate call still running (the drain deadline passed): each ends
   * with `unavailable` / worker_draining, which the frontend answers by migrating the
   * request, with what it has generated, to another worker. Resolves once they ended.
   */
  async evict(): Promise<number> {
    const n = this.running.size;
    const err = new ArmatureError('unavailable', 'worker_draining', 'the worker is shutting down');
    for (const end of [...this.running]) end(err);
    await this.inFlight.idle();
    return n;
  }

  private async generate(call: ServerWritableStream<GenerateRequest, GenerateResponse>): Promise<void> {
    const model = this.options.engine.card.model;
    const end = this.inFlight.begin();
    const abort = new AbortController();
    const onCancel = (): void => abort.abort();
    call.on('cancelled', onCancel);
    call.on('close', () => {
      if (!call.writableFinished) abort.abort();
    });
    let evicted: ArmatureError | undefined;
    const evict = (err: ArmatureError): void => {
      evicted = err;
      abort.abort();
    };
    this.running.add(evict);
    let finish: EngineFinish | 'evicted' | undefined;
    try {
      if (this.draining) throw new ArmatureError('unavailable', 'worker_draining', 'worker is shutting down');
      const request = checkedEngineRequest(call.request, this.options.engine.card);
      // Accepted: response headers at once, before any queueing or prefill, so the caller
      // can tell a live worker that is busy from one that is stopped or stuck.
      call.sendMetadata(new Metadata());
      const remote = call.request.remotePrefill;
      let imported = false;
      if (remote) {
        // A prefill worker ran the prompt: pull its KV (or fall back to a local prefill).
        if (this.options.puller)
          imported =
            (await this.options.puller.pull(request.requestId, request.tokenIds, remote, abort.signal)) === 'imported';
        else this.options.metrics.get('armature_worker_remote_prefill_total').inc({ outcome: 'transfer_off' });
      }
      annotateActiveSpan({
        'armature.worker.id': this.options.instanceId,
        'armature.worker.prompt_tokens': request.tokenIds.length,
        'armature.worker.kv_imported': imported,
      });
      let outputs: AsyncIterable<EngineOutput>;
      try {
        if (abort.signal.aborted) throw new ArmatureError('cancelled', 'request_cancelled', 'the caller cancelled');
        outputs = this.options.engine.generate(request, abort.signal);
      } catch (err) {
        // The imported KV is held for this request only: free it if the request never starts.
        if (imported) this.options.engine.kv?.cancelImport(request.requestId);
        throw err;
      }
      for await (const out of outputs) {
        if (abort.signal.aborted) break;
        finish = out.finishReason;
        const msg: GenerateResponse = {
          tokenIds: out.tokenIds,
          finishReason: out.finishReason ? FINISH[out.finishReason] : FinishReason.FINISH_REASON_UNSPECIFIED,
          cachedTokens: out.cachedTokens ?? 0,
          promptTokens: out.promptTokens ?? 0,
        };
        if (out.tokenIds.length > 0) {
          this.options.metrics.get('armature_worker_generated_tokens_total').inc({ model }, out.tokenIds.length);
        }
        if (out.promptTokens !== undefined) this.countPrompt(model, out.promptTokens, out.cachedTokens ?? 0);
        if (!call.write(msg)) await new Promise((r) => call.once('drain', r));
      }
      if (evicted) call.emit('error', toGrpcError(evicted));
      else if (!abort.signal.aborted) call.end();
    } catch (err) {
      const e = evicted ?? asArmatureError(err);
      finish = 'error';
      if (e.cls === 'internal')
        log.error('generate failed', { requestId: call.request.requestId, err: e.detail ?? e.message });
      if (evicted || !abort.signal.aborted) call.emit('error', toGrpcError(e));
    } finally {
      this.running.delete(evict);
      if (evicted) finish = 'evicted';
      else if (abort.signal.aborted) finish = 'cancelled';
      log.debug('generate done', { routeId: call.request.requestId, finish });
      this.options.metrics.get('armature_worker_requests_total').inc({ model, finish_reason: finish ?? 'cancelled' });
      call.off('cancelled', onCancel);
      end();
    }
  }

  /** A started request's prompt, and how much of it the prefix cache held. */
  private countPrompt(model: string, promptTokens: number, cachedTokens: number): void {
    this.options.metrics.get('armature_worker_prompt_tokens_total').inc({ model }, promptTokens);
    this.options.metrics.get('armature_worker_prefix_cache_hit_tokens_total').inc({ model }, cachedTokens);
  }

  /** Prefill only: runs the prompt, pins its blocks, answers the first token and the descriptor. */
  private async prefill(call: ServerUnaryCall<GenerateRequest, PrefillResponse>): Promise<PrefillResponse> {
    const { engine, pins, transfer, metrics } = this.options;
    const model = engine.card.model;
    if (this.draining) throw new ArmatureError('unavailable', 'worker_draining', 'worker is shutting down');
    if (!engine.kv || !pins || !transfer) {
      throw new ArmatureError(
        'failed_precondition',
        'prefill_unsupported',
        `worker ${this.options.instanceId} does not serve prefills (engine ${engine.card.engine}, transfer ${transfer ? 'on' : 'off'})`,
      );
    }
    const request = checkedEngineRequest(call.request, this.options.engine.card);
    if (call.request.remotePrefill)
      throw new ArmatureError('invalid_argument', 'bad_prefill', 'a prefill request cannot carry a remote prefill');
    const end = this.inFlight.begin();
    const abort = new AbortController();
    const onCancel = (): void => abort.abort();
    call.on('cancelled', onCancel);
    this.updatePrefillQueue();
    annotateActiveSpan({
      'armature.worker.id': this.options.instanceId,
      'armature.worker.prompt_tokens': request.tokenIds.length,
    });
    try {
      const result = await engine.kv.prefill(request, abort.signal);
      metrics.get('armature_worker_generated_tokens_total').inc({ model }, 1);
      this.countPrompt(model, result.promptTokens, result.cachedTokens);
      const response: PrefillResponse = {
        firstToken: result.firstToken,
        finishReason: result.finishReason ? FINISH[result.finishReason] : FinishReason.FINISH_REASON_UNSPECIFIED,
        cachedTokens: result.cachedTokens,
        promptTokens: result.promptTokens,
      };
      if (result.finishReason) {
        metrics.get('armature_worker_requests_total').inc({ model, finish_reason: result.finishReason });
        return response;
      }
      if (abort.signal.aborted) {
        // Nobody will pull these blocks.
        engine.kv.release(request.requestId);
        throw new ArmatureError('cancelled', 'request_cancelled', 'the caller cancelled the prefill');
      }
      const expiresAt = pins.add(request.requestId);
      response.descriptor = {
        prefillInstanceId: this.options.instanceId,
        prefillGrpcAddress: this.grpcAddress,
        pinId: request.requestId,
        transferMetadata: encodeAgentMetadata(transfer.agent.metadata()),
        regionId: transfer.regionId,
        blockIds: result.blockIds,
        blockHashes: encodeHashes(result.blockHashes),
        layout: layoutToProto(engine.kv.layout),
        promptTokens: result.promptTokens,
        expiresAtUnixMs: expiresAt,
        stateBytes: result.stateBytes ?? 0,
      };
      metrics.get('armature_worker_requests_total').inc({ model, finish_reason: 'prefilled' });
      this.updatePins();
      return response;
    } finally {
      call.off('cancelled', onCancel);
      this.updatePrefillQueue();
      end();
    }
  }

  /** Publishes the pin gauges (after a pin starts or ends). */
  updatePins(): void {
    const kv = this.options.engine.kv;
    if (!kv) return;
    const model = this.options.engine.card.model;
    const { requests, blocks } = kv.pinned();
    this.options.metrics.get('armature_worker_pinned_requests').set({ model }, requests);
    this.options.metrics.get('armature_worker_pinned_blocks').set({ model }, blocks);
  }

  private updatePrefillQueue(): void {
    const model = this.options.engine.card.model;
    this.options.metrics
      .get('armature_worker_prefill_queue_depth')
      .set({ model }, this.options.engine.load().waitingRequests);
  }

  handlers(): WorkerServer {
    const health: handleUnaryCall<HealthRequest, HealthResponse> = (_call, callback) => {
      callback(null, {
        status: this.draining ? HealthResponse_Status.STATUS_DRAINING : HealthResponse_Status.STATUS_SERVING,
        instanceId: this.options.instanceId,
        load: workerLoadToProto(this.options.engine.load()),
        card: modelCardToProto(this.options.engine.card),
      });
    };
    const dumpKvState: handleUnaryCall<DumpKvStateRequest, DumpKvStateResponse> = (call, callback) => {
      try {
        const from = call.request.fromSeq === undefined ? undefined : BigInt(call.request.fromSeq);
        const dump = this.options.kvLog.dump(from, () => this.options.engine.kvSnapshot(), null);
        callback(null, {
          eventBatches: dump.batches.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
          firstSeq: Number(dump.firstSeq),
          nextSeq: Number(dump.nextSeq),
          fullDump: dump.fullDump,
        });
      } catch (err) {
        callback(toGrpcError(err) as never);
      }
    };
    const prefill: handleUnaryCall<GenerateRequest, PrefillResponse> = (call, callback) => {
      this.prefill(call).then(
        (res) => callback(null, res),
        (err: unknown) => {
          const e = asArmatureError(err);
          if (e.cls === 'internal')
            log.error('prefill failed', { requestId: call.request.requestId, err: e.detail ?? e.message });
          callback(toGrpcError(e) as never);
        },
      );
    };
    const releaseKv: handleUnaryCall<ReleaseKvRequest, ReleaseKvResponse> = (call, callback) => {
      const released = this.options.pins?.release(call.request.pinId) ?? false;
      if (released) this.updatePins();
      callback(null, { released });
    };
    return {
      generate: (call) => void this.generate(call),
      prefill,
      releaseKv,
      health,
      dumpKvState,
    };
  }
}
