// A performance profile: what one worker of each pool can do, measured before deployment
// (`armature profile`, or in virtual time for the mocker). The planner's throughput mode
// reads two numbers from it each interval: the prompt tokens per second one prefill worker
// serves at a prompt length while meeting the TTFT target, and the output tokens per second
// one decode worker serves at a context length while meeting the ITL target. It does not
// measure anything: tools/profiler does.
//
// The file (JSON, schema `armature.profile/v1`):
//   { schema, model, engine, engineArgs?, createdAt, source: 'live' | 'virtual',
//     prefill: { points: [{ isl, ttftMs, tokensPerSecond }] },           // batch 1, no reuse
//     decode:  { maxKvTokens, points: [{ context, concurrency, kvUsage, itlMs, tokensPerSecond }] } }
// prefill points sorted by isl; decode points grouped by context, concurrency rising.
import { ArmatureError } from '@armature/runtime';

export const PROFILE_SCHEMA = 'armature.profile/v1';

export interface PrefillPoint {
  /** Prompt length, tokens. */
  isl: number;
  /** Time to first token at batch 1 with no prefix reuse, ms. */
  ttftMs: number;
  /** isl / ttft: prompt tokens per second one worker computes at this length. */
  tokensPerSecond: number;
}

export interface DecodePoint {
  /** Tokens of context per sequence (prompt + half the output, as the planner asks). */
  context: number;
  /** Sequences decoding together. */
  concurrency: number;
  /** Used / total KV blocks at this point. */
  kvUsage: number;
  /** Mean inter-token latency, ms. */
  itlMs: number;
  /** Output tokens per second over all sequences (concurrency × 1000 / itlMs). */
  tokensPerSecond: number;
}

export interface Profile {
  schema: typeof PROFILE_SCHEMA;
  model: string;
  engine: string;
  /** The engine settings the profile was measured with (the mocker's options). */
  engineArgs?: Record<string, unknown>;
  createdAt: string;
  /** live: measured on running workers; virtual: the mocker's timing in virtual time. */
  source: 'live' | 'virtual';
  prefill: { points: PrefillPoint[] };
  decode: { maxKvTokens: number; points: DecodePoint[] };
}

function bad(field: string, message: string): ArmatureError {
  return new ArmatureError('invalid_argument', 'bad_profile', `profile.${field}: ${message}`, { param: field });
}

const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const nonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Checks a parsed profile file; throws ArmatureError (reason bad_profile) naming the field. */
export function parseProfile(doc: unknown): Profile {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('', 'expected a JSON object');
  const p = doc as Record<string, unknown>;
  if (p.schema !== PROFILE_SCHEMA) throw bad('schema', `expected ${PROFILE_SCHEMA}, got ${JSON.stringify(p.schema)}`);
  for (const key of ['model', 'engine', 'createdAt'] as const)
    if (typeof p[key] !== 'string' || p[key] === '') throw bad(key, 'expected a non-empty string');
  if (p.source !== 'live' && p.source !== 'virtual') throw bad('source', 'expected live or virtual');
  const prefill = p.prefill as { points?: unknown } | undefined;
  if (!prefill || !Array.isArray(prefill.points) || prefill.points.length === 0)
    throw bad('prefill.points', 'expected a non-empty array');
  let lastIsl = 0;
  prefill.points.forEach((pt: Record<string, unknown>, i) => {
    for (const key of ['isl', 'ttftMs', 'tokensPerSecond'])
      if (!positive(pt?.[key])) throw bad(`prefill.points[${i}].${key}`, 'expected a positive number');
    if ((pt.isl as number) <= lastIsl) throw bad(`prefill.points[${i}].isl`, 'must increase');
    lastIsl = pt.isl as number;
  });
  const decode = p.decode as { points?: unknown; maxKvTokens?: unknown } | undefined;
  if (!decode || !Array.isArray(decode.points) || decode.points.length === 0)
    throw bad('decode.points', 'expected a non-empty array');
  if (!positive(decode.maxKvTokens)) throw bad('decode.maxKvTokens', 'expected a positive number');
  decode.points.forEach((pt: Record<string, unknown>, i) => {
    for (const key of ['context', 'concurrency', 'itlMs', 'tokensPerSecond'])
      if (!positive(pt?.[key])) throw bad(`decode.points[${i}].${key}`, 'expected a positive number');
    if (!nonNegative(pt.kvUsage)) throw bad(`decode.points[${i}].kvUsage`, 'expected a number >= 0');
  });
  return doc as Profile;
}

/** Linear interpolation over (x, y) points sorted by x, clamped to the end values outside. */
export function interpolate(points: readonly (readonly [number, number])[], x: number): number {
  if (points.length === 0) return NaN;
  if (x <= points[0]![0]) return points[0]![1];
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i]!;
    if (x <= x1) {
      const [x0, y0] = points[i - 1]!;
      return x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
  }
  return points[points.length - 1]![1];
}

/** The profile's answers to the planner's questions. */
export class ProfileModel {
  private readonly prefillTtft: [number, number][];
  private readonly prefillRate: [number, number][];
  /** Decode points by context, each sorted by concurrency. */
  private readonly decodeByContext: [number, DecodePoint[]][];

  constructor(readonly profile: Profile) {
    const pts = [...profile.prefill.points].sort((a, b) => a.isl - b.isl);
    this.prefillTtft = pts.map((p) => [p.isl, p.ttftMs]);
    this.prefillRate = pts.map((p) => [p.isl, p.tokensPerSecond]);
    const groups = new Map<number, DecodePoint[]>();
    for (const p of profile.decode.points) groups.set(p.context, [...(groups.get(p.context) ?? []), p]);
    this.decodeByContext = [...groups.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([c, ps]) => [c, ps.sort((a, b) => a.concurrency - b.concurrency)]);
  }

  /** Expected TTFT of one prompt of `isl` tokens on an idle prefill worker, ms. */
  expectedTtftMs(isl: number): number {
    return interpolate(this.prefillTtft, isl);
  }

  /**
   * Prompt tokens per second one prefill worker serves at prompt length `isl` (Dynamo's
   * throughput per GPU at the predicted ISL); 0 when even one such prompt misses `ttftMs`.
   */
  prefillCapacity(isl: number, ttftMs: number): number {
    if (this.expectedTtftMs(isl) > ttftMs) return 0;
    return interpolate(this.prefillRate, isl);
  }

  /** Expected ITL at `context` tokens per sequence and `concurrency` sequences, ms. */
  expectedItlMs(context: number, concurrency: number): number {
    return this.acrossContexts(context, (pts) =>
      interpolate(
        pts.map((p) => [p.concurrency, p.itlMs]),
        concurrency,
      ),
    );
  }

  /**
   * Output tokens per second one decode worker serves at `context` tokens per sequence
   * while its ITL stays within `itlMs`: the best throughput among the profiled
   * concurrencies that meet it (interpolated between the last that does and the first
   * that does not), interpolated across the profiled contexts. 0 when none meets it.
   */
  decodeCapacity(context: number, itlMs: number): number {
    return this.acrossContexts(context, (pts) => {
      let best = 0;
      for (let i = 0; i < pts.length; i++) {
        const p = pts[i]!;
        if (p.itlMs <= itlMs) {
          best = Math.max(best, p.tokensPerSecond);
          continue;
        }
        const prev = pts[i - 1];
        if (prev && prev.itlMs <= itlMs && p.itlMs > prev.itlMs) {
          const f = (itlMs - prev.itlMs) / (p.itlMs - prev.itlMs);
          best = Math.max(best, prev.tokensPerSecond + f * (p.tokensPerSecond - prev.tokensPerSecond));
        }
        break;
      }
      return best;
    });
  }

  private acrossContexts(context: number, at: (pts: DecodePoint[]) => number): number {
    const groups = this.decodeByContext;
    if (context <= groups[0]![0]) return at(groups[0]![1]);
    for (let i = 1; i < groups.length; i++) {
      const [c1, p1] = groups[i]!;
      if (context <= c1) {
        const [c0, p0] = groups[i - 1]!;
        const f = (context - c0) / (c1 - c0);
        return at(p0) * (1 - f) + at(p1) * f;
      }
    }
    return at(groups[groups.length - 1]![1]);
  }
}

/**
 * Refuses a profile measured for another model or engine than the deployment's (the
 * planner would size pools from someone else's numbers), unless `allowMismatch`.
 */
export function checkProfileFits(
  profile: Profile,
  deployment: { model: string; engine: string },
  allowMismatch = false,
): void {
  if (allowMismatch) return;
  for (const key of ['model', 'engine'] as const) {
    if (profile[key] !== deployment[key])
      throw new ArmatureError(
        'invalid_argument',
        'bad_planner_config',
        `planner.profile: the profile is for ${key} ${JSON.stringify(profile[key])}, the deployment runs ${JSON.stringify(deployment[key])} (set limits.allowProfileMismatch: true to use it anyway)`,
        { param: 'profile' },
      );
  }
}

/** Reads and checks a profile file. */
export async function loadProfile(path: string): Promise<Profile> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ArmatureError(
      'invalid_argument',
      'bad_planner_config',
      `planner.profile: cannot read ${path}: ${(err as Error).message}`,
      {
        param: 'profile',
      },
    );
  }
  try {
    return parseProfile(JSON.parse(text));
  } catch (err) {
    if (err instanceof SyntaxError)
      throw new ArmatureError('invalid_argument', 'bad_profile', `${path}: not JSON: ${err.message}`, {
        param: 'profile',
      });
    throw new ArmatureError('invalid_argument', 'bad_profile', `${path}: ${(err as Error).message}`, {
      param: 'profile',
    });
  }
}
