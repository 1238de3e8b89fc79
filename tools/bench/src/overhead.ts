// Overhead of the serving path: latency of a request through the frontend (HTTP, chat
// template, tokenization, router, worker, detokenization) against the same request sent
// straight to the worker over gRPC, interleaved in one run on the same processes.
//
//   npm run bench:overhead -- --requests 2000 --max-tokens 8 [--tracing on]
//
// --tracing on exports every span of every service (always-on sampling) over OTLP
// http/protobuf to a receiver in this process; off (the default) sets no OTEL_* variable.
//
// Prints progress to stderr and a JSON object as the last line of stdout.
import { parseArgs } from 'node:util';
import { WorkerClient, type GenerateRequest } from '@armature/proto';
import { CLIENT_CHANNEL_OPTIONS, FileDiscovery, insecureCredentials } from '@armature/runtime';
import { applyChatTemplate, loadTokenizer } from '@armature/tokenizer';
import { startOtlpReceiver } from '@armature/testing/otlp-receiver';
import { startLocalCluster } from './local-cluster.js';
import { distribution } from './results/distribution.js';

const MODEL = 'armature/bench-model';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '200' },
    'max-tokens': { type: 'string', default: '8' },
    stream: { type: 'boolean', default: false },
    tracing: { type: 'string', default: 'off' },
  },
});
if (args.tracing !== 'on' && args.tracing !== 'off') throw new Error('--tracing must be on or off');
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const MAX_TOKENS = Number(args['max-tokens']);

async function main(): Promise<void> {
  const receiver = args.tracing === 'on' ? await startOtlpReceiver() : undefined;
  // A very fast mocker, so the engine's own time does not hide the path's overhead.
  const cluster = await startLocalCluster({
    model: MODEL,
    workers: 1,
    policy: 'least-loaded',
    engineArgs: { speedup: 1e6, eosProbability: 0 },
    env: receiver
      ? {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
          OTEL_TRACES_SAMPLER: 'always_on',
        }
      : {},
  });
  try {
    const url = cluster.url;
    const discovery = new FileDiscovery({ dir: cluster.discoveryDir });
    const worker = (await discovery.list({ role: 'decode' }))[0]!;
    const client = new WorkerClient(worker.grpcAddress!, insecureCredentials(), CLIENT_CHANNEL_OPTIONS);
    const tokenizer = await loadTokenizer(worker.card!.tokenizer);
    const messages = [{ role: 'user', content: 'Explain how a KV-cache-aware router chooses a worker, in detail.' }];
    const promptIds = applyChatTemplate(worker.card!.chatTemplate, messages, tokenizer);

    const direct = (i: number): Promise<number> =>
      new Promise((res, rej) => {
        const t0 = performance.now();
        const req: GenerateRequest = {
          requestId: `direct-${i}`,
          model: MODEL,
          tokenIds: promptIds,
          sampling: { seed: i },
          stop: { maxTokens: MAX_TOKENS, ignoreEos: true, stopTokenIds: [] },
        };
        const call = client.generate(req);
        call.on('data', () => undefined);
        call.on('error', rej);
        call.on('end', () => res(performance.now() - t0));
      });
    const viaFrontend = async (i: number): Promise<number> => {
      const t0 = performance.now();
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: MODEL,
          messages,
          max_tokens: MAX_TOKENS,
          ignore_eos: true,
          seed: i,
          stream: args.stream,
        }),
      });
      await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return performance.now() - t0;
    };

    const directMs: number[] = [];
    const frontendMs: number[] = [];
    const total = WARMUP + REQUESTS;
    for (let i = 0; i < total; i++) {
      // Interleave, alternating which goes first, so drift affects both alike.
      let d: number;
      let f: number;
      if (i % 2 === 0) {
        d = await direct(i);
        f = await viaFrontend(i);
      } else {
        f = await viaFrontend(i);
        d = await direct(i);
      }
      if (i >= WARMUP) {
        directMs.push(d);
        frontendMs.push(f);
      }
      if ((i + 1) % 200 === 0) process.stderr.write(`\roverhead: ${i + 1}/${total} request pairs`);
    }
    process.stderr.write('\n');
    client.close();
    await discovery.close();
    const d = distribution(directMs);
    const f = distribution(frontendMs);
    const result = {
      bench: 'overhead',
      requests: REQUESTS,
      max_tokens: MAX_TOKENS,
      prompt_tokens: promptIds.length,
      stream: args.stream,
      tracing: args.tracing,
      ...(receiver ? { spans_received: receiver.spans.length } : {}),
      direct_ms: d,
      frontend_ms: f,
      added_p50_ms: f.p50 - d.p50,
      added_p99_ms: f.p99 - d.p99,
      ratio_p50: f.p50 / d.p50,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await cluster.stop();
    await receiver?.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
