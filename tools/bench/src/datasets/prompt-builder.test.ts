import { loadTokenizer, type Tokenizer } from '@armature/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { PromptBuilder } from './prompt-builder.js';
import { createRng } from './random.js';

describe.each(['gpt-tokenizer:o200k_base', 'gpt-tokenizer:cl100k_base'])('PromptBuilder with %s', (tokenizerId) => {
  let tokenizer: Tokenizer;
  let builder: PromptBuilder;
  beforeAll(async () => {
    tokenizer = await loadTokenizer(tokenizerId);
    builder = await PromptBuilder.create(tokenizer);
  });

  it('picks 4096 space-prefixed lowercase ASCII words, each one token', () => {
    expect(builder.words).toHaveLength(4096);
    expect(new Set(builder.words).size).toBe(4096);
    for (const word of builder.words) {
      expect(word).toMatch(/^ [a-z]+$/);
      expect(tokenizer.encode(word)).toHaveLength(1);
    }
  });

  it('never merges across words: random word sequences encode word by word', () => {
    const rng = createRng(7);
    for (let sample = 0; sample < 200; sample++) {
      const picks = Array.from({ length: rng.int(1, 64) }, () => rng.int(0, builder.words.length - 1));
      const text = picks.map((w) => builder.words[w]).join('');
      expect(tokenizer.encode(text)).toEqual(picks.map((w) => tokenizer.encode(builder.words[w]!)[0]));
    }
  });

  it('builds prompts whose encoding is exactly their ids, over a few hundred random prompts', () => {
    const rng = createRng(11);
    for (let sample = 0; sample < 300; sample++) {
      const blocks = Array.from({ length: rng.int(1, 4) }, (_, i) =>
        i % 2 === 0
          ? builder.block('test', rng.int(0, 20), rng.int(1, 700))
          : builder.text('other', sample, rng.int(0, 300)),
      );
      const { prompt, promptTokenIds } = builder.compose(blocks);
      const target = blocks.reduce((n, b) => n + b.tokenIds.length, 0);
      expect(promptTokenIds).toHaveLength(target);
      expect(tokenizer.encode(prompt)).toEqual(promptTokenIds);
    }
  });
});

describe('PromptBuilder determinism', () => {
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
  });

  it('gives the same block for the same (stream, key) across builders, and another for another key', async () => {
    const a = await PromptBuilder.create(tokenizer);
    const b = await PromptBuilder.create(tokenizer);
    expect(b.block('mooncake', 42, 512)).toEqual(a.block('mooncake', 42, 512));
    expect(a.block('mooncake', 43, 512).text).not.toBe(a.block('mooncake', 42, 512).text);
    expect(a.block('azure', 42, 512).text).not.toBe(a.block('mooncake', 42, 512).text);
    const reseeded = await PromptBuilder.create(tokenizer, { seed: 1 });
    expect(reseeded.block('mooncake', 42, 512).text).not.toBe(a.block('mooncake', 42, 512).text);
  });

  it('makes a shorter block of one key a prefix of the longer one', async () => {
    const builder = await PromptBuilder.create(tokenizer);
    const full = builder.block('mooncake', 9, 512);
    const head = builder.text('mooncake', 9, 100);
    expect([...head.tokenIds]).toEqual([...full.tokenIds.subarray(0, 100)]);
    expect(full.text.startsWith(head.text)).toBe(true);
  });

  it('caches blocks and not texts', async () => {
    const builder = await PromptBuilder.create(tokenizer);
    expect(builder.block('s', 1, 64)).toBe(builder.block('s', 1, 64));
    expect(builder.text('s', 1, 64)).not.toBe(builder.text('s', 1, 64));
    expect(builder.cachedBlocks).toBe(1);
    builder.clearCache();
    expect(builder.cachedBlocks).toBe(0);
  });

  it('handles empty and very long blocks', async () => {
    const builder = await PromptBuilder.create(tokenizer);
    expect(builder.compose([builder.text('s', 0, 0)])).toEqual({ prompt: '', promptTokenIds: [] });
    const long = builder.compose([builder.text('s', 1, 130_000)]);
    expect(tokenizer.encode(long.prompt)).toEqual(long.promptTokenIds);
  });

  it('rejects bad lengths, keys and vocabulary sizes', async () => {
    const builder = await PromptBuilder.create(tokenizer);
    expect(() => builder.text('s', 0, -1)).toThrow(/token count/);
    expect(() => builder.text('s', 0, 1.5)).toThrow(/token count/);
    expect(() => builder.block('s', -1, 5)).toThrow(/key/);
    await expect(PromptBuilder.create(tokenizer, { vocabularySize: 10 })).rejects.toThrow(/vocabularySize/);
  });
});
