// Router replicas share the active load they place on workers, so that every replica's
// cost function sees the requests the others sent: each replica publishes its add /
// prefill-complete / local-prefill / free changes on its own event-plane socket (topic `active`) and
// applies the ones the other replicas publish, for both pools of a disaggregated
// deployment (decode, and prefill). Predictions for workers in approximate
// mode travel with the adds, so the replicas predict the same caches. A replica that
// leaves discovery takes its entries with it; entries orphaned by a lost message are
// swept by age. The KV index is not shared: each replica rebuilds it from the workers.
import {
  decodeBody,
  encodeBody,
  followPublishers,
  isPublisherRestart,
  type EventPlane,
  type EventPublisher,
  type EventSubscriber,
} from '@armature/event-plane';
import type { MetricsRegistry } from '@armature/metrics';
import type { ActiveLoadOp, KvRouter } from '@armature/router-core';
import { createLogger, type Discovery, type Watch } from '@armature/runtime';

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
  /** The decode pool's router (every deployment has one). */
  router: KvRouter;
  /** The prefill pool's router, in a deployment that may disaggregate. */
  prefillRouter?: KvRouter;
  /** This replica's instance id. */
  replicaId: string;
  discovery: Discovery;
  eventPlane: EventPlane;
  publisher: EventPublisher;
  metrics: MetricsRegistry;
  /** Called after a remote change was applied (the router retries its queue). */
  onChange?: () => void;
}

export class ReplicaSync {
  private subscriber: EventSubscriber | undefined;
  private follow: Watch | undefined;
  /** Publisher address -> replica id, to drop a departed replica's entries. */
  private readonly replicaAt = new Map<string, string>();

  constructor(private readonly options: ReplicaSyncOptions) {}

  private routers(): Array<[Pool, KvRouter]> {
    const { router, prefillRouter } = this.options;
    return prefillRouter
      ? [
          ['decode', router],
          ['prefill', prefillRouter],
        ]
      : [['decode', router]];
  }

  private dropOrigin(origin: string): number {
    let dropped = 0;
    for (const [, r] of this.routers()) dropped += r.active.dropOrigin(origin);
    return dropped;
  }

  start(): void {
    const { replicaId, publisher } = this.options;
    for (const [pool, r] of this.routers()) {
      r.onActiveLoad((op) => {
        try {
          publisher.publish(ACTIVE_TOPIC, encodeBody(toWire(replicaId, pool, op)));
        } catch (err) {
          log.warn('cannot publish active load', { error: (err as Error).message });
        }
      });
    }
    const sub = this.options.eventPlane.createSubscriber({ topics: [ACTIVE_TOPIC] });
    this.subscriber = sub;
    sub.onMessage((msg) => {
      let op: ActiveLoadOp;
      let origin: string;
      let target: KvRouter | undefined;
      try {
        const wire = decodeBody<WireOp>(msg.payload);
        origin = String(wire.router);
        if (origin === replicaId) return;
        const pool = wire.pool ?? 'decode';
        target = this.routers().find(([p]) => p === pool)?.[1];
        if (!target) return; // a pool this replica does not run
        op = fromWire(wire);
      } catch (err) {
        log.warn('bad active-load message from a replica', { publisher: msg.publisher, error: (err as Error).message });
        return;
      }
      target.applyRemote(op, origin);
      this.options.metrics.get('armature_router_replica_ops_total').inc({ op: op.op });
      this.options.onChange?.();
    });
    sub.onGap((gap) => {
      // A restarted replica's old requests are gone with it.
      const origin = this.replicaAt.get(gap.publisher);
      if (origin && isPublisherRestart(gap)) this.dropOrigin(origin);
    });
    this.follow = followPublishers(this.options.discovery, { role: 'router' }, sub, {
      onJoin: (record) => {
        if (record.instanceId === replicaId || !record.eventAddress) return;
        this.replicaAt.set(record.eventAddress, record.instanceId);
        log.info('router replica joined', { replica: record.instanceId });
      },
      onLeave: (record) => {
        if (record.instanceId === replicaId) return;
        if (record.eventAddress) this.replicaAt.delete(record.eventAddress);
        const dropped = this.dropOrigin(record.instanceId);
        log.info('router replica left', { replica: record.instanceId, droppedRequests: dropped });
        this.options.onChange?.();
      },
    });
  }

  async close(): Promise<void> {
    this.follow?.close();
    await this.subscriber?.close();
  }
}
