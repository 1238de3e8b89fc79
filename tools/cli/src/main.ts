// `armature`: the command line. Each command answers --help from its description in
// command-specs.ts, and its command line is checked there before it runs; a failure is
// one line when it is the user's (exit 2) or the host's (exit 1), a stack when it is a bug.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCommand, replayCommand, reportCommand } from '@armature/bench';
import { profileCommand } from '@armature/profiler';
import { helpText, parseCommandLine, wantsHelp, type CommandSpec, type ParsedValues } from './command-line.js';
import { COMMANDS } from './command-specs.js';
import { classify, UsageError } from './errors.js';
import { up } from './up.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

const USAGE = `usage: armature <command> [options]

commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.name.padEnd(8)}${c.summary.split(/[.:](\s|$)/)[0]!.replace(/\n/g, ' ')}`)
  .join('\n')}
  help    this text, or a command's (armature help <command>)

Every command answers --help with its options and defaults.
`;

const RUN: Record<string, (argv: string[], positionals: string[], values: ParsedValues) => Promise<void>> = {
  up: (_argv, positionals, values) =>
    up(positionals[0], resolve(ROOT, 'infra/graphs/default.yaml'), {
      prometheus: values.prometheus === true,
      prometheusAddress: values['prometheus-address'] as string | undefined,
      prometheusConfigDir: resolve(ROOT, 'infra/prometheus'),
    }),
  bench: (argv) => benchCommand(argv),
  replay: (argv) => replayCommand(argv),
  report: (argv) => reportCommand(argv),
  profile: (argv) => profileCommand(argv),
};

async function runCommand(spec: CommandSpec, argv: string[]): Promise<void> {
  if (wantsHelp(argv)) {
    process.stdout.write(helpText(spec));
    return;
  }
  const { positionals, values } = parseCommandLine(spec, argv);
  await RUN[spec.name]!(argv, positionals, values);
}

function fail(where: string, err: unknown): never {
  const failure = classify(err);
  if (failure.kind === 'usage') {
    const help = where === 'armature' ? 'armature --help' : `${where} --help`;
    process.stderr.write(`${where}: ${failure.message} (see ${help})\n`);
    process.exit(2);
  }
  process.stderr.write(`${where}: ${failure.message}\n`);
  process.exit(1);
}

const [command, ...rest] = process.argv.slice(2);
if (command === undefined || command === '--help' || command === '-h') process.stdout.write(USAGE);
else if (command === 'help') {
  const spec = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
  if (rest[0] !== undefined && !spec) fail('armature', new UsageError(`unknown command ${JSON.stringify(rest[0])}`));
  process.stdout.write(spec ? helpText(spec) : USAGE);
} else {
  const spec = COMMANDS[command];
  if (!spec) fail('armature', new UsageError(`unknown command ${JSON.stringify(command)}`));
  runCommand(spec, rest).catch((err: unknown) => fail(`armature ${command}`, err));
}
