// The outbox: outputs go out on the turn after a batch starts, merged per request; without
// a batch, after a millisecond; never twice; flush hands one over now.
import { describe, expect, it } from 'vitest';
import type { EngineOutput } from '../types.js';
import { Outbox } from './outbox.js';
import { StepGate } from './step-gate.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function setup(): { gate: StepGate; outbox: Outbox<string>; got: Array<[string, EngineOutput]> } {
  const gate = new StepGate();
  const got: Array<[string, EngineOutput]> = [];
  return { gate, outbox: new Outbox<string>(gate, (key, out) => got.push([key, out])), got };
}

describe('Outbox', () => {
  it('delivers on the turn after a batch starts, merged per request', async () => {
    const { gate, outbox, got } = setup();
    outbox.add('a', { tokenIds: [1], cachedTokens: 3 });
    outbox.add('b', { tokenIds: [7] });
    outbox.add('a', { tokenIds: [2], finishReason: 'length' });
    gate.batchStarted();
    expect(got).toEqual([]); // not while the batch is being put together
    await turn();
    expect(got).toEqual([
      ['a', { tokenIds: [1, 2], cachedTokens: 3, finishReason: 'length' }],
      ['b', { tokenIds: [7] }],
    ]);
  });

  it('delivers on its own when no batch starts', async () => {
    const { outbox, got } = setup();
    outbox.add('a', { tokenIds: [1] });
    // After about a millisecond; polled, since a loaded machine runs timers late.
    await expect.poll(() => got, { timeout: 2_000, interval: 5 }).toEqual([['a', { tokenIds: [1] }]]);
  });

  it('delivers once when a batch starts before the fallback would', async () => {
    const { gate, outbox, got } = setup();
    outbox.add('a', { tokenIds: [1] });
    await turn();
    gate.batchStarted();
    await turn(); // the batch's delivery (or, on a slow machine, the fallback) has run
    expect(got).toEqual([['a', { tokenIds: [1] }]]);
    outbox.add('a', { tokenIds: [2] }); // the next step's token: no batch follows, the fallback delivers it
    await expect.poll(() => got.length, { timeout: 2_000, interval: 5 }).toBe(2);
    await sleep(10);
    expect(got).toEqual([
      ['a', { tokenIds: [1] }],
      ['a', { tokenIds: [2] }],
    ]);
  });

  it('hands one request over at once with flush', () => {
    const { outbox, got } = setup();
    outbox.add('a', { tokenIds: [1] });
    outbox.add('b', { tokenIds: [2] });
    outbox.flush('a');
    outbox.flush('c'); // nothing pending: no-op
    expect(got).toEqual([['a', { tokenIds: [1] }]]);
  });
});
