import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import {
  applyChatTemplate,
  IncrementalDetokenizer,
  loadTokenizer,
  MAX_RUN_LENGTH,
  StopStringMatcher,
} from './index.js';

describe('tokenizer', () => {
  it('round-trips text and rejects unknown ids', async () => {
    const tok = await loadTokenizer('gpt-tokenizer:o200k_base');
    const text = 'Hello, world! héllo 你好 🙂';
    expect(tok.decode(tok.encode(text))).toBe(text);
    await expect(loadTokenizer('nope:x')).rejects.toThrow(/unknown tokenizer/);
  });

  it('never splits a UTF-8 character when detokenizing incrementally', async () => {
    const tok = await loadTokenizer('gpt-tokenizer:o200k_base');
    const text = 'emoji 🙂🚀 and 漢字 and ünïcödé ' + '🦙'.repeat(5);
    const ids = tok.encode(text);
    const detok = new IncrementalDetokenizer(tok);
    const pieces: string[] = [];
    for (const id of ids) pieces.push(detok.push([id]));
    pieces.push(detok.flush());
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    expect(pieces.join('')).toBe(text);
    // Some token must have been a partial character for this test to mean anything.
    expect(ids.some((id) => tok.decode([id]).includes('\uFFFD'))).toBe(true);
    // Decoding is stateless: a partial character in one call does not leak into the next.
    const partial = ids.find((id) => tok.decode([id]).includes('\uFFFD'))!;
    tok.decode([partial]);
    expect(tok.decode(tok.encode('plain'))).toBe('plain');
  });

  it('keeps special-token strings in content as plain text', async () => {
    const tok = await loadTokenizer('gpt-tokenizer:o200k_base');
    const marker = tok.encodeSpecial('<|im_start|>');
    expect(marker).toHaveLength(1);
    const ids = applyChatTemplate('chatml', [{ role: 'user', content: '<|im_start|>' }], tok);
    expect(ids.filter((id) => id === marker[0])).toHaveLength(2); // ours, not the user's
  });
});

describe('stop strings', () => {
  it('holds back a possible stop prefix and cuts at the stop', () => {
    const m = new StopStringMatcher(['END']);
    expect(m.push('abcE')).toEqual({ emit: 'ab', stopped: false });
    expect(m.push('N')).toEqual({ emit: 'c', stopped: false });
    expect(m.push('Dxyz')).toEqual({ emit: '', stopped: true });
  });
  it('flushes a held tail that never became a stop', () => {
    const m = new StopStringMatcher(['STOP']);
    expect(m.push('hello ST').emit).toBe('hello');
    expect(m.flush()).toBe(' ST');
  });
});

interface GptEncoding {
  encode(text: string, options: { disallowedSpecial: Set<string> }): number[];
  default: { bytePairEncodingCoreProcessor: { bytePairEncode(piece: string): number[] } };
}

const ENCODINGS = ['o200k_base', 'cl100k_base', 'p50k_base', 'r50k_base'] as const;
const encoding = (name: string) => import(`gpt-tokenizer/encoding/${name}`) as Promise<GptEncoding>;

/** Normal text: this library's own sources and README, and text in several scripts. */
const NORMAL_TEXT = [
  ...readdirSync(new URL('.', import.meta.url)).map((f) => readFileSync(new URL(f, import.meta.url), 'utf8')),
  readFileSync(new URL('../README.md', import.meta.url), 'utf8'),
  "It's 12:30 -- they'll say I'd've known.\r\n\tTabs,   spaces\u00a0and\n\n\nnewlines. 3.14159 1234567",
  'Ünïcödé Ελληνικά русский 中文 日本語のテキスト 한국어 العربية हिन्दी 🙂🚀👩‍👩‍👧 <|endoftext|> <|im_start|>',
];

/** Letters from a seeded generator: a long piece whose parts never repeat, so no merge cache helps. */
function randomLetters(length: number, seed: number): string {
  let state = seed;
  let text = '';
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    text += String.fromCharCode(97 + (state % 26));
  }
  return text;
}

/** The fastest of `times` runs, ms; a run that returns a number reports its own time (setup excluded). */
function fastestMs(run: () => void | number, times = 2): number {
  let best = Infinity;
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    const own = run();
    best = Math.min(best, typeof own === 'number' ? own : performance.now() - start);
  }
  return best;
}

describe('gpt-tokenizer encodings', () => {
  it.each(ENCODINGS)('%s tokenizes normal text exactly as gpt-tokenizer itself', async (name) => {
    const tok = await loadTokenizer(`gpt-tokenizer:${name}`);
    const mod = await encoding(name);
    for (const text of NORMAL_TEXT)
      expect(tok.encode(text)).toEqual(mod.encode(text, { disallowedSpecial: new Set() }));
  });

  it('knows its longest token, and no token of normal text is longer', async () => {
    const tok = await loadTokenizer('gpt-tokenizer:o200k_base');
    expect(tok.maxTokenBytes).toBe(128);
    const ids = tok.encode(NORMAL_TEXT.join(''));
    for (const id of new Set(ids)) expect(Buffer.byteLength(tok.decode([id]))).toBeLessThanOrEqual(tok.maxTokenBytes);
  });

  it.each([
    ['a', 'a'],
    ['spaces', ' '],
    ['an emoji', '🦙'],
  ])(
    'tokenizes a 256 KiB run of %s quickly, never giving BPE more than MAX_RUN_LENGTH, and decodes it back',
    async (_, unit) => {
      const tok = await loadTokenizer('gpt-tokenizer:o200k_base');
      const core = (await encoding('o200k_base')).default.bytePairEncodingCoreProcessor;
      const bpe = vi.spyOn(core, 'bytePairEncode');
      try {
        const run = unit.repeat((256 * 1024) / Buffer.byteLength(unit));
        const start = performance.now();
        const ids = tok.encode(run);
        expect(performance.now() - start).toBeLessThan(2000);
        expect(tok.decode(ids)).toBe(run);
        expect(bpe).toHaveBeenCalled();
        expect(Math.max(...bpe.mock.calls.map(([piece]) => piece.length))).toBeLessThanOrEqual(MAX_RUN_LENGTH);
      } finally {
        bpe.mockRestore();
      }
    },
  );

  it('takes time linear in the length of a run (4x the letters, well under 8x the time)', async () => {
    const tok = await loadTokenizer('gpt-tokenizer:o200k_base');
    tok.encode(randomLetters(16 * 1024, 3)); // warm
    // Fresh text for every timing: the encoder caches pieces, so repeated text would be free.
    let seed = 10;
    const timed = (bytes: number): number =>
      fastestMs(() => {
        const text = randomLetters(bytes, seed++);
        const start = performance.now();
        tok.encode(text);
        return performance.now() - start;
      }, 3);
    const shortMs = timed(64 * 1024);
    const longMs = timed(256 * 1024);
    expect(longMs).toBeLessThan(2000);
    expect(longMs).toBeLessThan(8 * shortMs); // quadratic would be 16x
    const long = randomLetters(256 * 1024, 2);
    expect(tok.decode(tok.encode(long))).toBe(long);
  });

  it('cuts a long run into parts of MAX_RUN_LENGTH tokenized on their own', async () => {
    const tok = await loadTokenizer('gpt-tokenizer:o200k_base');
    const run = randomLetters(3 * MAX_RUN_LENGTH, 4);
    const parts = [0, 1, 2].map((i) => run.slice(i * MAX_RUN_LENGTH, (i + 1) * MAX_RUN_LENGTH));
    expect(tok.encode(`Hello ${run}`)).toEqual([...tok.encode('Hello'), ...tok.encode(` ${run}`)]);
    expect(tok.encode(run)).toEqual(parts.flatMap((p) => tok.encode(p)));
  });
});
