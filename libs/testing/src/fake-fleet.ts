// A router and its workers in memory, wired together, and a helper that reads a stream to
// its end or its failure: the two things every frontend pipeline test starts with.
import { asArmatureError, type ArmatureError } from '@armature/runtime';
import { FakeRouter } from './fake-router.js';
import { FakeWorker, FakeWorkerPool } from './fake-worker.js';

export interface FakeFleet {
  router: FakeRouter;
  workers: FakeWorkerPool;
}

/** A FakeRouter choosing among `decode` (and naming `prefill` when given) and a pool holding them all. */
export function fakeFleet(decode: FakeWorker[], prefill?: FakeWorker): FakeFleet {
  return {
    router: new FakeRouter({ decode: decode.map((w) => w.target), prefill: prefill?.target }),
    workers: new FakeWorkerPool(prefill ? [...decode, prefill] : decode),
  };
}

/** Everything a stream yields until it ends or throws, and what it threw. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; error?: ArmatureError }> {
  const items: T[] = [];
  try {
    for await (const item of stream) items.push(item);
  } catch (err) {
    return { items, error: asArmatureError(err) };
  }
  return { items };
}
