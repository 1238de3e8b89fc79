// Parameter validation shared by the policy factories. Raw parameters come from
// configuration (YAML, an environment variable holding JSON), so every value is checked
// here once, unknown names are refused (a typo must not silently fall back to a default),
// and each error names the policy and the parameter.

/** Bounds a numeric parameter must satisfy; finite numbers only. */
export interface NumberRule {
  min?: number;
  /** The value must be strictly above `min` (default false: `min` itself is allowed). */
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

/** Throws unless every key of `params` is one of `known`; `where` prefixes nested names. */
export function rejectUnknownParams(
  policy: string,
  params: Record<string, unknown>,
  known: readonly string[],
  where = '',
): void {
  for (const name of Object.keys(params)) {
    if (!known.includes(name)) {
      const list = known.length > 0 ? `; known: ${known.join(', ')}` : '; it takes none';
      throw new Error(`${policy}: unknown parameter ${JSON.stringify(where + name)}${list}`);
    }
  }
}

/** `params[name]` checked against `rule`, or `fallback` when absent (undefined). */
export function numberParam(
  policy: string,
  params: Record<string, unknown>,
  name: string,
  fallback: number,
  rule: NumberRule = {},
  where = '',
): number {
  const value = params[name] ?? fallback;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!rule.integer || Number.isInteger(value)) &&
    (rule.min === undefined || (rule.minExclusive ? value > rule.min : value >= rule.min)) &&
    (rule.max === undefined || value <= rule.max);
  if (!ok) {
    throw new Error(`${policy}: ${where}${name} must be ${describe(rule)}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `params[name]` as a plain object whose keys are all in `known`; `{}` when absent. */
export function objectParam(
  policy: string,
  params: Record<string, unknown>,
  name: string,
  known: readonly string[],
): Record<string, unknown> {
  const value = params[name] ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${policy}: ${name} must be an object, got ${JSON.stringify(value)}`);
  }
  const object = value as Record<string, unknown>;
  rejectUnknownParams(policy, object, known, `${name}.`);
  return object;
}
