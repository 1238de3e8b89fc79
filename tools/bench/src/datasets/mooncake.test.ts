import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadTokenizer, type Tokenizer } from '@armature/tokenizer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOONCAKE_BLOCK_TOKENS, buildMooncakeWorkload, loadMooncakeTrace, parseMooncakeLine } from './mooncake.js';
import type { Workload } from './types.js';
import { findTrace } from './trace-files.js';

const { path: TRACE, full: FULL } = findTrace('mooncake_conversation.jsonl');

interface Row {
  timestamp: number;
  input_length: number;
  output_length: number;
  hash_ids: number[];
}

describe('Mooncake conversation trace', () => {
  let tokenizer: Tokenizer;
  let workload: Workload;
  let rows: Row[];
  beforeAll(async () => {
    tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
    workload = await loadMooncakeTrace(TRACE, { tokenizer, limit: 200 });
    rows = (await readFile(TRACE, 'utf8'))
      .split('\n')
      .slice(0, 200)
      .map((line) => JSON.parse(line) as Row);
  });

  it('has 12,031 rows (streaming count)', async () => {
    let count = 0;
    for await (const line of createInterface({ input: createReadStream(TRACE), crlfDelay: Infinity })) {
      if (line.trim() !== '') count++;
    }
    expect(count).toBe(FULL ? 12_031 : 500);
  });

  it('maps the first 200 rows to requests', () => {
    expect(workload.name).toBe('mooncake:mooncake_conversation.jsonl');
    expect(workload.tokenizer).toBe('gpt-tokenizer:o200k_base');
    expect(workload.requests).toHaveLength(200);
    expect(workload.requests[0]!.id).toBe('mooncake-00000');
    expect(workload.requests[42]!.id).toBe('mooncake-00042');
    workload.requests.forEach((request, i) => {
      const row = rows[i]!;
      expect(request.arrivalMs).toBe(row.timestamp - rows[0]!.timestamp);
      expect(request.targetInputTokens).toBe(row.input_length);
      expect(request.outputTokens).toBe(Math.max(1, row.output_length));
      expect(request.promptTokenIds).toHaveLength(row.input_length);
    });
  });

  it('builds prompts that encode to exactly their ids', () => {
    expect(workload.promptLengthError).toEqual({ meanAbs: 0, maxAbs: 0, meanRel: 0, sampled: 50, mismatched: 0 });
    for (const request of workload.requests.filter((_, i) => i % 10 === 3)) {
      expect(tokenizer.encode(request.prompt)).toEqual(request.promptTokenIds);
    }
  });

  // Blocks are random words, so two blocks start with the same word 1 time in 4096: the
  // first differing token is right after the shared prefix in nearly every pair and
  // never more than a few tokens later.
  it('shares exactly the first 512*k tokens when hash_ids share k leading blocks, and differs right after', () => {
    let pairs = 0;
    let deepPairs = 0;
    let differAtOnce = 0;
    for (let i = 0; i < rows.length; i++) {
      for (let j = i + 1; j < rows.length; j++) {
        const a = rows[i]!.hash_ids;
        const b = rows[j]!.hash_ids;
        let k = 0;
        while (k < a.length && k < b.length && a[k] === b[k]) k++;
        if (k === 0 || k === a.length || k === b.length) continue;
        const shared = k * MOONCAKE_BLOCK_TOKENS;
        const idsA = workload.requests[i]!.promptTokenIds;
        const idsB = workload.requests[j]!.promptTokenIds;
        let firstDiff = 0;
        while (firstDiff < idsA.length && idsA[firstDiff] === idsB[firstDiff]) firstDiff++;
        expect(firstDiff).toBeGreaterThanOrEqual(shared);
        expect(firstDiff).toBeLessThan(shared + 3);
        if (firstDiff === shared) differAtOnce++;
        pairs++;
        if (k >= 2) deepPairs++;
      }
    }
    expect(pairs).toBeGreaterThan(100);
    expect(deepPairs).toBeGreaterThanOrEqual(5);
    expect(differAtOnce / pairs).toBeGreaterThan(0.99);
  });

  it('builds the same prompts on every load', async () => {
    const again = await loadMooncakeTrace(TRACE, { tokenizer, limit: 20 });
    again.requests.forEach((request, i) => expect(request.prompt).toBe(workload.requests[i]!.prompt));
  });

  it('truncates the last block to a prefix of the full block with the same hash id', async () => {
    const built = await buildMooncakeWorkload(
      [
        { timestamp: 100, inputLength: 1024, outputLength: 0, hashIds: [7, 8] },
        { timestamp: 250.5, inputLength: 612, outputLength: 900, hashIds: [7, 8] },
        { timestamp: 300, inputLength: 100, outputLength: 5, hashIds: [7] },
      ],
      { tokenizer, outputCap: 512 },
    );
    const [full, partial, head] = built.requests.map((r) => r.promptTokenIds);
    expect(partial).toEqual(full!.slice(0, 612));
    expect(head).toEqual(full!.slice(0, 100));
    expect(built.requests.map((r) => r.arrivalMs)).toEqual([0, 150.5, 200]);
    expect(built.requests.map((r) => r.outputTokens)).toEqual([1, 512, 5]);
  });
});

describe('parseMooncakeLine', () => {
  it('parses a row', () => {
    expect(
      parseMooncakeLine('{"timestamp": 27482, "input_length": 600, "output_length": 52, "hash_ids": [46, 47]}', 1),
    ).toEqual({
      timestamp: 27482,
      inputLength: 600,
      outputLength: 52,
      hashIds: [46, 47],
    });
  });

  it.each([
    ['{"timestamp": 1, "input_length": 6', /trace\.jsonl:7: invalid JSON/],
    ['[1, 2]', /trace\.jsonl:7: expected a JSON object/],
    ['{"input_length": 10, "output_length": 1, "hash_ids": [1]}', /trace\.jsonl:7: timestamp must be/],
    ['{"timestamp": -5, "input_length": 10, "output_length": 1, "hash_ids": [1]}', /:7: timestamp must be/],
    [
      '{"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": []}',
      /:7: input_length must be an integer >= 1/,
    ],
    ['{"timestamp": 0, "input_length": 10.5, "output_length": 1, "hash_ids": [1]}', /:7: input_length/],
    ['{"timestamp": 0, "input_length": 10, "output_length": "9", "hash_ids": [1]}', /:7: output_length/],
    ['{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [-1]}', /:7: hash_ids must be/],
    [
      '{"timestamp": 0, "input_length": 600, "output_length": 1, "hash_ids": [1]}',
      /:7: input_length 600 needs 2 hash_ids/,
    ],
  ])('rejects %s with its line number', (line, message) => {
    expect(() => parseMooncakeLine(line, 7, 'trace.jsonl')).toThrow(message);
  });

  describe('in a file', () => {
    let dir: string;
    let tokenizer: Tokenizer;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'mooncake-'));
      tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('names the file and line of a bad row, counting blank lines', async () => {
      const path = join(dir, 'bad.jsonl');
      const good = '{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [0]}';
      await writeFile(path, [good, '', good, '{"timestamp": 1}', good].join('\n'));
      await expect(loadMooncakeTrace(path, { tokenizer })).rejects.toThrow(`${path}:4: input_length must be`);
      const limited = await loadMooncakeTrace(path, { tokenizer, limit: 2 });
      expect(limited.requests).toHaveLength(2);
    });
  });
});
