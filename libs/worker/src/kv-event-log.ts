// Publishes a worker's KV event batches on the event plane and keeps the recent ones, so a
// router that saw a sequence gap can ask for the missing range (DumpKvState) instead of
// a full dump. A range older than the buffer, or no range at all, gets a full dump: the
// engine's whole cache as one synthetic batch that starts with AllBlocksCleared.
import { encodeKvEventBatch, type KvEvent, type KvEventBatch } from '@armature/kv';
import { KV_TOPIC, type EventPublisher } from '@armature/event-plane';

export interface KvDump {
  batches: Uint8Array[];
  /** Sequence number of batches[0] (for a full dump, the one it stands in for). */
  firstSeq: bigint;
  /** Sequence number the next published batch will carry; the dump reflects all before it. */
  nextSeq: bigint;
  fullDump: boolean;
}

export class KvEventLog {
  /** Circular buffer of the last `capacity` payloads; slot = seq % capacity. */
  private readonly ring: Uint8Array[];
  private nextSeq = 0n;
  private oldestSeq = 0n;

  constructor(
    private readonly publisher: EventPublisher,
    private readonly capacity = 10_000,
  ) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be >= 1, got ${capacity}`);
    this.ring = new Array<Uint8Array>(capacity);
  }

  /** Publishes one batch; returns its sequence number. */
  publish(batch: KvEventBatch): bigint {
    const payload = encodeKvEventBatch(batch);
    const seq = this.publisher.publish(KV_TOPIC, payload);
    // The log is the topic's only writer, so sequence numbers are consecutive from 0.
    this.ring[Number(seq % BigInt(this.capacity))] = payload;
    this.nextSeq = seq + 1n;
    if (this.nextSeq - this.oldestSeq > BigInt(this.capacity)) this.oldestSeq = this.nextSeq - BigInt(this.capacity);
    return seq;
  }

  /** Batches from `fromSeq` on if still buffered; otherwise a full dump built by `snapshot`. */
  dump(fromSeq: bigint | undefined, snapshot: () => KvEvent[], dpRank: number | null): KvDump {
    if (fromSeq !== undefined && fromSeq >= this.oldestSeq && fromSeq <= this.nextSeq) {
      const batches: Uint8Array[] = [];
      for (let seq = fromSeq; seq < this.nextSeq; seq++) batches.push(this.ring[Number(seq % BigInt(this.capacity))]!);
      return { batches, firstSeq: fromSeq, nextSeq: this.nextSeq, fullDump: false };
    }
    const events: KvEvent[] = [{ type: 'AllBlocksCleared' }, ...snapshot()];
    const payload = encodeKvEventBatch({ ts: Date.now() / 1000, events, dpRank });
    return { batches: [payload], firstSeq: this.nextSeq, nextSeq: this.nextSeq, fullDump: true };
  }
}
