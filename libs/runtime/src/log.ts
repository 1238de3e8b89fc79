// Minimal structured logging to stderr: one line per record, `level component message {fields}`.
// Services log for operators; client-visible text goes through errors.ts instead.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

let threshold: LogLevel = (process.env.ARMATURE_LOG_LEVEL as LogLevel | undefined) ?? 'info';
if (!(threshold in ORDER)) threshold = 'info';

/** Sets the process-wide log level (default from ARMATURE_LOG_LEVEL, else info). */
export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

/** Creates a logger for a component. */
export function createLogger(component: string): Logger {
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < ORDER[threshold]) return;
    const extra = fields && Object.keys(fields).length > 0 ? ' ' + safeJson(fields) : '';
    process.stderr.write(
      `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${component}] ${msg}${extra}\n`,
    );
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (sub) => createLogger(`${component}/${sub}`),
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Error ? (v.stack ?? v.message) : v,
    );
  } catch {
    return '"<unserialisable>"';
  }
}
