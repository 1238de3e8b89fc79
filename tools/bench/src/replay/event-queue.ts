// A binary min-heap of timed events for the virtual-time simulator. Ties keep insertion
// order, so the simulation is deterministic.

interface Item<T> {
  at: number;
  order: number;
  value: T;
}

export class EventQueue<T> {
  private readonly heap: Item<T>[] = [];
  private counter = 0;

  get size(): number {
    return this.heap.length;
  }

  push(at: number, value: T): void {
    const item = { at, order: this.counter++, value };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  /** The earliest event, removed. */
  pop(): { at: number; value: T } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return { at: top.at, value: top.value };
  }
}

const less = <T>(a: Item<T>, b: Item<T>): boolean => a.at < b.at || (a.at === b.at && a.order < b.order);
