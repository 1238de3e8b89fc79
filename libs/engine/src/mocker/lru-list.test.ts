import { describe, expect, it } from 'vitest';
import { LruList } from './lru-list.js';

describe('LruList', () => {
  it('takes the oldest first and supports deletion anywhere', () => {
    const l = new LruList(8);
    for (const id of [3, 1, 4, 5]) l.add(id);
    l.add(1); // already present: keeps its place
    expect([...l]).toEqual([3, 1, 4, 5]);
    expect(l.delete(4)).toBe(true);
    expect(l.delete(4)).toBe(false);
    expect(l.shift()).toBe(3);
    l.add(3);
    expect([...l]).toEqual([1, 5, 3]);
    expect(l.size).toBe(3);
    expect([l.shift(), l.shift(), l.shift(), l.shift()]).toEqual([1, 5, 3, undefined]);
    expect(l.has(5)).toBe(false);
  });
});
