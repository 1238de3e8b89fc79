// Which sequences one forward pass computes, and how many tokens each, as vLLM's v1
// scheduler decides: running requests first (a decode token each, or the next chunk of an
// unfinished prefill), preempting the newest running request when blocks run out; then
// ready imports (their KV is in place: they decode at once); then waiting requests FCFS,
// their cached prefix attached, their prompt chunked to the token budget. Everything under
// max_num_seqs and max_num_batched_tokens. It moves sequences between the queues and holds
// their blocks; it does not compute tokens, sample, time the pass or publish anything.
import type { BlockManager } from './block-manager.js';
import type { MockerConfig } from './options.js';
import type { Sequence } from './sequence.js';

/** The core's queues, which a plan changes in place. */
export interface SchedulerQueues {
  /** FCFS; preempted requests go back to the front. */
  waiting: Sequence[];
  /** In admission order; the last is preempted first. */
  running: Sequence[];
  /** Decode requests whose prompt KV was imported: they hold blocks and run ahead of waiting. */
  readyImports: Sequence[];
}

/** One sequence of a pass and the tokens whose KV the pass computes for it. */
export interface PlannedSequence {
  seq: Sequence;
  newTokens: number;
}

/** What a pass computes, and the requests it preempted (they wait again and recompute). */
export interface PassPlan {
  scheduled: PlannedSequence[];
  preempted: string[];
}

type PlanLimits = Pick<MockerConfig, 'maxNumBatchedTokens' | 'maxNumSeqs' | 'blockSize'>;

/** Plans one pass over `queues`, allocating the blocks each scheduled sequence grows into. */
export function planPass(queues: SchedulerQueues, blocks: BlockManager, limits: PlanLimits): PassPlan {
  const scheduled: PlannedSequence[] = [];
  const preempted: string[] = [];
  const { running, readyImports, waiting } = queues;
  let budget = limits.maxNumBatchedTokens;

  // Running requests first: one decode token each, or the next chunk of their prefill.
  for (let i = 0; i < running.length && budget > 0;) {
    const seq = running[i]!;
    const newTokens = Math.min(seq.tokens.length - seq.computed, budget);
    let fits = blocks.allocate(seq.id, seq.computed + newTokens);
    while (!fits) {
      const victim = running.pop()!;
      preempt(queues, blocks, victim);
      preempted.push(victim.id);
      if (victim === seq) break;
      fits = blocks.allocate(seq.id, seq.computed + newTokens);
    }
    if (!fits) break;
    scheduled.push({ seq, newTokens });
    budget -= newTokens;
    i++;
  }

  // Then imported requests (their KV is in place: they decode at once), unless this pass
  // already had to preempt.
  if (preempted.length > 0) return { scheduled, preempted };
  while (readyImports.length > 0 && budget > 0 && running.length < limits.maxNumSeqs) {
    const seq = readyImports[0]!;
    let fits = blocks.allocate(seq.id, seq.tokens.length);
    // With nothing running, nothing frees blocks: the newest ready import gives way (and recomputes).
    while (!fits && running.length === 0 && readyImports.length > 1) {
      const victim = readyImports.pop()!;
      preempt(queues, blocks, victim);
      preempted.push(victim.id);
      fits = blocks.allocate(seq.id, seq.tokens.length);
    }
    if (!fits) break;
    readyImports.shift();
    running.push(seq);
    scheduled.push({ seq, newTokens: 1 });
    budget -= 1;
  }

  // Then waiting requests, FCFS, unless this pass already had to preempt.
  if (preempted.length > 0) return { scheduled, preempted };
  const { blockSize } = limits;
  while (waiting.length > 0 && budget > 0 && running.length < limits.maxNumSeqs) {
    const seq = waiting[0]!;
    // At least one token must be computed to produce logits, so a fully cached prompt
    // recomputes its last block.
    const cachedBlocks = blocks.matchPrefix(seq.hashes, Math.floor((seq.tokens.length - 1) / blockSize));
    const computed = cachedBlocks * blockSize;
    const newTokens = Math.min(seq.tokens.length - computed, budget);
    if (!blocks.allocate(seq.id, computed + newTokens, seq.hashes.slice(0, cachedBlocks))) break;
    waiting.shift();
    running.push(seq);
    seq.computed = computed;
    if (!seq.admitted) {
      seq.admitted = true;
      seq.cachedTokens = computed;
    }
    scheduled.push({ seq, newTokens });
    budget -= newTokens;
  }
  return { scheduled, preempted };
}

/** Frees a sequence's blocks and puts it at the front of the waiting queue, to recompute from scratch. */
function preempt(queues: SchedulerQueues, blocks: BlockManager, seq: Sequence): void {
  blocks.free(seq.id);
  seq.computed = 0;
  seq.prefilled = false;
  queues.waiting.unshift(seq);
}
