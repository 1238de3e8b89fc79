// An LRU set of small integer ids (block ids) as an intrusive doubly linked list over typed
// arrays: add, delete and take-oldest in O(1) with no allocation. A JS Set used as a queue
// slows down as deletions at its front pile up tombstones that `values().next()` must skip.

const NONE = -1;

export class LruList {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly member: Uint8Array;
  private head = NONE;
  private tail = NONE;
  private count = 0;

  constructor(capacity: number) {
    this.prev = new Int32Array(capacity).fill(NONE);
    this.next = new Int32Array(capacity).fill(NONE);
    this.member = new Uint8Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  has(id: number): boolean {
    return this.member[id] === 1;
  }

  /** Appends `id` as the most recently used (no-op if present). */
  add(id: number): void {
    if (this.member[id] === 1) return;
    this.member[id] = 1;
    this.prev[id] = this.tail;
    this.next[id] = NONE;
    if (this.tail !== NONE) this.next[this.tail] = id;
    else this.head = id;
    this.tail = id;
    this.count++;
  }

  delete(id: number): boolean {
    if (this.member[id] !== 1) return false;
    const p = this.prev[id]!;
    const n = this.next[id]!;
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
    this.member[id] = 0;
    this.count--;
    return true;
  }

  /** Removes and returns the least recently added id, or undefined when empty. */
  shift(): number | undefined {
    if (this.head === NONE) return undefined;
    const id = this.head;
    this.delete(id);
    return id;
  }

  *[Symbol.iterator](): IterableIterator<number> {
    for (let id = this.head; id !== NONE; id = this.next[id]!) yield id;
  }
}
