// Turns token budgets into prompt text whose tokenization has exactly the intended
// length, without encoding whole prompts: traces ask for ~145 M tokens and must load in
// seconds.
//
// Why it is exact: the builder's vocabulary is words `w` of plain lowercase ASCII letters
// such that `" " + w` is one token. GPT-style pre-tokenizers (o200k, cl100k, p50k, r50k)
// cut text before each space that precedes a letter run, so " alpha beta" is split into
// " alpha" and " beta" before BPE runs and never merges across words. A text of n such
// words is therefore exactly n tokens, and concatenating texts adds their ids. Every
// prompt starts with a space-prefixed word too, so the first word is no special case.
// `create` re-checks the property on the chosen vocabulary and refuses a tokenizer that
// breaks it.
import { Buffer } from 'node:buffer';
import { ArmatureError } from '@armature/runtime';
import type { Tokenizer } from '@armature/tokenizer';
import { deriveSeed, hashString, uint32Stream } from './random.js';

/** A piece of prompt text and its token ids (`encode(text)` equals `tokenIds`). */
export interface TextBlock {
  readonly text: string;
  readonly tokenIds: Uint32Array;
}

export interface BuiltPrompt {
  prompt: string;
  promptTokenIds: number[];
}

export interface PromptBuilderOptions {
  /** Seed mixed into every block; default 0. */
  seed?: number;
  /** Number of vocabulary words to draw from; default 4096. */
  vocabularySize?: number;
}

interface Vocabulary {
  words: string[]; // each with its leading space
  ids: Uint32Array;
  /** All words' ASCII bytes back to back; word w is bytes[offsets[w] .. offsets[w + 1]). */
  bytes: Uint8Array;
  offsets: Uint32Array;
  maxWordBytes: number;
}

const WORD = /^ [a-z]{3,8}$/;
const MIN_VOCABULARY = 256;
const vocabularies = new WeakMap<Tokenizer, Map<number, Vocabulary>>();

export class PromptBuilder {
  readonly #tokenizer: Tokenizer;
  readonly #vocabulary: Vocabulary;
  readonly #seed: number;
  readonly #cache = new Map<string, Map<number, Map<number, TextBlock>>>(); // stream -> tokens -> key
  #cachedBlocks = 0;
  #scratch = Buffer.allocUnsafe(1 << 16);
  readonly #streamSeeds = new Map<string, number>();

  private constructor(tokenizer: Tokenizer, vocabulary: Vocabulary, seed: number) {
    this.#tokenizer = tokenizer;
    this.#vocabulary = vocabulary;
    this.#seed = seed >>> 0;
  }

  /** Builds the vocabulary for `tokenizer` (memoised per tokenizer) and returns a builder. */
  static async create(tokenizer: Tokenizer, options: PromptBuilderOptions = {}): Promise<PromptBuilder> {
    const size = options.vocabularySize ?? 4096;
    if (!Number.isInteger(size) || size < MIN_VOCABULARY) {
      throw new ArmatureError(
        'invalid_argument',
        'bad_option',
        `vocabularySize must be an integer >= ${MIN_VOCABULARY}`,
      );
    }
    let bySize = vocabularies.get(tokenizer);
    if (!bySize) vocabularies.set(tokenizer, (bySize = new Map()));
    let vocabulary = bySize.get(size);
    if (!vocabulary) bySize.set(size, (vocabulary = findVocabulary(tokenizer, size)));
    return new PromptBuilder(tokenizer, vocabulary, options.seed ?? 0);
  }

  get tokenizer(): Tokenizer {
    return this.#tokenizer;
  }

  /** The words prompts are made of, each with its leading space and one token long. */
  get words(): readonly string[] {
    return this.#vocabulary.words;
  }

  /** Blocks held by the `block` cache. */
  get cachedBlocks(): number {
    return this.#cachedBlocks;
  }

  /**
   * A deterministic block of `tokens` words for (`stream`, `key`), cached: use it for text
   * that repeats (a Mooncake hash id, a system prompt). Blocks of one (stream, key) with
   * different lengths are prefixes of each other.
   */
  block(stream: string, key: number, tokens: number): TextBlock {
    let byTokens = this.#cache.get(stream);
    if (!byTokens) this.#cache.set(stream, (byTokens = new Map()));
    let byKey = byTokens.get(tokens);
    if (!byKey) byTokens.set(tokens, (byKey = new Map()));
    let built = byKey.get(key);
    if (!built) {
      built = this.text(stream, key, tokens);
      byKey.set(key, built);
      this.#cachedBlocks++;
    }
    return built;
  }

  /** Like `block` but not cached: for text used once (a unique prompt, a question). */
  text(stream: string, key: number, tokens: number): TextBlock {
    if (!Number.isInteger(tokens) || tokens < 0) {
      throw new ArmatureError('invalid_argument', 'bad_length', `token count must be an integer >= 0, got ${tokens}`);
    }
    if (!Number.isSafeInteger(key) || key < 0) {
      throw new ArmatureError('invalid_argument', 'bad_key', `block key must be a safe integer >= 0, got ${key}`);
    }
    const { words, ids, bytes, offsets, maxWordBytes } = this.#vocabulary;
    if (this.#scratch.length < tokens * maxWordBytes) this.#scratch = Buffer.allocUnsafe(tokens * maxWordBytes);
    const scratch = this.#scratch;
    const next = uint32Stream(deriveSeed(this.#streamSeed(stream), key));
    const scale = words.length / 0x1_0000_0000;
    const tokenIds = new Uint32Array(tokens);
    let at = 0;
    // Copying bytes into one buffer and decoding once beats joining an array of word
    // strings: no per-block garbage array, and the text comes out flat and one-byte.
    for (let i = 0; i < tokens; i++) {
      const w = Math.floor(next() * scale);
      tokenIds[i] = ids[w]!;
      for (let b = offsets[w]!, end = offsets[w + 1]!; b < end; b++) scratch[at++] = bytes[b]!;
    }
    return { text: scratch.toString('latin1', 0, at), tokenIds };
  }

  /**
   * Concatenates blocks into one prompt. The text is built with `+`, so V8 keeps it as a
   * rope over the (shared, cached) block strings instead of copying them per prompt.
   */
  compose(blocks: readonly TextBlock[]): BuiltPrompt {
    let length = 0;
    for (const b of blocks) length += b.tokenIds.length;
    const promptTokenIds = new Array<number>(length);
    let prompt = '';
    let at = 0;
    for (const b of blocks) {
      const ids = b.tokenIds;
      for (let i = 0; i < ids.length; i++) promptTokenIds[at++] = ids[i]!;
      prompt += b.text;
    }
    return { prompt, promptTokenIds };
  }

  /** Drops cached blocks (prompts already built keep theirs). */
  clearCache(): void {
    this.#cache.clear();
    this.#cachedBlocks = 0;
  }

  #streamSeed(stream: string): number {
    let seed = this.#streamSeeds.get(stream);
    if (seed === undefined) {
      seed = deriveSeed(this.#seed, hashString(stream));
      this.#streamSeeds.set(stream, seed);
    }
    return seed;
  }
}

/**
 * Picks the first `size` token ids (lowest first: the most common merges) that decode to
 * a space plus 3-8 lowercase letters and encode back to themselves alone, then checks
 * that their concatenation encodes word by word.
 */
function findVocabulary(tokenizer: Tokenizer, size: number): Vocabulary {
  const words: string[] = [];
  const ids: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize && words.length < size; id++) {
    const text = tokenizer.decode([id]);
    if (!WORD.test(text)) continue;
    const encoded = tokenizer.encode(text);
    if (encoded.length !== 1 || encoded[0] !== id) continue;
    words.push(text);
    ids.push(id);
  }
  if (words.length < size) {
    throw new ArmatureError(
      'failed_precondition',
      'tokenizer_unsupported',
      `tokenizer ${tokenizer.id} has only ${words.length} single-token space-prefixed words (need ${size})`,
    );
  }
  // Each word once, then each word after a different one: any merge across words shows.
  const order = words.map((_, w) => w);
  order.push(...order.slice(1), 0);
  const probe = order.map((w) => ids[w]!);
  const encoded = tokenizer.encode(order.map((w) => words[w]).join(''));
  if (encoded.length !== probe.length || encoded.some((id, i) => id !== probe[i])) {
    throw new ArmatureError(
      'failed_precondition',
      'tokenizer_unsupported',
      `tokenizer ${tokenizer.id} merges tokens across space-prefixed words; exact-length prompts are not possible`,
    );
  }
  const offsets = new Uint32Array(words.length + 1);
  words.forEach((word, w) => (offsets[w + 1] = offsets[w]! + word.length));
  return {
    words,
    ids: Uint32Array.from(ids),
    bytes: Buffer.from(words.join(''), 'latin1'),
    offsets,
    maxWordBytes: Math.max(...words.map((word) => word.length)),
  };
}
