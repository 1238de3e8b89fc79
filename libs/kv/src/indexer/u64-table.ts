// An open-addressing hash table keyed by u64 values held as two u32 limbs, for the KV
// indexer's hot paths: a Map keyed by bigint allocates per lookup and a Map keyed by strings
// hashes text, while here a lookup is a multiply and a few loads from one Uint32Array.
//
// Linear probing, power-of-two capacity grown at 0.75 load, backward-shift deletion (no
// tombstones, so probe lengths stay short under churn). Each slot is `stride` u32 words:
// [lo, hi, value words...]. Key (0, 0) marks an empty slot, so the zero key lives out of
// band in an extra slot at index `capacity`, past the probed range.

/** Most tables start small; the per-worker tables of a large fleet are many. */
const MIN_CAPACITY = 16;
const MAX_LOAD = 0.75;

/** A u64 -> (0 or more u32 words) table; slots are indices into `data`, stride words apart. */
export class U64Table {
  /** Slot words: slot s is data[s * stride] (lo), data[s * stride + 1] (hi), then its values. */
  data: Uint32Array;
  /** Words per value: 0 for a set. */
  readonly valueWords: number;
  readonly stride: number;
  /** Probed slots, a power of two; slot `capacity` holds the zero key. */
  capacity: number;
  mask: number;
  /** 32 - log2(capacity): the home slot is the top bits of a multiplicative hash. */
  shift: number;
  /** Keys held, the zero key included. */
  size = 0;
  /** Whether the zero key is held (in slot `capacity`). */
  hasZero = false;
  /** Set by insert: whether the key was new. */
  inserted = false;
  private growAt: number;

  /** A table with `valueWords` (default 0) u32 value words per key and room for `expected` (default 12) keys. */
  constructor(valueWords = 0, expected = 12) {
    this.valueWords = valueWords;
    this.stride = 2 + valueWords;
    let capacity = MIN_CAPACITY;
    while (capacity * MAX_LOAD < expected) capacity *= 2;
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.shift = 32 - Math.log2(capacity);
    this.growAt = Math.floor(capacity * MAX_LOAD);
    this.data = new Uint32Array((capacity + 1) * this.stride);
  }

  /** Home slot of a key for a table of 2^(32 - shift) slots. */
  static home(lo: number, hi: number, shift: number): number {
    // Keys are usually XXH3 outputs already, but opaque engine hashes may not be: mix both limbs.
    return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> shift;
  }

  /** Slot of key (lo, hi) (u32 limbs), or -1 when absent. */
  find(lo: number, hi: number): number {
    if ((lo | hi) === 0) return this.hasZero ? this.capacity : -1;
    const data = this.data;
    const stride = this.stride;
    const mask = this.mask;
    let slot = U64Table.home(lo, hi, this.shift);
    for (;;) {
      const at = slot * stride;
      const keyLo = data[at]!;
      const keyHi = data[at + 1]!;
      if (keyLo === lo && keyHi === hi) return slot;
      if ((keyLo | keyHi) === 0) return -1;
      slot = (slot + 1) & mask;
    }
  }

  /**
   * Slot of key (lo, hi), added with zeroed values when absent (`inserted` says which).
   * May grow the table, which moves every slot: earlier slot numbers are then stale.
   */
  insert(lo: number, hi: number): number {
    if ((lo | hi) === 0) {
      this.inserted = !this.hasZero;
      if (this.inserted) {
        this.hasZero = true;
        this.size++;
      }
      return this.capacity;
    }
    if (this.size >= this.growAt) this.grow();
    const data = this.data;
    const stride = this.stride;
    const mask = this.mask;
    let slot = U64Table.home(lo, hi, this.shift);
    for (;;) {
      const at = slot * stride;
      const keyLo = data[at]!;
      const keyHi = data[at + 1]!;
      if (keyLo === lo && keyHi === hi) {
        this.inserted = false;
        return slot;
      }
      if ((keyLo | keyHi) === 0) {
        data[at] = lo;
        data[at + 1] = hi;
        this.size++;
        this.inserted = true;
        return slot;
      }
      slot = (slot + 1) & mask;
    }
  }

  /** Removes key (lo, hi); returns whether it was held. */
  remove(lo: number, hi: number): boolean {
    const slot = this.find(lo, hi);
    if (slot < 0) return false;
    this.removeAt(slot);
    return true;
  }

  /**
   * Removes the key in `slot` (from find or insert) by shifting later entries of its probe
   * run back; other slot numbers may be stale afterwards.
   */
  removeAt(slot: number): void {
    const data = this.data;
    const stride = this.stride;
    this.size--;
    if (slot === this.capacity) {
      this.hasZero = false;
      data.fill(0, slot * stride, slot * stride + stride);
      return;
    }
    const mask = this.mask;
    const shift = this.shift;
    let hole = slot;
    let next = (hole + 1) & mask;
    for (;;) {
      const at = next * stride;
      const keyLo = data[at]!;
      const keyHi = data[at + 1]!;
      if ((keyLo | keyHi) === 0) break;
      // The entry at `next` may fill the hole unless its home lies cyclically in (hole, next].
      const home = U64Table.home(keyLo, keyHi, shift);
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        const to = hole * stride;
        for (let word = 0; word < stride; word++) data[to + word] = data[at + word]!;
        hole = next;
      }
      next = (next + 1) & mask;
    }
    for (let word = 0, to = hole * stride; word < stride; word++) data[to + word] = 0;
  }

  /** Whether `slot` (0..capacity) holds a key. */
  occupied(slot: number): boolean {
    if (slot === this.capacity) return this.hasZero;
    const at = slot * this.stride;
    return (this.data[at]! | this.data[at + 1]!) !== 0;
  }

  /** Drops every key; a grown table goes back to its smallest size to release memory. */
  clear(): void {
    this.size = 0;
    this.hasZero = false;
    if (this.capacity > MIN_CAPACITY) {
      this.capacity = MIN_CAPACITY;
      this.mask = MIN_CAPACITY - 1;
      this.shift = 32 - Math.log2(MIN_CAPACITY);
      this.growAt = Math.floor(MIN_CAPACITY * MAX_LOAD);
      this.data = new Uint32Array((MIN_CAPACITY + 1) * this.stride);
    } else {
      this.data.fill(0);
    }
  }

  /** A copy of this set (valueWords 0) as a two-word map taking each key to itself. */
  withSelfValues(): U64Table {
    const copy = new U64Table(2, this.size);
    for (let slot = 0; slot <= this.capacity; slot++) {
      if (!this.occupied(slot)) continue;
      const lo = this.data[slot * this.stride]!;
      const hi = this.data[slot * this.stride + 1]!;
      const at = copy.insert(lo, hi) * 4;
      copy.data[at + 2] = lo;
      copy.data[at + 3] = hi;
    }
    return copy;
  }

  private grow(): void {
    const old = this.data;
    const oldCapacity = this.capacity;
    const stride = this.stride;
    const capacity = oldCapacity * 2;
    const data = new Uint32Array((capacity + 1) * stride);
    const mask = capacity - 1;
    const shift = this.shift - 1;
    for (let from = 0; from < oldCapacity * stride; from += stride) {
      const lo = old[from]!;
      const hi = old[from + 1]!;
      if ((lo | hi) === 0) continue;
      let slot = U64Table.home(lo, hi, shift);
      while ((data[slot * stride]! | data[slot * stride + 1]!) !== 0) slot = (slot + 1) & mask;
      const to = slot * stride;
      for (let word = 0; word < stride; word++) data[to + word] = old[from + word]!;
    }
    for (let word = 0; word < stride; word++) data[capacity * stride + word] = old[oldCapacity * stride + word]!;
    this.data = data;
    this.capacity = capacity;
    this.mask = mask;
    this.shift = shift;
    this.growAt = Math.floor(capacity * MAX_LOAD);
  }
}
