// `armature profile --graph <file>`: the graph's workers profiled before deployment, live
// (one worker process of each profiled role, driven over gRPC) or, for the mocker, in
// virtual time (--virtual); then profile.json, prefill.svg, decode.svg and report.html.
// The command line's checks and --help live in tools/cli's command-specs.ts; keep the
// defaults here and there in step.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ProgressBar } from '@armature/bench';
import { ENGINES, loadGraph, type EngineKind, type WorkerSettings } from '@armature/deploy';
import { compileMockerOptions } from '@armature/engine';
import { PROFILE_SCHEMA, parseProfile, type Profile } from '@armature/planner-core';
import { ArmatureError } from '@armature/runtime';
import { GRID_DEFAULTS, profileGrid, type ProfileGridOptions } from './grid.js';
import { liveDecodePoints, livePrefillPoints } from './live.js';
import { seededRandom } from './prompts.js';
import { roundProfile, writeProfileFiles, type ProfileFiles } from './report.js';
import { virtualDecodePoints, virtualPrefillPoints } from './virtual.js';
import { profilePlan, startWorkers, type ProfilePlan } from './worker-pool.js';

export const PROFILE_DEFAULTS = {
  islPoints: GRID_DEFAULTS.islPoints,
  contextPoints: GRID_DEFAULTS.contextPoints,
  decodeSteps: GRID_DEFAULTS.decodeSteps,
  /** Prefill runs per prompt length (the median is kept). */
  repeats: 3,
} as const;

export interface ProfileRunOptions extends ProfileGridOptions {
  /** The deployment graph file. */
  graphPath: string;
  /** Engine over the graph's (default: the graph's). */
  engine?: EngineKind;
  /** Output directory (default .armature/profiles/<graph name>/ under the working directory). */
  out?: string;
  /** The mocker in virtual time instead of live workers (default false). */
  virtual?: boolean;
  /** Prefill runs per prompt length, live (default 3). */
  repeats?: number;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
  /** Shown in the report (default `armature profile --graph <file>`). */
  commandLine?: string;
}

export interface ProfileRunResult {
  profile: Profile;
  files: ProfileFiles;
  /** Wall time of the sweeps (live: from the workers being up to the last point), ms. */
  sweepMs: number;
}

function refuseVirtual(plan: ProfilePlan): void {
  for (const { role, settings } of [plan.prefill, plan.decode])
    if (settings.engine !== 'mocker')
      throw new ArmatureError(
        'invalid_argument',
        'profile_virtual_engine',
        `--virtual simulates the mocker only; the ${role} workers run ${settings.engine}: profile them live (without --virtual)`,
        { param: 'virtual' },
      );
}

function virtualProfile(plan: ProfilePlan, grid: ProfileGridOptions): Omit<Profile, 'createdAt'> {
  const configOf = (s: WorkerSettings) => compileMockerOptions({ ...s.engineArgs, model: plan.model });
  const prefillConfig = configOf(plan.prefill.settings);
  const decodeConfig = configOf(plan.decode.settings);
  const random = seededRandom(1);
  const { isls } = profileGrid(prefillConfig, grid);
  const { decode, decodeSteps } = profileGrid(decodeConfig, grid);
  return {
    schema: PROFILE_SCHEMA,
    model: plan.model,
    engine: 'mocker',
    engineArgs: plan.decode.settings.engineArgs,
    source: 'virtual',
    prefill: { points: virtualPrefillPoints(prefillConfig, isls, random) },
    decode: {
      maxKvTokens: decodeConfig.totalKvBlocks * decodeConfig.blockSize,
      points: virtualDecodePoints(decodeConfig, decode, decodeSteps, random),
    },
  };
}

async function liveProfile(
  graph: Awaited<ReturnType<typeof loadGraph>>,
  plan: ProfilePlan,
  o: ProfileRunOptions,
): Promise<{ profile: Omit<Profile, 'createdAt'>; sweepMs: number }> {
  const started = await startWorkers(graph, plan);
  try {
    const prefillWorker = started.workers.get(plan.prefill.role)!;
    const decodeWorker = started.workers.get(plan.decode.role)!;
    const { isls } = profileGrid(prefillWorker.card, o);
    const { decode, decodeSteps } = profileGrid(decodeWorker.card, o);
    const repeats = o.repeats ?? PROFILE_DEFAULTS.repeats;
    const progress = o.progress ?? true;
    const t0 = performance.now();

    const prefillBar = progress ? new ProgressBar('prefill') : undefined;
    const prefillTotal = isls.length * repeats;
    let runs = 0;
    prefillBar?.update({ done: 0, total: prefillTotal });
    const prefillPoints = await livePrefillPoints(prefillWorker, isls, repeats, (isl) =>
      prefillBar?.update({ done: ++runs, total: prefillTotal, note: `ISL ${isl}` }),
    );
    prefillBar?.finish();

    const decodeBar = progress ? new ProgressBar('decode') : undefined;
    const decodeTotal = decode.reduce((n, row) => n + row.concurrencies.length, 0);
    let done = 0;
    decodeBar?.update({ done: 0, total: decodeTotal });
    const decodePoints = await liveDecodePoints(decodeWorker, decode, decodeSteps, (p) =>
      decodeBar?.update({
        done: ++done,
        total: decodeTotal,
        note: `context ${p.context} × ${p.concurrency}: ITL ${p.itlMs.toFixed(2)} ms`,
      }),
    );
    decodeBar?.finish();
    const sweepMs = performance.now() - t0;
    const { card } = decodeWorker;
    return {
      sweepMs,
      profile: {
        schema: PROFILE_SCHEMA,
        model: card.model,
        engine: plan.decode.settings.engine,
        engineArgs: plan.decode.settings.engineArgs,
        source: 'live',
        prefill: { points: prefillPoints },
        decode: { maxKvTokens: card.totalKvBlocks * card.blockSize, points: decodePoints },
      },
    };
  } finally {
    await started.stop();
  }
}

/** Profiles the graph's workers and writes the profile's files. */
export async function runProfile(o: ProfileRunOptions): Promise<ProfileRunResult> {
  const graph = await loadGraph(o.graphPath);
  const plan = profilePlan(graph, o.engine);
  if (o.virtual) refuseVirtual(plan);
  const t0 = performance.now();
  const measured = o.virtual ? { profile: virtualProfile(plan, o), sweepMs: 0 } : await liveProfile(graph, plan, o);
  const sweepMs = o.virtual ? performance.now() - t0 : measured.sweepMs;
  const profile = parseProfile(roundProfile({ ...measured.profile, createdAt: new Date().toISOString() }));
  const out = resolve(o.out ?? `.armature/profiles/${graph.name}`);
  const files = await writeProfileFiles(out, profile, o.commandLine ?? `armature profile --graph ${o.graphPath}`);
  return { profile, files, sweepMs };
}

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** `armature profile --graph <file> [--engine e] [--out dir] [--virtual] [sweep options]`. */
export async function profileCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      graph: { type: 'string' },
      engine: { type: 'string' },
      out: { type: 'string' },
      virtual: { type: 'boolean', default: false },
      'isl-points': { type: 'string' },
      'context-points': { type: 'string' },
      'max-concurrency': { type: 'string' },
      repeats: { type: 'string' },
      'decode-steps': { type: 'string' },
    },
  });
  if (!v.graph) throw new Error('--graph <graph.yaml> is required');
  if (v.engine !== undefined && !(ENGINES as readonly string[]).includes(v.engine))
    throw new Error(`--engine must be one of ${ENGINES.join(', ')}, got ${JSON.stringify(v.engine)}`);
  const result = await runProfile({
    graphPath: v.graph,
    engine: v.engine as EngineKind | undefined,
    out: v.out,
    virtual: v.virtual,
    islPoints: positiveInt(v['isl-points'], 'isl-points'),
    contextPoints: positiveInt(v['context-points'], 'context-points'),
    maxConcurrency: positiveInt(v['max-concurrency'], 'max-concurrency'),
    repeats: positiveInt(v.repeats, 'repeats'),
    decodeSteps: positiveInt(v['decode-steps'], 'decode-steps'),
    commandLine: ['armature', 'profile', ...argv].join(' '),
  });
  const { profile, files } = result;
  const decode = profile.decode.points;
  process.stdout.write(
    `${profile.source} profile of ${profile.model} on ${profile.engine}: ` +
      `${profile.prefill.points.length} prefill points, ${decode.length} decode points ` +
      `in ${(result.sweepMs / 1000).toFixed(1)} s\n` +
      `  prefill TTFT ${profile.prefill.points[0]!.ttftMs.toFixed(1)} ms at ISL ${profile.prefill.points[0]!.isl} .. ` +
      `${profile.prefill.points.at(-1)!.ttftMs.toFixed(1)} ms at ISL ${profile.prefill.points.at(-1)!.isl}\n` +
      `  decode ITL ${Math.min(...decode.map((p) => p.itlMs)).toFixed(2)} .. ${Math.max(...decode.map((p) => p.itlMs)).toFixed(2)} ms, ` +
      `up to ${Math.max(...decode.map((p) => p.tokensPerSecond)).toFixed(0)} output tokens/s\n` +
      `wrote ${files.json}\n      ${files.prefillSvg}\n      ${files.decodeSvg}\n      ${files.html}\n`,
  );
}
