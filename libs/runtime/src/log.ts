// Structured logging to stderr, one line per record: `time level [component] message {fields}`
// by default, or one JSON object per line with ARMATURE_LOG_FORMAT=json (time, level,
// service, instance, component, msg, request_id, fields). A record written while serving
// a request carries its request id (the client's x-request-id, or one the frontend made),
// taken from the async context, so one id joins the lines of every process it crossed;
// with tracing on it also carries the active span's trace_id and span_id.
// Services log for operators; client-visible text goes through errors.ts instead.
import { AsyncLocalStorage } from 'node:async_hooks';

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

const json = process.env.ARMATURE_LOG_FORMAT === 'json';
const identity: { service?: string; instance?: string } = {};

/** Names the process in every JSON record (its service kind and instance id). */
export function setLogIdentity(service: string, instance: string): void {
  identity.service = service;
  identity.instance = instance;
}

/** What a record written inside a request says about it. */
export interface LogContext {
  requestId: string;
}

const scope = new AsyncLocalStorage<LogContext>();

/** Runs `fn` with `context` attached to every record it (and what it starts) writes. */
export function withLogContext<T>(context: LogContext, fn: () => T): T {
  return scope.run(context, fn);
}

/** The request being served here, if any. */
export function currentLogContext(): LogContext | undefined {
  return scope.getStore();
}

let traceIds: (() => { traceId: string; spanId: string } | undefined) | undefined;

/** Tracing (tracing.ts) names the active span here, so records made inside one carry its ids. */
export function setLogTraceIds(fn: typeof traceIds): void {
  traceIds = fn;
}

/** Sets the process-wide log level (default from ARMATURE_LOG_LEVEL, else info). */
export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

/** Creates a logger for a component. */
export function createLogger(component: string): Logger {
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < ORDER[threshold]) return;
    const requestId = scope.getStore()?.requestId;
    const ids = traceIds?.();
    const time = new Date().toISOString();
    if (json) {
      const record = {
        time,
        level,
        service: identity.service,
        instance: identity.instance,
        component,
        msg,
        ...(requestId ? { request_id: requestId } : {}),
        ...(ids ? { trace_id: ids.traceId, span_id: ids.spanId } : {}),
        ...fields,
      };
      process.stderr.write(`${safeJson(record)}\n`);
      return;
    }
    const all =
      requestId || ids
        ? {
            ...(requestId ? { request_id: requestId } : {}),
            ...(ids ? { trace_id: ids.traceId } : {}),
            ...fields,
          }
        : fields;
    const extra = all && Object.keys(all).length > 0 ? ' ' + safeJson(all) : '';
    process.stderr.write(`${time} ${level.toUpperCase().padEnd(5)} [${component}] ${msg}${extra}\n`);
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
