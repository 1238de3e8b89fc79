// @armature/event-plane: ZeroMQ PUB/SUB events with per-topic sequence numbers and gap
// detection, an in-memory twin for tests, discovery-driven following, msgpack bodies.
export * from './types.js';
export { encodeFrames, parseFrames, encodeSeq, decodeSeq, MAX_SEQ, type EventFrames } from './frame.js';
export { encodeBody, decodeBody } from './codec.js';
export { ZmqEventPlane, type ZmqEventPlaneOptions } from './zmq.js';
export { MemoryEventPlane, MemoryEventHub, type MemoryEventHubOptions } from './memory.js';
export { followPublishers, type FollowHooks } from './follow.js';
export * from './topics.js';
