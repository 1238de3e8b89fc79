// A request's state inside the mocker core: its tokens and their block hashes, its seeded
// sampler, how far its KV is computed. It builds sequences (a request continuing after a
// remote prefill's first token included) and applies stop conditions. It does not validate
// requests (request.ts does, for both engines), schedule, hold blocks or write KV bytes.
import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import type { EngineRequest } from '../types.js';
import type { MockerConfig } from './options.js';
import { TokenSampler, requestSeed } from './sampler.js';

export interface Sequence {
  readonly request: EngineRequest;
  readonly id: string;
  /** Prompt then generated tokens (a remote prefill's first token included). */
  readonly tokens: number[];
  readonly promptLength: number;
  /** Sequence hashes of every full block of `tokens`. */
  readonly hashes: bigint[];
  readonly sampler: TokenSampler;
  readonly stopTokenIds: ReadonlySet<number>;
  /** Ends after its first token, its prompt's blocks pinned for a decode worker. */
  readonly prefillOnly: boolean;
  /** Tokens whose KV is computed in the blocks currently held. */
  computed: number;
  /** Output tokens so far, a remote prefill's first token included. */
  generated: number;
  /** All tokens but the last sampled one are computed: the next pass decodes. */
  prefilled: boolean;
  /** Prompt tokens not computed here (prefix cache at first admission, or imported). */
  cachedTokens: number;
  admitted: boolean;
  firstOutputSent: boolean;
}

/**
 * A new sequence for a validated request, nothing computed. With firstToken its tokens are
 * prompt + [firstToken], one token generated, and the sampler past its first draw (the
 * prefill worker's), so what follows is what an aggregated run would produce.
 */
export function newSequence(config: MockerConfig, request: EngineRequest, prefillOnly: boolean): Sequence {
  const { requestId, tokenIds, stop, sampling, firstToken } = request;
  const prompt = tokenIds.slice();
  const tokens = firstToken === undefined ? prompt.slice() : [...prompt, firstToken];
  // Seeded by the prompt alone, as an aggregated run of the request would be.
  const sampler = new TokenSampler(
    requestSeed(prompt, sampling.seed),
    {
      vocabRange: config.vocabRange,
      eosTokenId: config.eosTokenIds[0]!,
      eosProbability: config.eosProbability,
      ignoreEos: stop.ignoreEos,
    },
    prompt.length,
  );
  if (firstToken !== undefined) sampler.next();
  return {
    request,
    id: requestId,
    tokens,
    promptLength: prompt.length,
    hashes: computeSequenceHashes(computeBlockHashes(tokens, config.blockSize)),
    sampler,
    stopTokenIds: new Set(stop.stopTokenIds),
    prefillOnly,
    computed: 0,
    generated: firstToken === undefined ? 0 : 1,
    prefilled: false,
    cachedTokens: 0,
    admitted: false,
    firstOutputSent: false,
  };
}

/** Appends a sampled token, extending the hashes when it fills a block. */
export function appendToken(seq: Sequence, token: number, blockSize: number): void {
  seq.tokens.push(token);
  seq.generated++;
  seq.prefilled = true;
  if (seq.tokens.length % blockSize !== 0) return;
  const local = computeBlockHashes(seq.tokens.slice(seq.tokens.length - blockSize), blockSize)[0]!;
  const parent = seq.hashes[seq.hashes.length - 1];
  seq.hashes.push(parent === undefined ? local : computeSequenceHashes([parent, local])[1]!);
}

/** Whether `token`, the request's `generated`-th output token, ends it, and why. */
export function finishReasonOf(
  config: MockerConfig,
  stop: EngineRequest['stop'],
  stopTokenIds: ReadonlySet<number>,
  token: number,
  generated: number,
): 'stop' | 'length' | undefined {
  if (!stop.ignoreEos && config.eosTokenIds.includes(token)) return 'stop';
  if (stopTokenIds.has(token)) return 'stop';
  if (generated >= stop.maxTokens) return 'length';
  return undefined;
}

export function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
