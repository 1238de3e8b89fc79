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

  it('delivers after a millisecond when no batch starts', async () => {
    const { outbox, got } = setup();
    outbox.add('a', { tokenIds: [1] });
    await turn();
    expect(got).toEqual([]);
    await sleep(5);
    expect(got).toEqual([['a', { tokenIds: [1] }]]);
  });

  it('delivers once when a batch starts before the fallback would', async () => {
    const { gate, outbox, got } = setup();
    outbox.add('a', { tokenIds: [1] });
    await turn();
    gate.batchStarted();
    await turn();
    outbox.add('a', { tokenIds: [2] }); // the next step's token: waits for the next batch
    await sleep(5);
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
