// A real OTLP/HTTP trace receiver for tests: POST /v1/traces in both encodings the
// services can send (http/protobuf and http/json), decoded into flat spans with their
// resource's service.name and service.instance.id. The protobuf side reads the wire format
// of opentelemetry-proto's ExportTraceServiceRequest directly (only the fields tests need).
import { createServer, type Server } from 'node:http';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  service: string;
  instance: string;
  attributes: Record<string, string | number | boolean>;
  /** Start and end, ms since the epoch. */
  startMs: number;
  endMs: number;
  /** The encoding it arrived in. */
  encoding: 'protobuf' | 'json';
}

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporters append /v1/traces). */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Answers every export with this HTTP status from now on (200: accept). */
  failWith(status: number): void;
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1 (a free port). */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  let status = 200;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
      if (status !== 200) return void res.writeHead(status).end();
      const body = Buffer.concat(chunks);
      const type = req.headers['content-type'] ?? '';
      try {
        if (type.includes('json')) {
          spans.push(...fromJson(JSON.parse(body.toString('utf8')) as JsonRequest));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } else {
          spans.push(...fromProtobuf(body));
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        }
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    failWith: (s) => (status = s),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type JsonValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
interface JsonKeyValue {
  key: string;
  value: JsonValue;
}
interface JsonRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind?: number;
        startTimeUnixNano?: string | number;
        endTimeUnixNano?: string | number;
        attributes?: JsonKeyValue[];
      }>;
    }>;
  }>;
}

function jsonAttributes(kvs: JsonKeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of kvs ?? []) {
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
  }
  return out;
}

function fromJson(req: JsonRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = jsonAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind ?? 0,
          service: String(resource['service.name'] ?? ''),
          instance: String(resource['service.instance.id'] ?? ''),
          attributes: jsonAttributes(s.attributes),
          startMs: Number(s.startTimeUnixNano ?? 0) / 1e6,
          endMs: Number(s.endTimeUnixNano ?? 0) / 1e6,
          encoding: 'json',
        });
  }
  return out;
}

/** Protobuf fields of one message: number -> values (varints as numbers, length-delimited as bytes). */
function fields(buf: Buffer): Map<number, Array<number | Buffer>> {
  const out = new Map<number, Array<number | Buffer>>();
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    let value: number | Buffer;
    if (wire === 0) value = varint();
    else if (wire === 1) {
      value = buf.subarray(i, i + 8); // fixed64 (times) or double: read by the field's reader
      i += 8;
    } else if (wire === 2) {
      const len = varint();
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 5) {
      value = buf.readFloatLE(i);
      i += 4;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

const bytes = (m: Map<number, Array<number | Buffer>>, f: number): Buffer =>
  (m.get(f)?.[0] as Buffer) ?? Buffer.alloc(0);
const messages = (m: Map<number, Array<number | Buffer>>, f: number): Buffer[] => (m.get(f) ?? []) as Buffer[];

function protoAttributes(kvs: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of kvs) {
    const f = fields(kv);
    const key = bytes(f, 1).toString('utf8');
    const v = fields(bytes(f, 2)); // AnyValue: 1 string, 2 bool, 3 int, 4 double
    if (v.has(1)) out[key] = bytes(v, 1).toString('utf8');
    else if (v.has(2)) out[key] = v.get(2)![0] === 1;
    else if (v.has(3)) out[key] = v.get(3)![0] as number;
    else if (v.has(4)) out[key] = (v.get(4)![0] as Buffer).readDoubleLE(0);
  }
  return out;
}

const nanosToMs = (b: Buffer): number => (b.length === 8 ? Number(b.readBigUInt64LE(0) / 1000n) / 1000 : 0);

function fromProtobuf(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of messages(fields(body), 1)) {
    const r = fields(rs);
    const resource = protoAttributes(messages(fields(bytes(r, 1)), 1));
    for (const ss of messages(r, 2))
      for (const sp of messages(fields(ss), 2)) {
        const s = fields(sp);
        out.push({
          traceId: bytes(s, 1).toString('hex'),
          spanId: bytes(s, 2).toString('hex'),
          parentSpanId: bytes(s, 4).toString('hex'),
          name: bytes(s, 5).toString('utf8'),
          kind: (s.get(6)?.[0] as number) ?? 0,
          service: String(resource['service.name'] ?? ''),
          instance: String(resource['service.instance.id'] ?? ''),
          attributes: protoAttributes(messages(s, 9)),
          startMs: nanosToMs(bytes(s, 7)),
          endMs: nanosToMs(bytes(s, 8)),
          encoding: 'protobuf',
        });
      }
  }
  return out;
}
