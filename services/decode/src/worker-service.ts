// The Worker gRPC service over an Engine: streams each request's tokens, maps cancellation
// of the call to the engine, reports health and load, and serves KV dumps for recovery.
import type { ServerWritableStream, handleUnaryCall } from '@grpc/grpc-js';
import {
  FinishReason,
  HealthResponse_Status,
  type DumpKvStateRequest,
  type DumpKvStateResponse,
  type GenerateRequest,
  type GenerateResponse,
  type HealthRequest,
  type HealthResponse,
  type WorkerServer,
} from '@armature/proto';
import type { Engine, EngineRequest, FinishReason as EngineFinish } from '@armature/engine';
import type { MetricsRegistry } from '@armature/metrics';
import { ArmatureError, InFlight, asArmatureError, createLogger, toGrpcError } from '@armature/runtime';
import type { KvEventLog } from './kv-event-log.js';

const log = createLogger('worker');

const FINISH: Record<EngineFinish, FinishReason> = {
  stop: FinishReason.FINISH_REASON_STOP,
  length: FinishReason.FINISH_REASON_LENGTH,
  cancelled: FinishReason.FINISH_REASON_CANCELLED,
  error: FinishReason.FINISH_REASON_ERROR,
};

export interface WorkerServiceOptions {
  instanceId: string;
  engine: Engine;
  kvLog: KvEventLog;
  metrics: MetricsRegistry;
}

export class WorkerService {
  readonly inFlight = new InFlight();
  private draining = false;

  constructor(private readonly options: WorkerServiceOptions) {}

  /** Refuse new requests from now on (SIGTERM). */
  startDraining(): void {
    this.draining = true;
  }

  private toEngineRequest(req: GenerateRequest): EngineRequest {
    const card = this.options.engine.card;
    if (req.model !== card.model) {
      throw new ArmatureError(
        'not_found',
        'model_not_found',
        `this worker serves ${JSON.stringify(card.model)}, not ${JSON.stringify(req.model)}`,
      );
    }
    if (req.tokenIds.length === 0)
      throw new ArmatureError('invalid_argument', 'empty_prompt', 'the prompt has no tokens');
    const maxTokens = req.stop?.maxTokens ?? 0;
    if (maxTokens < 1)
      throw new ArmatureError('invalid_argument', 'invalid_max_tokens', 'max_tokens must be at least 1');
    return {
      requestId: req.requestId,
      tokenIds: req.tokenIds,
      sampling: {
        temperature: req.sampling?.temperature,
        topP: req.sampling?.topP,
        topK: req.sampling?.topK,
        seed: req.sampling?.seed,
      },
      stop: { maxTokens, ignoreEos: req.stop?.ignoreEos ?? false, stopTokenIds: req.stop?.stopTokenIds ?? [] },
    };
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
    let finish: EngineFinish | undefined;
    try {
      if (this.draining) throw new ArmatureError('unavailable', 'worker_draining', 'worker is shutting down');
      const request = this.toEngineRequest(call.request);
      for await (const out of this.options.engine.generate(request, abort.signal)) {
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
        if (!call.write(msg)) await new Promise((r) => call.once('drain', r));
      }
      if (!abort.signal.aborted) call.end();
    } catch (err) {
      const e = asArmatureError(err);
      finish = 'error';
      if (e.cls === 'internal')
        log.error('generate failed', { requestId: call.request.requestId, err: e.detail ?? e.message });
      if (!abort.signal.aborted) call.emit('error', toGrpcError(e));
    } finally {
      if (abort.signal.aborted) finish = 'cancelled';
      this.options.metrics.get('armature_worker_requests_total').inc({ model, finish_reason: finish ?? 'cancelled' });
      call.off('cancelled', onCancel);
      end();
    }
  }

  handlers(): WorkerServer {
    const health: handleUnaryCall<HealthRequest, HealthResponse> = (_call, callback) => {
      const load = this.options.engine.load();
      callback(null, {
        status: this.draining ? HealthResponse_Status.STATUS_DRAINING : HealthResponse_Status.STATUS_SERVING,
        instanceId: this.options.instanceId,
        load: {
          activeDecodeBlocks: load.activeDecodeBlocks,
          activePrefillTokens: load.activePrefillTokens,
          waitingRequests: load.waitingRequests,
          runningRequests: load.runningRequests,
          kvUsage: load.kvUsage,
        },
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
    return {
      generate: (call) => void this.generate(call),
      health,
      dumpKvState,
    };
  }
}
