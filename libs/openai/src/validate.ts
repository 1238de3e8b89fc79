// Validation of OpenAI request bodies into one normalised request. Every rejection is an
// ArmatureError('invalid_argument') naming the offending `param`, rendered as OpenAI's
// error JSON by the frontend. Unknown fields are ignored, as OpenAI's server does.
// Each field is checked here once, for its shape; the checks that need the model (the
// tokenized prompt against the context and the vocabulary) are in model-fit.ts. Nothing
// downstream checks a field again: it takes the typed values.
import { ArmatureError } from '@armature/runtime';

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
  /** -1 or more (-1 and 0: no top-k). */
  topK?: number;
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
   * `max_completion_tokens`, else `max_tokens`: an integer of at least 1. Absent: as many
   * as the context leaves, resolved (and checked against the context) by `fitToModel`.
   */
  maxTokens?: number;
  /** Up to 4 non-empty stop strings. */
  stop: string[];
  sampling: SamplingParams;
  stream: boolean;
  includeUsage: boolean;
  ignoreEos: boolean;
  echo: boolean;
}

type Json = Record<string, unknown>;

const bad = (param: string, message: string): ArmatureError =>
  new ArmatureError('invalid_argument', 'invalid_value', message, { param });

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
  return v;
}

function optionalBool(body: Json, param: string): boolean {
  const v = body[param];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(param, `'${param}' must be a boolean`);
  return v;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function messageContent(content: unknown, i: number): string {
  const param = `messages[${i}].content`;
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((part: unknown, j) => {
        const p = part as Json | null;
        if (p && typeof p === 'object' && p.type === 'text' && typeof p.text === 'string') return p.text;
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
    return p;
  }
  if (
    Array.isArray(p) &&
    p.length > 0 &&
    p.every((t) => Number.isInteger(t) && (t as number) >= 0 && (t as number) < 2 ** 32)
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
  return list as string[];
}

/** Validates a /v1/chat/completions or /v1/completions body. */
export function validateRequest(kind: 'chat' | 'completion', body: unknown): NormalizedRequest {
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
  const n = optionalInt(b, 'n', 1);
  if (n !== undefined && n !== 1) throw bad('n', "only 'n' = 1 is supported");
  const maxCompletion = optionalInt(b, 'max_completion_tokens', 1);
  const maxTokens = optionalInt(b, 'max_tokens', 1);
  const streamOptions = b.stream_options;
  if (
    streamOptions !== undefined &&
    streamOptions !== null &&
    (typeof streamOptions !== 'object' || Array.isArray(streamOptions))
  ) {
    throw bad('stream_options', "'stream_options' must be an object");
  }
  const stream = optionalBool(b, 'stream');
  const includeUsage = streamOptions ? optionalBool(streamOptions as Json, 'include_usage') : false;
  if (includeUsage && !stream) throw bad('stream_options', "'stream_options' is only allowed when 'stream' is true");
  return {
    kind,
    model: b.model,
    messages: kind === 'chat' ? parseMessages(b) : undefined,
    prompt: kind === 'completion' ? parsePrompt(b) : undefined,
    maxTokens: maxCompletion ?? maxTokens,
    stop: parseStop(b),
    sampling: {
      temperature: optionalNumber(b, 'temperature', (v) => v >= 0 && v <= 2, 'between 0 and 2'),
      topP: optionalNumber(b, 'top_p', (v) => v > 0 && v <= 1, 'greater than 0 and at most 1'),
      topK: optionalInt(b, 'top_k', -1),
      seed: optionalInt(b, 'seed', Number.MIN_SAFE_INTEGER),
    },
    stream,
    includeUsage,
    ignoreEos: optionalBool(b, 'ignore_eos'),
    echo: kind === 'completion' ? optionalBool(b, 'echo') : false,
  };
}
