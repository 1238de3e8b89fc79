// `arima`: ARIMA(p, d, q) refit every interval on the last `window` values. It follows a
// trend through differencing (d) and short-lived autocorrelation through the AR and MA
// terms, without needing a season length.
//
// Our own code, not the npm `arima` package (an emscripten build of ctsa): that one loads
// synchronously and offline, but its C code prints warnings ("The Matrix system does not
// have a unique solution") straight to stdout whatever `verbose` says, for flat and spiky
// series that are everyday load, has exit() paths that set the process's exit code, and
// refuses series shorter than 10 + d values.
//
// The fit, each interval: difference the window d times; fit an ARMA(p, q) with intercept
// to the result by Hannan–Rissanen: a long AR by Yule–Walker gives innovation estimates,
// then least squares of each value on 1, its p lags and q lagged innovations (a tiny
// ridge keeps a flat or collinear window finite). A non-invertible MA part is dropped (its
// residuals would explode); a non-stationary AR part is replaced by Yule–Walker's. Orders
// are lowered, MA first, when the window is too short to fit them (ARIMA(0, d, 0) at
// worst: with d = 1, the last value plus the mean step). Until `minPoints` values (after
// leading zeros) the forecast is the last value.
import { numberParam, rejectUnknownParams } from './params.js';
import { SeriesPredictor } from './series-predictor.js';

export interface ArimaParams {
  /** AR order, 0..5 (default 1). */
  p: number;
  /** Differencing order, 0..2 (default 1). */
  d: number;
  /** MA order, 0..3 (default 1). */
  q: number;
  /** Values the model is refit on, >= 5 and >= minPoints (default 50). */
  window: number;
  /** Values before the model's forecast is used; the last value until then (default 5). */
  minPoints: number;
}

/** Fitted ARIMA coefficients for one window. */
export interface ArimaFit {
  /** Orders actually fitted (lowered when the window is short). */
  p: number;
  q: number;
  /** Constant term of the differenced series' ARMA (with d = 1, the drift the AR part leaves). */
  intercept: number;
  ar: number[];
  ma: number[];
}

export class ArimaPredictor extends SeriesPredictor {
  readonly id = 'arima';
  readonly #params: ArimaParams;
  readonly #values: number[] = [];
  #cached: number | undefined;

  constructor(params: ArimaParams) {
    super();
    this.#params = params;
  }

  protected accept(value: number): void {
    this.#values.push(value);
    if (this.#values.length > this.#params.window) this.#values.shift();
    this.#cached = undefined;
  }

  protected forecast(): number {
    if (this.#values.length < this.#params.minPoints) return this.last!;
    this.#cached ??= forecastArima(this.#values, this.#params.p, this.#params.d, this.#params.q);
    return this.#cached;
  }
}

/** One-step ARIMA(p, d, q) forecast of `series` (oldest first); the last value when it is too short to difference. */
export function forecastArima(series: readonly number[], p: number, d: number, q: number): number {
  const n = series.length;
  if (n <= d) return series[n - 1]!;
  const differenced = difference(series, d);
  const fit = fitArma(differenced, p, q);
  const residuals = armaResiduals(differenced, fit);
  const m = differenced.length;
  let next = fit.intercept;
  for (let i = 0; i < fit.p; i++) next += fit.ar[i]! * differenced[m - 1 - i]!;
  for (let j = 0; j < fit.q; j++) next += fit.ma[j]! * (residuals[m - 1 - j] ?? 0);
  // Undo the differencing: y_n = x_n − Σ_{k=1..d} C(d, k)(−1)^k y_{n−k}.
  for (let k = 1; k <= d; k++) next -= binomial(d, k) * (-1) ** k * series[n - k]!;
  return next;
}

/** Hannan–Rissanen fit of an ARMA(p, q) with intercept to `x`, orders lowered to what its length supports. */
export function fitArma(x: readonly number[], p: number, q: number): ArimaFit {
  const n = x.length;
  const mean = x.reduce((a, b) => a + b, 0) / n;
  // Enough rows to estimate k coefficients (intercept included): at least 2k + 2.
  const enough = (rows: number, k: number) => rows >= 2 * k + 2;
  const longOrder = (ma: number) => Math.max(p + ma, Math.min(8, Math.floor(n / 4)));
  let ma = q;
  while (ma > 0 && !enough(n - Math.max(p, longOrder(ma) + ma), 1 + p + ma)) ma--;
  let ar = p;
  if (ma === 0) while (ar > 0 && !enough(n - ar, 1 + ar)) ar--;
  if (ar + ma === 0) return { p: 0, q: 0, intercept: mean, ar: [], ma: [] };

  let innovations: number[] = [];
  let start = ar;
  if (ma > 0) {
    const order = longOrder(ma);
    const z = x.map((v) => v - mean);
    const phi = yuleWalker(z, order);
    innovations = z.map((v, t) => {
      if (t < order) return 0;
      let e = v;
      for (let i = 0; i < order; i++) e -= phi[i]! * z[t - 1 - i]!;
      return e;
    });
    start = Math.max(ar, order + ma);
  }
  const rows: number[][] = [];
  const targets: number[] = [];
  for (let t = start; t < n; t++) {
    const row = [1];
    for (let i = 1; i <= ar; i++) row.push(x[t - i]!);
    for (let j = 1; j <= ma; j++) row.push(innovations[t - j]!);
    rows.push(row);
    targets.push(x[t]!);
  }
  const beta = leastSquares(rows, targets);
  const phi = beta.slice(1, 1 + ar);
  const theta = beta.slice(1 + ar);
  // A non-invertible MA part makes the residual recursion explode: refit without it.
  if (ma > 0 && !insideUnitCircle(theta.map((t) => -t))) return fitArma(x, ar, 0);
  if (!insideUnitCircle(phi)) {
    // Least squares left the stationary region; Yule–Walker's estimate never does.
    const yw = yuleWalker(
      x.map((v) => v - mean),
      ar,
    );
    return { p: ar, q: 0, intercept: mean * (1 - yw.reduce((a, b) => a + b, 0)), ar: yw, ma: [] };
  }
  return { p: ar, q: ma, intercept: beta[0]!, ar: phi, ma: theta };
}

/** Conditional residuals of the fitted ARMA over `x` (0 where lags fall before the start). */
function armaResiduals(x: readonly number[], fit: ArimaFit): number[] {
  const e: number[] = [];
  for (let t = 0; t < x.length; t++) {
    if (t < fit.p) {
      e.push(0);
      continue;
    }
    let value = x[t]! - fit.intercept;
    for (let i = 0; i < fit.p; i++) value -= fit.ar[i]! * x[t - 1 - i]!;
    for (let j = 0; j < fit.q; j++) value -= fit.ma[j]! * (e[t - 1 - j] ?? 0);
    e.push(value);
  }
  return e;
}

/**
 * Whether 1 − Σ c_i B^i has no root inside the unit circle (AR stationary; with c = −θ, MA
 * invertible), by stepping Levinson–Durbin down to the reflection coefficients. The unit
 * circle itself passes, within 1e-9: a pure cycle is a fair fit for load.
 */
function insideUnitCircle(coefficients: readonly number[]): boolean {
  let a = [...coefficients];
  for (let k = a.length; k >= 1; k--) {
    const reflection = a[k - 1]!;
    if (!Number.isFinite(reflection) || Math.abs(reflection) > 1 + 1e-9) return false;
    if (k === 1) break;
    const scale = 1 - reflection * reflection;
    if (Math.abs(scale) < 1e-12) return true;
    a = a.slice(0, k - 1).map((c, j) => (c + reflection * a[k - 2 - j]!) / scale);
  }
  return true;
}

function difference(series: readonly number[], d: number): number[] {
  let x = [...series];
  for (let k = 0; k < d; k++) x = x.slice(1).map((v, i) => v - x[i]!);
  return x;
}

function binomial(n: number, k: number): number {
  let result = 1;
  for (let i = 1; i <= k; i++) result = (result * (n - k + i)) / i;
  return result;
}

/** AR(order) coefficients of a centred series by Yule–Walker (Levinson–Durbin); zeros for a flat series. */
function yuleWalker(z: readonly number[], order: number): number[] {
  const n = z.length;
  const acov = Array.from({ length: order + 1 }, (_, lag) => {
    let s = 0;
    for (let t = lag; t < n; t++) s += z[t]! * z[t - lag]!;
    return s / n;
  });
  const phi = new Array<number>(order).fill(0);
  let error = acov[0]!;
  if (!(error > 0)) return phi;
  for (let k = 0; k < order; k++) {
    let acc = acov[k + 1]!;
    for (let j = 0; j < k; j++) acc -= phi[j]! * acov[k - j]!;
    const reflection = acc / error;
    const previous = phi.slice(0, k);
    phi[k] = reflection;
    for (let j = 0; j < k; j++) phi[j] = previous[j]! - reflection * previous[k - 1 - j]!;
    error *= 1 - reflection * reflection;
    if (!(error > 0)) break;
  }
  return phi;
}

/** Least squares by the normal equations with a tiny ridge, so a flat or collinear window gives zeros, not NaN. */
function leastSquares(rows: readonly number[][], targets: readonly number[]): number[] {
  const k = rows[0]?.length ?? 0;
  const a = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) a[i]![j]! += row[i]! * row[j]!;
      a[i]![k]! += row[i]! * targets[r]!;
    }
  }
  let trace = 0;
  for (let i = 0; i < k; i++) trace += a[i]![i]!;
  const ridge = (1e-9 * trace) / Math.max(k, 1) + 1e-12;
  for (let i = 0; i < k; i++) a[i]![i]! += ridge;
  // Gaussian elimination with partial pivoting.
  for (let col = 0; col < k; col++) {
    let pivot = col;
    for (let r = col + 1; r < k; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const diagonal = a[col]![col]!;
    if (Math.abs(diagonal) < 1e-300) continue;
    for (let r = col + 1; r < k; r++) {
      const factor = a[r]![col]! / diagonal;
      for (let c = col; c <= k; c++) a[r]![c]! -= factor * a[col]![c]!;
    }
  }
  const beta = new Array<number>(k).fill(0);
  for (let i = k - 1; i >= 0; i--) {
    let s = a[i]![k]!;
    for (let j = i + 1; j < k; j++) s -= a[i]![j]! * beta[j]!;
    const diagonal = a[i]![i]!;
    beta[i] = Math.abs(diagonal) < 1e-300 ? 0 : s / diagonal;
  }
  return beta.map((b) => (Number.isFinite(b) ? b : 0));
}

/** Builds `arima`; defaults p 1, d 1, q 1, window 50, minPoints 5. */
export function createArima(params: Record<string, unknown> = {}): ArimaPredictor {
  rejectUnknownParams('arima', params, ['p', 'd', 'q', 'window', 'minPoints']);
  const p = numberParam(params, 'p', 1, { integer: true, min: 0, max: 5 });
  const d = numberParam(params, 'd', 1, { integer: true, min: 0, max: 2 });
  const q = numberParam(params, 'q', 1, { integer: true, min: 0, max: 3 });
  const minPoints = numberParam(params, 'minPoints', 5, { integer: true, min: 1 });
  const window = numberParam(params, 'window', 50, { integer: true, min: Math.max(5, minPoints) });
  return new ArimaPredictor({ p, d, q, window, minPoints });
}
