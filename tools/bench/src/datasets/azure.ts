// Azure LLM inference traces 2023 (CSV: TIMESTAMP, ContextTokens, GeneratedTokens).
// They carry no prefix information, so every prompt is unique text (its own seed).
// Timestamps have 7 fractional digits and sit ~1.7e12 ms from the epoch, where a double
// cannot hold 100 ns steps: they are kept as whole seconds plus nanoseconds and only
// differences become milliseconds.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ArmatureError } from '@armature/runtime';
import { PromptBuilder } from './prompt-builder.js';
import type { Workload, WorkloadRequest } from './types.js';
import { finishWorkload, requestId, resolveDatasetOptions, type DatasetOptions } from './workload.js';

/** A wall-clock instant read as UTC (the trace names no zone). */
export interface AzureTimestamp {
  epochSeconds: number;
  nanoseconds: number;
}

export interface AzureRecord {
  timestamp: AzureTimestamp;
  contextTokens: number;
  generatedTokens: number;
}

/** Column positions found in the header. */
export interface AzureColumns {
  timestamp: number;
  contextTokens: number;
  generatedTokens: number;
  count: number;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/;

/** Parses `2023-11-16 18:15:46.6805900` (up to 9 fractional digits, no zone); throws on bad text. */
export function parseAzureTimestamp(text: string): AzureTimestamp {
  const m = TIMESTAMP.exec(text);
  const bad = (): never => {
    throw new ArmatureError('invalid_argument', 'bad_timestamp', `bad timestamp ${JSON.stringify(text)}`, {
      detail: 'expected YYYY-MM-DD hh:mm:ss[.fffffff]',
    });
  };
  if (!m) return bad();
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(ms);
  // Date.UTC rolls 2023-02-30 over to March: a round trip catches out-of-range fields.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  ) {
    bad();
  }
  return { epochSeconds: ms / 1000, nanoseconds: Number((m[7] ?? '').padEnd(9, '0')) };
}

/** Milliseconds from `from` to `to`, exact to the nanosecond digits given. */
export function elapsedMs(from: AzureTimestamp, to: AzureTimestamp): number {
  return (to.epochSeconds - from.epochSeconds) * 1000 + (to.nanoseconds - from.nanoseconds) / 1e6;
}

/** Finds the three columns by name (case-insensitive) in the header line. */
export function parseAzureHeader(line: string, source = 'azure'): AzureColumns {
  const names = splitCsv(line.replace(/^\uFEFF/, '')).map((name) => name.toLowerCase());
  const find = (name: string): number => {
    const index = names.indexOf(name.toLowerCase());
    if (index < 0) {
      throw new ArmatureError('invalid_argument', 'bad_trace_line', `${source}:1: header has no ${name} column`, {
        detail: 'expected TIMESTAMP,ContextTokens,GeneratedTokens',
      });
    }
    return index;
  };
  return {
    timestamp: find('TIMESTAMP'),
    contextTokens: find('ContextTokens'),
    generatedTokens: find('GeneratedTokens'),
    count: names.length,
  };
}

/** Parses one data line; `lineNumber` (1-based, the header is line 1) names it in errors. */
export function parseAzureLine(
  line: string,
  lineNumber: number,
  columns: AzureColumns = { timestamp: 0, contextTokens: 1, generatedTokens: 2, count: 3 },
  source = 'azure',
): AzureRecord {
  const fail = (why: string): never => {
    throw new ArmatureError('invalid_argument', 'bad_trace_line', `${source}:${lineNumber}: ${why}`);
  };
  const fields = splitCsv(line);
  if (fields.length !== columns.count) fail(`expected ${columns.count} fields, got ${fields.length}`);
  const integer = (index: number, name: string, min: number): number => {
    const text = fields[index]!;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
      fail(`${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
    }
    return value;
  };
  let timestamp: AzureTimestamp;
  try {
    timestamp = parseAzureTimestamp(fields[columns.timestamp]!);
  } catch (err) {
    return fail((err as Error).message);
  }
  return {
    timestamp,
    contextTokens: integer(columns.contextTokens, 'ContextTokens', 1),
    generatedTokens: integer(columns.generatedTokens, 'GeneratedTokens', 0),
  };
}

/** Reads an Azure 2023 CSV trace and builds one unique prompt per row. */
export async function loadAzureTrace(path: string, options: DatasetOptions): Promise<Workload> {
  const { limit } = resolveDatasetOptions(options);
  const lines = (await readFile(path, 'utf8')).split('\n');
  const columns = parseAzureHeader(lines[0]!.trim(), path);
  const records: AzureRecord[] = [];
  for (let i = 1; i < lines.length && records.length < limit; i++) {
    const line = lines[i]!.trim();
    if (line !== '') records.push(parseAzureLine(line, i + 1, columns, path));
  }
  return buildAzureWorkload(records, options, `azure:${basename(path)}`);
}

/** Builds a workload from parsed records (the first record is time zero). */
export async function buildAzureWorkload(
  records: readonly AzureRecord[],
  options: DatasetOptions,
  name = 'azure',
): Promise<Workload> {
  const resolved = resolveDatasetOptions(options);
  const builder = await PromptBuilder.create(options.tokenizer, { seed: resolved.seed });
  const kept = records.slice(0, resolved.limit);
  const origin = kept[0]?.timestamp;
  const requests = kept.map((record, index): WorkloadRequest => ({
    id: requestId('azure', index, kept.length),
    arrivalMs: elapsedMs(origin!, record.timestamp),
    ...builder.compose([builder.text('azure', index, record.contextTokens)]),
    targetInputTokens: record.contextTokens,
    outputTokens: Math.min(resolved.outputCap, Math.max(1, record.generatedTokens)),
  }));
  return finishWorkload(name, requests, options.tokenizer, resolved);
}

function splitCsv(line: string): string[] {
  return line.split(',').map((field) => field.trim().replace(/^"(.*)"$/, '$1'));
}
