// The conformance suite every transfer backend must pass. A backend's test file calls
// `transferConformance(name, options)`; the same assertions run against each, with two
// agents in one process and with the peer agent in a real child process. Where a failure
// cannot happen on a medium (a memory copy does not stall or lose its peer mid-way), the
// test asserts what that medium does instead, and says so in its name.
// One file past 450 lines on purpose: a suite is read as one list of what every backend
// promises; splitting it would hide which assertions a backend is held to.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { TransferAgentOptions } from '../agent-options.js';
import type { TransferAgent } from '../agent.js';
import { TransferError } from '../errors.js';
import { loadNative } from '../native.js';
import { createMemoryRegion, type MemoryRegion } from '../region.js';
import type { AgentMetadata, TransferBackendKind } from '../types.js';
import { createFaultableAgent, injectFaults } from './faults.js';
import { blockDigests, fillPattern } from './patterns.js';
import { PeerProcess } from './peer-process.js';

export interface TransferConformanceOptions {
  backend: TransferBackendKind;
  /** Run without the native addon (pure TypeScript), in this process and in child peers. */
  pureTypeScript?: boolean;
  /** Why the suite cannot run here: it is registered as skipped with this note. */
  unavailable?: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
let agentCounter = 0;

/** Random distinct ids in [0, blocks). */
function randomIds(count: number, blocks: number): number[] {
  const all = Array.from({ length: blocks }, (_, i) => i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, count);
}

/** Byte equality without vitest's element-by-element diffing (slow on large arrays). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(
    Buffer.compare(
      Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength),
      Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
    ),
  ).toBe(0);
}

/** Resolves with the error a promise rejects with (fails if it resolves). */
async function failure(promise: Promise<unknown>): Promise<TransferError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(TransferError);
    return err as TransferError;
  }
  throw new Error('expected the transfer to fail');
}

const shmObjectsOf = (agentId: string): string[] => {
  try {
    return readdirSync('/dev/shm').filter((name) => name.startsWith(`armature-${agentId}-`));
  } catch {
    return [];
  }
};

export function transferConformance(name: string, options: TransferConformanceOptions): void {
  const { backend, pureTypeScript = false } = options;
  const title = options.unavailable
    ? `transfer conformance: ${name} (skipped: ${options.unavailable})`
    : `transfer conformance: ${name}`;
  const define = options.unavailable ? describe.skip : describe;

  define(title, () => {
    const agents: TransferAgent[] = [];
    const peers: PeerProcess[] = [];
    const nativeOption: Partial<TransferAgentOptions> = pureTypeScript ? { native: null } : {};

    const agent = async (extra: Partial<TransferAgentOptions> = {}): Promise<TransferAgent> => {
      const a = await createFaultableAgent({
        agentId: `conf-${process.pid}-${++agentCounter}`,
        backends: [backend],
        ...nativeOption,
        ...extra,
      });
      agents.push(a);
      return a;
    };

    const peer = async (
      regions: { id: number; blocks: number; blockBytes: number; seed?: number }[],
    ): Promise<PeerProcess> => {
      const p = await PeerProcess.start({
        agentId: `peer-${process.pid}-${++agentCounter}`,
        backends: [backend],
        ...(pureTypeScript ? { native: false } : {}),
        regions,
      });
      peers.push(p);
      return p;
    };

    // Two agents in this process: `server` owns region 1 (filled with a pattern), `client` region 2.
    const pair = async (
      blocks = 64,
      blockBytes = 16 * KiB,
    ): Promise<{ server: TransferAgent; client: TransferAgent; remote: MemoryRegion; local: MemoryRegion }> => {
      const server = await agent();
      const client = await agent();
      const remote = server.registerRegion(1, blocks, blockBytes);
      fillPattern(remote, 7);
      const local = client.registerRegion(2, blocks, blockBytes);
      return { server, client, remote, local };
    };

    afterEach(async () => {
      await Promise.all(agents.splice(0).map((a) => a.close()));
      const native = loadNative();
      for (const p of peers.splice(0)) {
        await p.stop(2_000);
        // A killed peer leaves its shm objects behind: remove them.
        for (const r of p.metadata.regions) if (r.shmName) native?.shmUnlink(r.shmName);
      }
    });

    afterAll(() => {
      expect(shmObjectsOf(`conf-${process.pid}`)).toEqual([]);
    });

    it('reads a random list of blocks, byte for byte', async () => {
      const { server, client, remote, local } = await pair();
      const remoteIds = randomIds(40, 64);
      const localIds = randomIds(40, 64);
      const stats = await client.readBlocks(server.metadata(), {
        regionId: 1,
        remoteBlockIds: remoteIds,
        local,
        localBlockIds: localIds,
      });
      expect(stats).toMatchObject({ bytes: 40 * 16 * KiB, blocks: 40, backend });
      for (let i = 0; i < 40; i++) expectSameBytes(local.view(localIds[i]!), remote.view(remoteIds[i]!));
      expect(client.counters.byBackend[backend]).toEqual({ bytes: 40 * 16 * KiB, transfers: 1 });
    });

    it('writes a random list of blocks, byte for byte', async () => {
      const { server, client, remote, local } = await pair();
      fillPattern(local, 99);
      const remoteIds = randomIds(33, 64);
      const localIds = randomIds(33, 64);
      const before = remote.bytes.slice();
      await client.writeBlocks(server.metadata(), {
        regionId: 1,
        remoteBlockIds: remoteIds,
        local,
        localBlockIds: localIds,
      });
      for (let i = 0; i < 33; i++) expectSameBytes(remote.view(remoteIds[i]!), local.view(localIds[i]!));
      // Blocks not written are untouched.
      const written = new Set(remoteIds);
      for (let id = 0; id < 64; id++) {
        if (!written.has(id)) expectSameBytes(remote.view(id), before.subarray(id * 16 * KiB, (id + 1) * 16 * KiB));
      }
    });

    it('reads into and writes from a region not registered with the agent', async () => {
      const { server, client, remote } = await pair(8, 4 * KiB);
      const scratch = createMemoryRegion(9, 8, 4 * KiB);
      await client.readBlocks(server.metadata(), {
        regionId: 1,
        remoteBlockIds: [3, 5],
        local: scratch,
        localBlockIds: [0, 1],
      });
      expectSameBytes(scratch.view(0), remote.view(3));
      expectSameBytes(scratch.view(1), remote.view(5));
      const empty = await client.readBlocks(server.metadata(), {
        regionId: 1,
        remoteBlockIds: [],
        local: scratch,
        localBlockIds: [],
      });
      expect(empty.bytes).toBe(0);
    });

    it('moves 64 MiB of 256 KiB blocks', async () => {
      const { server, client, remote, local } = await pair(256, 256 * KiB);
      const ids = Array.from({ length: 256 }, (_, i) => i);
      const stats = await client.readBlocks(server.metadata(), {
        regionId: 1,
        remoteBlockIds: ids,
        local,
        localBlockIds: ids.slice().reverse(),
      });
      expect(stats.bytes).toBe(64 * MiB);
      for (const id of [0, 17, 128, 255]) expectSameBytes(local.view(255 - id), remote.view(id));
      local.bytes.fill(3);
      await client.writeBlocks(server.metadata(), { regionId: 1, remoteBlockIds: ids, local, localBlockIds: ids });
      expect(remote.bytes.findIndex((b) => b !== 3)).toBe(-1);
    });

    it('runs many concurrent requests to one peer (over one connection)', async () => {
      const { server, client, remote, local } = await pair(128, 16 * KiB);
      const spare = client.registerRegion(3, 128, 16 * KiB);
      fillPattern(spare, 5);
      const meta = server.metadata();
      const requests: Promise<unknown>[] = [];
      for (let r = 0; r < 16; r++) {
        const ids = Array.from({ length: 8 }, (_, i) => r * 8 + i);
        requests.push(
          r % 2 === 0
            ? client.readBlocks(meta, { regionId: 1, remoteBlockIds: ids, local, localBlockIds: ids })
            : client.writeBlocks(meta, { regionId: 1, remoteBlockIds: ids, local: spare, localBlockIds: ids }),
        );
      }
      await Promise.all(requests);
      for (let r = 0; r < 16; r++) {
        for (let i = 0; i < 8; i++) {
          const id = r * 8 + i;
          if (r % 2 === 0) expectSameBytes(local.view(id), remote.view(id));
          else expectSameBytes(remote.view(id), spare.view(id));
        }
      }
      expect(client.counters.transfers).toBe(16);
      if (backend === 'tcp') {
        const internals = client as unknown as { tcp: { connections: Map<string, unknown> } };
        expect(internals.tcp.connections.size).toBe(1);
      }
    });

    it('rejects bad requests with bad_request before anything moves', async () => {
      const { server, client, local } = await pair(8, 4 * KiB);
      const meta = server.metadata();
      const read = (
        req: Partial<Parameters<TransferAgent['readBlocks']>[1]>,
        m: AgentMetadata = meta,
      ): Promise<unknown> =>
        client.readBlocks(m, { regionId: 1, remoteBlockIds: [0], local, localBlockIds: [0], ...req });
      expect((await failure(read({ regionId: 42 }))).kind).toBe('bad_request');
      expect((await failure(read({ remoteBlockIds: [8] }))).kind).toBe('bad_request');
      expect((await failure(read({ localBlockIds: [-1] }))).kind).toBe('bad_request');
      expect((await failure(read({ remoteBlockIds: [0, 1] }))).kind).toBe('bad_request');
      expect((await failure(read({ local: createMemoryRegion(5, 8, 8 * KiB) }))).kind).toBe('bad_request');
      expect((await failure(read({ timeoutMs: -1 }))).kind).toBe('bad_request');
      const error = await failure(read({ remoteBlockIds: [1.5] }));
      expect({ cls: error.cls, reason: error.reason }).toEqual({
        cls: 'invalid_argument',
        reason: 'transfer_bad_request',
      });
      expect(client.counters.failures.bad_request).toBe(7);
      expect(local.bytes.findIndex((b) => b !== 0)).toBe(-1);
    });

    it('answers a peer that lies about the region with bad_request, and keeps serving', async () => {
      const { server, client, remote, local } = await pair(8, 4 * KiB);
      const truth = server.metadata();
      const bigger: AgentMetadata = { ...truth, regions: truth.regions.map((r) => ({ ...r, blocks: 1_000 })) };
      const error = await failure(
        client.readBlocks(bigger, { regionId: 1, remoteBlockIds: [999], local, localBlockIds: [0] }),
      );
      expect(error.kind).toBe('bad_request');
      if (backend === 'tcp') {
        // The server checked it: its own range is in the message.
        expect(error.message).toMatch(/out of range \[0, 8\)/);
        const ghost: AgentMetadata = {
          ...truth,
          regions: [...truth.regions, { id: 77, blocks: 8, blockBytes: 4 * KiB }],
        };
        const unknown = await failure(
          client.readBlocks(ghost, { regionId: 77, remoteBlockIds: [0], local, localBlockIds: [0] }),
        );
        expect(unknown.kind).toBe('bad_request');
        expect(unknown.message).toMatch(/unknown region 77/);
        expect(server.counters.servedErrors).toBeGreaterThanOrEqual(2);
      }
      await client.readBlocks(truth, { regionId: 1, remoteBlockIds: [2], local, localBlockIds: [0] });
      expectSameBytes(local.view(0), remote.view(2));
    });

    if (backend === 'tcp') {
      it('times out on a peer that stalls, and the connection keeps serving other requests', async () => {
        const { server, client, remote, local } = await pair(8, 4 * KiB);
        injectFaults(server, { stall: true });
        const started = performance.now();
        const error = await failure(
          client.readBlocks(server.metadata(), {
            regionId: 1,
            remoteBlockIds: [1],
            local,
            localBlockIds: [1],
            timeoutMs: 200,
          }),
        );
        expect(error.kind).toBe('timeout');
        expect({ cls: error.cls, reason: error.reason }).toEqual({
          cls: 'deadline_exceeded',
          reason: 'transfer_timeout',
        });
        expect(performance.now() - started).toBeLessThan(2_000);
        const write = await failure(
          client.writeBlocks(server.metadata(), {
            regionId: 1,
            remoteBlockIds: [1],
            local,
            localBlockIds: [1],
            timeoutMs: 200,
          }),
        );
        expect(write.kind).toBe('timeout');
        injectFaults(server, {});
        await client.readBlocks(server.metadata(), { regionId: 1, remoteBlockIds: [4], local, localBlockIds: [4] });
        expectSameBytes(local.view(4), remote.view(4));
        expect(client.counters.failures.timeout).toBe(2);
      });

      it('detects bytes corrupted on the way with checksum_mismatch (read and write)', async () => {
        const { server, client, local } = await pair(16, 16 * KiB);
        injectFaults(server, { corruptReads: true });
        const read = await failure(
          client.readBlocks(server.metadata(), {
            regionId: 1,
            remoteBlockIds: [1, 2, 3],
            local,
            localBlockIds: [1, 2, 3],
          }),
        );
        expect(read.kind).toBe('checksum_mismatch');
        expect({ cls: read.cls, reason: read.reason }).toEqual({
          cls: 'internal',
          reason: 'transfer_checksum_mismatch',
        });
        injectFaults(server, { corruptWrites: true });
        const write = await failure(
          client.writeBlocks(server.metadata(), { regionId: 1, remoteBlockIds: [5], local, localBlockIds: [5] }),
        );
        expect(write.kind).toBe('checksum_mismatch');
        injectFaults(server, {});
        await client.readBlocks(server.metadata(), { regionId: 1, remoteBlockIds: [1], local, localBlockIds: [1] });
      });

      it('fails with peer_unreachable when nobody listens', async () => {
        const { server, client, local } = await pair(4, 4 * KiB);
        const meta = server.metadata();
        await server.close();
        const error = await failure(
          client.readBlocks(meta, { regionId: 1, remoteBlockIds: [0], local, localBlockIds: [0] }),
        );
        expect(error.kind).toBe('peer_unreachable');
        expect({ cls: error.cls, reason: error.reason }).toEqual({
          cls: 'unavailable',
          reason: 'transfer_peer_unreachable',
        });
      });
    } else {
      it('times out between batches of a large copy when the deadline passes', async () => {
        const { server, client, local } = await pair(1024, 256 * KiB);
        const ids = Array.from({ length: 1024 }, (_, i) => i);
        const error = await failure(
          client.readBlocks(server.metadata(), {
            regionId: 1,
            remoteBlockIds: ids,
            local,
            localBlockIds: ids,
            timeoutMs: 1,
          }),
        );
        expect(error.kind).toBe('timeout');
      });

      it('verifies nothing by default; with verify: true a corrupted copy is checksum_mismatch', async () => {
        const { server, client, local } = await pair(8, 4 * KiB);
        injectFaults(client, { corruptShmCopies: true });
        const meta = server.metadata();
        await client.readBlocks(meta, { regionId: 1, remoteBlockIds: [1], local, localBlockIds: [1] });
        const error = await failure(
          client.readBlocks(meta, { regionId: 1, remoteBlockIds: [1], local, localBlockIds: [1], verify: true }),
        );
        expect(error.kind).toBe('checksum_mismatch');
        injectFaults(client, {});
        await client.readBlocks(meta, { regionId: 1, remoteBlockIds: [1], local, localBlockIds: [1], verify: true });
      });
    }

    describe('with the peer in a child process', () => {
      it('reads and writes random block lists, verified by digests in the peer', async () => {
        const p = await peer([{ id: 1, blocks: 64, blockBytes: 64 * KiB, seed: 11 }]);
        const client = await agent();
        const local = client.registerRegion(2, 64, 64 * KiB);
        const remoteIds = randomIds(48, 64);
        const localIds = randomIds(48, 64);
        const stats = await client.readBlocks(p.metadata, {
          regionId: 1,
          remoteBlockIds: remoteIds,
          local,
          localBlockIds: localIds,
        });
        expect(stats.backend).toBe(backend);
        expect(blockDigests(local, localIds)).toEqual(await p.digests(1, remoteIds));
        fillPattern(local, 12);
        const writeIds = randomIds(20, 64);
        await client.writeBlocks(p.metadata, {
          regionId: 1,
          remoteBlockIds: writeIds,
          local,
          localBlockIds: localIds.slice(0, 20),
        });
        expect(await p.digests(1, writeIds)).toEqual(blockDigests(local, localIds.slice(0, 20)));
      });

      it('moves 64 MiB of 256 KiB blocks from the peer', async () => {
        const p = await peer([{ id: 1, blocks: 256, blockBytes: 256 * KiB, seed: 3 }]);
        const client = await agent();
        const local = client.registerRegion(2, 256, 256 * KiB);
        const ids = Array.from({ length: 256 }, (_, i) => i);
        const stats = await client.readBlocks(p.metadata, {
          regionId: 1,
          remoteBlockIds: ids,
          local,
          localBlockIds: ids,
        });
        expect(stats.bytes).toBe(64 * MiB);
        expect(blockDigests(local, ids)).toEqual(await p.digests(1, ids));
      });

      it('serves a peer process that reads and writes this agent', async () => {
        const server = await agent();
        const region = server.registerRegion(1, 32, 16 * KiB);
        fillPattern(region, 21);
        const p = await peer([{ id: 5, blocks: 32, blockBytes: 16 * KiB, seed: 22 }]);
        const read = await p.call({
          cmd: 'read',
          peer: server.metadata(),
          regionId: 1,
          remoteIds: [0, 9, 31],
          localRegionId: 5,
          localIds: [1, 2, 3],
        });
        expect(read).toMatchObject({ ok: true, stats: { backend } });
        expect(await p.digests(5, [1, 2, 3])).toEqual(blockDigests(region, [0, 9, 31]));
        const write = await p.call({
          cmd: 'write',
          peer: server.metadata(),
          regionId: 1,
          remoteIds: [4, 5],
          localRegionId: 5,
          localIds: [7, 8],
        });
        expect(write.ok).toBe(true);
        expect(blockDigests(region, [4, 5])).toEqual(await p.digests(5, [7, 8]));
      });

      if (backend === 'tcp') {
        it('fails with peer_unreachable, not a hang, when the peer is killed mid-transfer', async () => {
          const p = await peer([{ id: 1, blocks: 256, blockBytes: 256 * KiB, seed: 3 }]);
          await p.call({ cmd: 'faults', faults: { frameDelayMs: 20 } });
          const client = await agent();
          const local = client.registerRegion(2, 256, 256 * KiB);
          const ids = Array.from({ length: 256 }, (_, i) => i);
          const transfer = client.readBlocks(p.metadata, {
            regionId: 1,
            remoteBlockIds: ids,
            local,
            localBlockIds: ids,
          });
          // Kill once the first blocks have landed.
          const firstBlock = local.view(0);
          while (firstBlock[firstBlock.length - 1] === 0 && firstBlock[0] === 0)
            await new Promise((resolve) => setTimeout(resolve, 5));
          const killedAt = performance.now();
          p.kill('SIGKILL');
          const error = await failure(transfer);
          expect(error.kind).toBe('peer_unreachable');
          expect(performance.now() - killedAt).toBeLessThan(2_000);
          // The next request to the dead peer fails fast too.
          const again = await failure(
            client.readBlocks(p.metadata, { regionId: 1, remoteBlockIds: [0], local, localBlockIds: [0] }),
          );
          expect(again.kind).toBe('peer_unreachable');
        });

        it('times out on a peer process that stalls', async () => {
          const p = await peer([{ id: 1, blocks: 4, blockBytes: 4 * KiB, seed: 3 }]);
          await p.call({ cmd: 'faults', faults: { stall: true } });
          const client = await agent();
          const local = client.registerRegion(2, 4, 4 * KiB);
          const error = await failure(
            client.readBlocks(p.metadata, {
              regionId: 1,
              remoteBlockIds: [0],
              local,
              localBlockIds: [0],
              timeoutMs: 300,
            }),
          );
          expect(error.kind).toBe('timeout');
        });

        it('detects corruption by a peer process with checksum_mismatch', async () => {
          const p = await peer([{ id: 1, blocks: 4, blockBytes: 64 * KiB, seed: 3 }]);
          await p.call({ cmd: 'faults', faults: { corruptReads: true } });
          const client = await agent();
          const local = client.registerRegion(2, 4, 64 * KiB);
          const error = await failure(
            client.readBlocks(p.metadata, { regionId: 1, remoteBlockIds: [0, 1], local, localBlockIds: [0, 1] }),
          );
          expect(error.kind).toBe('checksum_mismatch');
        });
      } else {
        it('keeps copying from a killed peer (its memory outlives it); a peer that closed is peer_unreachable', async () => {
          const p = await peer([
            { id: 1, blocks: 16, blockBytes: 64 * KiB, seed: 3 },
            { id: 2, blocks: 16, blockBytes: 64 * KiB, seed: 4 },
          ]);
          const client = await agent();
          const local = client.registerRegion(2, 16, 64 * KiB);
          const ids = Array.from({ length: 16 }, (_, i) => i);
          const expected = await p.digests(1, ids);
          await client.readBlocks(p.metadata, { regionId: 1, remoteBlockIds: ids, local, localBlockIds: ids });
          p.kill('SIGKILL');
          await p.exited;
          // The mapping stays valid after the owner died: no crash, same bytes.
          await client.readBlocks(p.metadata, { regionId: 1, remoteBlockIds: ids, local, localBlockIds: ids });
          expect(blockDigests(local, ids)).toEqual(expected);

          const q = await peer([{ id: 1, blocks: 4, blockBytes: 4 * KiB, seed: 5 }]);
          await q.stop();
          const small = createMemoryRegion(3, 4, 4 * KiB);
          const error = await failure(
            client.readBlocks(q.metadata, { regionId: 1, remoteBlockIds: [0], local: small, localBlockIds: [0] }),
          );
          expect(error.kind).toBe('peer_unreachable');
        });
      }
    });

    it('close() frees everything: later calls fail with closed, shm objects are gone', async () => {
      const { server, client, local } = await pair(4, 4 * KiB);
      await client.readBlocks(server.metadata(), { regionId: 1, remoteBlockIds: [0], local, localBlockIds: [0] });
      const meta = server.metadata();
      await client.close();
      await client.close(); // idempotent
      const error = await failure(
        client.readBlocks(meta, { regionId: 1, remoteBlockIds: [0], local, localBlockIds: [0] }),
      );
      expect(error.kind).toBe('closed');
      expect(() => client.registerRegion(9, 1, 4 * KiB)).toThrow(TransferError);
      await server.close();
      expect(shmObjectsOf(server.agentId)).toEqual([]);
      expect(shmObjectsOf(client.agentId)).toEqual([]);
    });

    it('close() leaves no open handles: a process that used two agents exits by itself', async () => {
      const index = new URL('../../dist/index.js', import.meta.url).href;
      const script = `
        import { TransferAgent } from ${JSON.stringify(index)};
        const opts = { backends: [${JSON.stringify(backend)}]${pureTypeScript ? ', native: null' : ''} };
        const a = await TransferAgent.create({ agentId: 'exit-a-' + process.pid, ...opts });
        const b = await TransferAgent.create({ agentId: 'exit-b-' + process.pid, ...opts });
        const region = a.registerRegion(1, 8, 4096);
        const local = b.registerRegion(1, 8, 4096);
        await b.readBlocks(a.metadata(), { regionId: 1, remoteBlockIds: [1, 2], local, localBlockIds: [3, 4] });
        await b.writeBlocks(a.metadata(), { regionId: 1, remoteBlockIds: [5], local, localBlockIds: [3] });
        await Promise.all([a.close(), b.close()]);
        console.log('closed ' + process.pid);
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(-1);
        }, 10_000);
        child.once('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      expect({ code, out: out.trim() }).toEqual({ code: 0, out: `closed ${child.pid}` });
      expect(shmObjectsOf(`exit-a-${child.pid}`)).toEqual([]);
    });
  });
}
