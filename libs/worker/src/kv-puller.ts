// The decode side of disaggregated serving: given a prefill worker's descriptor, reserve
// blocks, pull only the prompt blocks this engine's prefix cache lacks through the
// transfer library, check and register them, and tell the prefill worker to unpin. Every
// failure (bad descriptor, no free blocks, peer gone, timeout, bad checksum, bad bytes)
// frees the reservation and answers a reason: the caller then prefills locally, so the
// request still completes.
import type { RemotePrefill } from '@armature/proto';
import type { KvTransferHooks } from '@armature/engine';
import type { MetricsRegistry } from '@armature/metrics';
import { annotateActiveSpan, createLogger, inSpan } from '@armature/runtime';
import { isTransferError, type MemoryRegion, type TransferAgent } from '@armature/transfer';
import { checkDescriptor, DescriptorError } from './descriptor.js';

const log = createLogger('worker/kv-pull');

/** How a remote prefill ends on the decode worker (armature_worker_remote_prefill_total's outcome). */
export const IMPORT_OUTCOMES = [
  'imported',
  'no_descriptor',
  'transfer_off',
  'layout_mismatch',
  'bad_descriptor',
  'no_free_blocks',
  'transfer_failed',
  'verify_failed',
  'cancelled',
  'error',
] as const;

export type ImportOutcome = (typeof IMPORT_OUTCOMES)[number];

export interface KvPullerOptions {
  kv: KvTransferHooks;
  /** Absent when transfers are off: every remote prefill is then redone locally. */
  agent?: TransferAgent;
  region?: MemoryRegion;
  metrics: MetricsRegistry;
  /** Tells the prefill worker at `address` to unpin `pinId` (best effort). */
  releaseRemote: (address: string, pinId: string) => void;
  /** Deadline of one pull (default: the agent's). */
  timeoutMs?: number;
}

export class KvPuller {
  constructor(private readonly options: KvPullerOptions) {}

  /**
   * Imports the remote prefill's KV for `requestId`. On 'imported' the engine holds the
   * prompt's KV under the id (generate() with firstToken decodes from it); on anything else
   * it holds nothing and generate() prefills locally.
   */
  async pull(
    requestId: string,
    tokenIds: readonly number[],
    remote: RemotePrefill,
    signal: AbortSignal,
  ): Promise<ImportOutcome> {
    const peer = remote.descriptor?.prefillInstanceId ?? '';
    return inSpan('kv_pull', { 'armature.kv.peer': peer }, async (span) => {
      const outcome = await this.pullOnce(requestId, tokenIds, remote, signal);
      span?.setAttribute('armature.kv.outcome', outcome);
      return outcome;
    });
  }

  private async pullOnce(
    requestId: string,
    tokenIds: readonly number[],
    remote: RemotePrefill,
    signal: AbortSignal,
  ): Promise<ImportOutcome> {
    let outcome: ImportOutcome;
    try {
      outcome = await this.tryPull(requestId, tokenIds, remote, signal);
    } catch (err) {
      // Anything unforeseen (a request the engine refuses to reserve for, ...) still ends in a local prefill.
      log.warn('KV pull failed unexpectedly; prefilling locally', { requestId, err: (err as Error).message });
      outcome = 'error';
    } finally {
      // The prefill worker's blocks are no longer needed, whatever happened here.
      const d = remote.descriptor;
      if (d) this.options.releaseRemote(d.prefillGrpcAddress, d.pinId);
    }
    this.options.metrics.get('armature_worker_remote_prefill_total').inc({ outcome });
    return outcome;
  }

  private async tryPull(
    requestId: string,
    tokenIds: readonly number[],
    remote: RemotePrefill,
    signal: AbortSignal,
  ): Promise<ImportOutcome> {
    const { kv, agent, region, metrics } = this.options;
    const d = remote.descriptor;
    if (!d) return 'no_descriptor';
    if (!agent || !region) return 'transfer_off';
    let checked;
    try {
      checked = checkDescriptor(d, tokenIds, kv.layout, kv.format ?? 'blocks', kv.blockBytes);
    } catch (err) {
      if (!(err instanceof DescriptorError)) throw err;
      log.warn('refusing a KV transfer descriptor; prefilling locally', { requestId, err: err.message });
      return err.reason;
    }
    if (signal.aborted) return 'cancelled';
    const plan = kv.reserveImport(requestId, tokenIds, d.stateBytes > 0 ? d.stateBytes : undefined);
    if (!plan) return 'no_free_blocks';
    metrics.get('armature_worker_kv_blocks_reused_total').inc(plan.cachedBlocks);
    try {
      const stats = await agent.readBlocks(checked.peer, {
        regionId: d.regionId,
        remoteBlockIds: plan.blockIndices.map((i) => checked.blockIds[i]!),
        local: region,
        localBlockIds: plan.localBlockIds,
        timeoutMs: this.options.timeoutMs,
      });
      const backend = stats.backend;
      annotateActiveSpan({
        'armature.kv.backend': backend,
        'armature.kv.bytes': stats.bytes,
        'armature.kv.blocks': stats.blocks,
        'armature.kv.reused_blocks': plan.cachedBlocks,
      });
      metrics.get('armature_transfer_bytes_total').inc({ backend }, stats.bytes);
      metrics.get('armature_transfer_blocks_total').inc({ backend }, stats.blocks);
      metrics.get('armature_transfer_duration_seconds').observe({ backend }, stats.durationMs / 1000);
      if (stats.bytes > 0 && stats.durationMs > 0) {
        metrics
          .get('armature_transfer_bandwidth_bytes_per_second')
          .observe({ backend }, stats.bytes / (stats.durationMs / 1000));
      }
      metrics.get('armature_worker_kv_blocks_pulled_total').inc(stats.blocks);
    } catch (err) {
      kv.cancelImport(requestId);
      const kind = isTransferError(err) ? err.kind : 'unknown';
      metrics.get('armature_transfer_failures_total').inc({ kind });
      log.warn('KV pull failed; prefilling locally', {
        requestId,
        peer: d.prefillInstanceId,
        kind,
        err: (err as Error).message,
      });
      return 'transfer_failed';
    }
    if (signal.aborted) {
      kv.cancelImport(requestId);
      return 'cancelled';
    }
    if (!kv.commitImport(requestId)) {
      log.warn('pulled KV blocks failed their check; prefilling locally', { requestId, peer: d.prefillInstanceId });
      return 'verify_failed';
    }
    return 'imported';
  }
}
