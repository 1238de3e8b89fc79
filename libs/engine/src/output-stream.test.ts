import { describe, expect, it } from 'vitest';
import { OutputStream } from './output-stream.js';

describe('OutputStream', () => {
  it('hands outputs to a waiting consumer, then ends', async () => {
    const stream = new OutputStream();
    const next = stream.next();
    stream.push({ tokenIds: [1] });
    expect(await next).toEqual({ value: { tokenIds: [1] }, done: false });
    stream.push({ tokenIds: [2], finishReason: 'length' });
    stream.end();
    stream.push({ tokenIds: [3] });
    expect(await stream.next()).toEqual({ value: { tokenIds: [2], finishReason: 'length' }, done: false });
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });

  it('merges into the last entry past capacity instead of growing', async () => {
    const stream = new OutputStream(() => {}, 2);
    stream.push({ tokenIds: [1], cachedTokens: 16, promptTokens: 20 });
    stream.push({ tokenIds: [2] });
    stream.push({ tokenIds: [3] });
    stream.push({ tokenIds: [4], finishReason: 'stop' });
    stream.end();
    expect(stream.queued).toBe(2);
    const outputs = [];
    for await (const output of stream) outputs.push(output);
    expect(outputs).toEqual([
      { tokenIds: [1], cachedTokens: 16, promptTokens: 20 },
      { tokenIds: [2, 3, 4], finishReason: 'stop' },
    ]);
  });

  it('throws a failure after what was queued', async () => {
    const stream = new OutputStream();
    stream.push({ tokenIds: [1] });
    stream.fail(new Error('boom'));
    expect(await stream.next()).toMatchObject({ done: false });
    await expect(stream.next()).rejects.toThrow('boom');
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });

  it('tells the producer when the consumer stops early, once', async () => {
    let stopped = 0;
    const stream = new OutputStream(() => stopped++);
    stream.push({ tokenIds: [1] });
    stream.push({ tokenIds: [2] });
    for await (const output of stream) {
      expect(output.tokenIds).toEqual([1]);
      break;
    }
    await stream.return();
    expect(stopped).toBe(1);
    expect(stream.closed).toBe(true);
  });
});
