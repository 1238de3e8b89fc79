import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, type Tokenizer } from '@armature/tokenizer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { elapsedMs, loadAzureTrace, parseAzureHeader, parseAzureLine, parseAzureTimestamp } from './azure.js';
import type { Workload } from './types.js';
import { findTrace } from './trace-files.js';

const { path: TRACE, full: FULL } = findTrace('azure2023_code.csv');
/** Rows in the full trace, or in the committed slice when only that is here. */
const ROWS = FULL ? 8_819 : 500;
const SLICE_LAST = { targetInputTokens: 866, outputTokens: 14 };

describe('Azure 2023 code trace', () => {
  let tokenizer: Tokenizer;
  let workload: Workload;
  beforeAll(async () => {
    tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
    workload = await loadAzureTrace(TRACE, { tokenizer });
  });

  it('has every row (8,819 in the full trace) and the first and last rows as in the file', () => {
    expect(workload.name).toBe('azure:azure2023_code.csv');
    expect(workload.requests).toHaveLength(ROWS);
    expect(workload.requests[0]).toMatchObject({
      id: 'azure-00000',
      arrivalMs: 0,
      targetInputTokens: 4808,
      outputTokens: 10,
    });
    expect(workload.requests[0]!.promptTokenIds).toHaveLength(4808);
    // 2023-11-16 18:17:03.9799600 -> 18:17:04.0319600 and -> 19:14:19.9280160 (last row).
    expect(workload.requests[1]!.arrivalMs).toBeCloseTo(52, 9);
    if (FULL) {
      expect(workload.requests[8_818]).toMatchObject({ targetInputTokens: 549, outputTokens: 173 });
      expect(workload.requests[8_818]!.arrivalMs).toBeCloseTo(3_435_948.056, 6);
    } else {
      // The committed slice ends at row 500: 2023-11-16 18:20:56.7810470,866,14.
      expect(workload.requests[499]).toMatchObject(SLICE_LAST);
      expect(workload.requests[499]!.arrivalMs).toBeCloseTo(232_801.087, 6);
    }
  });

  it('builds unique prompts of exactly the asked length', () => {
    expect(workload.promptLengthError).toEqual({ meanAbs: 0, maxAbs: 0, meanRel: 0, sampled: 50, mismatched: 0 });
    for (const request of workload.requests) expect(request.promptTokenIds.length).toBe(request.targetInputTokens);
    for (const request of workload.requests.slice(0, 30)) {
      expect(tokenizer.encode(request.prompt)).toEqual(request.promptTokenIds);
    }
    expect(new Set(workload.requests.map((r) => r.prompt)).size).toBe(ROWS);
    expect(new Set(workload.requests.map((r) => r.promptTokenIds.slice(0, 4).join())).size).toBe(ROWS);
  });

  it('honours limit and outputCap', async () => {
    const small = await loadAzureTrace(TRACE, { tokenizer, limit: 3, outputCap: 9 });
    expect(small.requests.map((r) => r.outputTokens)).toEqual([9, 8, 9]);
    expect(small.requests[0]!.prompt).toBe(workload.requests[0]!.prompt);
  });
});

describe('parseAzureTimestamp', () => {
  it('reads 7 fractional digits exactly, without a time zone', () => {
    // 2023-11-16 18:15:46 UTC: 19,677 days * 86,400 s + 65,746 s.
    expect(parseAzureTimestamp('2023-11-16 18:15:46.6805900')).toEqual({
      epochSeconds: 1_700_158_546,
      nanoseconds: 680_590_000,
    });
    expect(parseAzureTimestamp('2023-11-16 18:15:46')).toEqual({ epochSeconds: 1_700_158_546, nanoseconds: 0 });
    expect(parseAzureTimestamp('2023-11-16T18:15:46.5').nanoseconds).toBe(500_000_000);
  });

  it('subtracts to fractional milliseconds across seconds, midnight and month ends', () => {
    const at = parseAzureTimestamp;
    expect(elapsedMs(at('2023-11-16 18:15:46.6805900'), at('2023-11-16 18:15:47.0000001'))).toBeCloseTo(319.4101, 9);
    expect(elapsedMs(at('2023-11-16 23:59:59.9999999'), at('2023-11-17 00:00:00.0000000'))).toBeCloseTo(0.0001, 12);
    expect(elapsedMs(at('2023-11-30 23:00:00.0000000'), at('2023-12-01 01:00:00.2500000'))).toBe(7_200_250);
    expect(elapsedMs(at('2023-11-16 18:15:47.0'), at('2023-11-16 18:15:46.9'))).toBeCloseTo(-100, 9);
  });

  it.each([
    '',
    'garbage',
    '2023-11-16',
    '2023-02-30 00:00:00',
    '2023-11-16 24:00:00',
    '2023-11-16 18:60:00',
    '2023-11-16 18:15:46.',
    '2023-11-16 18:15:46.1234567890',
    '2023-11-16 18:15:46+01:00',
  ])('rejects %j', (text) => {
    expect(() => parseAzureTimestamp(text)).toThrow(/bad timestamp/);
  });
});

describe('parseAzureLine', () => {
  it('parses a row', () => {
    expect(parseAzureLine('2023-11-16 18:17:03.9799600,4808,10', 2)).toEqual({
      timestamp: { epochSeconds: 1_700_158_623, nanoseconds: 979_960_000 },
      contextTokens: 4808,
      generatedTokens: 10,
    });
  });

  it('finds columns by name in any order', () => {
    const columns = parseAzureHeader('GeneratedTokens,timestamp,ContextTokens');
    expect(parseAzureLine('7,2023-11-16 18:17:03,100', 2, columns)).toMatchObject({
      contextTokens: 100,
      generatedTokens: 7,
    });
    expect(() => parseAzureHeader('TIMESTAMP,ContextTokens', 'x.csv')).toThrow(
      'x.csv:1: header has no GeneratedTokens column',
    );
  });

  it.each([
    ['2023-11-16 18:17:03.9799600,4808', /a\.csv:5: expected 3 fields, got 2/],
    ['2023-11-16 18:17:03.9799600,4808,10,1', /a\.csv:5: expected 3 fields, got 4/],
    ['yesterday,4808,10', /a\.csv:5: bad timestamp "yesterday"/],
    ['2023-11-16 18:17:03.9799600,0,10', /a\.csv:5: ContextTokens must be an integer >= 1/],
    ['2023-11-16 18:17:03.9799600,12.5,10', /a\.csv:5: ContextTokens/],
    ['2023-11-16 18:17:03.9799600,100,-1', /a\.csv:5: GeneratedTokens/],
  ])('rejects %j with its line number', (line, message) => {
    expect(() => parseAzureLine(line, 5, undefined, 'a.csv')).toThrow(message);
  });

  describe('in a file', () => {
    let dir: string;
    let tokenizer: Tokenizer;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'azure-'));
      tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('names the file and line of a bad row (header is line 1, CRLF accepted)', async () => {
      const path = join(dir, 'bad.csv');
      await writeFile(
        path,
        'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:03.1,5,1\r\n\r\n2023-11-16 18:17:04,x,1\r\n',
      );
      await expect(loadAzureTrace(path, { tokenizer })).rejects.toThrow(`${path}:4: ContextTokens must be`);
      const limited = await loadAzureTrace(path, { tokenizer, limit: 1 });
      expect(limited.requests).toHaveLength(1);
    });
  });
});
