// Topics workers publish on, and the load message body: the contract between a worker's
// publisher and the routers that subscribe.

/** KV event batches (msgpack [ts, [events], dp_rank], vLLM's wire format). */
export const KV_TOPIC = 'kv';
/** Worker load, a msgpack `LoadMessage`, after every forward pass and once a second. */
export const LOAD_TOPIC = 'load';

export interface LoadMessage {
  instanceId: string;
  activeDecodeBlocks: number;
  activePrefillTokens: number;
  waitingRequests: number;
  runningRequests: number;
  kvUsage: number;
}
