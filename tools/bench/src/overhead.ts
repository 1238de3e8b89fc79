// Overhead of the serving path: latency of a request through the frontend (HTTP, chat
// template, tokenization, router, worker, detokenization) against the same request sent
// straight to the worker over gRPC, interleaved in one run on the same processes.
//
//   npm run bench:overhead -- --requests 2000 --max-tokens 8
//
// Prints progress to stderr and a JSON object as the last line of stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WorkerClient, type GenerateRequest } from '@armature/proto';
import { CLIENT_CHANNEL_OPTIONS, FileDiscovery, insecureCredentials } from '@armature/runtime';
import { applyChatTemplate, loadTokenizer } from '@armature/tokenizer';
import { summarize } from './stats.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const MODEL = 'armature/bench-model';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '200' },
    'max-tokens': { type: 'string', default: '8' },
    stream: { type: 'boolean', default: false },
  },
});
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const MAX_TOKENS = Number(args['max-tokens']);

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function start(script: string, env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(ROOT, script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((res, rej) => {
    let out = '';
    const on = (b: Buffer): void => {
      out += b.toString();
      if (ready.test(out)) res(child);
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', () => rej(new Error(`${script} exited:\n${out}`)));
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'armature-bench-'));
  const common = { ARMATURE_DISCOVERY_BACKEND: 'file', ARMATURE_DISCOVERY_DIR: dir, ARMATURE_LOG_LEVEL: 'warn' };
  const port = await freePort();
  // A very fast mocker, so the engine's own time does not hide the path's overhead.
  const engineArgs = JSON.stringify({ speedup: 1e6, eosProbability: 0 });
  const children = [
    await start(
      'services/decode/dist/main.js',
      {
        ...common,
        ARMATURE_LOG_LEVEL: 'info',
        ARMATURE_INSTANCE_ID: 'decode-0',
        ARMATURE_MODEL: MODEL,
        ARMATURE_ENGINE_ARGS: engineArgs,
      },
      /worker ready/,
    ),
    await start(
      'services/router/dist/main.js',
      { ...common, ARMATURE_LOG_LEVEL: 'info', ARMATURE_ROUTER_POLICY: 'least-loaded' },
      /router ready/,
    ),
    await start(
      'services/frontend/dist/main.js',
      { ...common, ARMATURE_LOG_LEVEL: 'info', ARMATURE_HTTP_PORT: String(port) },
      /frontend listening/,
    ),
  ];
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 200; i++) {
      const h = await fetch(`${url}/health`).catch(() => undefined);
      if (h?.ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const discovery = new FileDiscovery({ dir });
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
    const d = summarize(directMs);
    const f = summarize(frontendMs);
    const result = {
      bench: 'overhead',
      requests: REQUESTS,
      max_tokens: MAX_TOKENS,
      prompt_tokens: promptIds.length,
      stream: args.stream,
      direct_ms: d,
      frontend_ms: f,
      added_p50_ms: f.p50 - d.p50,
      added_p99_ms: f.p99 - d.p99,
      ratio_p50: f.p50 / d.p50,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
