// Inter-token latency of decoding requests while long prompts are evaluated, in the
// llama.cpp engine, with the step gate (lockstep: decodes ride in every batch) and without
// it (node-llama-cpp's own timing), alternating repeat by repeat in one run:
//
//   npm run bench:engine:itl -- [--model file.gguf] [--decoders 6] [--prompts 2] [--prompt-tokens 1500]
//     [--batch-size 512] [--repeats 3] [--out-dir docs/benchmarks/engine/itl]
//
// Each measurement starts --decoders requests (64-token prompts) that decode until the end;
// once they are decoding, --prompts requests with --prompt-tokens-token prompts arrive at
// once. The window runs from then until the last of them has its first token. Reported:
// the decoders' inter-token gaps in the window, the decode tokens they produced in it, and
// the long prompts' time to first token. Results and an ITL CDF plot go to --out-dir.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLlamaCppEngine, ensureTestModel, type EngineOutput } from '@armature/engine';
import { ProgressBar } from './progress.js';
import { cdfPoints, lineChart, percentile } from './results/index.js';

const { values: v } = parseArgs({
  options: {
    model: { type: 'string' },
    decoders: { type: 'string', default: '6' },
    prompts: { type: 'string', default: '2' },
    'prompt-tokens': { type: 'string', default: '1500' },
    'batch-size': { type: 'string', default: '512' },
    repeats: { type: 'string', default: '3' },
    'out-dir': { type: 'string', default: 'docs/benchmarks/engine/itl' },
  },
});
const int = (name: keyof typeof v): number => {
  const n = Number(v[name]);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer`);
  return n;
};
const decoders = int('decoders');
const prompts = int('prompts');
const promptTokens = int('prompt-tokens');
const batchSize = int('batch-size');
const repeats = int('repeats');
const modelPath = v.model ?? (await ensureTestModel());

let seed = 0;
/** BOS, then word ids of the generated models' vocabulary; distinct per call. */
const prompt = (n: number): number[] => {
  seed++;
  return [1, ...Array.from({ length: n - 1 }, (_, i) => 300 + ((seed * 7919 + i * 104_729) % 3_000))];
};

interface Measurement {
  lockstep: boolean;
  gapsMs: number[];
  decodeTokens: number;
  windowMs: number;
  ttftMs: number[];
}

async function measure(lockstep: boolean): Promise<Measurement> {
  const engine = await createLlamaCppEngine({
    modelPath,
    sequences: decoders + prompts,
    contextSize: Math.max(4096, promptTokens + 64),
    batchSize,
    threads: 1,
    lockstep,
  });
  try {
    const abort = new AbortController();
    /** The measured window: open from the long prompts' arrival until the last one's first token. */
    const window = { open: false, start: 0, end: 0 };
    const gaps: number[] = [];
    let decodeTokens = 0;
    let started = 0;
    let onStarted: () => void = () => {};
    const allStarted = new Promise<void>((resolve) => (onStarted = resolve));
    const running = Array.from({ length: decoders }, async (_, i) => {
      let last = 0;
      const stream = engine.generate(
        {
          requestId: `decode-${i}`,
          tokenIds: prompt(64),
          sampling: { temperature: 0 },
          stop: { maxTokens: 4000, ignoreEos: true, stopTokenIds: [] },
        },
        abort.signal,
      );
      for await (const out of stream as AsyncIterable<EngineOutput>) {
        const now = performance.now();
        if (last === 0 && ++started === decoders) onStarted();
        if (window.open && now >= window.start && (window.end === 0 || now <= window.end)) {
          if (last >= window.start) gaps.push(now - last);
          decodeTokens += out.tokenIds.length;
        }
        last = now;
      }
    });
    await allStarted;
    await new Promise((r) => setTimeout(r, 200));
    window.start = performance.now();
    window.open = true;
    const ttftMs = await Promise.all(
      Array.from({ length: prompts }, async (_, k) => {
        const stream = engine.generate(
          {
            requestId: `prompt-${k}`,
            tokenIds: prompt(promptTokens),
            sampling: { temperature: 0 },
            stop: { maxTokens: 1, ignoreEos: true, stopTokenIds: [] },
          },
          new AbortController().signal,
        );
        let first = 0;
        for await (const _ of stream) first ||= performance.now();
        return first - window.start;
      }),
    );
    window.end = performance.now();
    abort.abort();
    await Promise.all(running);
    return { lockstep, gapsMs: gaps, decodeTokens, windowMs: window.end - window.start, ttftMs };
  } finally {
    await engine.close();
  }
}

const bar = new ProgressBar('engine-itl');
const runs: Measurement[] = [];
await measure(true); // warm-up: JIT, model pages
for (let r = 0; r < repeats; r++) {
  for (const lockstep of r % 2 === 0 ? [true, false] : [false, true]) {
    runs.push(await measure(lockstep));
    const last = runs.at(-1)!;
    bar.update({
      done: runs.length,
      total: repeats * 2,
      note: `lockstep ${lockstep}: ITL max ${Math.max(...last.gapsMs).toFixed(0)} ms`,
    });
  }
}
bar.finish();

const summarize = (lockstep: boolean) => {
  const ms = runs.filter((m) => m.lockstep === lockstep);
  const gaps = ms.flatMap((m) => m.gapsMs).sort((a, b) => a - b);
  const windowS = ms.reduce((a, m) => a + m.windowMs, 0) / 1000;
  return {
    lockstep,
    gaps: gaps.length,
    itl_p50_ms: percentile(gaps, 0.5),
    itl_p90_ms: percentile(gaps, 0.9),
    itl_p99_ms: percentile(gaps, 0.99),
    itl_max_ms: gaps.at(-1) ?? 0,
    decode_tokens_per_s_in_window: ms.reduce((a, m) => a + m.decodeTokens, 0) / windowS,
    long_prompt_ttft_mean_ms: ms.flatMap((m) => m.ttftMs).reduce((a, t, _, all) => a + t / all.length, 0),
    sortedGaps: gaps,
  };
};
const on = summarize(true);
const off = summarize(false);
const outDir = v['out-dir']!;
await mkdir(outDir, { recursive: true });
const strip = ({ sortedGaps: _, ...rest }: ReturnType<typeof summarize>) => rest;
const results = {
  startedAt: new Date().toISOString(),
  model: modelPath,
  settings: { decoders, prompts, promptTokens, batchSize, repeats, threads: 1 },
  lockstep: strip(on),
  nodeLlamaCppTiming: strip(off),
  runs: runs.map((m) => ({ ...m, gapsMs: m.gapsMs.map((g) => Math.round(g * 100) / 100) })),
};
await writeFile(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(
  join(outDir, 'itl_cdf.svg'),
  lineChart({
    title: `Decode ITL while ${prompts} × ${promptTokens}-token prompts are evaluated`,
    xLabel: 'inter-token gap (ms)',
    yLabel: 'fraction of gaps',
    logX: true,
    series: [
      { name: 'lockstep (default)', points: cdfPoints(on.sortedGaps) },
      { name: "node-llama-cpp's timing", points: cdfPoints(off.sortedGaps) },
    ],
    yInclude: [0, 1],
  }),
);
for (const s of [on, off]) {
  const r = strip(s);
  process.stdout.write(
    `${r.lockstep ? 'lockstep' : 'node-llama-cpp timing'}: ITL p50 ${r.itl_p50_ms.toFixed(1)} p90 ${r.itl_p90_ms.toFixed(1)} ` +
      `p99 ${r.itl_p99_ms.toFixed(1)} max ${r.itl_max_ms.toFixed(1)} ms; decode ${r.decode_tokens_per_s_in_window.toFixed(1)} tok/s ` +
      `in the window; long-prompt TTFT ${r.long_prompt_ttft_mean_ms.toFixed(0)} ms\n`,
  );
}
process.stdout.write(`${JSON.stringify({ lockstep: strip(on), nodeLlamaCppTiming: strip(off) })}\n`);
