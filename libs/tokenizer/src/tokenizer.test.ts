import { describe, expect, it } from 'vitest';
import { applyChatTemplate, IncrementalDetokenizer, loadTokenizer, StopStringMatcher } from './index.js';

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
