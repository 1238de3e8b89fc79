// The agent around the backends: options compiled once with defaults, regions allocated in
// the right kind of memory, the backend chosen per peer, counters, and shared memory
// released on close and at process exit.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { compileAgentOptions } from './agent-options.js';
import { TransferAgent } from './agent.js';
import { TransferError } from './errors.js';
import { localHostKey } from './host-key.js';
import { loadNative } from './native.js';
import { fillPattern } from './testing/patterns.js';

const native = loadNative();
const agents: TransferAgent[] = [];
let counter = 0;
const agent = async (options: Partial<Parameters<typeof TransferAgent.create>[0]> = {}): Promise<TransferAgent> => {
  const a = await TransferAgent.create({ agentId: `agent-${process.pid}-${++counter}`, ...options });
  agents.push(a);
  return a;
};
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
});

describe('agent options', () => {
  it('fills in documented defaults', () => {
    const compiled = compileAgentOptions({ agentId: 'w-1' });
    expect(compiled).toMatchObject({
      host: '127.0.0.1',
      advertiseHost: '127.0.0.1',
      port: 0,
      timeoutMs: 30_000,
      checksum: 'auto',
    });
    expect(compiled.backends).toEqual(native ? ['shm', 'tcp'] : ['tcp']);
    expect(compileAgentOptions({ agentId: 'w', native: null }).backends).toEqual(['tcp']);
    expect(compileAgentOptions({ agentId: 'w', host: '0.0.0.0' }).advertiseHost).not.toBe('0.0.0.0');
  });

  it('throws bad_request on explicit bad values', () => {
    const bad: Parameters<typeof compileAgentOptions>[0][] = [
      { agentId: 'has/slash' },
      { agentId: '' },
      { agentId: 'w', port: 70_000 },
      { agentId: 'w', timeoutMs: 0 },
      { agentId: 'w', backends: [] },
      { agentId: 'w', backends: ['tcp', 'tcp'] },
      { agentId: 'w', backends: ['rdma' as 'tcp'] },
      { agentId: 'w', backends: ['shm'], native: null },
      { agentId: 'w', checksum: 'crc32' as 'none' },
      { agentId: 'w', checksum: 'armature-mx64', native: null },
    ];
    for (const options of bad) {
      expect(() => compileAgentOptions(options), JSON.stringify(options)).toThrow(TransferError);
    }
  });
});

describe('regions', () => {
  it('refuses a duplicate id', async () => {
    const a = await agent({ native: null });
    a.registerRegion(1, 2, 1024);
    expect(() => a.registerRegion(1, 2, 1024)).toThrow(/already registered/);
    expect(a.region(1)?.blocks).toBe(2);
  });

  it('is a SharedArrayBuffer without the addon', async () => {
    const a = await agent({ native: null });
    const region = a.registerRegion(1, 2, 1024);
    expect(region.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(region.shmName).toBeUndefined();
  });

  it.skipIf(!native)(
    'is POSIX shared memory named /armature-<agentId>-<id>@<pid> with the addon, unlinked on close',
    async () => {
      const a = await agent();
      const region = a.registerRegion(7, 4, 4096);
      expect(region.shmName).toBe(`/armature-${a.agentId}-7@${process.pid}`);
      expect(existsSync(`/dev/shm${region.shmName}`)).toBe(true);
      expect(a.metadata()).toMatchObject({
        regions: [{ id: 7, shmName: region.shmName }],
        shm: { hostKey: localHostKey() },
      });
      await a.close();
      expect(existsSync(`/dev/shm${region.shmName}`)).toBe(false);
    },
  );

  it.skipIf(!native)('reclaims a stale object left by a crashed agent with the same id', async () => {
    const agentId = `stale-${process.pid}`;
    native!.shmCreate(`/armature-${agentId}-1@${process.pid}`, 4096); // what a predecessor left behind
    const a = await agent({ agentId });
    expect(a.registerRegion(1, 1, 4096).bytes.length).toBe(4096);
  });

  it.skipIf(!native)('unlinks shared memory at process exit when close() was never called', async () => {
    const index = new URL('../dist/index.js', import.meta.url).href;
    const agentId = `exit-${process.pid}`;
    const script = `
      import { TransferAgent } from ${JSON.stringify(index)};
      const a = await TransferAgent.create({ agentId: ${JSON.stringify(agentId)} });
      a.registerRegion(1, 2, 4096);
      console.log('registered');
      process.exit(0);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect({ code, out: out.trim() }).toEqual({ code: 0, out: 'registered' });
    expect(existsSync(`/dev/shm/armature-${agentId}-1@${child.pid}`)).toBe(false);
  });

  it.skipIf(!native)('sweeps shared memory whose owner died without unlinking it', async () => {
    // A process that has exited: its pid names nobody now.
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.once('exit', resolve));
    const orphan = `/armature-killed-${process.pid}-0@${dead.pid}`;
    native!.shmCreate(orphan, 4096);
    const script = `
      import { TransferAgent } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const a = await TransferAgent.create({ agentId: 'sweeper-${process.pid}' });
      a.registerRegion(1, 1, 4096);
      await a.close();
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0);
    expect(existsSync(`/dev/shm${orphan}`)).toBe(false);
  });
});

describe('backend choice', () => {
  it.skipIf(!native)('auto: shm for a peer on this host, tcp for one on another host', async () => {
    const server = await agent();
    const client = await agent();
    fillPattern(server.registerRegion(1, 4, 4096), 3);
    const local = client.registerRegion(1, 4, 4096);
    const here = server.metadata();
    const request = { regionId: 1, remoteBlockIds: [1], local, localBlockIds: [1] };
    expect((await client.readBlocks(here, request)).backend).toBe('shm');
    const elsewhere = { ...here, shm: { hostKey: 'another-host/boot/ipc' } };
    expect((await client.readBlocks(elsewhere, request)).backend).toBe('tcp');
    expect((await client.readBlocks(here, { ...request, backend: 'tcp' })).backend).toBe('tcp');
    await expect(client.readBlocks(elsewhere, { ...request, backend: 'shm' })).rejects.toMatchObject({
      kind: 'bad_request',
    });
    expect(client.counters.byBackend).toEqual({
      shm: { bytes: 4096, transfers: 1 },
      tcp: { bytes: 8192, transfers: 2 },
    });
    expect(client.counters.failures.bad_request).toBe(1);
  });

  it('says why no backend reaches a peer', async () => {
    const client = await agent({ native: null });
    const local = client.registerRegion(1, 4, 4096);
    const peer = { agentId: 'p', host: 'h', regions: [{ id: 1, blocks: 4, blockBytes: 4096 }] };
    await expect(
      client.readBlocks(peer, { regionId: 1, remoteBlockIds: [0], local, localBlockIds: [0] }),
    ).rejects.toMatchObject({
      kind: 'bad_request',
      message: expect.stringMatching(/no backend reaches/),
    });
  });

  it('negotiates the checksum the peer verifies', async () => {
    const server = await agent({ native: null, backends: ['tcp'] });
    const client = await agent({ backends: ['tcp'] });
    fillPattern(server.registerRegion(1, 4, 4096), 3);
    const local = client.registerRegion(1, 4, 4096);
    // The server (no addon) verifies only xxh3-64: a client with the addon falls back to it.
    expect(server.metadata().tcp?.checksums).toEqual(['xxh3-64']);
    await client.readBlocks(server.metadata(), { regionId: 1, remoteBlockIds: [2], local, localBlockIds: [2] });
    expect(Buffer.compare(local.view(2), server.region(1)!.view(2))).toBe(0);
  });

  it('releases what it holds for a peer that left, and reconnects when asked again', async () => {
    const server = await agent({ backends: ['tcp'] });
    const client = await agent({ backends: ['tcp'] });
    server.registerRegion(1, 4, 4096);
    const local = client.registerRegion(1, 4, 4096);
    const request = { regionId: 1, remoteBlockIds: [0], local, localBlockIds: [0] };
    await client.readBlocks(server.metadata(), request);
    await client.dropPeer(server.agentId);
    const internals = client as unknown as { tcp: { connections: Map<string, unknown> } };
    expect(internals.tcp.connections.size).toBe(0);
    await client.readBlocks(server.metadata(), request);
    expect(internals.tcp.connections.size).toBe(1);
  });
});

describe('startup', () => {
  it('fails with transfer_listen_failed when the port is taken', async () => {
    const first = await agent({ native: null });
    const port = Number(first.metadata().tcp!.address.split(':')[1]);
    await expect(TransferAgent.create({ agentId: 'second', native: null, port })).rejects.toMatchObject({
      cls: 'unavailable',
      reason: 'transfer_listen_failed',
    });
  });
});
