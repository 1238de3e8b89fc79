// What each `armature` command accepts, for its --help and for the checks run before it
// starts. The defaults shown are the ones the command applies (tools/bench/src/commands.ts
// for bench, replay and report; @armature/deploy for up; tools/profiler/src/command.ts for
// profile); keep them in step.
import { WORKLOAD_SPEC_FORMS } from '@armature/bench/datasets';
import { ENV_CATALOG, type EnvName } from '@armature/runtime';
import type { CommandSpec, OptionSpec, ParsedValues } from './command-line.js';

const DATASETS = `dataset specs:\n${WORKLOAD_SPEC_FORMS.map((f) => `  ${f}`).join('\n')}\n`;

function environment(names: readonly EnvName[]): string {
  const width = Math.max(...names.map((n) => n.length)) + 2;
  return `environment:\n${names.map((n) => `  ${n.padEnd(width)}${ENV_CATALOG[n]}`).join('\n')}\n`;
}

/** The options bench and replay share (a workload, outputs, SLOs). */
const WORKLOAD: Record<string, OptionSpec> = {
  dataset: { value: '<spec>', doc: 'the workload (see dataset specs below)' },
  trace: { value: '<mooncake.jsonl>', doc: 'a Mooncake trace; short for --dataset mooncake:<file>' },
  tokenizer: { value: '<id>', default: 'gpt-tokenizer:o200k_base', doc: 'tokenizer the prompts are built with' },
  limit: { value: '<n>', check: 'number', doc: 'use the first n requests of the workload' },
  'time-scale': { value: '<x>', default: '1', check: 'number', doc: "multiply the trace's arrival times by x" },
  'spread-bursts': { doc: "spread requests that share an arrival time over the trace's time step" },
  'slo-ttft-ms': { value: '<t>', check: 'number', doc: 'time-to-first-token SLO for goodput, ms' },
  'slo-itl-ms': { value: '<t>', check: 'number', doc: 'inter-token latency SLO for goodput, ms' },
  'slo-e2e-ms': { value: '<t>', check: 'number', doc: 'end-to-end latency SLO for goodput, ms' },
  label: { value: '<text>', doc: 'name of the run in results and reports' },
  out: { value: '<f.json>', doc: 'write the results as JSON' },
  html: { value: '<f.html>', doc: 'write an HTML report' },
  plots: { value: '<dir>', doc: 'write SVG plots' },
  title: { value: '<text>', default: 'Armature benchmark', doc: "the HTML report's title" },
};

const needsWorkload = (v: ParsedValues): string | undefined =>
  v.dataset === undefined && v.trace === undefined
    ? '--dataset <spec> (or --trace <mooncake.jsonl>) is required'
    : undefined;

export const UP: CommandSpec = {
  name: 'up',
  synopsis: '[graph.yaml]',
  summary:
    'Runs a deployment graph as local processes until Ctrl-C.\n\n' +
    'Logs are prefixed per replica. A replica that crashes restarts with backoff, except one that fails the\n' +
    'same way at every start; one that stops answering its liveness probe is killed and restarted. Ctrl-C\n' +
    'stops the frontend first and lets every replica drain; a second Ctrl-C kills them all.\n\n' +
    'With --prometheus, a Prometheus (infra/prometheus: config, recording rules, alerts) runs beside the\n' +
    "stack and scrapes every service that Armature's discovery knows, following workers as they come and go.",
  positionals: { 'graph.yaml': 'the deployment graph (default infra/graphs/default.yaml)' },
  maxPositionals: 1,
  options: {
    prometheus: { doc: 'also run Prometheus, scraping every service (needs the prometheus binary)' },
    'prometheus-address': {
      value: '<host:port>',
      default: '127.0.0.1:9090',
      doc: "Prometheus's web UI and API address, with --prometheus",
    },
  },
  notes: environment([
    'PROMETHEUS_BIN',
    'ARMATURE_LIVENESS_INTERVAL_MS',
    'ARMATURE_LIVENESS_TIMEOUT_MS',
    'ARMATURE_LIVENESS_FAILURES',
    'ARMATURE_DRAIN_TIMEOUT_MS',
    'ARMATURE_LOG_LEVEL',
  ]),
};

export const BENCH: CommandSpec = {
  name: 'bench',
  synopsis: '--url <base> --dataset <spec> [options]',
  summary: 'Load-tests an OpenAI-compatible server with a workload and reports latency, throughput and goodput.',
  options: {
    url: { value: '<base>', required: true, doc: 'base URL of the server, with or without /v1' },
    model: { value: '<name>', doc: 'model to request (default: the first the server lists)' },
    ...WORKLOAD,
    mode: { value: '<m>', default: 'trace', check: ['trace', 'rate', 'concurrency'], doc: 'how requests are sent' },
    rate: { value: '<r>', check: 'number', doc: 'requests per second, required with --mode rate (or --ramp)' },
    ramp: {
      value: '<t:r,...>',
      doc: 'with --mode rate, a changing rate: seconds:requests-per-second points, linear between (0:2,60:40,120:2)',
    },
    arrival: {
      value: '<a>',
      default: 'poisson',
      check: ['poisson', 'constant'],
      doc: 'arrival process with --mode rate',
    },
    concurrency: { value: '<n>', check: 'number', doc: 'requests in flight, required with --mode concurrency' },
    seed: { value: '<n>', default: '1', check: 'number', doc: 'seed of the poisson arrivals' },
    'max-requests': { value: '<n>', check: 'number', doc: 'stop after n requests' },
    'max-duration-s': { value: '<s>', default: '600', check: 'number', doc: 'stop after s seconds' },
    'request-timeout-s': { value: '<s>', default: '600', check: 'number', doc: 'deadline of one request' },
    'token-ids': { doc: 'send prompts as token ids instead of text' },
  },
  notes: DATASETS,
  check: (v) =>
    needsWorkload(v) ??
    (v.mode === 'rate' && v.rate === undefined && v.ramp === undefined
      ? '--rate <r> or --ramp <t:r,...> is required with --mode rate'
      : undefined) ??
    (v.mode === 'concurrency' && v.concurrency === undefined
      ? '--concurrency <n> is required with --mode concurrency'
      : undefined),
};

export const REPLAY: CommandSpec = {
  name: 'replay',
  synopsis: '--dataset <spec> | --trace <file> [options]',
  summary: 'Simulates a whole cluster offline in virtual time: mocker workers behind each routing policy.',
  options: {
    ...WORKLOAD,
    workers: { value: '<n>', default: '8', check: 'number', doc: 'workers with --mode agg' },
    policy: { value: '<p>', default: 'kv', multiple: true, doc: 'routing policy, or all' },
    params: { value: '<json>', default: '{}', check: 'json-object', doc: "the policy's parameters" },
    busy: { value: '<json>', default: '{}', check: 'json-object', doc: 'busy thresholds {kvUsage, prefillTokens}' },
    'engine-args': {
      value: '<json>',
      default: '{}',
      check: 'json-object',
      doc: 'mocker settings over the replay defaults',
    },
    speedup: { value: '<s>', default: '1', check: 'number', doc: "the mocker's speedup" },
    mode: { value: '<m>', default: 'agg', check: ['agg', 'disagg'], doc: 'aggregated or disaggregated serving' },
    prefill: { value: '<n>', check: 'number', doc: 'prefill workers, required with --mode disagg' },
    decode: { value: '<n>', check: 'number', doc: 'decode workers, required with --mode disagg' },
    'prefill-policy': { value: '<p>', default: 'kv', doc: 'policy that picks a prefill worker with --mode disagg' },
    'min-remote-prefill-tokens': {
      value: '<n>',
      default: '2048',
      check: 'number',
      doc: 'shortest prompt prefilled remotely with --mode disagg',
    },
    'kv-bytes-per-token': { value: '<n>', default: '131072', check: 'number', doc: 'KV size for transfer times' },
    'bandwidth-gbps': { value: '<g>', default: '64', check: 'number', doc: 'KV transfer bandwidth, GB/s' },
    planner: {
      value: '<file>',
      doc: "a planner YAML (the keys of a graph's services.planner): it sizes the pools in virtual time; needs --slo-ttft-ms and --slo-itl-ms",
    },
    'startup-delay-ms': {
      value: '<ms>',
      default: '30000',
      check: 'number',
      doc: 'with --planner, from asking for a worker to its first request',
    },
    static: {
      value: '<n|p:d>',
      multiple: true,
      doc: 'with --planner, a static deployment to replay beside it (decode workers, or prefill:decode)',
    },
    'no-oracle': { doc: 'with --planner, skip the oracle (the per-interval static sizes in hindsight)' },
  },
  notes: DATASETS,
  check: (v) =>
    needsWorkload(v) ??
    (v.planner !== undefined && (v['slo-ttft-ms'] === undefined || v['slo-itl-ms'] === undefined)
      ? '--planner needs --slo-ttft-ms and --slo-itl-ms'
      : undefined) ??
    (v.mode === 'disagg' && v.planner === undefined && (v.prefill === undefined || v.decode === undefined)
      ? '--prefill <n> and --decode <n> are required with --mode disagg'
      : undefined),
};

export const REPORT: CommandSpec = {
  name: 'report',
  synopsis: '<a.json> [b.json ...] --html <f.html> [--plots <dir>]',
  summary: 'Puts results of bench and replay runs side by side in an HTML report and/or SVG plots.',
  positionals: { '<a.json> ...': 'results files written with --out' },
  options: {
    html: { value: '<f.html>', doc: 'write an HTML report' },
    plots: { value: '<dir>', doc: 'write SVG plots' },
    title: { value: '<text>', default: 'Armature benchmark', doc: "the HTML report's title" },
  },
  check: (v, positionals) =>
    positionals.length === 0
      ? 'name at least one results JSON file'
      : v.html === undefined && v.plots === undefined
        ? '--html <file> and/or --plots <dir> is required'
        : undefined,
};

export const PROFILE: CommandSpec = {
  name: 'profile',
  synopsis: '--graph <graph.yaml> [options]',
  summary:
    "Profiles a graph's workers before deployment: what the SLO planner reads.\n\n" +
    'Starts one worker of each profiled role (the decode workers, and the prefill workers when the graph\n' +
    'runs any) and drives its Worker gRPC service with token-id prompts: TTFT vs prompt length at batch 1\n' +
    'with fresh random tokens (no prefix reuse; the median of --repeats runs), then ITL vs concurrency at\n' +
    "each context, up to what the KV cache holds. Times are as the engine is configured (a mocker's speedup\n" +
    'included). With --virtual the mocker runs in virtual time instead (no processes; milliseconds).\n' +
    'Writes profile.json (schema armature.profile/v1, libs/planner-core/src/profile.ts), prefill.svg,\n' +
    'decode.svg and report.html.',
  options: {
    graph: { value: '<graph.yaml>', required: true, doc: 'the deployment graph whose workers are profiled' },
    engine: {
      value: '<e>',
      check: ['mocker', 'llamacpp'],
      doc: "engine over the graph's (default the graph's; another engine starts from its own defaults)",
    },
    out: { value: '<dir>', default: '.armature/profiles/<graph name>', doc: 'where the files go' },
    virtual: { doc: 'simulate the mocker in virtual time instead of starting workers (mocker only)' },
    'isl-points': {
      value: '<n>',
      default: '16',
      check: 'number',
      doc: 'prefill prompt lengths, log-spaced 64 .. min(context length - 1, 32768)',
    },
    'context-points': {
      value: '<n>',
      default: '6',
      check: 'number',
      doc: 'decode contexts, log-spaced 256 .. min(context length / 2, 16384)',
    },
    'max-concurrency': {
      value: '<n>',
      default: "the engine's maxNumSeqs",
      check: 'number',
      doc: 'highest decode concurrency (1, 2, 4, ... and the most that fit in KV)',
    },
    repeats: { value: '<n>', default: '3', check: 'number', doc: 'prefill runs per prompt length, live' },
    'decode-steps': { value: '<n>', default: '32', check: 'number', doc: 'decode steps measured at each point' },
  },
  notes: environment(['ARMATURE_BENCH_NODE_ARGS']),
};

/** Every command, by name. */
export const COMMANDS: Record<string, CommandSpec> = {
  up: UP,
  bench: BENCH,
  replay: REPLAY,
  report: REPORT,
  profile: PROFILE,
};
