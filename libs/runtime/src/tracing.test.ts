// What the OTEL_* variables turn on, and that the helpers are pass-throughs while tracing is off.
import { describe, expect, it } from 'vitest';
import { Metadata } from '@grpc/grpc-js';
import {
  inSpan,
  injectTraceContext,
  iterateInSpan,
  startSpan,
  tracingEnabled,
  tracingSettingsFromEnv,
} from './tracing.js';

describe('tracingSettingsFromEnv', () => {
  it('is off unless an exporter or an OTLP endpoint is named', () => {
    expect(tracingSettingsFromEnv({})).toEqual({ exporter: 'none', protocol: 'http/protobuf', problems: [] });
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).exporter).toBe('otlp');
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://x/v1/traces' }).exporter).toBe('otlp');
    expect(tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'console' }).exporter).toBe('console');
    expect(
      tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x' }).exporter,
    ).toBe('none');
    expect(tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }).exporter).toBe('none');
  });

  it('reads the protocol, traces-specific first', () => {
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).protocol).toBe('http/json');
    expect(
      tracingSettingsFromEnv({
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      }).protocol,
    ).toBe('http/protobuf');
  });

  it('names each malformed value and goes on with a default', () => {
    const s = tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'jaeger,otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect(s.exporter).toBe('otlp');
    expect(s.protocol).toBe('http/protobuf');
    expect(s.problems).toEqual([
      'OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only http/protobuf and http/json; using http/protobuf',
      'OTEL_TRACES_EXPORTER=jaeger,otlp: jaeger is not one of otlp, console, none; ignored',
    ]);
  });
});

describe('tracing off', () => {
  it('makes no spans, adds no metadata and hands streams back untouched', async () => {
    expect(tracingEnabled()).toBe(false);
    expect(startSpan('x')).toBeUndefined();
    expect(await inSpan('x', undefined, async (span) => span)).toBeUndefined();
    const source = (async function* () {
      yield 1;
    })();
    expect(iterateInSpan(undefined, source)).toBe(source);
    const md = new Metadata();
    injectTraceContext(md);
    expect(md.toJSON()).toEqual({});
  });
});
