// One string names a workload on the command line (`--workload mooncake:trace.jsonl`).
//
// Grammar:
//   spec     := "mooncake:" PATH | "azure:" PATH
//             | "shared-prefix:" params | "synthetic:" params
//   params   := key "=" value ("," key "=" value)*       (keys unique, any order)
//   shared-prefix keys: groups, prompts, system, question, output (integers, required);
//                       seed (integer, optional)
//   synthetic keys:     count (integer), input, output (lengths) required; seed optional
//   length   := N            fixed
//             | A..B         uniform integer in [A, B]
//             | MEAN~STDDEV  normal, rounded, clipped at 1
// PATH is everything after the first colon. A `seed` in the spec overrides options.seed.
import { ArmatureError } from '@armature/runtime';
import { loadAzureTrace } from './azure.js';
import { loadMooncakeTrace } from './mooncake.js';
import { generateSharedPrefix } from './shared-prefix.js';
import { generateSynthetic, validateLengthDistribution, type LengthDistribution } from './synthetic.js';
import type { Workload } from './types.js';
import type { DatasetOptions } from './workload.js';

export type WorkloadSpec =
  | { kind: 'mooncake'; path: string }
  | { kind: 'azure'; path: string }
  | {
      kind: 'shared-prefix';
      groups: number;
      promptsPerGroup: number;
      systemPromptTokens: number;
      questionTokens: number;
      outputTokens: number;
      seed?: number;
    }
  | {
      kind: 'synthetic';
      count: number;
      inputTokens: LengthDistribution;
      outputTokens: LengthDistribution;
      seed?: number;
    };

export const WORKLOAD_SPEC_FORMS = [
  'mooncake:<path.jsonl>',
  'azure:<path.csv>',
  'shared-prefix:groups=8,prompts=16,system=1024,question=128,output=64[,seed=0]',
  'synthetic:count=100,input=512,output=64[,seed=0]  (length: N | A..B | MEAN~STDDEV)',
];

/** Parses a workload spec (grammar above); throws `bad_workload_spec` with the reason. */
export function parseWorkloadSpec(spec: string): WorkloadSpec {
  const fail = (why: string): never => {
    throw new ArmatureError(
      'invalid_argument',
      'bad_workload_spec',
      `bad workload spec ${JSON.stringify(spec)}: ${why}`,
      {
        detail: `forms: ${WORKLOAD_SPEC_FORMS.join(' | ')}`,
      },
    );
  };
  const colon = spec.indexOf(':');
  if (colon < 0) return fail('expected <kind>:<path or params>');
  const kind = spec.slice(0, colon).trim();
  const body = spec.slice(colon + 1);
  switch (kind) {
    case 'mooncake':
    case 'azure':
      if (body.trim() === '') fail('missing trace path');
      return { kind, path: body.trim() };
    case 'shared-prefix': {
      const params = parseParams(body, ['groups', 'prompts', 'system', 'question', 'output'], ['seed'], fail);
      const int = (key: string): number => parseInteger(params.get(key)!, key, fail);
      return {
        kind,
        groups: int('groups'),
        promptsPerGroup: int('prompts'),
        systemPromptTokens: int('system'),
        questionTokens: int('question'),
        outputTokens: int('output'),
        ...(params.has('seed') ? { seed: int('seed') } : {}),
      };
    }
    case 'synthetic': {
      const params = parseParams(body, ['count', 'input', 'output'], ['seed'], fail);
      const length = (key: string): LengthDistribution => {
        const dist = parseLength(params.get(key)!, key, fail);
        try {
          validateLengthDistribution(dist, key);
        } catch (err) {
          fail((err as Error).message);
        }
        return dist;
      };
      return {
        kind,
        count: parseInteger(params.get('count')!, 'count', fail),
        inputTokens: length('input'),
        outputTokens: length('output'),
        ...(params.has('seed') ? { seed: parseInteger(params.get('seed')!, 'seed', fail) } : {}),
      };
    }
    default:
      return fail(`unknown kind ${JSON.stringify(kind)}`);
  }
}

/** Loads or generates the workload a spec names; `options` supplies the tokenizer, limit, outputCap. */
export async function loadWorkload(spec: string, options: DatasetOptions): Promise<Workload> {
  const parsed = parseWorkloadSpec(spec);
  switch (parsed.kind) {
    case 'mooncake':
      return loadMooncakeTrace(parsed.path, options);
    case 'azure':
      return loadAzureTrace(parsed.path, options);
    case 'shared-prefix': {
      const { kind: _kind, ...rest } = parsed;
      return generateSharedPrefix({ ...options, ...rest });
    }
    case 'synthetic': {
      const { kind: _kind, ...rest } = parsed;
      return generateSynthetic({ ...options, ...rest });
    }
  }
}

function parseParams(
  body: string,
  required: readonly string[],
  optional: readonly string[],
  fail: (why: string) => never,
): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of body.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) fail(`expected key=value, got ${JSON.stringify(part)}`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!required.includes(key) && !optional.includes(key)) {
      fail(`unknown key ${JSON.stringify(key)} (keys: ${[...required, ...optional].join(', ')})`);
    }
    if (params.has(key)) fail(`duplicate key ${JSON.stringify(key)}`);
    params.set(key, value);
  }
  const missing = required.filter((key) => !params.has(key));
  if (missing.length > 0) fail(`missing ${missing.join(', ')}`);
  return params;
}

function parseInteger(text: string, key: string, fail: (why: string) => never): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value))
    fail(`${key} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}

function parseLength(text: string, key: string, fail: (why: string) => never): LengthDistribution {
  let m: RegExpExecArray | null;
  if (/^\d+$/.test(text)) return Number(text);
  if ((m = /^(\d+)\.\.(\d+)$/.exec(text))) return { min: Number(m[1]), max: Number(m[2]) };
  if ((m = /^(\d+(?:\.\d+)?)~(\d+(?:\.\d+)?)$/.exec(text))) return { mean: Number(m[1]), stddev: Number(m[2]) };
  return fail(`${key} must be N, A..B or MEAN~STDDEV, got ${JSON.stringify(text)}`);
}
