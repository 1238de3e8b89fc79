// The msgpack wire form of KV event batches, so that real vLLM (and SGLang, which reuses it)
// engines can feed the router directly and our own engines publish what they publish.
//
// Writes vLLM's current form: a batch [ts, [events], dp_rank] whose events are maps tagged by
// "type" with vLLM's snake_case field names. Reads every form vLLM has published: batches as
// positional arrays or as maps, events as tagged positional arrays (trailing defaults omitted)
// or as tagged maps; hashes as integers of any width or as raw digest bytes. Bad input throws
// KvCodecError, never anything else.
import { Decoder, Encoder } from '@msgpack/msgpack';
import { msgpackFramingError } from './msgpack-framing.js';
import type { AllBlocksCleared, BlockRemoved, BlockStored, KvEvent, KvEventBatch, KvMedium } from './events.js';

/** Malformed or unsupported KV event bytes; `path` locates the bad value (e.g. "events[2].block_size"). */
export class KvCodecError extends Error {
  override readonly name = 'KvCodecError';
  readonly path: string;

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(path ? `${path}: ${message}` : message, options);
    this.path = path;
  }
}

/** The medium names vLLM writes. */
export type WireMedium = 'GPU' | 'CPU' | 'DISK' | 'REMOTE';

/** Our tier as vLLM's medium name: device -> GPU, host -> CPU, disk -> DISK, remote -> REMOTE. */
export function mediumToWire(medium: KvMedium): WireMedium {
  switch (medium) {
    case 'device':
      return 'GPU';
    case 'host':
      return 'CPU';
    case 'disk':
      return 'DISK';
    case 'remote':
      return 'REMOTE';
    default:
      throw new KvCodecError('medium', `unknown medium ${JSON.stringify(medium)}`);
  }
}

/**
 * A wire medium as our tier (case-insensitive): GPU -> device, CPU_PINNED/CPU -> host,
 * DISK/NVME -> disk, REMOTE/SHARED -> remote; null or absent -> device (vLLM's default).
 */
export function mediumFromWire(wire: string | null | undefined): KvMedium {
  const medium = tierOf(wire);
  if (medium === undefined) throw new KvCodecError('medium', `unknown medium ${JSON.stringify(wire)}`);
  return medium;
}

function tierOf(wire: string | null | undefined): KvMedium | undefined {
  if (wire === null || wire === undefined) return 'device';
  switch (wire.toUpperCase()) {
    case 'GPU':
      return 'device';
    case 'CPU':
    case 'CPU_PINNED':
      return 'host';
    case 'DISK':
    case 'NVME':
      return 'disk';
    case 'REMOTE':
    case 'SHARED':
      return 'remote';
    default:
      return undefined;
  }
}

const encoder = new Encoder({ useBigInt64: true });
const decoder = new Decoder({ useBigInt64: true });

const UINT32_MAX = 0xffffffff;

/** Encodes a batch in vLLM's current wire form (hashes as msgpack uint64, ts as float64). */
export function encodeKvEventBatch(batch: KvEventBatch): Uint8Array {
  if (!Number.isFinite(batch.ts)) throw new KvCodecError('ts', `expected a finite number, got ${batch.ts}`);
  const dpRank = batch.dpRank;
  if (dpRank !== null && !(Number.isInteger(dpRank) && dpRank >= 0 && dpRank <= UINT32_MAX)) {
    throw new KvCodecError('dp_rank', `expected null or an integer in [0, 2^32), got ${dpRank}`);
  }
  const wireEvents = batch.events.map(eventToWire);
  // The events go through the shared encoder; the batch header is written by hand so ts is
  // always a float64, as Python's float is, even when it happens to be integral.
  const body = encoder.encodeSharedRef(wireEvents);
  const dpBytes = dpRank === null || dpRank < 0x80 ? 1 : dpRank <= 0xff ? 2 : dpRank <= 0xffff ? 3 : 5;
  const out = new Uint8Array(10 + body.length + dpBytes);
  const view = new DataView(out.buffer);
  out[0] = 0x93; // fixarray(3)
  out[1] = 0xcb; // float64
  view.setFloat64(2, batch.ts);
  out.set(body, 10);
  const at = 10 + body.length;
  if (dpRank === null) out[at] = 0xc0;
  else if (dpRank < 0x80) out[at] = dpRank;
  else if (dpRank <= 0xff) {
    out[at] = 0xcc;
    out[at + 1] = dpRank;
  } else if (dpRank <= 0xffff) {
    out[at] = 0xcd;
    view.setUint16(at + 1, dpRank);
  } else {
    out[at] = 0xce;
    view.setUint32(at + 1, dpRank);
  }
  return out;
}

const MASK64 = (1n << 64n) - 1n;

function eventToWire(event: KvEvent, index: number): Record<string, unknown> {
  switch (event.type) {
    case 'BlockStored':
      return {
        type: 'BlockStored',
        block_hashes: event.blockHashes.map((hash) => hash & MASK64),
        parent_block_hash: event.parentBlockHash === null ? null : event.parentBlockHash & MASK64,
        token_ids: event.tokenIds,
        block_size: event.blockSize,
        lora_id: null,
        medium: mediumToWire(event.medium),
        lora_name: event.loraName,
      };
    case 'BlockRemoved':
      return {
        type: 'BlockRemoved',
        block_hashes: event.blockHashes.map((hash) => hash & MASK64),
        medium: mediumToWire(event.medium),
      };
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' };
    default:
      throw new KvCodecError(
        `events[${index}]`,
        `unknown event type ${JSON.stringify((event as { type?: unknown }).type)}`,
      );
  }
}

/**
 * Decodes a KV event batch in any vLLM wire form. Hashes become u64 bigints: negative int64s
 * are reinterpreted as u64, and raw digest bytes are folded as vLLM folds them for integer
 * hashes, int.from_bytes(digest, "big") & (2^64 - 1), i.e. the last 8 bytes read big-endian.
 * Throws KvCodecError on anything else, including unknown event types.
 */
export function decodeKvEventBatch(bytes: Uint8Array): KvEventBatch {
  const framingError = msgpackFramingError(bytes);
  if (framingError !== undefined) throw new KvCodecError('', `not a msgpack document: ${framingError}`);
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (err) {
    throw new KvCodecError('', `not a msgpack document: ${(err as Error).message}`, { cause: err });
  }
  return batchFromWire(raw);
}

type WireMap = Record<string, unknown>;

function isMap(value: unknown): value is WireMap {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** A map's own field; never an inherited property such as "constructor". */
function field(map: WireMap, key: string): unknown {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (isMap(value)) return 'a map';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `${typeof value} ${value}`;
  return typeof value === 'object' ? 'an extension value' : typeof value;
}

function fail(path: string, expected: string, got: unknown): never {
  throw new KvCodecError(path, `expected ${expected}, got ${describe(got)}`);
}

function batchFromWire(raw: unknown): KvEventBatch {
  let ts: unknown;
  let events: unknown;
  let dpRank: unknown;
  if (Array.isArray(raw)) {
    if (raw.length < 2) fail('', 'a batch [ts, events, dp_rank?]', raw);
    [ts, events, dpRank] = raw;
  } else if (isMap(raw)) {
    ts = field(raw, 'ts');
    events = field(raw, 'events');
    dpRank = field(raw, 'data_parallel_rank') ?? field(raw, 'dp_rank');
  } else {
    fail('', 'a batch (array or map)', raw);
  }
  if (!Array.isArray(events)) fail('events', 'an array', events);
  return {
    ts: finiteNumber(ts, 'ts'),
    events: events.map((event, index) => eventFromWire(event, `events[${index}]`)),
    dpRank: dpRank === null || dpRank === undefined ? null : integer(dpRank, 'dp_rank', 0, UINT32_MAX),
  };
}

// Positional layouts of vLLM's array_like events (after the tag).
const STORED_FIELDS = [
  'block_hashes',
  'parent_block_hash',
  'token_ids',
  'block_size',
  'lora_id',
  'medium',
  'lora_name',
];
const REMOVED_FIELDS = ['block_hashes', 'medium'];

function eventFromWire(raw: unknown, path: string): KvEvent {
  let tag: unknown;
  let get: (name: string) => unknown;
  let has: (name: string) => boolean;
  if (Array.isArray(raw)) {
    tag = raw[0];
    const positions = tag === 'BlockStored' ? STORED_FIELDS : tag === 'BlockRemoved' ? REMOVED_FIELDS : [];
    get = (name) => raw[positions.indexOf(name) + 1];
    has = (name) => positions.indexOf(name) + 1 < raw.length;
  } else if (isMap(raw)) {
    tag = field(raw, 'type');
    get = (name) => field(raw, name);
    has = (name) => Object.hasOwn(raw, name);
  } else {
    fail(path, 'an event (tagged array or map)', raw);
  }
  switch (tag) {
    case 'BlockStored': {
      for (const required of ['block_hashes', 'token_ids', 'block_size']) {
        if (!has(required)) throw new KvCodecError(`${path}.${required}`, 'missing');
      }
      const parent = get('parent_block_hash');
      const stored: BlockStored = {
        type: 'BlockStored',
        blockHashes: hashList(get('block_hashes'), `${path}.block_hashes`),
        parentBlockHash: parent === null || parent === undefined ? null : hash(parent, `${path}.parent_block_hash`),
        tokenIds: tokenList(get('token_ids'), `${path}.token_ids`),
        blockSize: integer(get('block_size'), `${path}.block_size`, 1, UINT32_MAX),
        loraName: optionalString(get('lora_name'), `${path}.lora_name`),
        medium: medium(get('medium'), `${path}.medium`),
      };
      return stored;
    }
    case 'BlockRemoved': {
      if (!has('block_hashes')) throw new KvCodecError(`${path}.block_hashes`, 'missing');
      const removed: BlockRemoved = {
        type: 'BlockRemoved',
        blockHashes: hashList(get('block_hashes'), `${path}.block_hashes`),
        medium: medium(get('medium'), `${path}.medium`),
      };
      return removed;
    }
    case 'AllBlocksCleared': {
      const cleared: AllBlocksCleared = { type: 'AllBlocksCleared' };
      return cleared;
    }
    default:
      if (typeof tag === 'string') throw new KvCodecError(`${path}.type`, `unknown event type ${JSON.stringify(tag)}`);
      return fail(`${path}.type`, 'an event type string', tag);
  }
}

function finiteNumber(value: unknown, path: string): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return fail(path, 'a finite number', value);
}

function integer(value: unknown, path: string, min: number, max: number): number {
  const asNumber = typeof value === 'bigint' ? Number(value) : value;
  if (typeof asNumber === 'number' && Number.isInteger(asNumber) && asNumber >= min && asNumber <= max) return asNumber;
  return fail(path, `an integer in [${min}, ${max}]`, value);
}

function optionalString(value: unknown, path: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  return fail(path, 'a string or nil', value);
}

function medium(value: unknown, path: string): KvMedium {
  if (value !== null && value !== undefined && typeof value !== 'string') fail(path, 'a medium name or nil', value);
  const tier = tierOf(value);
  if (tier === undefined) throw new KvCodecError(path, `unknown medium ${JSON.stringify(value)}`);
  return tier;
}

/** One engine hash as a u64 bigint: any integer width (negatives reinterpreted) or raw bytes. */
function hash(value: unknown, path: string): bigint {
  if (typeof value === 'bigint') return value & MASK64;
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return BigInt(value) & MASK64;
    return fail(path, 'an integer hash', value);
  }
  if (value instanceof Uint8Array) {
    if (value.length === 0) return fail(path, 'a non-empty hash digest', value);
    // int.from_bytes(digest, "big") & (2^64 - 1): the last (up to) 8 bytes, big-endian.
    let folded = 0n;
    for (let i = Math.max(0, value.length - 8); i < value.length; i++) folded = (folded << 8n) | BigInt(value[i]!);
    return folded;
  }
  return fail(path, 'an integer or bytes hash', value);
}

function hashList(value: unknown, path: string): bigint[] {
  if (!Array.isArray(value)) fail(path, 'an array of hashes', value);
  const out = new Array<bigint>(value.length);
  for (let i = 0; i < value.length; i++) out[i] = hash(value[i], `${path}[${i}]`);
  return out;
}

function tokenList(value: unknown, path: string): number[] {
  if (!Array.isArray(value)) fail(path, 'an array of token ids', value);
  const out = new Array<number>(value.length);
  for (let i = 0; i < value.length; i++) {
    const token = value[i];
    if (typeof token === 'number' && Number.isInteger(token) && token >= 0 && token <= UINT32_MAX) out[i] = token;
    else out[i] = integer(token, `${path}[${i}]`, 0, UINT32_MAX);
  }
  return out;
}
