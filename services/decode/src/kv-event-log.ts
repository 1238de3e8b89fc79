// Publishes a worker's KV event batches on the event plane and keeps the recent ones, so a
// router that saw a sequence gap can ask for the missing range (DumpKvState) instead of
// a full dump.
import { encodeKvEventBatch, type KvEvent, type KvEventBatch } from '@armature/kv';
import { KV_TOPIC, type EventPublisher } from '@armature/event-plane';

export interface KvDump {
  batches: Uint8Array[];
  firstSeq: bigint;
  lastSeq: bigint;
  fullDump: boolean;
}

export class KvEventLog {
  private readonly ring: Array<{ seq: bigint; payload: Uint8Array }> = [];
  private lastSeq = -1n;

  constructor(
    private readonly publisher: EventPublisher,
    private readonly capacity = 10_000,
  ) {}

  /** Publishes one batch; returns its sequence number. */
  publish(batch: KvEventBatch): bigint {
    const payload = encodeKvEventBatch(batch);
    const seq = this.publisher.publish(KV_TOPIC, payload);
    this.lastSeq = seq;
    this.ring.push({ seq, payload });
    if (this.ring.length > this.capacity) this.ring.shift();
    return seq;
  }

  /** Batches from `fromSeq` if still buffered; otherwise a full dump built by `snapshot`. */
  dump(fromSeq: bigint | undefined, snapshot: () => KvEvent[], dpRank: number | null): KvDump {
    const oldest = this.ring[0]?.seq;
    if (fromSeq !== undefined && (fromSeq > this.lastSeq || (oldest !== undefined && fromSeq >= oldest))) {
      const batches = this.ring.filter((b) => b.seq >= fromSeq);
      return { batches: batches.map((b) => b.payload), firstSeq: fromSeq, lastSeq: this.lastSeq, fullDump: false };
    }
    const events: KvEvent[] = [{ type: 'AllBlocksCleared' }, ...snapshot()];
    const payload = encodeKvEventBatch({ ts: Date.now() / 1000, events, dpRank });
    return {
      batches: [payload],
      firstSeq: this.lastSeq < 0n ? 0n : this.lastSeq,
      lastSeq: this.lastSeq,
      fullDump: true,
    };
  }
}
