// The u64 open-addressing table against a Map: growth, backward-shift deletion inside
// clusters and across the wrap-around, the out-of-band zero key, and values surviving moves.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { U64Table } from './u64-table.js';

const split = (key: bigint): [number, number] => [Number(key & 0xffffffffn), Number(key >> 32n)];

/** Every key of `expected` is found with its value, and nothing else is held. */
function expectSame(table: U64Table, expected: Map<bigint, number>): void {
  expect(table.size).toBe(expected.size);
  let occupied = 0;
  for (let slot = 0; slot <= table.capacity; slot++) if (table.occupied(slot)) occupied++;
  expect(occupied).toBe(expected.size);
  for (const [key, value] of expected) {
    const slot = table.find(...split(key));
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(table.data[slot * table.stride + 2]).toBe(value);
  }
}

/** Keys whose home slot in a table of `capacity` slots is `home`. */
function keysWithHome(home: number, capacity: number, count: number): bigint[] {
  const keys: bigint[] = [];
  const shift = 32 - Math.log2(capacity);
  for (let lo = 1; keys.length < count; lo++) {
    if (U64Table.home(lo, 7, shift) === home) keys.push((7n << 32n) | BigInt(lo));
  }
  return keys;
}

describe('U64Table', () => {
  it('inserts, finds and removes keys with values', () => {
    const table = new U64Table(1);
    const slot = table.insert(5, 9);
    expect(table.inserted).toBe(true);
    table.data[slot * 3 + 2] = 42;
    expect(table.insert(5, 9)).toBe(slot);
    expect(table.inserted).toBe(false);
    expect(table.find(5, 9)).toBe(slot);
    expect(table.find(9, 5)).toBe(-1);
    expect(table.remove(5, 9)).toBe(true);
    expect(table.remove(5, 9)).toBe(false);
    expect(table.size).toBe(0);
  });

  it('keeps the zero key out of band', () => {
    const table = new U64Table(2);
    expect(table.find(0, 0)).toBe(-1);
    const slot = table.insert(0, 0);
    expect(slot).toBe(table.capacity);
    table.data[slot * 4 + 2] = 7;
    for (let i = 1; i <= 100; i++) table.insert(i, 0);
    expect(table.find(0, 0)).toBe(table.capacity);
    expect(table.data[table.capacity * 4 + 2]).toBe(7);
    expect(table.size).toBe(101);
    table.remove(0, 0);
    expect(table.find(0, 0)).toBe(-1);
    expect(table.size).toBe(100);
  });

  it('grows at 0.75 load, keeping keys and values', () => {
    const table = new U64Table(1);
    const expected = new Map<bigint, number>();
    for (let i = 0; i < 5000; i++) {
      const key = (BigInt(i * 7919) << 32n) | BigInt((i * 2654435761) >>> 0);
      const slot = table.insert(...split(key));
      table.data[slot * 3 + 2] = i;
      expected.set(key, i);
      expect(table.size).toBeLessThanOrEqual(table.capacity * 0.75 + 1);
    }
    expect(table.capacity).toBe(8192);
    expectSame(table, expected);
  });

  it('deletes from the middle of a cluster and across the wrap-around', () => {
    for (const home of [3, 14]) {
      const table = new U64Table(1);
      const keys = keysWithHome(home, 16, 5);
      const expected = new Map<bigint, number>();
      keys.forEach((key, i) => {
        table.data[table.insert(...split(key)) * 3 + 2] = i + 1;
        expected.set(key, i + 1);
      });
      expect(table.capacity).toBe(16);
      for (const victim of [keys[1]!, keys[0]!, keys[4]!]) {
        table.remove(...split(victim));
        expected.delete(victim);
        expectSame(table, expected);
      }
    }
  });

  it('clear() empties and shrinks; withSelfValues() maps each key to itself', () => {
    const table = new U64Table(0);
    for (let i = 1; i <= 1000; i++) table.insert(i, i * 3);
    table.insert(0, 0);
    const map = table.withSelfValues();
    expect(map.size).toBe(1001);
    for (const i of [0, 1, 500, 1000]) {
      const slot = map.find(i, i * 3);
      expect([map.data[slot * 4 + 2], map.data[slot * 4 + 3]]).toEqual([i, i * 3]);
    }
    table.clear();
    expect(table.size).toBe(0);
    expect(table.capacity).toBe(16);
    expect(table.find(1, 3)).toBe(-1);
    expect(table.find(0, 0)).toBe(-1);
  });

  it('agrees with a Map under random inserts and removes', () => {
    // A small key pool forces long clusters, re-inserts after removal and shrinking runs.
    const key = fc.oneof(
      fc.bigInt({ min: 0n, max: 40n }),
      fc.bigInt({ min: 0n, max: 40n }).map((k) => (k << 32n) | 0xffffffffn),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    );
    const op = fc.record({ insert: fc.boolean(), key, value: fc.integer({ min: 0, max: 0xffffffff }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const table = new U64Table(1);
        const expected = new Map<bigint, number>();
        for (const { insert, key, value } of ops) {
          if (insert) {
            table.data[table.insert(...split(key)) * 3 + 2] = value;
            expected.set(key, value);
          } else {
            expect(table.remove(...split(key))).toBe(expected.delete(key));
          }
        }
        expectSame(table, expected);
      }),
      { numRuns: 200, seed: 17 },
    );
  });
});
