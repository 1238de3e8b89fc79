// `armature`: the command line. `armature up [graph.yaml]` runs a deployment graph locally.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphError, loadGraph } from './graph.js';
import { Supervisor } from './supervisor.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const USAGE = `usage: armature <command>

commands:
  up [graph.yaml]   run a deployment graph as local processes (default infra/graphs/default.yaml)
  help              this text
`;

async function waitHealthy(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function up(args: string[]): Promise<void> {
  const path = resolve(args[0] ?? resolve(ROOT, 'infra/graphs/default.yaml'));
  const graph = await loadGraph(path);
  const supervisor = new Supervisor(graph);
  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stdout.write('armature: stopping all services\n');
    void supervisor.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await supervisor.start();
  const hasFrontend = graph.services.some((s) => s.kind === 'frontend' && s.replicas > 0);
  if (hasFrontend) {
    if (await waitHealthy(supervisor.url, 60_000)) {
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
    `armature: ${err instanceof GraphError ? err.message : ((err as Error).stack ?? String(err))}\n`,
  );
  process.exit(1);
});
