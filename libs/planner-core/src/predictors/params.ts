// Validation of a predictor's `params`. They come from configuration (YAML, JSON in an
// environment variable), so each value is checked once when the predictor is built, an
// unknown name is refused (a typo must not silently fall back to a default), and every
// error names its field as `predictor.params.<name>`.
import { ArmatureError } from '@armature/runtime';

/** The error every bad predictor setting raises; `field` is the dotted path, e.g. `predictor.params.window`. */
export function configError(field: string, message: string): ArmatureError {
  return new ArmatureError('invalid_argument', 'bad_planner_config', `${field}: ${message}`, { param: field });
}

/** Bounds a numeric parameter must satisfy; finite numbers only. */
export interface NumberRule {
  min?: number;
  /** `min` itself is refused (default false). */
  minExclusive?: boolean;
  max?: number;
  integer?: boolean;
}

function describe(rule: NumberRule): string {
  const parts = [rule.integer ? 'an integer' : 'a number'];
  if (rule.min !== undefined) parts.push(`${rule.minExclusive ? '>' : '>='} ${rule.min}`);
  if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
  return parts.join(' ');
}

/** Throws unless every key of `params` is one of `known`. */
export function rejectUnknownParams(id: string, params: Record<string, unknown>, known: readonly string[]): void {
  for (const name of Object.keys(params)) {
    if (!known.includes(name)) {
      const list = known.length > 0 ? `known: ${known.join(', ')}` : 'it takes none';
      throw configError(`predictor.params.${name}`, `unknown parameter for ${id}; ${list}`);
    }
  }
}

/** `params[name]` checked against `rule`, or `fallback` when absent. */
export function numberParam(
  params: Record<string, unknown>,
  name: string,
  fallback: number,
  rule: NumberRule = {},
): number {
  const value = params[name] ?? fallback;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!rule.integer || Number.isInteger(value)) &&
    (rule.min === undefined || (rule.minExclusive ? value > rule.min : value >= rule.min)) &&
    (rule.max === undefined || value <= rule.max);
  if (!ok) {
    throw configError(`predictor.params.${name}`, `expected ${describe(rule)}, got ${JSON.stringify(value)}`);
  }
  return value;
}
