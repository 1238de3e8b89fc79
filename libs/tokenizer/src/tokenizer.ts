// Tokenizers the frontend can load by id. The model card names one (for example
// `gpt-tokenizer:o200k_base`, or `gguf:/models/x.gguf` for a llama.cpp worker); the frontend
// must tokenize exactly as the engine does so that block hashes at the router match the worker's.
// gpt-tokenizer's own encode runs BPE on each piece of its split regex whole, in time
// quadratic in the piece; ours runs the same split and the same per-piece BPE (its core
// processor's), with pieces longer than MAX_RUN_LENGTH cut first (long-runs.ts says what
// that changes).
import { ArmatureError } from '@armature/runtime';
import { loadGgufTokenizer } from './gguf-tokenizer.js';
import { MAX_RUN_LENGTH, splitLongPiece } from './long-runs.js';
import type { Tokenizer } from './types.js';

/** gpt-tokenizer's BytePairEncodingCore: TypeScript-private members, present on the object. */
interface BytePairCore {
  tokenSplitRegex: RegExp;
  getBpeRankFromString(piece: string): number | undefined;
  bytePairEncode(piece: string): number[];
  tryDecodeToken(id: number): Uint8Array | string | undefined;
}

interface GptEncodingModule {
  encode(
    text: string,
    options?: { allowedSpecial?: Set<string> | 'all'; disallowedSpecial?: Set<string> | 'all' },
  ): number[];
  vocabularySize: number;
  default: { bytePairEncodingCoreProcessor: BytePairCore };
}

const GPT_ENCODINGS = ['o200k_base', 'cl100k_base', 'p50k_base', 'r50k_base'] as const;
type GptEncodingName = (typeof GPT_ENCODINGS)[number];

const GGUF_PREFIX = 'gguf:';

const cache = new Map<string, Promise<Tokenizer>>();

/**
 * Loads a tokenizer by id, cached per id: `gpt-tokenizer:<encoding>` (o200k_base,
 * cl100k_base, ...) or `gguf:<absolute path>` (the GGUF file's own vocabulary).
 */
export function loadTokenizer(id: string): Promise<Tokenizer> {
  let pending = cache.get(id);
  if (!pending) {
    pending = load(id);
    cache.set(id, pending);
    pending.catch(() => cache.delete(id));
  }
  return pending;
}

async function load(id: string): Promise<Tokenizer> {
  if (id.startsWith(GGUF_PREFIX)) return loadGgufTokenizer(id, id.slice(GGUF_PREFIX.length));
  const [family, name] = id.split(':', 2);
  if (family === 'gpt-tokenizer' && (GPT_ENCODINGS as readonly string[]).includes(name ?? '')) {
    const mod = (await import(`gpt-tokenizer/encoding/${name as GptEncodingName}`)) as GptEncodingModule;
    const core = bytePairCore(id, mod);
    const tokenBytes = (token: number) => core.tryDecodeToken(token);
    return {
      id,
      vocabSize: mod.vocabularySize,
      maxTokenBytes: longestToken(mod.vocabularySize, tokenBytes),
      bosTokenIds: [],
      encode: (text) => encodeInPieces(core, text),
      encodeSpecial: (text) => mod.encode(text, { allowedSpecial: 'all' }),
      decode: byteLevelDecoder(tokenBytes),
    };
  }
  throw new ArmatureError('failed_precondition', 'unknown_tokenizer', `unknown tokenizer ${JSON.stringify(id)}`, {
    detail: `supported: ${GPT_ENCODINGS.map((e) => `gpt-tokenizer:${e}`).join(', ')}, ${GGUF_PREFIX}<absolute path>`,
  });
}

function bytePairCore(id: string, mod: GptEncodingModule): BytePairCore {
  const core = mod.default.bytePairEncodingCoreProcessor as Partial<BytePairCore> | undefined;
  const usable =
    core?.tokenSplitRegex instanceof RegExp &&
    typeof core.getBpeRankFromString === 'function' &&
    typeof core.bytePairEncode === 'function' &&
    typeof core.tryDecodeToken === 'function';
  if (!usable) {
    const detail = 'this gpt-tokenizer version lacks the BytePairEncodingCore members the tokenizer uses';
    const message = `failed to load tokenizer ${JSON.stringify(id)}`;
    throw new ArmatureError('failed_precondition', 'tokenizer_load_failed', message, { detail });
  }
  return core as BytePairCore;
}

/**
 * What gpt-tokenizer's encode does with special tokens disallowed (its split regex, then a
 * piece's own rank or its BPE), with each piece longer than MAX_RUN_LENGTH cut first.
 */
function encodeInPieces(core: BytePairCore, text: string): number[] {
  const ids: number[] = [];
  const encodePart = (part: string): void => {
    const rank = core.getBpeRankFromString(part);
    if (rank !== undefined) ids.push(rank);
    else for (const id of core.bytePairEncode(part)) ids.push(id);
  };
  for (const [piece] of text.matchAll(core.tokenSplitRegex)) {
    if (piece.length <= MAX_RUN_LENGTH) encodePart(piece);
    else for (const part of splitLongPiece(piece)) encodePart(part);
  }
  return ids;
}

/** The byte length of the longest token, special tokens included. */
function longestToken(vocabSize: number, tokenBytes: (id: number) => Uint8Array | string | undefined): number {
  let longest = 1;
  for (let id = 0; id < vocabSize; id++) {
    const raw = tokenBytes(id);
    const length = raw === undefined ? 0 : typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
    if (length > longest) longest = length;
  }
  return longest;
}

const utf8 = new TextEncoder();
const REPLACEMENT_BYTES = utf8.encode('\uFFFD');

/**
 * Decodes by concatenating each token's bytes and decoding them once, with a decoder of
 * our own: gpt-tokenizer's decode shares one streaming TextDecoder across calls, so an
 * incomplete character at the end of one call leaks into the next.
 */
function byteLevelDecoder(
  tokenBytes: (id: number) => Uint8Array | string | undefined,
): (ids: readonly number[]) => string {
  const bytesCache = new Map<number, Uint8Array>();
  const bytesOf = (id: number): Uint8Array => {
    let bytes = bytesCache.get(id);
    if (!bytes) {
      const raw = tokenBytes(id);
      bytes = raw === undefined ? REPLACEMENT_BYTES : typeof raw === 'string' ? utf8.encode(raw) : raw;
      bytesCache.set(id, bytes);
    }
    return bytes;
  };
  const decoder = new TextDecoder('utf-8');
  return (ids) => {
    const parts = ids.map(bytesOf);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return decoder.decode(out); // not streaming: an incomplete tail becomes U+FFFD
  };
}
