// Which request fields this server knows, and what it does with each. A client that sets
// a field must never believe it was applied when it was not, so every key of a body is one
// of three kinds: honoured (validate.ts reads it into the NormalizedRequest), inert (it
// cannot change the output, like `user`: accepted, type-checked, used nowhere), or
// unsupported (accepted only at its neutral value, like `n: 1` or `tools: []`; any other
// value is a 400 naming it). Anything else is refused as OpenAI refuses it
// ("Unrecognized request argument"). null counts as absent throughout.
import { ArmatureError } from '@armature/runtime';

export type RequestKind = 'chat' | 'completion';

type Json = Record<string, unknown>;

/** Throws for a value the server cannot take; called only for values other than null. */
type FieldCheck = (value: unknown, param: string, kind: RequestKind) => void;

interface FieldRule {
  kinds: readonly RequestKind[];
  /** Absent for honoured fields: validate.ts checks them. */
  check?: FieldCheck;
}

const BOTH: readonly RequestKind[] = ['chat', 'completion'];
const CHAT: readonly RequestKind[] = ['chat'];
const COMPLETION: readonly RequestKind[] = ['completion'];

export const invalidValue = (param: string, message: string): ArmatureError =>
  new ArmatureError('invalid_argument', 'invalid_value', message, { param });

const unsupported = (param: string, message: string): ArmatureError =>
  new ArmatureError('invalid_argument', 'unsupported_parameter', message, { param });

/** A client-sent key, shortened so an error never echoes a huge one back. */
export const shownKey = (key: string): string => (key.length > 64 ? `${key.slice(0, 64)}...` : key);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function inert(kinds: readonly RequestKind[], type: 'string' | 'boolean' | 'object'): FieldRule {
  return {
    kinds,
    check: (v, param) => {
      if (type === 'object' ? !isObject(v) : typeof v !== type)
        throw invalidValue(param, `'${param}' must be ${type === 'object' ? 'an object' : `a ${type}`}`);
    },
  };
}

/** A field the server cannot honour: `neutral` says which values change nothing. */
function neutralOnly(kinds: readonly RequestKind[], neutral: (v: unknown) => boolean, message: string): FieldRule {
  return {
    kinds,
    check: (v, param) => {
      if (!neutral(v)) throw unsupported(param, message);
    },
  };
}

/** OpenAI's penalties: a number in [-2, 2]; only 0 (no penalty) is supported. */
const penalty: FieldRule = {
  kinds: BOTH,
  check: (v, param) => {
    if (typeof v !== 'number' || v < -2 || v > 2)
      throw invalidValue(param, `'${param}' must be a number between -2 and 2`);
    if (v !== 0) throw unsupported(param, `'${param}' is not supported; only 0 is accepted`);
  },
};

const isEmptyArray = (v: unknown): boolean => Array.isArray(v) && v.length === 0;
const noToolsChoice = (v: unknown): boolean => v === 'none' || v === 'auto';
const noTools = 'tool and function calling is not supported';

const FIELDS = new Map<string, FieldRule>([
  // Honoured: validate.ts reads and checks them.
  ...['model', 'max_tokens', 'max_completion_tokens', 'stop', 'stream', 'stream_options'].map(
    (k): [string, FieldRule] => [k, { kinds: BOTH }],
  ),
  ...['temperature', 'top_p', 'top_k', 'seed', 'ignore_eos', 'n'].map((k): [string, FieldRule] => [k, { kinds: BOTH }]),
  ['messages', { kinds: CHAT }],
  ['prompt', { kinds: COMPLETION }],
  ['echo', { kinds: COMPLETION }],
  // Inert: nothing the model sees.
  ['user', inert(BOTH, 'string')],
  ['metadata', inert(BOTH, 'object')],
  ['store', inert(BOTH, 'boolean')],
  ['service_tier', inert(BOTH, 'string')],
  ['prompt_cache_key', inert(BOTH, 'string')],
  ['safety_identifier', inert(BOTH, 'string')],
  ['parallel_tool_calls', inert(CHAT, 'boolean')],
  // Unsupported: only the value that changes nothing.
  ['frequency_penalty', penalty],
  ['presence_penalty', penalty],
  ['logit_bias', neutralOnly(BOTH, (v) => isObject(v) && Object.keys(v).length === 0, "'logit_bias' is not supported")],
  // Chat's is a boolean; a completion's is a count, and any count asks for them.
  ['logprobs', neutralOnly(BOTH, (v) => v === false, 'log probabilities are not supported')],
  ['top_logprobs', neutralOnly(CHAT, (v) => v === 0, 'log probabilities are not supported')],
  ['best_of', neutralOnly(COMPLETION, (v) => v === 1, "only 'best_of' = 1 is supported")],
  ['suffix', neutralOnly(COMPLETION, (v) => v === '', "'suffix' (insertion) is not supported")],
  ['tools', neutralOnly(CHAT, isEmptyArray, noTools)],
  ['functions', neutralOnly(CHAT, isEmptyArray, noTools)],
  ['tool_choice', neutralOnly(CHAT, noToolsChoice, noTools)],
  ['function_call', neutralOnly(CHAT, noToolsChoice, noTools)],
  [
    'response_format',
    neutralOnly(
      CHAT,
      (v) => isObject(v) && v.type === 'text' && Object.keys(v).length === 1,
      `only 'response_format' {"type": "text"} is supported (no JSON mode or schemas)`,
    ),
  ],
  [
    'modalities',
    neutralOnly(
      CHAT,
      (v) => Array.isArray(v) && v.length === 1 && v[0] === 'text',
      "only text 'modalities' are supported",
    ),
  ],
  ...['audio', 'prediction', 'web_search_options', 'reasoning_effort', 'verbosity'].map((k): [string, FieldRule] => [
    k,
    neutralOnly(CHAT, () => false, `'${k}' is not supported`),
  ]),
]);

/** Throws for a body key that is unknown, not for this endpoint, or set to a value the server cannot honour. */
export function checkFields(kind: RequestKind, body: Json): void {
  for (const [key, value] of Object.entries(body)) {
    const rule = FIELDS.get(key);
    if (!rule || !rule.kinds.includes(kind)) throw unknownField(key);
    if (value !== null && value !== undefined) rule.check?.(value, key, kind);
  }
}

const MESSAGE_FIELDS = new Map<string, FieldCheck | undefined>([
  ['role', undefined],
  ['content', undefined],
  // The templates do not render these; they carry no instruction to the model.
  ['name', inert(BOTH, 'string').check],
  ['tool_call_id', inert(BOTH, 'string').check],
  ['refusal', inert(BOTH, 'string').check],
  ['tool_calls', neutralOnly(BOTH, isEmptyArray, noTools).check],
  ['function_call', neutralOnly(BOTH, () => false, noTools).check],
  ['audio', neutralOnly(BOTH, () => false, 'audio messages are not supported').check],
]);

/** Throws for a key of `messages[i]` that is unknown or set to a value the server cannot honour. */
export function checkMessageFields(message: Json, i: number): void {
  for (const [key, value] of Object.entries(message)) {
    if (!MESSAGE_FIELDS.has(key)) throw unknownField(`messages[${i}].${key}`);
    if (value !== null && value !== undefined) MESSAGE_FIELDS.get(key)?.(value, `messages[${i}].${key}`, 'chat');
  }
}

/** Throws for a key of `stream_options` other than include_usage. */
export function checkStreamOptionFields(options: Json): void {
  for (const key of Object.keys(options)) {
    if (key !== 'include_usage') throw unknownField(`stream_options.${key}`);
  }
}

function unknownField(param: string): ArmatureError {
  const shown = shownKey(param);
  return new ArmatureError(
    'invalid_argument',
    'unknown_parameter',
    `Unrecognized request argument supplied: ${shown}`,
    {
      param: shown,
    },
  );
}
