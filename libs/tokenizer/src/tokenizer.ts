// Tokenizers the frontend can load by id. The model card names one (for example
// `gpt-tokenizer:o200k_base`, or `gguf:/models/x.gguf` for a llama.cpp worker); the frontend
// must tokenize exactly as the engine does so that block hashes at the router match the worker's.
import { ArmatureError } from '@armature/runtime';
import { loadGgufTokenizer } from './gguf-tokenizer.js';
import type { Tokenizer } from './types.js';

interface GptEncodingModule {
  encode(
    text: string,
    options?: { allowedSpecial?: Set<string> | 'all'; disallowedSpecial?: Set<string> | 'all' },
  ): number[];
  vocabularySize: number;
  default: { bytePairEncodingCoreProcessor: { tryDecodeToken(id: number): Uint8Array | string | undefined } };
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
    const plain = { disallowedSpecial: new Set<string>() };
    return {
      id,
      vocabSize: mod.vocabularySize,
      bosTokenIds: [],
      encode: (text) => mod.encode(text, plain),
      encodeSpecial: (text) => mod.encode(text, { allowedSpecial: 'all' }),
      decode: byteLevelDecoder((id) => mod.default.bytePairEncodingCoreProcessor.tryDecodeToken(id)),
    };
  }
  throw new ArmatureError('failed_precondition', 'unknown_tokenizer', `unknown tokenizer ${JSON.stringify(id)}`, {
    detail: `supported: ${GPT_ENCODINGS.map((e) => `gpt-tokenizer:${e}`).join(', ')}, ${GGUF_PREFIX}<absolute path>`,
  });
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
