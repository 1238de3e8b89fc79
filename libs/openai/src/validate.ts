// Validation of OpenAI request bodies into one normalised request. Every rejection is an
// ArmatureError('invalid_argument') naming the offending `param`, rendered as OpenAI's
// error JSON by the frontend. Which keys a body may carry, and what happens to the ones the
// server cannot honour, is request-fields.ts; this reads the honoured ones. Each numeric
// field is held to what the worker wire (proto/armature/v1/common.proto) carries and what
// the engines take, so nothing valid here fails in the gRPC encoder. The checks that need
// the model (the tokenized prompt against the context and the vocabulary) are in
// model-fit.ts. Nothing downstream checks a field again: it takes the typed values.
import { ArmatureError } from '@armature/runtime';
import {
  checkFields,
  checkMessageFields,
  checkStreamOptionFields,
  invalidValue as bad,
  type RequestKind,
} from './request-fields.js';

export interface ChatMessageIn {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content: string;
}

/** Sampling settings as the client gave them; absent ones are the engine's defaults. */
export interface SamplingParams {
  /** In [0, 2]. */
  temperature?: number;
  /** In (0, 1]. */
  topP?: number;
  /**
   * In [0, 2^31 - 1] (llama.cpp reads an int32); 0 means no top-k (the whole vocabulary).
   * A client's -1 (vLLM's "disabled") arrives as 0; absent is the engine's default (40 for llama.cpp).
   */
  topK?: number;
  /** In [0, 2^53 - 1]: the wire's uint64 as a JS number; llama.cpp uses it modulo 2^32. */
  seed?: number;
}

export interface NormalizedRequest {
  kind: 'chat' | 'completion';
  model: string;
  /** Chat requests. */
  messages?: ChatMessageIn[];
  /** Completion requests: text, or token ids (each below 2^32). */
  prompt?: string | number[];
  /**
   * `max_completion_tokens`, else `max_tokens`: an integer in [1, 2^32 - 1]. Absent: as many
   * as the context leaves, resolved (and checked against the context) by `fitToModel`.
   */
  maxTokens?: number;
  /** The field maxTokens came from, for the errors that name it. */
  maxTokensParam?: 'max_tokens' | 'max_completion_tokens';
  /** Up to 4 non-empty stop strings. */
  stop: string[];
  sampling: SamplingParams;
  stream: boolean;
  includeUsage: boolean;
  ignoreEos: boolean;
  echo: boolean;
}

type Json = Record<string, unknown>;

/** Largest value of the wire's uint32 fields (max_tokens, token ids). */
const UINT32_MAX = 2 ** 32 - 1;
/** Largest top_k: node-llama-cpp reads it as an int32. */
const INT32_MAX = 2 ** 31 - 1;

function optionalNumber(body: Json, param: string, check: (n: number) => boolean, range: string): number | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(param, `'${param}' must be a number`);
  if (!check(v)) throw bad(param, `'${param}' must be ${range}; got ${v}`);
  return v;
}

function optionalInt(body: Json, param: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(param, `'${param}' must be an integer`);
  if (v < min || v > max) throw bad(param, `'${param}' must be in [${min}, ${max}]; got ${v}`);
  return v === 0 ? 0 : v; // -0 too
}

function optionalBool(body: Json, param: string): boolean {
  const v = body[param];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(param, `'${param}' must be a boolean`);
  return v;
}

// A lone surrogate ("\ud800" in JSON) is valid JSON but not text: the tokenizer would
// quietly turn it into U+FFFD, and the model would read something the client did not send.
const LONE_SURROGATE = /\p{Cs}/u;

function wellFormed(text: string, param: string): string {
  if (LONE_SURROGATE.test(text)) throw bad(param, `'${param}' is not valid Unicode text (a lone surrogate)`);
  return text;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function messageContent(content: unknown, i: number): string {
  const param = `messages[${i}].content`;
  if (typeof content === 'string') return wellFormed(content, param);
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((part: unknown, j) => {
        const p = part as Json | null;
        if (p && typeof p === 'object' && p.type === 'text' && typeof p.text === 'string')
          return wellFormed(p.text, `${param}[${j}].text`);
        throw bad(`${param}[${j}]`, `'${param}[${j}]' must be a text part ({"type": "text", "text": ...})`);
      })
      .join('');
  }
  throw bad(param, `'${param}' must be a string or an array of text parts`);
}

function parseMessages(body: Json): ChatMessageIn[] {
  const raw = body.messages;
  if (raw === undefined)
    throw new ArmatureError('invalid_argument', 'missing_required_parameter', "'messages' is required", {
      param: 'messages',
    });
  if (!Array.isArray(raw)) throw bad('messages', "'messages' must be an array");
  if (raw.length === 0) throw bad('messages', "'messages' must contain at least one message");
  const messages = raw.map((m: unknown, i): ChatMessageIn => {
    if (!m || typeof m !== 'object' || Array.isArray(m))
      throw bad(`messages[${i}]`, `'messages[${i}]' must be an object`);
    checkMessageFields(m as Json, i);
    const role = (m as Json).role;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw bad(`messages[${i}].role`, `'messages[${i}].role' must be one of ${[...ROLES].join(', ')}`);
    }
    return { role: role as ChatMessageIn['role'], content: messageContent((m as Json).content, i) };
  });
  if (messages.every((m) => m.content.length === 0)) throw bad('messages', 'the messages are all empty');
  return messages;
}

function parsePrompt(body: Json): string | number[] {
  let p = body.prompt;
  if (p === undefined)
    throw new ArmatureError('invalid_argument', 'missing_required_parameter', "'prompt' is required", {
      param: 'prompt',
    });
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
  if (typeof p === 'string') {
    if (p.length === 0) throw bad('prompt', "'prompt' must not be empty");
    return wellFormed(p, 'prompt');
  }
  if (
    Array.isArray(p) &&
    p.length > 0 &&
    p.every((t) => Number.isInteger(t) && (t as number) >= 0 && (t as number) <= UINT32_MAX)
  ) {
    return p as number[];
  }
  if (Array.isArray(p) && p.length === 0) throw bad('prompt', "'prompt' must not be empty");
  throw bad('prompt', "'prompt' must be a string, or an array of token ids (batches of prompts are not supported)");
}

function parseStop(body: Json): string[] {
  const s = body.stop;
  if (s === undefined || s === null) return [];
  const list = typeof s === 'string' ? [s] : s;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x.length > 0) || list.length > 4) {
    throw bad('stop', "'stop' must be a non-empty string or an array of up to 4 non-empty strings");
  }
  return (list as string[]).map((x, i) => wellFormed(x, typeof s === 'string' ? 'stop' : `stop[${i}]`));
}

/** top_k as the engines take it: -1 (vLLM's "disabled") becomes 0 (llama.cpp's). */
function parseTopK(body: Json): number | undefined {
  const topK = optionalInt(body, 'top_k', -1, INT32_MAX);
  return topK === -1 ? 0 : topK;
}

/** Validates a /v1/chat/completions or /v1/completions body. */
export function validateRequest(kind: RequestKind, body: unknown): NormalizedRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new ArmatureError('invalid_argument', 'invalid_body', 'the request body must be a JSON object');
  }
  const b = body as Json;
  if (typeof b.model !== 'string' || b.model.length === 0) {
    throw new ArmatureError(
      'invalid_argument',
      'missing_required_parameter',
      "'model' is required and must be a string",
      { param: 'model' },
    );
  }
  checkFields(kind, b);
  const n = optionalInt(b, 'n', Number.MIN_SAFE_INTEGER);
  if (n !== undefined && n !== 1) throw bad('n', "only 'n' = 1 is supported");
  const maxCompletion = optionalInt(b, 'max_completion_tokens', 1, UINT32_MAX);
  const maxTokens = optionalInt(b, 'max_tokens', 1, UINT32_MAX);
  const streamOptions = b.stream_options;
  if (
    streamOptions !== undefined &&
    streamOptions !== null &&
    (typeof streamOptions !== 'object' || Array.isArray(streamOptions))
  ) {
    throw bad('stream_options', "'stream_options' must be an object");
  }
  if (streamOptions) checkStreamOptionFields(streamOptions as Json);
  const stream = optionalBool(b, 'stream');
  const includeUsage = streamOptions ? optionalBool(streamOptions as Json, 'include_usage') : false;
  if (includeUsage && !stream) throw bad('stream_options', "'stream_options' is only allowed when 'stream' is true");
  const prompt = kind === 'completion' ? parsePrompt(b) : undefined;
  const echo = kind === 'completion' ? optionalBool(b, 'echo') : false;
  if (echo && typeof prompt !== 'string') throw bad('echo', "'echo' needs a text prompt, not token ids");
  return {
    kind,
    model: b.model,
    messages: kind === 'chat' ? parseMessages(b) : undefined,
    prompt,
    maxTokens: maxCompletion ?? maxTokens,
    maxTokensParam:
      maxCompletion !== undefined ? 'max_completion_tokens' : maxTokens !== undefined ? 'max_tokens' : undefined,
    stop: parseStop(b),
    sampling: {
      temperature: optionalNumber(b, 'temperature', (v) => v >= 0 && v <= 2, 'between 0 and 2'),
      // The wire's float32 turns the tiniest positive values into 0.
      topP: optionalNumber(b, 'top_p', (v) => Math.fround(v) > 0 && v <= 1, 'greater than 0 and at most 1'),
      topK: parseTopK(b),
      seed: optionalInt(b, 'seed', 0),
    },
    stream,
    includeUsage,
    ignoreEos: optionalBool(b, 'ignore_eos'),
    echo,
  };
}
