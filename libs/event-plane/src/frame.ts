// The wire framing: one multipart message `[topic (utf8), seq (u64 big-endian), payload]`.
// It is the framing vLLM uses for its KV events, so our subscriber also reads a real vLLM
// publisher. This file only frames bytes; payload encoding lives in codec.ts.

/** Largest sequence number the 8-byte frame can carry. */
export const MAX_SEQ = (1n << 64n) - 1n;

/** The three frames of one event message. */
export type EventFrames = [topic: Uint8Array, seq: Uint8Array, payload: Uint8Array];

/** Encodes a sequence number as 8 bytes, big-endian. */
export function encodeSeq(seq: bigint): Buffer {
  if (seq < 0n || seq > MAX_SEQ) throw new RangeError(`sequence number out of u64 range: ${seq}`);
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64BE(seq);
  return out;
}

/** Decodes an 8-byte big-endian sequence number. */
export function decodeSeq(bytes: Uint8Array): bigint {
  if (bytes.length !== 8) throw new RangeError(`sequence frame must be 8 bytes, got ${bytes.length}`);
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, false);
}

/** Frames one message for sending. */
export function encodeFrames(topic: string | Uint8Array, seq: bigint, payload: Uint8Array): EventFrames {
  const topicBytes = typeof topic === 'string' ? Buffer.from(topic, 'utf8') : topic;
  return [topicBytes, encodeSeq(seq), payload];
}

/** A parsed message, or undefined when the frames are not `[topic, 8-byte seq, payload]`. */
export function parseFrames(
  frames: readonly Uint8Array[],
): { topic: string; seq: bigint; payload: Uint8Array } | undefined {
  if (frames.length !== 3) return undefined;
  const [topic, seq, payload] = frames as EventFrames;
  if (seq.length !== 8) return undefined;
  return {
    topic: Buffer.from(topic.buffer, topic.byteOffset, topic.length).toString('utf8'),
    seq: decodeSeq(seq),
    // A plain Uint8Array view (no copy), whatever subclass the transport handed us.
    payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.length),
  };
}
