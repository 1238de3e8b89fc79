// The KV event codec against payloads written byte by byte the way Python's msgspec encodes
// vllm/distributed/kv_events.py (positional array_like events, and the tagged maps of vLLM
// PR #42892), property-based round trips, and garbage that must only ever raise KvCodecError.
import { Encoder } from '@msgpack/msgpack';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvCodecError, decodeKvEventBatch, encodeKvEventBatch, mediumFromWire, mediumToWire } from './codec.js';
import { KV_MEDIUMS, type KvEvent, type KvEventBatch } from './events.js';
import { msgpackFramingError } from './msgpack-framing.js';

/**
 * A minimal msgpack writer mirroring msgspec's choices: integers in their smallest form
 * (uint for non-negative, int for negative), floats as float64, None as nil.
 */
const mp = {
  nil: (): number[] => [0xc0],
  int(value: number | bigint): number[] {
    const v = BigInt(value);
    const be = (n: bigint, bytes: number): number[] =>
      Array.from({ length: bytes }, (_, i) =>
        Number((BigInt.asUintN(bytes * 8, n) >> BigInt(8 * (bytes - 1 - i))) & 0xffn),
      );
    if (v >= 0n) {
      if (v < 0x80n) return [Number(v)];
      if (v < 0x100n) return [0xcc, ...be(v, 1)];
      if (v < 0x10000n) return [0xcd, ...be(v, 2)];
      if (v < 0x100000000n) return [0xce, ...be(v, 4)];
      return [0xcf, ...be(v, 8)];
    }
    if (v >= -32n) return [Number(v) & 0xff];
    if (v >= -0x80n) return [0xd0, ...be(v, 1)];
    if (v >= -0x8000n) return [0xd1, ...be(v, 2)];
    if (v >= -0x80000000n) return [0xd2, ...be(v, 4)];
    return [0xd3, ...be(v, 8)];
  },
  u64(value: bigint): number[] {
    const out = [0xcf];
    for (let i = 7; i >= 0; i--) out.push(Number((value >> BigInt(8 * i)) & 0xffn));
    return out;
  },
  f64(value: number): number[] {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, value);
    return [0xcb, ...bytes];
  },
  str(value: string): number[] {
    const bytes = [...new TextEncoder().encode(value)];
    if (bytes.length < 32) return [0xa0 | bytes.length, ...bytes];
    return [0xd9, bytes.length, ...bytes];
  },
  bin(bytes: Uint8Array): number[] {
    return [0xc4, bytes.length, ...bytes];
  },
  arr(...items: number[][]): number[] {
    const header = items.length < 16 ? [0x90 | items.length] : [0xdc, items.length >> 8, items.length & 0xff];
    return [...header, ...items.flat()];
  },
  map(...entries: [string, number[]][]): number[] {
    return [0x80 | entries.length, ...entries.flatMap(([key, value]) => [...mp.str(key), ...value])];
  },
};

const bytesOf = (parts: number[]): Uint8Array => Uint8Array.from(parts);

const BIG_HASH = 0xfedcba9876543210n;
const DIGEST = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
// int.from_bytes(DIGEST, "big") & (2^64 - 1): the last 8 bytes, big-endian.
const DIGEST_FOLDED = DIGEST.slice(24).reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);

describe('mediums', () => {
  it('maps our tiers to vLLM names and back', () => {
    expect(KV_MEDIUMS.map(mediumToWire)).toEqual(['GPU', 'CPU', 'DISK', 'REMOTE']);
    for (const medium of KV_MEDIUMS) expect(mediumFromWire(mediumToWire(medium))).toBe(medium);
  });

  it('accepts every engine spelling and defaults to device', () => {
    expect(mediumFromWire('GPU')).toBe('device');
    expect(mediumFromWire('CPU_PINNED')).toBe('host');
    expect(mediumFromWire('cpu')).toBe('host');
    expect(mediumFromWire('NVME')).toBe('disk');
    expect(mediumFromWire('DISK')).toBe('disk');
    expect(mediumFromWire('SHARED')).toBe('remote');
    expect(mediumFromWire('REMOTE')).toBe('remote');
    expect(mediumFromWire(null)).toBe('device');
    expect(mediumFromWire(undefined)).toBe('device');
    expect(() => mediumFromWire('TAPE')).toThrow(KvCodecError);
  });
});

describe('decodeKvEventBatch: vLLM positional (array_like) events', () => {
  // KVEventBatch(ts=1718000000.25, events=[...], data_parallel_rank=3) with array_like=True,
  // omit_defaults=True: every field up to lora_name is written (no defaults), later ones only
  // when set; hashes are Python ints in their smallest msgpack form, or bytes.
  const payload = bytesOf(
    mp.arr(
      mp.f64(1718000000.25),
      mp.arr(
        mp.arr(
          mp.str('BlockStored'),
          mp.arr(mp.int(BIG_HASH), mp.int(7), mp.int(0x12345678), mp.int(-2n)),
          mp.nil(),
          mp.arr(...[1, 200, 70000, 151935, 0, 5, 6, 7].map((t) => mp.int(t))),
          mp.int(2),
          mp.nil(),
          mp.str('GPU'),
          mp.nil(),
        ),
        mp.arr(
          mp.str('BlockStored'),
          mp.arr(mp.bin(DIGEST)),
          mp.int(-2n),
          mp.arr(mp.int(9), mp.int(10)),
          mp.int(2),
          mp.int(1),
          mp.str('CPU_PINNED'),
          mp.str('sql-lora'),
          mp.arr(mp.arr(mp.str('mm-hash-0'), mp.int(0))), // extra_keys
          mp.int(1), // group_idx
          mp.str('sliding_window'), // kv_cache_spec_kind
          mp.int(4096), // kv_cache_spec_sliding_window
        ),
        // Before `medium` and `lora_name` existed: six fields.
        mp.arr(mp.str('BlockStored'), mp.arr(mp.int(11)), mp.int(7), mp.arr(mp.int(1), mp.int(2)), mp.int(2), mp.nil()),
        mp.arr(mp.str('BlockRemoved'), mp.arr(mp.int(BIG_HASH), mp.int(7)), mp.str('GPU')),
        mp.arr(mp.str('BlockRemoved'), mp.arr(mp.int(11)), mp.str('DISK'), mp.int(2)),
        mp.arr(mp.str('BlockRemoved'), mp.arr(mp.int(12))),
        mp.arr(mp.str('AllBlocksCleared')),
      ),
      mp.int(3),
    ),
  );

  it('decodes every event and field', () => {
    const batch = decodeKvEventBatch(payload);
    expect(batch.ts).toBe(1718000000.25);
    expect(batch.dpRank).toBe(3);
    expect(batch.events).toEqual<KvEvent[]>([
      {
        type: 'BlockStored',
        blockHashes: [BIG_HASH, 7n, 0x12345678n, 0xfffffffffffffffen],
        parentBlockHash: null,
        tokenIds: [1, 200, 70000, 151935, 0, 5, 6, 7],
        blockSize: 2,
        loraName: null,
        medium: 'device',
      },
      {
        type: 'BlockStored',
        blockHashes: [DIGEST_FOLDED],
        parentBlockHash: 0xfffffffffffffffen,
        tokenIds: [9, 10],
        blockSize: 2,
        loraName: 'sql-lora',
        medium: 'host',
      },
      {
        type: 'BlockStored',
        blockHashes: [11n],
        parentBlockHash: 7n,
        tokenIds: [1, 2],
        blockSize: 2,
        loraName: null,
        medium: 'device',
      },
      { type: 'BlockRemoved', blockHashes: [BIG_HASH, 7n], medium: 'device' },
      { type: 'BlockRemoved', blockHashes: [11n], medium: 'disk' },
      { type: 'BlockRemoved', blockHashes: [12n], medium: 'device' },
      { type: 'AllBlocksCleared' },
    ]);
  });

  it('reads a batch whose data_parallel_rank was omitted as None', () => {
    const batch = decodeKvEventBatch(bytesOf(mp.arr(mp.f64(12.5), mp.arr(mp.arr(mp.str('AllBlocksCleared'))))));
    expect(batch).toEqual<KvEventBatch>({ ts: 12.5, events: [{ type: 'AllBlocksCleared' }], dpRank: null });
  });

  it('folds a 32-byte digest as int.from_bytes(digest, "big") & (2^64 - 1)', () => {
    // bytes 24..31 of the digest are 24*7+1 .. 31*7+1 = a9 b0 b7 be c5 cc d3 da.
    expect(DIGEST_FOLDED).toBe(0xa9b0b7bec5ccd3dan);
  });
});

describe('decodeKvEventBatch: vLLM tagged-map events', () => {
  // KVEventBatch with the map encoding: batch and events are maps, the tag under "type"
  // first, then fields in declaration order, defaults omitted.
  const payload = bytesOf(
    mp.map(
      ['ts', mp.f64(1780000000.5)],
      [
        'events',
        mp.arr(
          mp.map(
            ['type', mp.str('BlockStored')],
            ['block_hashes', mp.arr(mp.int(BIG_HASH), mp.int(300))],
            ['parent_block_hash', mp.int(0x1122334455667788n)],
            ['token_ids', mp.arr(...Array.from({ length: 32 }, (_, i) => mp.int(1000 + i)))],
            ['block_size', mp.int(16)],
            ['lora_id', mp.nil()],
            ['medium', mp.str('GPU')],
            ['lora_name', mp.str('adapter-a')],
            ['group_idx', mp.int(0)],
            ['kv_cache_spec_kind', mp.str('full_attention')],
          ),
          mp.map(
            ['type', mp.str('BlockRemoved')],
            ['block_hashes', mp.arr(mp.int(300))],
            ['medium', mp.str('CPU')],
            ['group_idx', mp.int(0)],
          ),
          mp.map(['type', mp.str('BlockRemoved')], ['block_hashes', mp.arr(mp.bin(DIGEST))], ['medium', mp.nil()]),
          mp.map(['type', mp.str('AllBlocksCleared')]),
        ),
      ],
      ['data_parallel_rank', mp.int(1)],
    ),
  );

  it('decodes every event and field', () => {
    expect(decodeKvEventBatch(payload)).toEqual<KvEventBatch>({
      ts: 1780000000.5,
      dpRank: 1,
      events: [
        {
          type: 'BlockStored',
          blockHashes: [BIG_HASH, 300n],
          parentBlockHash: 0x1122334455667788n,
          tokenIds: Array.from({ length: 32 }, (_, i) => 1000 + i),
          blockSize: 16,
          loraName: 'adapter-a',
          medium: 'device',
        },
        { type: 'BlockRemoved', blockHashes: [300n], medium: 'host' },
        { type: 'BlockRemoved', blockHashes: [DIGEST_FOLDED], medium: 'device' },
        { type: 'AllBlocksCleared' },
      ],
    });
  });

  it('accepts map events inside a positional batch (what we publish)', () => {
    const mixed = bytesOf(
      mp.arr(
        mp.f64(1),
        mp.arr(mp.map(['type', mp.str('BlockRemoved')], ['block_hashes', mp.arr(mp.int(5))])),
        mp.nil(),
      ),
    );
    expect(decodeKvEventBatch(mixed)).toEqual<KvEventBatch>({
      ts: 1,
      events: [{ type: 'BlockRemoved', blockHashes: [5n], medium: 'device' }],
      dpRank: null,
    });
  });
});

describe('encodeKvEventBatch', () => {
  it("writes vLLM's current form byte for byte: [ts, [tagged maps], dp_rank]", () => {
    const batch: KvEventBatch = {
      ts: 1718000000,
      dpRank: 2,
      events: [
        {
          type: 'BlockStored',
          blockHashes: [BIG_HASH],
          parentBlockHash: 5n,
          tokenIds: [1, 2],
          blockSize: 2,
          loraName: null,
          medium: 'host',
        },
        { type: 'BlockRemoved', blockHashes: [BIG_HASH], medium: 'disk' },
        { type: 'AllBlocksCleared' },
      ],
    };
    const expected = bytesOf(
      mp.arr(
        mp.f64(1718000000), // a float even when integral, like Python's time.time()
        mp.arr(
          mp.map(
            ['type', mp.str('BlockStored')],
            ['block_hashes', mp.arr(mp.u64(BIG_HASH))],
            ['parent_block_hash', mp.u64(5n)], // hashes always as uint64
            ['token_ids', mp.arr(mp.int(1), mp.int(2))],
            ['block_size', mp.int(2)],
            ['lora_id', mp.nil()],
            ['medium', mp.str('CPU')],
            ['lora_name', mp.nil()],
          ),
          mp.map(
            ['type', mp.str('BlockRemoved')],
            ['block_hashes', mp.arr(mp.u64(BIG_HASH))],
            ['medium', mp.str('DISK')],
          ),
          mp.map(['type', mp.str('AllBlocksCleared')]),
        ),
        mp.int(2),
      ),
    );
    expect([...encodeKvEventBatch(batch)]).toEqual([...expected]);
  });

  it('encodes every dp rank width and a null rank', () => {
    for (const dpRank of [null, 0, 127, 128, 255, 256, 65535, 65536, 0xffffffff]) {
      expect(decodeKvEventBatch(encodeKvEventBatch({ ts: 0.5, events: [], dpRank })).dpRank).toBe(dpRank);
    }
  });

  it('rejects values it cannot represent', () => {
    expect(() => encodeKvEventBatch({ ts: Number.NaN, events: [], dpRank: null })).toThrow(KvCodecError);
    expect(() => encodeKvEventBatch({ ts: 1, events: [], dpRank: -1 })).toThrow(KvCodecError);
    expect(() => encodeKvEventBatch({ ts: 1, events: [], dpRank: 1.5 })).toThrow(KvCodecError);
    const badMedium = { type: 'BlockRemoved', blockHashes: [], medium: 'tape' } as unknown as KvEvent;
    expect(() => encodeKvEventBatch({ ts: 1, events: [badMedium], dpRank: null })).toThrow(KvCodecError);
  });
});

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const medium = fc.constantFrom(...KV_MEDIUMS);
const eventArbitrary: fc.Arbitrary<KvEvent> = fc.oneof(
  fc.record({
    type: fc.constant('BlockStored' as const),
    blockHashes: fc.array(u64, { maxLength: 8 }),
    parentBlockHash: fc.option(u64, { nil: null }),
    tokenIds: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 64 }),
    blockSize: fc.integer({ min: 1, max: 4096 }),
    loraName: fc.option(fc.string({ unit: 'grapheme', maxLength: 40 }), { nil: null }),
    medium,
  }),
  fc.record({ type: fc.constant('BlockRemoved' as const), blockHashes: fc.array(u64, { maxLength: 8 }), medium }),
  fc.constant({ type: 'AllBlocksCleared' as const }),
);
const batchArbitrary: fc.Arbitrary<KvEventBatch> = fc.record({
  ts: fc.double({ noNaN: true, noDefaultInfinity: true }),
  events: fc.array(eventArbitrary, { maxLength: 12 }),
  dpRank: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: null }),
});

describe('round trips', () => {
  it('decode(encode(batch)) is the batch', () => {
    fc.assert(
      fc.property(batchArbitrary, (batch) => {
        expect(decodeKvEventBatch(encodeKvEventBatch(batch))).toEqual(batch);
      }),
      { numRuns: 300 },
    );
  });

  it('survives the shared encoder being reused across batches', () => {
    const [first, second] = fc.sample(batchArbitrary, { numRuns: 2, seed: 11 });
    const firstBytes = encodeKvEventBatch(first!);
    encodeKvEventBatch(second!);
    expect(decodeKvEventBatch(firstBytes)).toEqual(first);
  });
});

function onlyCodecErrors(bytes: Uint8Array): void {
  try {
    decodeKvEventBatch(bytes);
  } catch (err) {
    if (!(err instanceof KvCodecError)) throw err;
  }
}

describe('bad input', () => {
  it('raises KvCodecError with a path and a clear message', () => {
    const cases: Array<[number[], RegExp]> = [
      [[0xc1], /not a msgpack document: invalid type byte 0xc1/],
      [mp.arr(mp.f64(1)), /expected a batch/],
      [mp.str('hello'), /expected a batch/],
      [mp.arr(mp.str('x'), mp.arr()), /^ts: expected a finite number/],
      [mp.arr(mp.f64(1), mp.int(3)), /^events: expected an array/],
      [
        mp.arr(mp.f64(1), mp.arr(mp.arr(mp.str('KVCacheCreated')))),
        /^events\[0\]\.type: unknown event type "KVCacheCreated"/,
      ],
      [mp.arr(mp.f64(1), mp.arr(mp.int(4))), /^events\[0\]: expected an event/],
      [
        mp.arr(mp.f64(1), mp.arr(mp.map(['block_hashes', mp.arr()]))),
        /^events\[0\]\.type: expected an event type string/,
      ],
      [
        mp.arr(mp.f64(1), mp.arr(mp.arr(mp.str('BlockRemoved'), mp.arr(mp.str('h'))))),
        /^events\[0\]\.block_hashes\[0\]: expected an integer or bytes hash, got the string "h"/,
      ],
      [
        mp.arr(mp.f64(1), mp.arr(mp.arr(mp.str('BlockRemoved'), mp.arr(mp.f64(1.5))))),
        /^events\[0\]\.block_hashes\[0\]: expected an integer hash/,
      ],
      [
        mp.arr(mp.f64(1), mp.arr(mp.arr(mp.str('BlockRemoved'), mp.arr(), mp.str('TAPE')))),
        /^events\[0\]\.medium: unknown medium "TAPE"/,
      ],
      [
        mp.arr(mp.f64(1), mp.arr(mp.arr(mp.str('BlockStored'), mp.arr(), mp.nil()))),
        /^events\[0\]\.token_ids: missing/,
      ],
      [
        mp.arr(mp.f64(1), mp.arr(mp.arr(mp.str('BlockStored'), mp.arr(), mp.nil(), mp.arr(mp.int(-1)), mp.int(16)))),
        /^events\[0\]\.token_ids\[0\]: expected an integer in \[0, 4294967295\]/,
      ],
      [
        mp.arr(mp.f64(1), mp.arr(mp.arr(mp.str('BlockStored'), mp.arr(), mp.nil(), mp.arr(), mp.int(0)))),
        /^events\[0\]\.block_size: expected an integer in \[1, /,
      ],
      [mp.arr(mp.f64(1), mp.arr(), mp.int(-1)), /^dp_rank: expected an integer/],
      [[...mp.arr(mp.f64(1), mp.arr()), 0x00], /extra bytes/],
      [[0xdd, 0xff, 0xff, 0xff, 0xff], /values claimed but only 0 bytes left/],
      [mp.map(['__proto__', mp.int(1)]), /not a msgpack document: .*__proto__/],
    ];
    for (const [bytes, message] of cases) {
      let caught: unknown;
      try {
        decodeKvEventBatch(bytesOf(bytes));
      } catch (err) {
        caught = err;
      }
      expect(caught, String(message)).toBeInstanceOf(KvCodecError);
      expect((caught as Error).message).toMatch(message);
    }
  });

  it('never throws anything but KvCodecError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => onlyCodecErrors(bytes)),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but KvCodecError on corrupted or truncated batches', () => {
    fc.assert(
      fc.property(batchArbitrary, fc.nat(), fc.integer({ min: 0, max: 255 }), (batch, where, byte) => {
        const bytes = encodeKvEventBatch(batch);
        const at = where % bytes.length;
        onlyCodecErrors(bytes.subarray(0, at));
        const corrupted = bytes.slice();
        corrupted[at] = byte;
        onlyCodecErrors(corrupted);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but KvCodecError on well-formed msgpack of the wrong shape', () => {
    const encoder = new Encoder({ useBigInt64: true });
    const leaf = fc.oneof(
      fc.constantFrom('BlockStored', 'BlockRemoved', 'AllBlocksCleared', 'GPU', 'type', 'ts', 'events', null),
      fc.integer(),
      fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }),
      fc.double(),
      fc.uint8Array({ maxLength: 40 }),
      fc.string(),
      fc.boolean(),
    );
    const keys = fc.constantFrom(
      'type',
      'ts',
      'events',
      'data_parallel_rank',
      'block_hashes',
      'parent_block_hash',
      'token_ids',
      'block_size',
      'medium',
      'lora_name',
      '__proto__x',
      'constructor',
      'toString',
    );
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('map')),
      array: fc.array(tie('value'), { maxLength: 5 }),
      map: fc.dictionary(keys, tie('value'), { maxKeys: 5 }),
    }));
    fc.assert(
      fc.property(value, (shape) => {
        onlyCodecErrors(encoder.encode(shape));
        onlyCodecErrors(encoder.encode([1.5, [shape], null]));
        onlyCodecErrors(encoder.encode([1.5, [['BlockStored', shape, shape, shape, shape]], 0]));
      }),
      { numRuns: 500 },
    );
  });
});

describe('msgpackFramingError', () => {
  it('accepts every complete document and rejects every strict prefix', () => {
    const encoder = new Encoder({ useBigInt64: true });
    fc.assert(
      fc.property(fc.jsonValue(), fc.uint8Array({ maxLength: 300 }), (json, blob) => {
        const bytes = encoder.encode([json, blob, 1n << 63n, -5n, 1.5]);
        expect(msgpackFramingError(bytes)).toBeUndefined();
        for (const cut of [0, 1, bytes.length >> 1, bytes.length - 1]) {
          expect(msgpackFramingError(bytes.subarray(0, cut))).toBeTypeOf('string');
        }
      }),
      { numRuns: 300 },
    );
  });
});
