// One service setting, described once: its key in the graph, its environment variable, its
// type, its default and its doc. A table of these per service kind is the single source
// from which the graph reads YAML, the launcher writes a child's environment and the
// service reads that environment back, so a default or a check cannot differ between them.
import { envEnum, envInt, envJson, envString, type EnvName } from '@armature/runtime';
import { GraphError } from '../errors.js';

type Env = Record<string, string | undefined>;

export interface Setting<T> {
  readonly env: EnvName;
  readonly type: 'string' | 'integer' | 'enum' | 'object';
  /** The value when neither the graph nor the environment gives one; the catalog states it too. */
  readonly default: T;
  readonly doc: string;
  /**
   * Key in the graph's service mapping (default: the setting's own key); null when the graph
   * fills the value itself (a worker's served model is the graph's `model`).
   */
  readonly yamlKey?: string | null;
  /** Checks a value from the graph; `path` is where it was (`services.router.policy`). */
  fromGraph(value: unknown, path: string): T;
  /** Reads the value back from a service's environment, with the same checks. */
  fromEnv(env: Env): T;
  /** The environment form; undefined writes nothing (an unset path). */
  toEnv(value: T): string | undefined;
  /**
   * false: the launcher writes the variable only when the value is not the default, so the
   * launcher's own environment (a shell's ARMATURE_PREFILL_TIMEOUT_MS) reaches the service.
   */
  readonly writeDefault?: boolean;
}

/** The same setting, written to a child's environment only when it is not the default. */
export function unlessDefault<T>(setting: Setting<T>): Setting<T> {
  return { ...setting, writeDefault: false };
}

/** A settings table: one Setting per field of the settings object S. */
export type SettingsTable<S> = { readonly [K in keyof S]: Setting<S[K]> };

const describe = (v: unknown): string => JSON.stringify(v);

/** A non-empty string; `expected` names it in errors ("a policy id"). An empty default means unset. */
export function stringSetting(env: EnvName, fallback: string, doc: string, expected: string): Setting<string> {
  return {
    env,
    type: 'string',
    default: fallback,
    doc,
    fromGraph(v, path) {
      if (typeof v !== 'string' || v.length === 0)
        throw new GraphError(`${path} must be ${expected}, got ${describe(v)}`);
      return v;
    },
    fromEnv: (e) => envString(env, fallback, e),
    toEnv: (v) => (v === '' ? undefined : v),
  };
}

/** An integer in [min, max]. */
export function integerSetting(
  env: EnvName,
  fallback: number,
  range: { min: number; max?: number },
  doc: string,
  expected = `an integer in [${range.min}, ${range.max ?? 'inf'}]`,
): Setting<number> {
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  return {
    env,
    type: 'integer',
    default: fallback,
    doc,
    fromGraph(v, path) {
      if (!Number.isSafeInteger(v) || (v as number) < range.min || (v as number) > max)
        throw new GraphError(`${path} must be ${expected}, got ${describe(v)}`);
      return v as number;
    },
    fromEnv: (e) => envInt(env, fallback, { min: range.min, max }, e),
    toEnv: (v) => String(v),
  };
}

/** One of a fixed set of names; `noun` names one in errors ("engine"). */
export function enumSetting<T extends string>(
  env: EnvName,
  values: readonly T[],
  fallback: T,
  doc: string,
  noun: string,
): Setting<T> {
  return {
    env,
    type: 'enum',
    default: fallback,
    doc,
    fromGraph(v, path) {
      if (typeof v !== 'string' || v.length === 0)
        throw new GraphError(`${path} must be an ${noun} name, got ${describe(v)}`);
      if (!(values as readonly string[]).includes(v))
        throw new GraphError(`${path}: unknown ${noun} ${describe(v)} (known: ${values.join(', ')})`);
      return v as T;
    },
    fromEnv: (e) => envEnum(env, values, fallback, e),
    toEnv: (v) => v,
  };
}

/**
 * A JSON object, passed through as given (its fields are checked by the service kind's own
 * validation, which knows what they mean); `expected` lists its fields in errors.
 */
export function objectSetting<T extends object>(env: EnvName, doc: string, expected: string): Setting<T> {
  return {
    env,
    type: 'object',
    default: {} as T,
    doc,
    fromGraph(v, path) {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new GraphError(`${path} must be ${expected}, got ${describe(v)}`);
      return v as T;
    },
    fromEnv: (e) => envJson(env, {}, e) as T,
    toEnv: (v) => JSON.stringify(v),
  };
}

/**
 * Reads a service's settings from its graph mapping: each key it gives is checked, each it
 * omits takes the default; `filled` supplies the settings the graph fills itself.
 */
export function settingsFromGraph<S>(
  table: SettingsTable<S>,
  raw: Record<string, unknown>,
  where: string,
  filled: Partial<S> = {},
): S {
  const out = {} as S;
  for (const key of Object.keys(table) as Array<keyof S & string>) {
    const setting = table[key];
    const yamlKey = setting.yamlKey === undefined ? key : setting.yamlKey;
    if (yamlKey === null) {
      out[key] = filled[key] ?? setting.default;
      continue;
    }
    const v = raw[yamlKey];
    out[key] = v === undefined ? setting.default : setting.fromGraph(v, `${where}.${yamlKey}`);
  }
  return out;
}

/**
 * A service's environment for these settings: one variable per setting (unset paths
 * omitted, and defaults of settings marked `writeDefault: false`, so that a value set in
 * the launcher's own environment still reaches the service).
 */
export function settingsToEnv<S>(table: SettingsTable<S>, settings: S): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of Object.keys(table) as Array<keyof S & string>) {
    const setting = table[key];
    const value = setting.toEnv(settings[key]);
    if (value === undefined) continue;
    if (setting.writeDefault === false && value === setting.toEnv(setting.default)) continue;
    env[setting.env] = value;
  }
  return env;
}

/** Reads settings back from an environment; a variable that is unset takes the default. */
export function settingsFromEnv<S>(table: SettingsTable<S>, env: Env = process.env): S {
  const out = {} as S;
  for (const key of Object.keys(table) as Array<keyof S & string>) out[key] = table[key].fromEnv(env);
  return out;
}

/** The defaults of a table, as a settings object. */
export function defaultSettings<S>(table: SettingsTable<S>): S {
  const out = {} as S;
  for (const key of Object.keys(table) as Array<keyof S & string>) {
    const d = table[key].default;
    out[key] = (typeof d === 'object' && d !== null ? { ...d } : d) as S[typeof key];
  }
  return out;
}
