// The step gate: decoding slots ask for their next tokens together, prompts are never
// waited for, a slot that stops decoding lets the others go, and batch dispatch is
// scheduled on the next turn.
import { describe, expect, it } from 'vitest';
import { StepGate } from './step-gate.js';

/** Lets every pending microtask and the current turn's immediates run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('StepGate', () => {
  it('holds each decoding slot until every other decoding slot has its token', async () => {
    const gate = new StepGate();
    // Step 1: three slots enter decoding (their prompts were not waited for).
    await Promise.all([gate.step(0), gate.step(1), gate.step(2)]);
    expect(gate.outstanding).toBe(3);
    await turn();
    // Slot 0's and 1's tokens land first; they wait for slot 2's.
    const passed: number[] = [];
    gate.landed(0);
    const s0 = gate.step(0).then(() => passed.push(0));
    gate.landed(1);
    const s1 = gate.step(1).then(() => passed.push(1));
    await turn();
    expect(passed).toEqual([]);
    gate.landed(2);
    await gate.step(2);
    await Promise.all([s0, s1]);
    expect(passed.sort()).toEqual([0, 1]);
    expect(gate.outstanding).toBe(3);
  });

  it('does not wait for a slot that is still evaluating its prompt', async () => {
    const gate = new StepGate();
    await gate.step(0); // slot 0 decodes; slot 1's prompt is in flight and never registered
    gate.landed(0);
    await gate.step(0); // alone: released at once
    expect(gate.outstanding).toBe(1);
  });

  it('lets the others go when a slot stops decoding', async () => {
    const gate = new StepGate();
    await Promise.all([gate.step(0), gate.step(1)]);
    await turn();
    gate.landed(0);
    let passed = false;
    const s0 = gate.step(0).then(() => (passed = true));
    await turn();
    expect(passed).toBe(false);
    gate.leave(1); // slot 1 finished (or failed) instead of landing a token
    await s0;
    expect(passed).toBe(true);
    expect(gate.outstanding).toBe(1);
  });

  it('lets a slot whose token came in the same turn join the group just let go', async () => {
    const gate = new StepGate();
    await gate.step(0);
    await turn();
    gate.landed(0);
    await gate.step(0); // the group (slot 0) is let go and asks for its next token
    // Slot 1's prompt ended in the same batch: it goes now instead of waiting for slot 0's next token.
    await gate.step(1);
    expect(gate.outstanding).toBe(2);
    await turn();
    // Next turn the window is closed: a slot stepping waits for the outstanding ones.
    gate.landed(1);
    let passed = false;
    const s1 = gate.step(1).then(() => (passed = true));
    await turn();
    expect(passed).toBe(false);
    gate.landed(0);
    await gate.step(0);
    await s1;
    expect(passed).toBe(true);
  });

  it('schedules batch dispatch on the next turn and counts the batches put together', async () => {
    const gate = new StepGate();
    let dispatched = 0;
    let seen = 0;
    gate.onBatch = () => seen++;
    gate.dispatchSchedule(() => dispatched++);
    expect(gate.dispatchPending).toBe(true);
    expect(dispatched).toBe(0);
    await turn();
    expect(dispatched).toBe(1);
    expect(gate.dispatchPending).toBe(false);
    gate.batchStarted();
    gate.batchStarted();
    expect(gate.batches).toBe(2);
    expect(seen).toBe(2);
  });

  it('holds a batch while fewer decodes are queued than slots decoding, a bounded number of times', async () => {
    const gate = new StepGate();
    await Promise.all([gate.step(0), gate.step(1)]);
    expect(gate.holdFor(2)).toBe(false); // both decodes queued: go
    expect(gate.holdFor(1)).toBe(true); // one still on its way: wait
    let holds = 1;
    while (gate.holdFor(0)) holds++;
    expect(holds).toBe(100); // then the batch goes ahead with what is there
    expect(gate.holdFor(0)).toBe(true); // the count starts again after a batch went
    gate.leave(0);
    gate.leave(1);
    expect(gate.holdFor(0)).toBe(false); // nothing decoding: never wait
  });

  it('never waits nor holds without lockstep', async () => {
    const gate = new StepGate(false);
    await Promise.all([gate.step(0), gate.step(1)]);
    await turn();
    gate.landed(0);
    await gate.step(0); // slot 1's token is outstanding, yet slot 0 goes on
    expect(gate.holdFor(0)).toBe(false);
  });

  it('closes the window when the next batch starts: a later slot waits for the next step', async () => {
    const gate = new StepGate();
    await gate.step(0);
    await turn();
    gate.landed(0);
    await gate.step(0); // slot 0 is let go: the window opens
    gate.batchStarted(); // ...and its batch starts without slot 1
    let passed = false;
    const s1 = gate.step(1).then(() => (passed = true)); // slot 1's first token, in the same turn
    await turn();
    expect(passed).toBe(false); // it would miss the running batch: it waits for slot 0's token
    gate.landed(0);
    await gate.step(0);
    await s1;
    expect(gate.outstanding).toBe(2);
  });
});
