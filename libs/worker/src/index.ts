// The worker host shared by services/decode and services/prefill: the Worker gRPC service
// over an engine, its KV event log, and the disaggregation parts (pins of prefilled
// prompts on the prefill side, the KV puller on the decode side, the transfer descriptor).
export { runWorker, KV_REGION_ID } from './host.js';
export { WorkerService, type WorkerServiceOptions } from './worker-service.js';
export { checkedEngineRequest, engineRequestFromProto, samplingFromProto } from './engine-request.js';
export { KvEventLog } from './kv-event-log.js';
export { KvPuller, type ImportOutcome, type KvPullerOptions } from './kv-puller.js';
export { PinTable, DEFAULT_PIN_TIMEOUT_MS, type PinTableOptions } from './pin-table.js';
export { checkDescriptor, decodeHashes, encodeHashes, layoutToProto, DescriptorError } from './descriptor.js';
