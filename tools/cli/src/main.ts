// `armature`: the command line. `armature up [graph.yaml]` runs a deployment graph locally.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCommand, replayCommand, reportCommand } from '@armature/bench';
import { GraphError, launch, LaunchError, loadGraph, waitHealthy, type Supervisor } from '@armature/deploy';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const USAGE = `usage: armature <command>

commands:
  up [graph.yaml]   run a deployment graph as local processes (default infra/graphs/default.yaml)
  bench             load-test an OpenAI-compatible server:
                      --url <base> --dataset <spec> [--mode trace|rate|concurrency] [--time-scale x]
                      [--rate r --arrival poisson|constant] [--concurrency n] [--max-requests n]
                      [--max-duration-s s] [--slo-ttft-ms t --slo-itl-ms t] [--out f.json] [--html f.html] [--plots dir]
  replay            simulate a whole cluster offline in virtual time:
                      --trace <mooncake.jsonl> | --dataset <spec>  --workers n --policy p [--policy p2 ...]
                      [--limit n] [--time-scale x] [--speedup s] [--engine-args json] [--out f.json] [--html f.html]
  report            put results side by side: <a.json> [b.json ...] --html f.html [--plots dir]
  help              this text

dataset specs: mooncake:<file.jsonl>  azure:<file.csv>
               shared-prefix:groups=8,prompts=16,system=1024,question=128,output=64
               synthetic:count=100,input=512,output=64
`;

async function up(args: string[]): Promise<void> {
  const path = resolve(args[0] ?? resolve(ROOT, 'infra/graphs/default.yaml'));
  const graph = await loadGraph(path);
  const aborted = new AbortController();
  let supervisor: Supervisor | undefined;
  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stdout.write('armature: stopping all services\n');
    if (supervisor) void supervisor.stop().then(() => process.exit(0));
    else aborted.abort(); // still starting: launch() stops what it started, then rejects
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    supervisor = await launch(graph, { signal: aborted.signal });
  } catch (err) {
    if (aborted.signal.aborted) process.exit(0);
    throw err;
  }
  const hasFrontend = graph.services.some((s) => s.kind === 'frontend' && s.replicas > 0);
  if (hasFrontend) {
    if (await waitHealthy(supervisor.url, { timeoutMs: 60_000 })) {
      process.stdout.write(
        `\narmature: ${graph.name} is up — OpenAI API at ${supervisor.url}/v1 (model ${graph.model})\n\n`,
      );
    } else if (!stopping) {
      process.stdout.write(`armature: the frontend at ${supervisor.url} is not healthy after 60 s\n`);
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return up(rest);
    case 'bench':
      return benchCommand(rest);
    case 'replay':
      return replayCommand(rest);
    case 'report':
      return reportCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`armature: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(
    `armature: ${err instanceof GraphError || err instanceof LaunchError ? err.message : ((err as Error).stack ?? String(err))}\n`,
  );
  process.exit(1);
});
