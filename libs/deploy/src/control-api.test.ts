// The control API on a real supervisor: stand-in scripts print each kind's ready line (a
// moment after starting) and drain a moment on SIGTERM; a stand-in planner finds the API
// through ARMATURE_CONTROL_ADDRESS and reads it. Decode is scaled 1 -> 3 -> 1 through
// ControlClient over the Unix socket; bad requests get their statuses; a socket path too
// long for bind() falls back to a loopback port.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SOCKET_PATH_BYTES, startControlServer } from './control-api.js';
import { ControlClient, ControlError, readControlAddress } from './control-client.js';
import { compileGraph } from './graph.js';
import { launch, type LaunchedSupervisor } from './launch.js';
import type { ServiceKind } from './service-kinds.js';

const STAND_IN = `
import { appendFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
const name = process.env.ARMATURE_INSTANCE_ID;
const note = (what) => appendFileSync(process.env.STAND_IN_LOG, name + ' ' + what + '\\n');
if (existsSync(process.env.STAND_IN_FAIL_FILE)) {
  console.error('error: stand-in told to fail');
  process.exit(3);
}
process.on('SIGTERM', () => {
  note('term');
  setTimeout(() => { note('exit'); process.exit(0); }, 150);
});
setTimeout(() => console.log(process.env.STAND_IN_READY), 100);
if (process.env.STAND_IN_PLANNER) {
  const address = process.env.ARMATURE_CONTROL_ADDRESS;
  note('address ' + address);
  const req = request({ socketPath: address.slice('unix:'.length), path: '/v1/replicas' }, (res) => {
    let body = '';
    res.on('data', (c) => (body += c));
    res.on('end', () => note('status ' + res.statusCode + ' ' + body));
  });
  req.on('error', (err) => note('error ' + err.message));
  req.end();
}
setInterval(() => {}, 1000);
`;

let dir: string;
let script: string;
let log: string;
let failFile: string;
let running: LaunchedSupervisor | undefined;
let client: ControlClient;

const events = async (): Promise<string[]> => (await readFile(log, 'utf8')).trim().split('\n');
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
/** A raw request on the control socket: what a client other than ControlClient may send. */
function raw(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request({ socketPath: client.address.slice('unix:'.length), method, path }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => done({ status: res.statusCode!, body: text }));
    });
    req.on('error', fail);
    req.end(body);
  });
}
async function refusal(call: Promise<unknown>): Promise<ControlError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ControlError);
  return err as ControlError;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'armature-control-'));
  script = join(dir, 'stand-in.mjs');
  log = join(dir, 'events.log');
  failFile = join(dir, 'fail');
  await writeFile(script, STAND_IN);
  await writeFile(log, '');
  const graph = compileGraph(
    {
      model: 'armature/control-model',
      services: {
        frontend: { replicas: 1 },
        router: { replicas: 1 },
        planner: { replicas: 1, mode: 'load' },
        encoder: { replicas: 0 },
        decode: { replicas: 1 },
      },
    },
    { name: 'control' },
  );
  running = await launch(graph, {
    tempDiscoveryDir: 'armature-control-disc-',
    freePort: true,
    out: null,
    readiness: 'ready',
    restart: false,
    entries: { frontend: script, router: script, planner: script, decode: script },
    env: { STAND_IN_LOG: log, STAND_IN_FAIL_FILE: failFile },
    envByKind: {
      frontend: { STAND_IN_READY: 'frontend listening on http://127.0.0.1:1' },
      router: { STAND_IN_READY: 'router ready' },
      planner: { STAND_IN_READY: 'planner ready', STAND_IN_PLANNER: '1' },
      decode: { STAND_IN_READY: 'worker ready' },
    },
  });
  client = new ControlClient(running.control!.address);
});

afterAll(async () => {
  await running?.stop(2_000);
  await rm(dir, { recursive: true, force: true });
});

describe('the control API', () => {
  it('listens on a 0600 socket beside the state, writes its address, and the planner finds it in its environment', async () => {
    const control = running!.control!;
    const socketPath = `${running!.discoveryDir}.control.sock`;
    expect(control.address).toBe(`unix:${socketPath}`);
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
    expect(await readControlAddress(control.addressFile)).toBe(control.address);
    await client.health();
    await until(async () => (await events()).some((e) => e.startsWith('planner status')), "the planner's GET");
    const planner = await events();
    expect(planner).toContain(`planner address ${control.address}`);
    const answer = JSON.parse(
      planner.find((e) => e.startsWith('planner status 200 '))!.slice('planner status 200 '.length),
    );
    expect(answer.services.decode).toMatchObject({ desired: 1, running: 1 }); // read while the pool was starting
  });

  it('reports every kind in the graph', async () => {
    expect(await client.status()).toEqual({
      services: {
        frontend: { desired: 1, running: 1, ready: 1, starting: 0 },
        router: { desired: 1, running: 1, ready: 1, starting: 0 },
        planner: { desired: 1, running: 1, ready: 1, starting: 0 },
        encoder: { desired: 0, running: 0, ready: 0, starting: 0 },
        decode: { desired: 1, running: 1, ready: 1, starting: 0 },
      },
    });
  });

  it('scales decode 1 -> 3 once the new replicas are ready, and 3 -> 1 once the highest-numbered drained', async () => {
    const first = running!.pids()['decode-0']!;
    const up = await client.scale('decode', 3);
    expect(up).toEqual({ kind: 'decode', desired: 3, running: 3, ready: 3, starting: 0 });
    expect(running!.list('decode').map((r) => [r.name, r.state])).toEqual([
      ['decode-0', 'ready'],
      ['decode-1', 'ready'],
      ['decode-2', 'ready'],
    ]);
    const three = running!.pids();
    expect(three['decode-0']).toBe(first);

    const down = await client.scale('decode', 1);
    expect(down).toEqual({ kind: 'decode', desired: 1, running: 1, ready: 1, starting: 0 });
    expect(alive(three['decode-1']!)).toBe(false);
    expect(alive(three['decode-2']!)).toBe(false);
    expect(alive(first)).toBe(true);
    expect(running!.pids()).toMatchObject({ 'decode-0': first });
    expect(Object.keys(running!.pids()).filter((n) => n.startsWith('decode'))).toEqual(['decode-0']);
    const drained = await events();
    for (const name of ['decode-1', 'decode-2'])
      expect(drained).toEqual(expect.arrayContaining([`${name} term`, `${name} exit`]));
    expect(drained).not.toContain('decode-0 term');
    expect((await client.status()).services.decode).toEqual({ desired: 1, running: 1, ready: 1, starting: 0 });
  });

  it('answers a bad count 400, an unknown or absent kind 404, a kind it cannot scale 409, with the reason', async () => {
    const cases: Array<[ServiceKind, number, number, string, RegExp]> = [
      ['decode', 1.5, 400, 'bad_replicas', /replicas must be an integer in \[0, 256\], got 1\.5/],
      ['decode', 257, 400, 'bad_replicas', /got 257/],
      ['decode', -1, 400, 'bad_replicas', /got -1/],
      ['gpu' as ServiceKind, 1, 404, 'unknown_kind', /unknown service kind "gpu"/],
      ['prefill', 1, 404, 'kind_not_in_graph', /the graph control has no prefill service/],
      ['frontend', 2, 409, 'not_scalable', /frontend replicas cannot be scaled at run time/],
      ['planner', 2, 409, 'not_scalable', /planner replicas cannot be scaled/],
      ['encoder', 1, 409, 'cannot_scale', /there is no encoder service to run yet/],
    ];
    for (const [kind, replicas, status, code, message] of cases) {
      const err = await refusal(client.scale(kind, replicas));
      expect([err.status, err.code], `${kind} ${replicas}`).toEqual([status, code]);
      expect(err.message).toMatch(message);
      expect(err.type).toBe('invalid_request_error');
    }
    expect(JSON.parse((await raw('PUT', '/v1/replicas/decode', '{"replicas":')).body)).toEqual({
      error: {
        message: 'the body is not JSON; send {"replicas": <n>}',
        type: 'invalid_request_error',
        code: 'bad_json',
      },
    });
    expect((await raw('PUT', '/v1/replicas/decode', '{}')).status).toBe(400);
    const huge = await raw('PUT', '/v1/replicas/decode', JSON.stringify({ replicas: 1, pad: 'x'.repeat(70_000) }));
    expect([huge.status, JSON.parse(huge.body).error.code]).toEqual([413, 'body_too_large']);
    expect((await raw('GET', '/v1/replicas/decode')).status).toBe(405);
    expect((await raw('GET', '/v1/nothing')).status).toBe(404);
    expect(running!.replicas('decode')).toBe(1);
  });

  it('answers 500 with the reason when a new replica fails to start', async () => {
    await writeFile(failFile, '');
    try {
      const err = await refusal(client.scale('decode', 2));
      expect([err.status, err.code]).toEqual([500, 'scale_failed']);
      expect(err.message).toMatch(/^scale decode to 2 failed: process exited before/);
      expect((await client.status()).services.decode).toMatchObject({ desired: 2, ready: 1 });
    } finally {
      await rm(failFile, { force: true });
    }
    expect(await client.scale('decode', 1)).toMatchObject({ desired: 1, running: 1, ready: 1 });
  });
});

describe('the control socket', () => {
  it('falls back to a loopback port when the socket path is too long for bind()', async () => {
    const deep = join(dir, 'd'.repeat(60), 'e'.repeat(60));
    await mkdir(deep, { recursive: true });
    const socketPath = join(deep, 'control.sock');
    expect(Buffer.byteLength(socketPath)).toBeGreaterThan(MAX_SOCKET_PATH_BYTES);
    const server = await startControlServer(running!, { socketPath });
    try {
      expect(server.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.addressFile).toBe(join(deep, 'control.address'));
      expect(await readControlAddress(server.addressFile)).toBe(server.address);
      expect((await new ControlClient(server.address).status()).services.decode).toMatchObject({ desired: 1 });
    } finally {
      await server.close();
    }
    await expect(stat(server.addressFile)).rejects.toThrow(/ENOENT/);
    await expect(new ControlClient(server.address).status()).rejects.toMatchObject({ code: 'unreachable' });
  });

  it('replaces a stale socket file, refuses one that answers, and close() removes its files', async () => {
    const socketPath = join(dir, 'stale.sock');
    // A process killed while listening leaves its socket file behind.
    const listener = `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`;
    expect(spawnSync(process.execPath, ['-e', listener]).signal).toBe('SIGKILL');
    expect((await stat(socketPath)).isSocket()).toBe(true);
    const server = await startControlServer(running!, { socketPath });
    try {
      expect(server.address).toBe(`unix:${socketPath}`);
      await new ControlClient(server.address).health();
      await expect(startControlServer(running!, { socketPath })).rejects.toThrow(/is in use/);
    } finally {
      await server.close();
    }
    await expect(stat(socketPath)).rejects.toThrow(/ENOENT/);
    await expect(stat(server.addressFile)).rejects.toThrow(/ENOENT/);
  });
});
