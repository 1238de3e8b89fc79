// The TCP wire format. Every frame is a 40-byte little-endian header followed by a body
// of `bodyBytes`:
//
//   0 magic u32 'ARMT'   4 version u8   5 op u8   6 checksum u8   7 flags u8
//   8 requestId u32      12 regionId u32          16 blockBytes u32
//   20 count u32 (ids in the request)   24 first u32 (DATA: index of its first block)
//   28 n u32 (DATA: blocks in the frame) 32 bodyBytes u32        36 reserved u32 (0)
//
// READ and WRITE carry `count` block ids (u32 each) as body. DATA carries, for blocks
// first..first+n of a request, n checksums (u64 each, absent when checksum is 'none')
// and then the n blocks' bytes. The server answers READ with DATA frames, WRITE (whose
// DATA frames the client sends right after it) with DONE, and any failure with ERROR
// (u8 kind, then a UTF-8 message). CANCEL stops a request. Requests are multiplexed on
// one connection by requestId; DATA frames of different requests interleave.
import { MAX_BLOCK_BYTES } from '../layout.js';

export const MAGIC = 0x544d5241; // 'ARMT' as little-endian bytes
export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 40;

export const Op = { READ: 1, WRITE: 2, DATA: 3, DONE: 4, ERROR: 5, CANCEL: 6 } as const;
export type OpCode = (typeof Op)[keyof typeof Op];

/** Most block ids in one request (4 MiB of ids). */
export const MAX_IDS_PER_REQUEST = 1 << 20;
/** Payload bytes a sender puts in one DATA frame (at least one block): bounds what is in flight per request. */
export const DATA_FRAME_TARGET_BYTES = 2 * 1024 * 1024;
/** Bytes queued on a socket beyond which a sender waits for it to drain. */
export const MAX_QUEUED_BYTES = 2 * 1024 * 1024;
/** Largest ERROR message accepted. */
export const MAX_ERROR_MESSAGE_BYTES = 4096;

/** Error kinds that travel in ERROR frames. */
export const WireError = { BAD_REQUEST: 1, CHECKSUM_MISMATCH: 2, CLOSED: 3 } as const;
export type WireErrorCode = (typeof WireError)[keyof typeof WireError];

export interface FrameHeader {
  op: number;
  checksum: number;
  flags: number;
  requestId: number;
  regionId: number;
  blockBytes: number;
  count: number;
  first: number;
  n: number;
  bodyBytes: number;
}

/** Writes a header at `out[off..off+40)`. */
export function encodeHeader(h: FrameHeader, out: Uint8Array, off = 0): void {
  const v = new DataView(out.buffer, out.byteOffset + off, HEADER_BYTES);
  v.setUint32(0, MAGIC, true);
  v.setUint8(4, PROTOCOL_VERSION);
  v.setUint8(5, h.op);
  v.setUint8(6, h.checksum);
  v.setUint8(7, h.flags);
  v.setUint32(8, h.requestId, true);
  v.setUint32(12, h.regionId, true);
  v.setUint32(16, h.blockBytes, true);
  v.setUint32(20, h.count, true);
  v.setUint32(24, h.first, true);
  v.setUint32(28, h.n, true);
  v.setUint32(32, h.bodyBytes, true);
  v.setUint32(36, 0, true);
}

/** Reads a header; returns an error message instead when the frame cannot be trusted to skip. */
export function decodeHeader(bytes: Uint8Array): FrameHeader | string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  if (v.getUint32(0, true) !== MAGIC) return 'bad magic';
  const version = v.getUint8(4);
  if (version !== PROTOCOL_VERSION) return `unsupported protocol version ${version}`;
  const h: FrameHeader = {
    op: v.getUint8(5),
    checksum: v.getUint8(6),
    flags: v.getUint8(7),
    requestId: v.getUint32(8, true),
    regionId: v.getUint32(12, true),
    blockBytes: v.getUint32(16, true),
    count: v.getUint32(20, true),
    first: v.getUint32(24, true),
    n: v.getUint32(28, true),
    bodyBytes: v.getUint32(32, true),
  };
  switch (h.op) {
    case Op.READ:
    case Op.WRITE:
      if (h.count > MAX_IDS_PER_REQUEST) return `request of ${h.count} blocks exceeds ${MAX_IDS_PER_REQUEST}`;
      if (h.bodyBytes !== h.count * 4) return `request body of ${h.bodyBytes} bytes for ${h.count} ids`;
      return h;
    case Op.DATA: {
      if (h.blockBytes === 0 || h.blockBytes > MAX_BLOCK_BYTES) return `bad blockBytes ${h.blockBytes}`;
      if (h.n === 0 || h.n > MAX_IDS_PER_REQUEST) return `bad block count ${h.n} in a data frame`;
      const expected = h.n * (checksumBytesPerBlock(h.checksum) + h.blockBytes);
      if (h.bodyBytes !== expected) return `data body of ${h.bodyBytes} bytes, expected ${expected}`;
      return h;
    }
    case Op.DONE:
    case Op.CANCEL:
      return h.bodyBytes === 0 ? h : `op ${h.op} with a body`;
    case Op.ERROR:
      return h.bodyBytes >= 1 && h.bodyBytes <= 1 + MAX_ERROR_MESSAGE_BYTES ? h : 'bad error frame';
    default:
      return `unknown op ${h.op}`;
  }
}

/** Checksum bytes per block in a DATA frame for a checksum code (0 = none). */
export const checksumBytesPerBlock = (checksumCode: number): number => (checksumCode === 0 ? 0 : 8);

/** Blocks per DATA frame for a block size: as many as fit DATA_FRAME_TARGET_BYTES, at least one. */
export const blocksPerFrame = (blockBytes: number): number =>
  Math.max(1, Math.floor(DATA_FRAME_TARGET_BYTES / blockBytes));

/** A header-only frame (DONE, CANCEL) or a header plus body (READ/WRITE ids, ERROR), as one buffer. */
export function controlFrame(h: Omit<FrameHeader, 'bodyBytes'>, body?: Uint8Array): Uint8Array {
  const bodyBytes = body?.byteLength ?? 0;
  const out = new Uint8Array(HEADER_BYTES + bodyBytes);
  encodeHeader({ ...h, bodyBytes }, out);
  if (body) out.set(body, HEADER_BYTES);
  return out;
}

/** An ERROR frame for `requestId` (0: the connection). */
export function errorFrame(requestId: number, code: WireErrorCode, message: string): Uint8Array {
  const text = new TextEncoder().encode(message).subarray(0, MAX_ERROR_MESSAGE_BYTES);
  const body = new Uint8Array(1 + text.byteLength);
  body[0] = code;
  body.set(text, 1);
  return controlFrame(
    { op: Op.ERROR, checksum: 0, flags: 0, requestId, regionId: 0, blockBytes: 0, count: 0, first: 0, n: 0 },
    body,
  );
}

/** Reads an ERROR body. */
export function decodeErrorBody(body: Uint8Array): { code: number; message: string } {
  return { code: body[0]!, message: new TextDecoder().decode(body.subarray(1)) };
}

/** Block ids of a READ/WRITE body as a Uint32Array (copied when unaligned or big-endian host). */
export function idsFromBody(body: Uint8Array, count: number): Uint32Array {
  if (body.byteOffset % 4 === 0 && LITTLE_ENDIAN) return new Uint32Array(body.buffer, body.byteOffset, count);
  const ids = new Uint32Array(count);
  const v = new DataView(body.buffer, body.byteOffset, count * 4);
  for (let i = 0; i < count; i++) ids[i] = v.getUint32(i * 4, true);
  return ids;
}

/** Block ids as a READ/WRITE body (u32 little-endian). */
export function idsToBody(ids: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
  const out = new Uint8Array(ids.length * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < ids.length; i++) v.setUint32(i * 4, ids[i]!, true);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
