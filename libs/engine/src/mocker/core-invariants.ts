// The mocker core's bookkeeping, checked from the outside: every request in exactly one
// queue, every holder of blocks accounted for (running, ready, pinned, importing), nobody
// holding fewer blocks than the tokens it computed. Tests and the property suite call it
// after each step; the core never does on its own (it costs a walk over every holder).
import type { BlockManager } from './block-manager.js';
import type { ImportReservation } from './kv-handoff.js';
import type { SchedulerQueues } from './pass-planner.js';
import type { Sequence } from './sequence.js';

/** What MockerCore.checkInvariants looks at. */
export interface CoreState {
  readonly blocks: BlockManager;
  readonly maxNumSeqs: number;
  readonly queues: Readonly<SchedulerQueues>;
  readonly sequences: ReadonlyMap<string, Sequence>;
  readonly pins: ReadonlySet<string>;
  readonly imports: ReadonlyMap<string, ImportReservation>;
}

/** Throws if the scheduler's or the block manager's bookkeeping is inconsistent. */
export function checkCoreInvariants(state: CoreState): void {
  const { blocks, sequences, pins, imports } = state;
  const { running, waiting, readyImports } = state.queues;
  blocks.checkInvariants();
  const fail = (message: string): never => {
    throw new Error(`mocker invariant violated: ${message}`);
  };
  if (running.length > state.maxNumSeqs) fail(`${running.length} running > max_num_seqs`);
  if (running.length + waiting.length + readyImports.length !== sequences.size)
    fail('a request is lost or queued twice');
  for (const seq of running) {
    if (!blocks.hasSequence(seq.id)) fail(`running ${seq.id} holds no blocks`);
    const held = blocks.sequenceBlockIds(seq.id)!.length;
    if (held < blocks.blocksFor(seq.computed))
      fail(`running ${seq.id} computed ${seq.computed} tokens in ${held} blocks`);
  }
  for (const seq of waiting) {
    if (blocks.hasSequence(seq.id)) fail(`waiting ${seq.id} holds blocks`);
    if (seq.computed !== 0) fail(`waiting ${seq.id} has computed tokens`);
  }
  for (const seq of readyImports) {
    const held = blocks.sequenceBlockIds(seq.id);
    if (!held || held.length < blocks.blocksFor(seq.computed)) fail(`ready import ${seq.id} lacks its blocks`);
    if (!seq.prefilled || seq.computed !== seq.tokens.length - 1) fail(`ready import ${seq.id} is not ready to decode`);
  }
  for (const id of pins) {
    if (sequences.has(id) || imports.has(id)) fail(`pinned ${id} is also a request or an import`);
    if (!blocks.hasSequence(id)) fail(`pinned ${id} holds no blocks`);
  }
  for (const [id, reservation] of imports) {
    if (sequences.has(id)) fail(`import ${id} is also a request`);
    const held = blocks.sequenceBlockIds(id);
    if (held?.length !== blocks.blocksFor(reservation.tokens.length)) fail(`import ${id} holds the wrong blocks`);
  }
  // Every holder of blocks is accounted for (the simulator's importPrefix holds none between calls).
  let holders = 0;
  for (const id of blocks.sequenceIds()) {
    holders++;
    if (!sequences.has(id) && !pins.has(id) && !imports.has(id))
      fail(`${id} holds blocks but is no request, pin or import`);
  }
  if (holders !== running.length + readyImports.length + pins.size + imports.size)
    fail(`${holders} block holders for the running, ready, pinned and importing`);
}
