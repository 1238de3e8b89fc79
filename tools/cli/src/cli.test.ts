// The real command line as a child process: every command answers --help and -h with its
// options (exit 0), a user's mistake is one line naming the command and the fix (exit 2),
// and `armature up` stops its services on Ctrl-C, which reaches it alone (the services run
// in their own process groups). Needs the CLI and the services built (npm run build).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@armature/deploy';

const BIN = resolve(fileURLToPath(new URL('../bin/armature.js', import.meta.url)));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function armature(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'armature-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const COMMANDS: Array<[string, string[]]> = [
  ['up', ['[graph.yaml]', 'ARMATURE_LIVENESS_FAILURES', 'ARMATURE_DRAIN_TIMEOUT_MS']],
  [
    'bench',
    ['--url <base>', '--mode <m>', 'trace | rate | concurrency; default trace', '--max-duration-s <s>', 'synthetic:'],
  ],
  ['replay', ['--policy <p>', 'default kv; repeatable', '--engine-args <json>', '--mode <m>', 'default agg']],
  ['report', ['<a.json>', '--html <f.html>', '--plots <dir>']],
  ['profile', ['--graph <graph.yaml>', '--virtual', '--isl-points <n>', 'default 16', '--max-concurrency <n>']],
];

describe('armature --help', () => {
  it.each(COMMANDS)('%s answers --help and -h with its options and defaults', async (command, expected) => {
    const [long, short] = await Promise.all([armature(command, '--help'), armature(command, '-h')]);
    for (const run of [long, short]) {
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toMatch(new RegExp(`^usage: armature ${command} `));
      expect(run.stdout).toContain('-h, --help');
      for (const text of expected) expect(run.stdout).toContain(text);
    }
    expect(long.stdout).toBe(short.stdout);
    expect((await armature('help', command)).stdout).toBe(long.stdout);
  });

  it('lists every command at the top level', async () => {
    const [bare, help] = await Promise.all([armature(), armature('--help')]);
    expect(bare).toMatchObject({ code: 0 });
    expect(help.stdout).toBe(bare.stdout);
    for (const command of ['up', 'bench', 'replay', 'report', 'profile'])
      expect(bare.stdout).toMatch(new RegExp(`\\n  ${command} `));
  });
});

describe("armature and the user's mistakes", () => {
  const oneLine = (run: Run, command: string, message: string | RegExp): void => {
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^armature ${command}: `));
    expect(lines[0]).toMatch(message);
    expect(lines[0]).toContain(`(see armature ${command} --help)`);
  };

  it.each(['up', 'bench', 'replay', 'report', 'profile'])(
    '%s refuses an unknown option in one line, exit 2',
    async (command) => {
      oneLine(await armature(command, '--bogus', 'x'), command, /unknown option --bogus/);
    },
  );

  it('names a bad value, a missing value, a missing option and a missing file', async () => {
    const synthetic = 'synthetic:count=2,input=4,output=2';
    const runs = await Promise.all([
      armature('bench', '--url', 'http://127.0.0.1:9', '--dataset', synthetic, '--mode', 'fast'),
      armature('bench', '--url'),
      armature('bench', '--dataset', synthetic),
      armature('replay', '--dataset', synthetic, '--workers', 'many'),
      armature('replay', '--dataset', 'nonsense'),
      armature('replay', '--trace', join(dir, 'missing.jsonl')),
      armature('report', join(dir, 'missing.json'), '--html', join(dir, 'r.html')),
      armature('up', join(dir, 'missing.yaml')),
      armature('up', 'a.yaml', 'b.yaml'),
    ]);
    const expected: Array<[string, RegExp]> = [
      ['bench', /--mode must be one of trace, rate, concurrency, got "fast"/],
      ['bench', /--url needs a value/],
      ['bench', /--url <base> is required/],
      ['replay', /--workers must be a number, got "many"/],
      ['replay', /bad workload spec "nonsense"/],
      ['replay', /no such file: .*missing\.jsonl/],
      ['report', /no such file: .*missing\.json/],
      ['up', /no such file: .*missing\.yaml/],
      ['up', /unexpected argument b\.yaml/],
    ];
    runs.forEach((run, i) => oneLine(run, expected[i]![0], expected[i]![1]));
  });

  it('names what is wrong in a graph file', async () => {
    const graph = join(dir, 'bad.yaml');
    await writeFile(graph, 'model: m\nservices:\n  decode:\n    replicas: -1\n');
    oneLine(await armature('up', graph), 'up', /bad\.yaml: services\.decode\.replicas/);
  });
});

describe('armature up', () => {
  it("runs a graph, and on a terminal's Ctrl-C (SIGINT to its process group) stops every service itself", async () => {
    const port = await freePort();
    const graph = join(dir, 'up.yaml');
    await writeFile(
      graph,
      [
        'name: cli-up',
        'model: armature/cli-model',
        `discoveryDir: ${join(dir, 'discovery')}`,
        'services:',
        `  frontend: { port: ${port} }`,
        '  router: {}',
        '  decode: { replicas: 1, engineArgs: { speedup: 50 } }',
        '',
      ].join('\n'),
    );
    const cli = spawn(process.execPath, [BIN, 'up', graph], {
      env: { ...process.env, ARMATURE_TRANSFER: 'off', ARMATURE_DISCOVERY_LEASE_MS: '2000' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // a process group of its own, as a terminal gives it
    });
    let out = '';
    cli.stdout.on('data', (c: Buffer) => (out += c.toString()));
    cli.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((done) => cli.once('exit', (code) => done(code)));
    let services: number[] = [];
    try {
      const deadline = Date.now() + 30_000;
      while (!out.includes('cli-up is up')) {
        if (Date.now() > deadline || cli.exitCode !== null) throw new Error(`armature up did not come up:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      services = execFileSync('ps', ['-o', 'pid=', '--ppid', String(cli.pid)], { encoding: 'utf8' })
        .trim()
        .split(/\s+/)
        .map(Number);
      expect(services).toHaveLength(3);
      process.kill(-cli.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('armature: stopping all services');
      for (const pid of services) expect(() => process.kill(pid, 0)).toThrow();
      await expect(fetch(`http://127.0.0.1:${port}/live`)).rejects.toThrow();
      // The services heard it from the supervisor (SIGTERM, in the stop order), not from the terminal.
      expect(out.match(/shutting down \{"signal":"SIGTERM"/g)).toHaveLength(3);
      expect(out).not.toMatch(/"signal":"SIGINT"/);
    } finally {
      for (const pid of [cli.pid!, ...services]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }, 60_000);
});
