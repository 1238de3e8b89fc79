// Load mode's model of a worker's forward pass: step time ≈ c0 + c1 × prefill tokens + c2 ×
// KV tokens, fitted online by least squares over the last `window` samples (one sample per
// worker per interval: its mean pass). A small ridge term keeps the fit defined while the
// samples vary along one axis only (a decode pool never prefills); coefficients below zero
// are clamped, so a noisy fit can never predict that more work is faster.

export interface StepSample {
  prefillTokens: number;
  kvTokens: number;
  stepMs: number;
}

export class StepRegression {
  private readonly samples: StepSample[] = [];
  private coefficients: [number, number, number] | undefined;

  /** `window`: samples kept (default 200); `minSamples`: fewest before it estimates (default 5). */
  constructor(
    private readonly window = 200,
    private readonly minSamples = 5,
  ) {}

  get size(): number {
    return this.samples.length;
  }

  add(sample: StepSample): void {
    if (![sample.prefillTokens, sample.kvTokens, sample.stepMs].every((v) => Number.isFinite(v) && v >= 0)) return;
    this.samples.push(sample);
    if (this.samples.length > this.window) this.samples.shift();
    this.coefficients = undefined;
  }

  /** [c0, c1, c2], or undefined with fewer than minSamples samples. */
  fit(): readonly [number, number, number] | undefined {
    if (this.samples.length < this.minSamples) return undefined;
    if (this.coefficients) return this.coefficients;
    // Scale the token axes so the ridge term means the same on each.
    const sx = Math.max(1, ...this.samples.map((s) => s.prefillTokens));
    const sy = Math.max(1, ...this.samples.map((s) => s.kvTokens));
    const a = [
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
    ];
    const b = [0, 0, 0];
    for (const s of this.samples) {
      const row = [1, s.prefillTokens / sx, s.kvTokens / sy];
      for (let i = 0; i < 3; i++) {
        b[i]! += row[i]! * s.stepMs;
        for (let j = 0; j < 3; j++) a[i]![j]! += row[i]! * row[j]!;
      }
    }
    const ridge = 1e-6 * this.samples.length;
    for (let i = 1; i < 3; i++) a[i]![i]! += ridge;
    const x = solve3(a, b) ?? [this.samples.reduce((s, v) => s + v.stepMs, 0) / this.samples.length, 0, 0];
    this.coefficients = [Math.max(0, x[0]!), Math.max(0, x[1]! / sx), Math.max(0, x[2]! / sy)];
    return this.coefficients;
  }

  /** Estimated step time of a pass with this work, ms; undefined before the fit exists. */
  estimate(prefillTokens: number, kvTokens: number): number | undefined {
    const c = this.fit();
    return c && c[0] + c[1] * prefillTokens + c[2] * kvTokens;
  }
}

/** Gaussian elimination with partial pivoting; undefined when singular. */
function solve3(a: number[][], b: number[]): number[] | undefined {
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < 3; col++) {
    let pivot = col;
    for (let r = col + 1; r < 3; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    if (Math.abs(m[pivot]![col]!) < 1e-12) return undefined;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = 0; r < 3; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / m[col]![col]!;
      for (let c = col; c < 4; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  return [0, 1, 2].map((i) => m[i]![3]! / m[i]![i]!);
}
