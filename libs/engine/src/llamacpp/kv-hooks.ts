// The llama.cpp engine's disaggregation hooks, in the 'state' format: node-llama-cpp moves
// KV only as a whole sequence state (a file), so a prefill runs the prompt to its first
// token and saves the prompt's state into staging blocks of the transfer region (pinned
// until released), and a decode worker reserves staging blocks for a remote state, pulls
// them and commits; the decode request then restores the state into a slot (slot-runner.ts)
// and checks that it holds exactly the prompt before it continues. The staging blocks, pins
// and reservations are SequenceStates'; this file is the KvTransferHooks face of them.
import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import { ArmatureError } from '@armature/runtime';
import type { Token } from 'node-llama-cpp';
import type {
  EngineOutput,
  EngineRequest,
  ImportPlan,
  KvCacheLayout,
  KvTransferHooks,
  PrefillResult,
} from '../types.js';
import { STATE_BLOCK_BYTES, type SequenceStates } from './sequence-states.js';

/** What the hooks need from their engine. */
export interface LlamaCppKvEngine {
  readonly states: SequenceStates;
  readonly blockSize: number;
  /** Whether a request of this id is waiting or running. */
  isActive(requestId: string): boolean;
  /** Queues a request as generate() does; with `exportFor`, a prefill whose state is exported at its end. */
  start(request: EngineRequest, signal: AbortSignal, exportFor?: EngineRequest): AsyncIterable<EngineOutput>;
  /** Why `token`, the `generated`-th output token of `request`, ends it (undefined: it goes on). */
  finishReasonOf(request: EngineRequest, token: Token, generated: number): 'stop' | 'length' | undefined;
}

export class LlamaCppKvHooks implements KvTransferHooks {
  readonly format = 'state' as const;
  readonly blockBytes = STATE_BLOCK_BYTES;
  readonly totalBlocks: number;

  constructor(
    private readonly engine: LlamaCppKvEngine,
    readonly layout: KvCacheLayout,
  ) {
    this.totalBlocks = engine.states.totalBlocks;
  }

  attachMemory(memory: Uint8Array): void {
    this.engine.states.attach(memory);
  }

  async prefill(request: EngineRequest, signal: AbortSignal): Promise<PrefillResult> {
    const { states, blockSize } = this.engine;
    if (!states.attached)
      throw new ArmatureError('failed_precondition', 'no_kv_memory', 'no transfer region is attached to this engine');
    // One token, whatever the caller's max_tokens: its stop conditions decide only whether the state is exported.
    const stream = this.engine.start({ ...request, stop: { ...request.stop, maxTokens: 1 } }, signal, request);
    const outputs: EngineOutput[] = [];
    for await (const out of stream) outputs.push(out);
    const firstToken = outputs.flatMap((o) => o.tokenIds)[0];
    if (firstToken === undefined || outputs.some((o) => o.finishReason === 'cancelled')) {
      states.release(request.requestId); // an export that finished after the cancellation
      throw new ArmatureError('cancelled', 'request_cancelled', 'the prefill was cancelled');
    }
    const pin = states.pin(request.requestId);
    const result: PrefillResult = {
      firstToken,
      cachedTokens: outputs[0]!.cachedTokens ?? 0,
      promptTokens: request.tokenIds.length,
      blockIds: pin ? [...pin.blocks] : [],
      blockHashes: computeSequenceHashes(computeBlockHashes(request.tokenIds, blockSize)),
    };
    if (pin) result.stateBytes = pin.bytes;
    else result.finishReason = this.engine.finishReasonOf(request, firstToken as Token, 1) ?? 'length';
    return result;
  }

  release(requestId: string): boolean {
    return this.engine.states.release(requestId);
  }

  pinned(): { requests: number; blocks: number } {
    return this.engine.states.pinned();
  }

  reserveImport(requestId: string, tokenIds: readonly number[], stateBytes?: number): ImportPlan | undefined {
    const { states } = this.engine;
    if (tokenIds.length === 0) throw new ArmatureError('invalid_argument', 'empty_prompt', 'the prompt is empty');
    if (this.engine.isActive(requestId) || states.holds(requestId))
      throw new ArmatureError('invalid_argument', 'duplicate_request_id', `request ${requestId} is already running`);
    if (!(stateBytes && stateBytes > 0))
      throw new ArmatureError('invalid_argument', 'missing_state_size', 'a llama.cpp import needs the state size');
    return states.reserve(requestId, tokenIds, stateBytes);
  }

  // The state is checked when restored: the slot must then hold exactly the prompt.
  commitImport(requestId: string): boolean {
    this.engine.states.commit(requestId);
    return true;
  }

  cancelImport(requestId: string): void {
    this.engine.states.cancel(requestId);
  }
}
