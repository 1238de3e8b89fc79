// Mooncake FAST'25 traces (JSONL: timestamp ms, input_length, output_length, hash_ids).
// Each hash id names one 512-token block and ids form a prefix chain, so each block's
// text is built from its hash id alone: equal leading ids give equal token prefixes,
// which is what lets prefix caching hit in replay as it did in production.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ArmatureError } from '@armature/runtime';
import { PromptBuilder, type TextBlock } from './prompt-builder.js';
import type { Workload, WorkloadRequest } from './types.js';
import { finishWorkload, requestId, resolveDatasetOptions, type DatasetOptions } from './workload.js';

/** Tokens per hash id. */
export const MOONCAKE_BLOCK_TOKENS = 512;

export interface MooncakeRecord {
  timestamp: number;
  inputLength: number;
  outputLength: number;
  hashIds: number[];
}

/**
 * Parses one trace line; `lineNumber` (1-based) and `source` (default `mooncake`) name
 * the line in errors. Requires `hash_ids.length == ceil(input_length / 512)`.
 */
export function parseMooncakeLine(line: string, lineNumber: number, source = 'mooncake'): MooncakeRecord {
  const fail = (why: string): never => {
    throw new ArmatureError('invalid_argument', 'bad_trace_line', `${source}:${lineNumber}: ${why}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    return fail(`invalid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('expected a JSON object');
  const row = raw as Record<string, unknown>;
  const integer = (field: string, min: number): number => {
    const value = row[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      return fail(`${field} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const timestamp = row['timestamp'];
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp < 0) {
    fail(`timestamp must be a number >= 0 (ms), got ${JSON.stringify(timestamp)}`);
  }
  const inputLength = integer('input_length', 1);
  const outputLength = integer('output_length', 0);
  const hashIds = row['hash_ids'];
  if (!Array.isArray(hashIds) || hashIds.some((h) => typeof h !== 'number' || !Number.isSafeInteger(h) || h < 0)) {
    return fail('hash_ids must be an array of integers >= 0');
  }
  const blocks = Math.ceil(inputLength / MOONCAKE_BLOCK_TOKENS);
  if (hashIds.length !== blocks) {
    fail(
      `input_length ${inputLength} needs ${blocks} hash_ids of ${MOONCAKE_BLOCK_TOKENS} tokens, got ${hashIds.length}`,
    );
  }
  return { timestamp: timestamp as number, inputLength, outputLength, hashIds: hashIds as number[] };
}

/** Reads a Mooncake JSONL trace and builds its prompts; blank lines are skipped. */
export async function loadMooncakeTrace(path: string, options: DatasetOptions): Promise<Workload> {
  const { limit } = resolveDatasetOptions(options);
  const text = await readFile(path, 'utf8');
  const records: MooncakeRecord[] = [];
  let start = 0;
  for (let lineNumber = 1; start < text.length && records.length < limit; lineNumber++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line !== '') records.push(parseMooncakeLine(line, lineNumber, path));
  }
  return buildMooncakeWorkload(records, options, `mooncake:${basename(path)}`);
}

/** Builds a workload from parsed records (the first record's timestamp is time zero). */
export async function buildMooncakeWorkload(
  records: readonly MooncakeRecord[],
  options: DatasetOptions,
  name = 'mooncake',
): Promise<Workload> {
  const resolved = resolveDatasetOptions(options);
  const builder = await PromptBuilder.create(options.tokenizer, { seed: resolved.seed });
  const kept = records.slice(0, resolved.limit);
  const origin = kept[0]?.timestamp ?? 0;
  const requests = kept.map((record, index): WorkloadRequest => {
    const last = record.hashIds.length - 1;
    const tail = record.inputLength - MOONCAKE_BLOCK_TOKENS * last;
    const blocks = record.hashIds.map((hashId, i): TextBlock => {
      if (i < last || tail === MOONCAKE_BLOCK_TOKENS) return builder.block('mooncake', hashId, MOONCAKE_BLOCK_TOKENS);
      return builder.text('mooncake', hashId, tail); // a prefix of the full block for this id
    });
    return {
      id: requestId('mooncake', index, kept.length),
      arrivalMs: record.timestamp - origin,
      ...builder.compose(blocks),
      targetInputTokens: record.inputLength,
      outputTokens: Math.min(resolved.outputCap, Math.max(1, record.outputLength)),
    };
  });
  return finishWorkload(name, requests, options.tokenizer, resolved);
}
