// How one llama.cpp batch is filled from the sequences' queued tokens (node-llama-cpp's
// `batching.itemPrioritizationStrategy`). Its default, maximumParallelism, splits the
// batch evenly between the queued prompts, so 8 prompts of 255 tokens become chunks of 64,
// 64, 64 and 63 tokens. On llama.cpp's CPU backend a sequence's chunk under 64 tokens takes
// a much slower path (measured on the generated models: ~0.66 ms per token against ~0.37
// at 64 or more, and 5× slower in a batch of eight 63-token chunks deep into the prompts).
// This strategy fills the batch the way chunked-prefill schedulers do:
//
// 1. Every decode (an item of fewer than `minChunk` tokens: a sampled token, or a short
//    remainder) goes in whole, so decoding never waits behind prompts.
// 2. Then prompts in queue order (the oldest first, so its first token comes soonest), each
//    with as much as the batch still holds. A prompt is not cut into a piece shorter than
//    `minChunk`, nor so that what is left of it would be: a cut moves back to leave
//    `minChunk` tokens for the next batch. A prompt that cannot get such a piece waits for
//    the next batch, unless the batch would otherwise be empty. (In a batch smaller than
//    twice `minChunk`, the minimum is half the batch; and when decodes leave less room than
//    that, the oldest prompt takes what is left, so prompts always move.)
import type { BatchItem, PrioritizedBatchItem } from 'node-llama-cpp';

/** Fewest prompt tokens of one sequence put in a batch (default). */
export const DEFAULT_MIN_PREFILL_CHUNK = 64;

/**
 * @param hold called with the number of decodes queued; true makes this batch empty (the
 *   step gate waiting for decodes still on their way, see StepGate.holdFor)
 */
export function prefillChunkStrategy(
  minChunk = DEFAULT_MIN_PREFILL_CHUNK,
  hold: (queuedDecodes: number) => boolean = () => false,
) {
  return ({ items, size }: { items: readonly BatchItem[]; size: number }): PrioritizedBatchItem[] => {
    const min = Math.max(1, Math.min(minChunk, Math.floor(size / 2)));
    // A single token is always a decode, whatever the minimum.
    const short = Math.max(2, min);
    if (hold(items.filter((item) => item.tokens.length === 1).length)) return [];
    const chosen: PrioritizedBatchItem[] = [];
    let room = size;
    const prompts: BatchItem[] = [];
    for (const item of items) {
      if (item.tokens.length < short && room > 0) {
        const processAmount = Math.min(item.tokens.length, room);
        chosen.push({ item, processAmount });
        room -= processAmount;
      } else if (item.tokens.length >= short) prompts.push(item);
    }
    let admitted = false;
    for (const item of prompts) {
      if (room === 0) break;
      const length = item.tokens.length;
      let take = Math.min(length, room);
      // A cut must leave at least `min` tokens behind (or none).
      if (take < length && length - take < min) take = length - min;
      if (take < min && chosen.length > 0) continue;
      take = Math.max(1, Math.min(take, room));
      chosen.push({ item, processAmount: take });
      room -= take;
      admitted = true;
    }
    // Decodes left less room than a piece (more sequences than half the batch): the oldest
    // prompt still moves, with what is left, rather than wait for the decodes to end.
    if (!admitted && prompts.length > 0 && room > 0) {
      chosen.push({ item: prompts[0]!, processAmount: Math.min(prompts[0]!.tokens.length, room) });
    }
    return chosen;
  };
}
