// The trace of one disaggregated request, for docs/observability.md: starts a local
// cluster (a prefill and a decode worker, the mocker) with tracing on into an OTLP
// receiver in this process, sends one long prompt, and prints its spans as a tree with
// each one's start offset and duration; --svg draws the same as a waterfall.
//
//   npm run trace:one -- [--prompt-tokens 2048] [--svg docs/observability/trace.svg]
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startOtlpReceiver, type ReceivedSpan } from '@armature/testing/otlp-receiver';
import { startLocalCluster } from './local-cluster.js';

const MODEL = 'armature/trace-model';
const { values: args } = parseArgs({
  options: {
    'prompt-tokens': { type: 'string', default: '2048' },
    'max-tokens': { type: 'string', default: '16' },
    svg: { type: 'string' },
  },
});

async function main(): Promise<void> {
  const receiver = await startOtlpReceiver();
  process.stderr.write('trace-one: starting a prefill worker, a decode worker, a router and a frontend\n');
  const cluster = await startLocalCluster({
    model: MODEL,
    workers: 1,
    prefillWorkers: 1,
    policy: 'kv',
    engineArgs: { speedup: 1 },
    routerEnv: { ARMATURE_DISAGG: JSON.stringify({ minRemotePrefillTokens: 512 }) },
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_EXPORTER: 'otlp' },
  });
  try {
    const n = Number(args['prompt-tokens']);
    const prompt = Array.from({ length: n }, (_, i) => 1000 + ((i * 7919) % 20_000));
    const res = await fetch(`${cluster.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'trace-one' },
      body: JSON.stringify({ model: MODEL, prompt, max_tokens: Number(args['max-tokens']), ignore_eos: true }),
    });
    await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    process.stderr.write(
      `trace-one: served by prefill ${res.headers.get('x-armature-prefill-worker')}; waiting for spans\n`,
    );
  } finally {
    await cluster.stop(); // each service exports what it still holds as it stops
  }
  const root = receiver.spans.find((s) => s.attributes['armature.request_id'] === 'trace-one');
  if (!root) throw new Error('no span of the request arrived');
  const spans = receiver.spans.filter((s) => s.traceId === root.traceId).sort((a, b) => a.startMs - b.startMs);
  await receiver.close();
  const rows = tree(spans, root);
  const t0 = root.startMs;
  process.stdout.write(
    `trace ${root.traceId}: ${spans.length} spans, ${new Set(spans.map((s) => s.service)).size} processes\n\n`,
  );
  process.stdout.write('| span | service | start (ms) | duration (ms) | attributes |\n|---|---|---|---|---|\n');
  for (const { span, depth } of rows) {
    const attrs = Object.entries(span.attributes)
      .filter(([k]) => k.startsWith('armature.') && k !== 'armature.request_id')
      .map(([k, v]) => `${k.replace(/^armature\./, '')}=${v}`)
      .join(', ');
    process.stdout.write(
      `| ${'&nbsp;&nbsp;'.repeat(depth)}${span.name} | ${span.service} | ${(span.startMs - t0).toFixed(2)} | ${(span.endMs - span.startMs).toFixed(2)} | ${attrs} |\n`,
    );
  }
  if (args.svg) {
    await writeFile(args.svg, waterfall(rows, t0, root.endMs - t0));
    process.stderr.write(`trace-one: wrote ${args.svg}\n`);
  }
}

/** Depth-first, children by start time. */
function tree(spans: ReceivedSpan[], root: ReceivedSpan): Array<{ span: ReceivedSpan; depth: number }> {
  const out: Array<{ span: ReceivedSpan; depth: number }> = [];
  const visit = (span: ReceivedSpan, depth: number): void => {
    out.push({ span, depth });
    for (const child of spans.filter((s) => s.parentSpanId === span.spanId)) visit(child, depth + 1);
  };
  visit(root, 0);
  return out;
}

const COLOURS: Record<string, string> = {
  frontend: '#4e79a7',
  router: '#f28e2b',
  prefill: '#59a14f',
  decode: '#e15759',
};

function waterfall(rows: Array<{ span: ReceivedSpan; depth: number }>, t0: number, totalMs: number): string {
  const labelW = 300;
  const barW = 600;
  const rowH = 22;
  const h = rows.length * rowH + 40;
  const x = (ms: number) => labelW + (ms / totalMs) * barW;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = rows.map(({ span, depth }, i) => {
    const y = 30 + i * rowH;
    const start = x(span.startMs - t0);
    const width = Math.max(1, x(span.endMs - t0) - start);
    const ms = (span.endMs - span.startMs).toFixed(1);
    return (
      `<text x="${8 + depth * 12}" y="${y + 15}">${esc(span.name)} <tspan fill="#777">(${span.service})</tspan></text>` +
      `<rect x="${start.toFixed(1)}" y="${y + 3}" width="${width.toFixed(1)}" height="${rowH - 6}" fill="${COLOURS[span.service] ?? '#999'}"/>` +
      `<text x="${(start + width + 4).toFixed(1)}" y="${y + 15}" fill="#555">${ms} ms</text>`
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 80}" height="${h}" font-family="sans-serif" font-size="12">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="8" y="18" font-weight="bold">One disaggregated request: ${totalMs.toFixed(1)} ms end to end</text>` +
    bars.join('') +
    '</svg>\n'
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
