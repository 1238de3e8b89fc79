// Keeps the router's KV index in step with every worker's cache, from the KV event topic
// of the worker directory's subscriber:
// - a newly discovered worker (and every worker, for a router that just started) is
//   loaded with a full dump over gRPC (DumpKvState) before it counts as ready; events
//   that arrive meanwhile are buffered and applied after the dump, from its next_seq on;
// - a gap the event plane reports (lost messages) asks the worker for the missing range,
//   buffering what arrives meanwhile; a range the worker no longer keeps comes back as a
//   full dump;
// - a publisher restart (sequence numbers going backwards) reloads in full;
// - a worker that leaves has its blocks dropped.
// The event plane tracks sequence continuity; the feed keeps only the watermark of what
// it has applied (a dump's next_seq), which the plane cannot know, to merge a dump with
// the stream. It feeds the index; it does not route.
import { Metadata } from '@grpc/grpc-js';
import type { DumpKvStateResponse } from '@armature/proto';
import { KV_TOPIC, isPublisherRestart, type EventMessage, type SequenceGap } from '@armature/event-plane';
import { decodeKvEventBatch, type KvHashScheme, type KvIndexer } from '@armature/kv';
import type { MetricsRegistry } from '@armature/metrics';
import { createLogger, type InstanceRecord } from '@armature/runtime';
import type { WorkerDirectory } from './worker-directory.js';

const log = createLogger('router/kv-feed');

/** Label values of the feed's counters: sequence gaps, skipped batches, and KV state loads. */
export const KV_GAP_KINDS = ['loss', 'restart'] as const;
export const KV_SKIP_REASONS = ['undecodable', 'unknown_publisher'] as const;
export const KV_LOAD_KINDS = ['full', 'range'] as const;
export const KV_LOAD_OUTCOMES = ['ok', 'error'] as const;
type GapKind = (typeof KV_GAP_KINDS)[number];
type SkipReason = (typeof KV_SKIP_REASONS)[number];
type LoadKind = (typeof KV_LOAD_KINDS)[number];
type LoadOutcome = (typeof KV_LOAD_OUTCOMES)[number];

/** Fetches a worker's KV state: the batches from `fromSeq` on, or a full dump when undefined. */
export type KvDumpFetcher = (record: InstanceRecord, fromSeq: bigint | undefined) => Promise<DumpKvStateResponse>;

export interface KvFeedOptions {
  index: KvIndexer;
  /** The workers, and the subscriber their KV events arrive on (it must receive KV_TOPIC). */
  directory: WorkerDirectory;
  metrics: MetricsRegistry;
  /** Worker roles whose KV events are followed (default ['decode']). */
  roles?: readonly ('decode' | 'prefill')[];
  /** A new worker is scored after this long even if its dump has not loaded (default 3000 ms). */
  readyTimeoutMs?: number;
  /** Longest wait for one DumpKvState call (default 5000 ms). */
  dumpTimeoutMs?: number;
  /** Events buffered per worker while a load is in flight before it restarts as a full load (default 100 000). */
  maxBuffered?: number;
  /** How dumps are fetched (default: the worker's gRPC DumpKvState). */
  fetchDump?: KvDumpFetcher;
}

type Phase = 'loading' | 'live' | 'recovering';

interface WorkerFeed {
  record: InstanceRecord;
  address: string;
  phase: Phase;
  /** Sequence number of the next batch to apply. */
  nextSeq: bigint;
  buffered: EventMessage[];
  /** Bumped on every new load, so a stale dump answer is ignored. */
  generation: number;
  ready: boolean;
  readyTimer: NodeJS.Timeout | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  retryMs: number;
  closed: boolean;
  joinedAt: number;
}

/** The hash scheme a worker's card declares (absent: opaque, which is always correct). */
export function hashSchemeOf(record: InstanceRecord): KvHashScheme {
  return record.card?.kvEvents === 'armature' ? 'armature' : 'opaque';
}

/** True when the worker publishes KV events the router can index. */
export function publishesKvEvents(record: InstanceRecord): boolean {
  if (!record.eventAddress) return false;
  return record.card?.kvEvents !== 'none';
}

export class KvFeed {
  private readonly byInstance = new Map<string, WorkerFeed>();
  private readonly byAddress = new Map<string, WorkerFeed>();
  private readonly readyListeners: Array<(instanceId: string) => void> = [];
  private closed = false;
  private readonly readyTimeoutMs: number;
  private readonly dumpTimeoutMs: number;
  private readonly maxBuffered: number;
  private readonly fetchDump: KvDumpFetcher;

  constructor(private readonly options: KvFeedOptions) {
    this.readyTimeoutMs = options.readyTimeoutMs ?? 3_000;
    this.dumpTimeoutMs = options.dumpTimeoutMs ?? 5_000;
    this.maxBuffered = options.maxBuffered ?? 100_000;
    this.fetchDump = options.fetchDump ?? ((record, fromSeq) => this.grpcDump(record, fromSeq));
  }

  /** Registers with the directory; call before the directory starts. */
  start(): void {
    const { directory } = this.options;
    directory.onGap(KV_TOPIC, (gap) => this.onGap(gap));
    directory.onMessage(KV_TOPIC, (msg) => this.onMessage(msg));
    for (const role of this.options.roles ?? ['decode']) {
      directory.followPublishers(role, {
        onJoin: (record) => this.join(record),
        onLeave: (record) => this.leave(record),
        onUpdate: (record) => this.update(record),
      });
    }
  }

  private onGap(gap: SequenceGap): void {
    const feed = this.byAddress.get(gap.publisher);
    if (!feed || this.closed) return;
    if (isPublisherRestart(gap)) {
      this.options.metrics.get('armature_router_kv_gaps_total').inc({ kind: 'restart' satisfies GapKind });
      log.warn('KV publisher restarted; reloading its state', { worker: feed.record.instanceId });
      this.load(feed, undefined);
      return;
    }
    // A load in flight merges what it finds with the stream; a dump may already cover the hole.
    if (feed.phase !== 'live' || gap.receivedSeq <= feed.nextSeq) return;
    this.recoverLoss(feed, gap.receivedSeq);
  }

  /** Messages from `feed.nextSeq` up to `receivedSeq` are lost: fetch the range; what arrives meanwhile is buffered. */
  private recoverLoss(feed: WorkerFeed, receivedSeq: bigint): void {
    this.options.metrics.get('armature_router_kv_gaps_total').inc({ kind: 'loss' satisfies GapKind });
    log.warn('KV event gap; fetching the missing range', {
      worker: feed.record.instanceId,
      expected: String(feed.nextSeq),
      received: String(receivedSeq),
    });
    this.load(feed, feed.nextSeq);
  }

  /** True once a worker's KV state is loaded (or its load timed out and it is scored anyway). */
  isReady(instanceId: string): boolean {
    return this.byInstance.get(instanceId)?.ready ?? false;
  }

  onReady(listener: (instanceId: string) => void): void {
    this.readyListeners.push(listener);
  }

  /** Per worker: phase and the next sequence number expected (tests, debugging). */
  state(instanceId: string): { phase: Phase; nextSeq: bigint; ready: boolean } | undefined {
    const f = this.byInstance.get(instanceId);
    return f && { phase: f.phase, nextSeq: f.nextSeq, ready: f.ready };
  }

  private join(record: InstanceRecord): void {
    if (this.closed || !publishesKvEvents(record)) return;
    const previous = this.byInstance.get(record.instanceId);
    if (previous) this.forget(previous);
    const feed: WorkerFeed = {
      record,
      address: record.eventAddress!,
      phase: 'loading',
      nextSeq: 0n,
      buffered: [],
      generation: 0,
      ready: false,
      readyTimer: undefined,
      retryTimer: undefined,
      retryMs: 250,
      closed: false,
      joinedAt: Date.now(),
    };
    this.byInstance.set(record.instanceId, feed);
    this.byAddress.set(feed.address, feed);
    this.options.index.setHashScheme(record.instanceId, hashSchemeOf(record));
    feed.readyTimer = setTimeout(() => {
      if (feed.ready || feed.closed) return;
      log.warn('KV state of a new worker not loaded in time; scoring it with what is known', {
        worker: record.instanceId,
        timeoutMs: this.readyTimeoutMs,
      });
      this.markReady(feed);
    }, this.readyTimeoutMs);
    feed.readyTimer.unref();
    this.load(feed, undefined);
  }

  /** Same publisher, changed record (a new gRPC address or card): dumps go to the new address. */
  private update(record: InstanceRecord): void {
    const feed = this.byInstance.get(record.instanceId);
    if (!feed) {
      this.join(record);
      return;
    }
    feed.record = record;
    this.options.index.setHashScheme(record.instanceId, hashSchemeOf(record));
  }

  private leave(record: InstanceRecord): void {
    const feed = this.byInstance.get(record.instanceId);
    if (!feed) return;
    this.forget(feed);
    this.options.index.removeWorker(record.instanceId);
    this.options.metrics.get('armature_router_indexed_blocks').remove({ worker: record.instanceId });
  }

  private forget(feed: WorkerFeed): void {
    feed.closed = true;
    clearTimeout(feed.readyTimer);
    clearTimeout(feed.retryTimer);
    this.byInstance.delete(feed.record.instanceId);
    if (this.byAddress.get(feed.address) === feed) this.byAddress.delete(feed.address);
  }

  private markReady(feed: WorkerFeed): void {
    if (feed.ready) return;
    feed.ready = true;
    clearTimeout(feed.readyTimer);
    for (const l of this.readyListeners) l(feed.record.instanceId);
  }

  private onMessage(msg: EventMessage): void {
    const feed = this.byAddress.get(msg.publisher);
    if (!feed) {
      this.options.metrics
        .get('armature_router_kv_events_skipped_total')
        .inc({ reason: 'unknown_publisher' satisfies SkipReason });
      return;
    }
    if (feed.phase !== 'live') {
      this.buffer(feed, msg);
      return;
    }
    if (msg.seq < feed.nextSeq) return; // already applied (from a dump)
    if (msg.seq > feed.nextSeq) {
      // Past a dump's watermark with nothing in between: the first message after a load,
      // whose predecessors the plane never saw (so it reported no gap), was not the next.
      this.recoverLoss(feed, msg.seq);
      this.buffer(feed, msg);
      return;
    }
    this.apply(feed, msg.payload);
    feed.nextSeq = msg.seq + 1n;
  }

  private buffer(feed: WorkerFeed, msg: EventMessage): void {
    feed.buffered.push(msg);
    if (feed.buffered.length > this.maxBuffered) {
      log.warn('too many KV events buffered during a load; restarting it as a full load', {
        worker: feed.record.instanceId,
      });
      feed.buffered = [];
      this.load(feed, undefined);
    }
  }

  private apply(feed: WorkerFeed, payload: Uint8Array): void {
    let batch;
    try {
      batch = decodeKvEventBatch(payload);
    } catch (err) {
      this.options.metrics
        .get('armature_router_kv_events_skipped_total')
        .inc({ reason: 'undecodable' satisfies SkipReason });
      log.warn('undecodable KV event batch', { worker: feed.record.instanceId, error: (err as Error).message });
      return;
    }
    const applied = this.options.metrics.get('armature_router_kv_events_applied_total');
    const dpRank = batch.dpRank ?? 0;
    for (const event of batch.events) {
      if (this.options.index.applyEvent(feed.record.instanceId, dpRank, event)) applied.inc({ type: event.type });
    }
  }

  /** Starts a load: the range from `fromSeq` on, or a full dump. Buffers events meanwhile. */
  private load(feed: WorkerFeed, fromSeq: bigint | undefined): void {
    if (feed.closed) return;
    feed.phase = fromSeq === undefined ? 'loading' : 'recovering';
    // A full dump reflects everything published before it is taken, so what was buffered
    // is either in it or older (a restarted publisher's previous life).
    if (fromSeq === undefined) feed.buffered = [];
    const generation = ++feed.generation;
    clearTimeout(feed.retryTimer);
    const kind: LoadKind = fromSeq === undefined ? 'full' : 'range';
    this.fetchDump(feed.record, fromSeq).then(
      (dump) => {
        if (feed.closed || generation !== feed.generation) return;
        // A range the worker no longer buffers comes back as a full dump.
        this.options.metrics
          .get('armature_router_kv_recoveries_total')
          .inc({ kind: (dump.fullDump ? 'full' : 'range') satisfies LoadKind, outcome: 'ok' satisfies LoadOutcome });
        feed.retryMs = 250;
        this.applyDump(feed, dump);
      },
      (err: unknown) => {
        if (feed.closed || generation !== feed.generation) return;
        this.options.metrics
          .get('armature_router_kv_recoveries_total')
          .inc({ kind, outcome: 'error' satisfies LoadOutcome });
        log.warn('KV state load failed; retrying', {
          worker: feed.record.instanceId,
          kind,
          retryMs: feed.retryMs,
          error: (err as Error).message,
        });
        feed.retryTimer = setTimeout(() => this.load(feed, fromSeq), feed.retryMs);
        feed.retryTimer.unref();
        feed.retryMs = Math.min(feed.retryMs * 2, 5_000);
      },
    );
  }

  private applyDump(feed: WorkerFeed, dump: DumpKvStateResponse): void {
    const instanceId = feed.record.instanceId;
    if (dump.fullDump) this.options.index.clearWorker(instanceId);
    for (const payload of dump.eventBatches) this.apply(feed, payload);
    feed.nextSeq = BigInt(dump.nextSeq);
    feed.phase = 'live';
    if (!feed.ready) {
      log.info('KV state loaded', {
        worker: instanceId,
        blocks: this.options.index.blocksOf(instanceId),
        nextSeq: String(feed.nextSeq),
        ms: Date.now() - feed.joinedAt,
      });
    }
    this.markReady(feed);
    // Events that arrived during the load, in order; a hole among them starts another load.
    const pending = feed.buffered.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    feed.buffered = [];
    for (let i = 0; i < pending.length; i++) {
      const msg = pending[i]!;
      if (msg.seq < feed.nextSeq) continue;
      if (msg.seq > feed.nextSeq) {
        this.options.metrics.get('armature_router_kv_gaps_total').inc({ kind: 'loss' satisfies GapKind });
        feed.buffered = pending.slice(i);
        this.load(feed, feed.nextSeq);
        return;
      }
      this.apply(feed, msg.payload);
      feed.nextSeq = msg.seq + 1n;
    }
    this.options.metrics
      .get('armature_router_indexed_blocks')
      .set({ worker: instanceId }, this.options.index.blocksOf(instanceId));
  }

  private grpcDump(record: InstanceRecord, fromSeq: bigint | undefined): Promise<DumpKvStateResponse> {
    const address = record.grpcAddress;
    if (!address) return Promise.reject(new Error(`worker ${record.instanceId} has no gRPC address`));
    const c = this.options.directory.client(address);
    return new Promise((resolve, reject) => {
      c.dumpKvState(
        { fromSeq: fromSeq === undefined ? undefined : Number(fromSeq) },
        new Metadata(),
        { deadline: Date.now() + this.dumpTimeoutMs },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  }

  /** Refreshes the per-worker indexed-blocks gauge (called periodically). */
  publishGauges(): void {
    for (const id of this.byInstance.keys()) {
      this.options.metrics.get('armature_router_indexed_blocks').set({ worker: id }, this.options.index.blocksOf(id));
    }
  }

  /** Stops following; the directory, which owns the subscriber and the clients, closes separately. */
  async close(): Promise<void> {
    this.closed = true;
    for (const f of [...this.byInstance.values()]) this.forget(f);
  }
}
