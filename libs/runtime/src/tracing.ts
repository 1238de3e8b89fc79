// OpenTelemetry traces for every service, configured by the standard OTEL_* variables:
// one trace per request, with spans made by hand at the stages that matter (the HTTP
// request, tokenization, routing, prefill, the KV pull, decode, the response) and the W3C
// trace context carried over gRPC metadata into the router and both workers.
//
// Off (the default: no OTEL_TRACES_EXPORTER and no OTLP endpoint) nothing is registered and
// every helper here returns after one boolean test, so the hot path pays nothing. On, spans
// go through a batch processor to an OTLP/HTTP exporter (http/protobuf or http/json). A
// malformed value or an exporter that cannot reach its endpoint never stops serving: it is
// logged once and counted (tracingStats, exported as armature_tracing_* metrics).
import {
  context,
  diag,
  DiagLogLevel,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { createLogger, setLogTraceIds } from './log.js';

export { SpanKind } from '@opentelemetry/api';
export type { Span } from '@opentelemetry/api';

const log = createLogger('tracing');
type Env = Record<string, string | undefined>;

export type TracesExporter = 'otlp' | 'console' | 'none';
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** What the OTEL_* variables ask for, and the problems found reading them (each logged once). */
export interface TracingSettings {
  exporter: TracesExporter;
  protocol: OtlpProtocol;
  problems: string[];
}

/**
 * Reads OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL.
 * Unset, the exporter is otlp when an OTLP endpoint is set and none otherwise (so a stack
 * with no collector exports nothing). Endpoint, headers, timeout, service name, resource
 * attributes and sampler (OTEL_TRACES_SAMPLER, _ARG) are read by the SDK itself.
 */
export function tracingSettingsFromEnv(env: Env = process.env): TracingSettings {
  const problems: string[] = [];
  const protocolRaw = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? '').trim();
  let protocol: OtlpProtocol = 'http/protobuf';
  if (protocolRaw === 'http/json' || protocolRaw === 'http/protobuf') protocol = protocolRaw;
  else if (protocolRaw !== '')
    problems.push(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocolRaw}: only http/protobuf and http/json; using http/protobuf`);
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return { exporter: 'none', protocol, problems };
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const raw = (env.OTEL_TRACES_EXPORTER ?? '').trim();
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  let exporter: TracesExporter = names.length === 0 && endpoint ? 'otlp' : 'none';
  for (const name of names) {
    if (name === 'otlp' || name === 'console' || name === 'none') exporter = name;
    else problems.push(`OTEL_TRACES_EXPORTER=${raw}: ${name} is not one of otlp, console, none; ignored`);
  }
  return { exporter, protocol, problems };
}

const stats = { spansExported: 0, exportFailures: 0, configErrors: 0 };

/** Spans exported, failed exports and configuration problems since start (for the metrics page). */
export function tracingStats(): Readonly<typeof stats> {
  return stats;
}

let enabled = false;
let provider: BasicTracerProvider | undefined;
const tracer = () => trace.getTracer('armature');
const warned = new Set<string>();

/** Logs a tracing problem the first time it is seen, and counts every time. */
function problem(kind: 'export' | 'config', message: string): void {
  if (kind === 'export') stats.exportFailures++;
  else stats.configErrors++;
  if (warned.has(message)) return;
  warned.add(message);
  log.warn(message);
}

/** Counts exports; a failed one is logged once per distinct error and never thrown. */
class CountingExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) stats.spansExported += spans.length;
      else problem('export', `span export failed: ${result.error?.message ?? 'unknown error'}`);
      done(result);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * Starts tracing for this process when the environment asks for it: `service.name` is the
 * service (frontend, router, prefill, decode; OTEL_SERVICE_NAME overrides it) and
 * `service.instance.id` its instance id. Safe to call once per process; returns whether on.
 */
export function initTracing(service: string, instanceId: string, env: Env = process.env): boolean {
  if (provider) return true;
  const settings = tracingSettingsFromEnv(env);
  for (const p of settings.problems) problem('config', p);
  if (settings.exporter === 'none') return false;
  // The SDK reports bad values (a sampler, a ratio) through diag: the same once-and-count path.
  diag.setLogger(
    {
      error: (m) => problem(m.includes('export') ? 'export' : 'config', m),
      warn: (m) => problem('config', m),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    DiagLogLevel.WARN,
  );
  const exporter: SpanExporter =
    settings.exporter === 'console'
      ? new ConsoleSpanExporter()
      : settings.protocol === 'http/json'
        ? new OtlpJsonExporter()
        : new OtlpProtoExporter();
  const resource = resourceFromAttributes({
    'service.name': service,
    'service.instance.id': instanceId,
    'service.namespace': 'armature',
  }).merge(detectResources({ detectors: [envDetector] }));
  provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new CountingExporter(exporter), { scheduledDelayMillis: 1_000 })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  enabled = true;
  setLogTraceIds(activeTraceIds);
  log.info('tracing on', { exporter: settings.exporter, protocol: settings.protocol });
  return true;
}

/** Whether spans are being recorded in this process. */
export function tracingEnabled(): boolean {
  return enabled;
}

/** Exports what is buffered and stops (shutdown's last step); a no-op when off. */
export async function shutdownTracing(): Promise<void> {
  if (!provider) return;
  const p = provider;
  provider = undefined;
  enabled = false;
  await p.shutdown().catch((err: unknown) => problem('export', `tracing shutdown: ${String(err)}`));
}

/** The trace and span ids of the active span, for log records. */
function activeTraceIds(): { traceId: string; spanId: string } | undefined {
  const sc = trace.getSpanContext(context.active());
  return sc && trace.isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : undefined;
}

/** Starts a span under the active one; undefined when tracing is off. End it yourself. */
export function startSpan(name: string, attributes?: Attributes, kind: SpanKind = SpanKind.INTERNAL): Span | undefined {
  if (!enabled) return undefined;
  return tracer().startSpan(name, { kind, attributes });
}

/** Runs `fn` with `span` active (its calls and gRPC requests become children); plain `fn()` without one. */
export function withSpan<T>(span: Span | undefined, fn: () => T): T {
  return span ? context.with(trace.setSpan(context.active(), span), fn) : fn();
}

/** Marks a span failed with `err` (when there is one). */
export function failSpan(span: Span | undefined, err: unknown): void {
  if (!span) return;
  const message = err instanceof Error ? err.message : String(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  if (err instanceof Error) span.recordException(err);
}

/** Runs `fn` inside a new span that ends when it settles (failed when it throws). */
export async function inSpan<T>(
  name: string,
  attributes: Attributes | undefined,
  fn: (span: Span | undefined) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  if (!enabled) return fn(undefined);
  const span = tracer().startSpan(name, { kind, attributes });
  try {
    return await context.with(trace.setSpan(context.active(), span), () => fn(span));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** `source`, iterated with `span` active at each step so the calls it makes are the span's children; itself when there is no span. */
export function iterateInSpan<T>(span: Span | undefined, source: AsyncIterable<T>): AsyncIterable<T> {
  if (!span) return source;
  const ctx = trace.setSpan(context.active(), span);
  return {
    async *[Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      let done = false;
      try {
        for (;;) {
          const next = await context.with(ctx, () => it.next());
          if (next.done) {
            done = true;
            return;
          }
          yield next.value;
        }
      } finally {
        if (!done) await context.with(ctx, () => it.return?.());
      }
    },
  };
}

/** Sets attributes on the active span, if any (e.g. the router's choice on its Route span). */
export function annotateActiveSpan(attributes: Attributes): void {
  if (!enabled) return;
  trace.getActiveSpan()?.setAttributes(attributes);
}

/** Writes the active trace context (W3C traceparent/tracestate) into a carrier's set(key, value). */
export function injectTraceContext(carrier: { set(key: string, value: string): void }): void {
  if (!enabled) return;
  propagation.inject(context.active(), carrier, SETTER);
}

/** The context a caller's carrier (gRPC metadata, HTTP headers) names, to run its handler in. */
export function extractTraceContext(carrier: { get(key: string): unknown }): Context {
  return propagation.extract(ROOT_CONTEXT, carrier, GETTER);
}

/** Runs `fn` in the caller's trace context (from `carrier`) inside a server span that `fn` ends. */
export function serveInSpan<T>(
  carrier: { get(key: string): unknown },
  name: string,
  attributes: Attributes,
  fn: (span: Span | undefined) => T,
): T {
  if (!enabled) return fn(undefined);
  const parent = extractTraceContext(carrier);
  const span = tracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return context.with(trace.setSpan(parent, span), () => fn(span));
}

const SETTER: TextMapSetter<{ set(key: string, value: string): void }> = {
  set: (carrier, key, value) => carrier.set(key, value),
};
const GETTER: TextMapGetter<{ get(key: string): unknown }> = {
  get: (carrier, key) => {
    const v = carrier.get(key);
    const first = Array.isArray(v) ? (v as unknown[])[0] : v;
    return typeof first === 'string' ? first : first instanceof Buffer ? first.toString() : undefined;
  },
  keys: () => ['traceparent', 'tracestate'],
};
