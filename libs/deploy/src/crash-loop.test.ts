// A replica that fails the same way at every start is given up on: the rule on its own,
// then a real decode worker whose engine options are wrong (maxNumSeqs: 0), which exits
// within a second of each start. Needs the services built (npm run build).
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { CrashLoop, lastErrorLine } from './crash-loop.js';
import { compileGraph } from './graph.js';
import { launch } from './launch.js';
import type { Supervisor } from './supervisor.js';

let running: Supervisor | undefined;
afterEach(async () => {
  await running?.stop(3_000);
  running = undefined;
});

function logSink(): { out: Writable; text: () => string } {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { out, text: () => text };
}

async function until(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lastErrorLine', () => {
  it('takes the last error record, without its timestamp and logged stack', () => {
    const output = [
      '2026-01-02T03:04:05.678Z INFO  [decode] loading',
      '2026-01-02T03:04:05.900Z ERROR [decode] worker failed to start {"err":"ArmatureError: bad option\\n    at x (y.js:1:1)"}',
      '',
    ].join('\n');
    expect(lastErrorLine(output)).toBe('ERROR [decode] worker failed to start {"err":"ArmatureError: bad option');
  });

  it("finds an uncaught throw's message above Node's stack and version line", () => {
    const output =
      'file:///x.mjs:1\nthrow new Error("boom")\n^\n\nError: boom\n    at file:///x.mjs:1:7\n\nNode.js v20.0.0\n';
    expect(lastErrorLine(output)).toBe('Error: boom');
  });

  it('falls back to the last line, cut to 300 characters', () => {
    expect(lastErrorLine('one\ntwo\n\n')).toBe('two');
    expect(lastErrorLine('x'.repeat(1000))).toHaveLength(300);
    expect(lastErrorLine('')).toBe('');
  });
});

describe('CrashLoop', () => {
  it('gives up after 3 quick exits that end with the same line', () => {
    const loop = new CrashLoop({ exits: 3, withinMs: 1_000 });
    expect(loop.exited(100, null, 'Error: bad')).toBe(false);
    expect(loop.exited(100, null, 'Error: bad')).toBe(false);
    expect(loop.exited(100, null, 'Error: bad')).toBe(true);
    expect(loop.quickExits).toBe(3);
  });

  it('starts counting again after a long run, another error or an outside kill', () => {
    const loop = new CrashLoop({ exits: 2, withinMs: 1_000 });
    expect(loop.exited(100, null, 'Error: a')).toBe(false);
    expect(loop.exited(100, null, 'Error: b')).toBe(false); // another error: a new run of 1
    expect(loop.exited(5_000, null, 'Error: b')).toBe(false); // ran long: reset
    expect(loop.exited(100, null, 'Error: b')).toBe(false);
    expect(loop.exited(100, 'SIGKILL', 'Error: b')).toBe(false); // killed from outside: reset
    expect(loop.exited(100, 'SIGSEGV', 'Error: b')).toBe(false);
    expect(loop.exited(100, 'SIGSEGV', 'Error: b')).toBe(true);
  });

  it('refuses bad settings', () => {
    expect(() => new CrashLoop({ exits: 0 })).toThrow(RangeError);
  });
});

describe('the supervisor and a replica that cannot start', () => {
  it('stops restarting it after 3 quick identical failures, logs why once and reports it failed', async () => {
    const graph = compileGraph(
      { model: 'armature/crash-model', services: { decode: { replicas: 1, engineArgs: { maxNumSeqs: 0 } } } },
      { name: 'crash-loop' },
    );
    const log = logSink();
    running = await launch(graph, { tempDiscoveryDir: 'armature-crash-', out: log.out, maxBackoffMs: 500 });
    const decode = (): ReturnType<Supervisor['replica']> => running!.replica('decode-0');
    await until(() => decode()?.state === 'failed', 'decode-0 to be given up on', 20_000);
    const failed = log
      .text()
      .split('\n')
      .filter((l) => l.includes('decode-0 failed'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(
      /exited 3 times within 10 s of its start, each time with: .*maxNumSeqs.*not restarting it/,
    );
    expect(decode()!.reason).toMatch(
      /^exited 3 times within 10 s of its start, each time with: .*maxNumSeqs: expected a positive integer/,
    );
    // And it stays down: no fourth start.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(decode()).toMatchObject({ state: 'failed', process: undefined });
    expect(log.text().match(/restarting in/g)).toHaveLength(2);
  }, 30_000);
});
