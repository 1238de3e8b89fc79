// When each request is sent: the trace's own timestamps (scaled), a request rate
// (Poisson or constant), or as fast as a fixed number of concurrent clients allows.

export type ScheduleSpec =
  | { mode: 'trace'; timeScale: number }
  | { mode: 'rate'; rate: number; arrival: 'poisson' | 'constant'; seed: number }
  | { mode: 'concurrency'; concurrency: number };

/** A small seeded PRNG (mulberry32), so schedules are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Send offsets (ms from the start) for open-loop modes; `undefined` for the closed-loop
 * concurrency mode, where a request goes out when a client frees up.
 */
export function sendOffsets(spec: ScheduleSpec, arrivalsMs: readonly (number | undefined)[]): number[] | undefined {
  switch (spec.mode) {
    case 'trace':
      return arrivalsMs.map((a, i) => {
        if (a === undefined) throw new Error(`request ${i} has no timestamp: the trace mode needs a trace dataset`);
        return a * spec.timeScale;
      });
    case 'rate': {
      if (!(spec.rate > 0)) throw new Error('--rate must be > 0');
      const rand = mulberry32(spec.seed);
      const gapMs = 1000 / spec.rate;
      let t = 0;
      return arrivalsMs.map((_, i) => {
        if (i > 0) t += spec.arrival === 'constant' ? gapMs : -Math.log(1 - rand()) * gapMs;
        return t;
      });
    }
    case 'concurrency':
      return undefined;
  }
}
