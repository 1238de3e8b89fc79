// Topics workers publish on, and the load message body: the contract between a worker's
// publisher and the routers that subscribe.
import type { WorkerLoad } from '@armature/runtime';

/** KV event batches (msgpack [ts, [events], dp_rank], vLLM's wire format). */
export const KV_TOPIC = 'kv';
/** Worker load, a msgpack `LoadMessage`, after every forward pass and once a second. */
export const LOAD_TOPIC = 'load';

/** The publishing worker's instance id and its load. */
export interface LoadMessage extends WorkerLoad {
  instanceId: string;
}
