// Router replicas share the active load they place on workers, so that every replica's
// cost function sees the requests the others sent: each replica publishes its add /
// prefill-complete / local-prefill / free changes on its own event-plane socket (topic `active`) and
// applies the ones the other replicas publish, for both pools of a disaggregated
// deployment (decode, and prefill). Predictions for workers in approximate
// mode travel with the adds, so the replicas predict the same caches. A replica that
// leaves discovery takes its entries with it; entries orphaned by a lost message are
// swept by age. The KV index is not shared: each replica rebuilds it from the workers.
import { decodeBody, encodeBody, isPublisherRestart, type EventPublisher } from '@armature/event-plane';
import type { MetricsRegistry } from '@armature/metrics';
import type { ActiveLoadOp, RouterCore } from '@armature/router-core';
import { createLogger } from '@armature/runtime';
import type { WorkerDirectory } from './worker-directory.js';

const log = createLogger('router/replicas');

/** Topic of active-load changes between router replicas. */
export const ACTIVE_TOPIC = 'active';

/** Which of a replica's routers an op belongs to. */
export type Pool = 'decode' | 'prefill';

interface WireOp {
  router: string;
  /** Absent: decode (what replicas without disaggregation send). */
  pool?: Pool;
  op: ActiveLoadOp['op'];
  requestId: string;
  workerId?: string;
  dpRank?: number;
  prefillTokens?: number;
  /** Block hash limbs as little-endian bytes. */
  blockHashes?: Uint8Array;
  promptBlocks?: number;
  approximate?: boolean;
}

function toWire(router: string, pool: Pool, op: ActiveLoadOp): WireOp {
  const tag = pool === 'decode' ? {} : { pool };
  if (op.op !== 'add') return { router, ...tag, op: op.op, requestId: op.requestId };
  const h = op.blockHashes;
  return {
    router,
    ...tag,
    op: 'add',
    requestId: op.requestId,
    workerId: op.workerId,
    dpRank: op.dpRank,
    prefillTokens: op.prefillTokens,
    blockHashes: new Uint8Array(h.buffer, h.byteOffset, h.byteLength),
    promptBlocks: op.promptBlocks,
    approximate: op.approximate,
  };
}

function fromWire(w: WireOp): ActiveLoadOp {
  if (typeof w.requestId !== 'string') throw new Error('requestId missing');
  switch (w.op) {
    case 'prefill':
    case 'local_prefill':
    case 'free':
      return { op: w.op, requestId: w.requestId };
    case 'add': {
      if (typeof w.workerId !== 'string') throw new Error('workerId missing');
      const bytes = w.blockHashes ?? new Uint8Array(0);
      if (bytes.byteLength % 8 !== 0) throw new Error('blockHashes is not a whole number of u64');
      const blockHashes = new Uint32Array(bytes.byteLength / 4);
      new Uint8Array(blockHashes.buffer).set(bytes); // copy: the decoded bytes may be unaligned
      return {
        op: 'add',
        requestId: w.requestId,
        workerId: w.workerId,
        dpRank: Number(w.dpRank ?? 0),
        prefillTokens: Number(w.prefillTokens ?? 0),
        blockHashes,
        promptBlocks: Number(w.promptBlocks ?? blockHashes.length / 2),
        approximate: w.approximate === true,
      };
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(w.op)}`);
  }
}

export interface ReplicaSyncOptions {
  /** This replica's router: its active-load changes go out, the others' are applied to it. */
  core: RouterCore;
  /** This replica's instance id. */
  replicaId: string;
  /** Follows the router role and receives ACTIVE_TOPIC: the other replicas come from it. */
  directory: WorkerDirectory;
  publisher: EventPublisher;
  metrics: MetricsRegistry;
}

export class ReplicaSync {
  private closed = false;
  /** Publisher address -> replica id, to drop a departed replica's entries. */
  private readonly replicaAt = new Map<string, string>();

  constructor(private readonly options: ReplicaSyncOptions) {}

  /** Registers with the core and the directory; call before the directory starts. */
  start(): void {
    const { replicaId, publisher, core, directory } = this.options;
    core.addObserver({
      activeLoad: (pool, op) => {
        if (this.closed) return;
        try {
          publisher.publish(ACTIVE_TOPIC, encodeBody(toWire(replicaId, pool, op)));
        } catch (err) {
          log.warn('cannot publish active load', { error: (err as Error).message });
        }
      },
    });
    directory.onMessage(ACTIVE_TOPIC, (msg) => {
      if (this.closed) return;
      let op: ActiveLoadOp;
      let origin: string;
      let pool: Pool;
      try {
        const wire = decodeBody<WireOp>(msg.payload);
        origin = String(wire.router);
        if (origin === replicaId) return;
        pool = wire.pool ?? 'decode';
        if (pool !== 'decode' && pool !== 'prefill') return; // a pool this replica does not run
        op = fromWire(wire);
      } catch (err) {
        log.warn('bad active-load message from a replica', { publisher: msg.publisher, error: (err as Error).message });
        return;
      }
      core.applyRemote(pool, op, origin); // and retries the waiting requests
      this.options.metrics.get('armature_router_replica_ops_total').inc({ op: op.op });
    });
    directory.onGap(ACTIVE_TOPIC, (gap) => {
      // A restarted replica's old requests are gone with it.
      const origin = this.replicaAt.get(gap.publisher);
      if (origin && isPublisherRestart(gap)) core.dropOrigin(origin);
    });
    directory.followPublishers('router', {
      onJoin: (record) => {
        if (record.instanceId === replicaId || !record.eventAddress) return;
        this.replicaAt.set(record.eventAddress, record.instanceId);
        log.info('router replica joined', { replica: record.instanceId });
      },
      onLeave: (record) => {
        if (record.instanceId === replicaId) return;
        if (record.eventAddress) this.replicaAt.delete(record.eventAddress);
        const dropped = core.dropOrigin(record.instanceId);
        log.info('router replica left', { replica: record.instanceId, droppedRequests: dropped });
      },
    });
  }

  /** Stops publishing and applying; the directory closes separately. */
  async close(): Promise<void> {
    this.closed = true;
  }
}
