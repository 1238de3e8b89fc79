// When each request is sent: the trace's own timestamps (scaled), a request rate
// (Poisson or constant), or as fast as a fixed number of concurrent clients allows.
import { mulberry32 } from '@armature/runtime';

export type ScheduleSpec =
  | { mode: 'trace'; timeScale: number }
  | {
      mode: 'rate';
      rate: number;
      arrival: 'poisson' | 'constant';
      seed: number;
      /** A rate that changes: (seconds, requests/s) points, linear between, the last rate after (overrides `rate`). */
      ramp?: readonly (readonly [number, number])[];
    }
  | { mode: 'concurrency'; concurrency: number };

/** A small seeded PRNG, so schedules are reproducible. */
export { mulberry32 };

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
      const rand = mulberry32(spec.seed);
      if (spec.ramp) return rampOffsets(spec.ramp, spec.arrival, rand, arrivalsMs.length);
      if (!(spec.rate > 0)) throw new Error('--rate must be > 0');
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

/** Parses `--ramp 0:2,60:20,120:2` (seconds:requests per second, times increasing). */
export function parseRamp(text: string): [number, number][] {
  const points = text.split(',').map((part) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (!m) throw new Error(`--ramp must be seconds:rate pairs like 0:2,60:20,120:2, got ${JSON.stringify(text)}`);
    return [Number(m[1]), Number(m[2])] as [number, number];
  });
  for (let i = 1; i < points.length; i++)
    if (points[i]![0] <= points[i - 1]![0]) throw new Error(`--ramp times must increase, got ${JSON.stringify(text)}`);
  if (!points.some(([, r]) => r > 0)) throw new Error('--ramp needs a rate above 0 somewhere');
  return points;
}

/** The rate at `seconds` on a ramp: linear between points, the end rates outside. */
export function rampRate(ramp: readonly (readonly [number, number])[], seconds: number): number {
  if (seconds <= ramp[0]![0]) return ramp[0]![1];
  for (let i = 1; i < ramp.length; i++) {
    const [t1, r1] = ramp[i]!;
    if (seconds <= t1) {
      const [t0, r0] = ramp[i - 1]!;
      return r0 + ((r1 - r0) * (seconds - t0)) / (t1 - t0);
    }
  }
  return ramp[ramp.length - 1]![1];
}

/**
 * Send times under a changing rate: each gap is one unit (constant) or an exponential draw
 * (Poisson) of the rate's integral, so the count in any window follows the ramp. Past the
 * ramp's end a zero rate stops the schedule (fewer offsets than requests).
 */
function rampOffsets(
  ramp: readonly (readonly [number, number])[],
  arrival: 'poisson' | 'constant',
  rand: () => number,
  count: number,
): number[] {
  const stepS = 0.01;
  const endS = ramp[ramp.length - 1]![0];
  const out: number[] = [];
  let t = 0;
  let owed = 0; // the integral of the rate still to cover before the next send
  for (let i = 0; i < count; i++) {
    owed += i === 0 ? 0 : arrival === 'constant' ? 1 : -Math.log(1 - rand());
    while (owed > 0) {
      const r = rampRate(ramp, t);
      if (r <= 0 && t >= endS) return out;
      owed -= r * stepS;
      t += stepS;
    }
    out.push(t * 1000);
  }
  return out;
}
