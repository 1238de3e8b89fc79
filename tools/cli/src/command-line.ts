// One description per command (its arguments, and each option's value, default and doc)
// from which the CLI prints `--help` and checks a command line before running anything:
// unknown options, missing values, numbers, choices and JSON objects fail as a UsageError
// naming the option, so the command itself never meets them.
import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';

export interface OptionSpec {
  /** The value's placeholder (`<base>`); none: a flag. */
  value?: string;
  /** The default the command applies, as shown in help. */
  default?: string;
  doc: string;
  /** Checked before the command runs: a finite number, a JSON object, or one of these choices. */
  check?: 'number' | 'json-object' | readonly string[];
  /** May be given more than once. */
  multiple?: boolean;
  required?: boolean;
}

export interface CommandSpec {
  name: string;
  /** `armature <name> <synopsis>` */
  synopsis: string;
  summary: string;
  /** Positional arguments (`<a.json>`): their docs; none: the command takes none. */
  positionals?: Record<string, string>;
  /** Most positional arguments (default: any number when `positionals` is given, else none). */
  maxPositionals?: number;
  options: Record<string, OptionSpec>;
  /** Free text after the options (dataset specs, environment variables). */
  notes?: string;
  /** Checks across options (one of two required, a mode's own options). */
  check?: (values: ParsedValues, positionals: string[]) => string | undefined;
}

export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

/** Whether the command line asks for help (`--help` or `-h` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** The command's help: synopsis, summary, arguments, options with defaults, notes. */
export function helpText(spec: CommandSpec): string {
  const rows = (entries: Array<[string, string]>): string => {
    const width = Math.max(...entries.map(([k]) => k.length)) + 2;
    return entries.map(([k, doc]) => `  ${k.padEnd(width)}${doc}`).join('\n');
  };
  const options: Array<[string, string]> = Object.entries(spec.options).map(([name, o]) => {
    const extra = [
      Array.isArray(o.check) ? o.check.join(' | ') : undefined,
      o.required ? 'required' : undefined,
      o.default === undefined ? undefined : `default ${o.default}`,
      o.multiple ? 'repeatable' : undefined,
    ].filter(Boolean);
    return [`--${name}${o.value ? ` ${o.value}` : ''}`, `${o.doc}${extra.length ? ` (${extra.join('; ')})` : ''}`];
  });
  options.push(['-h, --help', 'this text']);
  const parts = [`usage: armature ${spec.name} ${spec.synopsis}`.trimEnd(), '', spec.summary];
  if (spec.positionals) parts.push('', 'arguments:', rows(Object.entries(spec.positionals)));
  parts.push('', 'options:', rows(options));
  if (spec.notes) parts.push('', spec.notes.trimEnd());
  return parts.join('\n') + '\n';
}

/** Parses and checks `argv` against the command's options; throws UsageError naming what is wrong. */
export function parseCommandLine(
  spec: CommandSpec,
  argv: readonly string[],
): { values: ParsedValues; positionals: string[] } {
  const parsed = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: spec.positionals !== undefined,
    options: Object.fromEntries(
      Object.entries(spec.options).map(([name, o]) => [
        name,
        { type: o.value ? ('string' as const) : ('boolean' as const), multiple: o.multiple ?? false },
      ]),
    ),
  });
  const values = parsed.values as ParsedValues;
  const positionals = parsed.positionals;
  const max = spec.maxPositionals ?? (spec.positionals ? Infinity : 0);
  if (positionals.length > max) throw new UsageError(`unexpected argument ${positionals[max]!}`);
  for (const [name, o] of Object.entries(spec.options)) {
    const raw = values[name];
    if (raw === undefined) {
      if (o.required) throw new UsageError(`--${name} ${o.value ?? ''} is required`.replace(/ +is/, ' is'));
      continue;
    }
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      if (typeof value !== 'string') continue;
      const problem = checkValue(o, value);
      if (problem) throw new UsageError(`--${name} must be ${problem}, got ${JSON.stringify(value)}`);
    }
  }
  const problem = spec.check?.(values, positionals);
  if (problem) throw new UsageError(problem);
  return { values, positionals };
}

function checkValue(o: OptionSpec, value: string): string | undefined {
  if (o.check === 'number') return value.trim() !== '' && Number.isFinite(Number(value)) ? undefined : 'a number';
  if (o.check === 'json-object') {
    try {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return undefined;
    } catch {
      // reported below
    }
    return 'a JSON object';
  }
  if (Array.isArray(o.check) && !o.check.includes(value)) return `one of ${o.check.join(', ')}`;
  return undefined;
}
