// Transfer bandwidth between two agents in two processes on this host, against the two
// ceilings it is judged by, measured in the same run: memcpy (the same blocks copied in one
// process: the addon's copyBlocks, or Uint8Array.set without it) for shared memory, and a
// plain socket (the same bytes over loopback with no protocol) for TCP.
//
//   npm run bench:transfer -- [--total-mib 1024] [--quick] [--block-kib 16,64,256]
//
// For each block size the peer process registers a region (a quarter of the total, at
// most 128 MiB) filled with a pattern, and this process reads it whole, pass after pass,
// until --total-mib moved (after one untimed warm-up pass): over shm (when the addon is
// loaded), over TCP with the default checksum, and over TCP in pure TypeScript (no addon
// on either side). Writes (this process → peer) are measured the same way, and so are two
// raw sockets: 'data' events (the plain pipe) and `onread` into one reused buffer. Each
// figure is the median pass (the cores of a shared host are noisy); GB/s are 1e9 bytes
// per second. Progress goes to stderr; the last line of stdout is one JSON object.
import { createConnection } from 'node:net';
import { parseArgs } from 'node:util';
import { TransferAgent } from './agent.js';
import { loadNative, nativeStatus } from './native.js';
import { createMemoryRegion, type MemoryRegion } from './region.js';
import { PeerProcess } from './testing/peer-process.js';
import { blockDigests, fillPattern } from './testing/patterns.js';
import type { AgentMetadata, TransferBackendKind } from './types.js';

const { values: args } = parseArgs({
  options: {
    'total-mib': { type: 'string' },
    quick: { type: 'boolean', default: false },
    'block-kib': { type: 'string', default: '16,64,256' },
  },
});
const KiB = 1024;
const MiB = 1024 * KiB;
const TOTAL_MIB = Number(args['total-mib'] ?? (args.quick ? 64 : 1024));
const BLOCK_KIB = args['block-kib'].split(',').map(Number);
if (!Number.isSafeInteger(TOTAL_MIB) || TOTAL_MIB < 1) throw new RangeError(`--total-mib must be a positive integer`);
for (const kib of BLOCK_KIB) {
  if (!Number.isSafeInteger(kib) || kib < 1 || kib * KiB > 64 * MiB) throw new RangeError(`bad --block-kib ${kib}`);
}
const REGION_MAX_BYTES = 128 * MiB;

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const gbps = (bytes: number, ms: number): number => Number((bytes / ms / 1e6).toFixed(3));
const median = (values: number[]): number => {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** GB/s of the median pass: this host's cores are shared, and one slow pass should not decide. */
function medianGbps(bytesPerPass: number, passMs: number[]): number {
  return gbps(bytesPerPass, median(passMs));
}

interface Row {
  block_kib: number;
  memcpy_gbps: number;
  shm_gbps: number | null;
  shm_write_gbps: number | null;
  tcp_gbps: number;
  tcp_write_gbps: number;
  tcp_typescript_gbps: number;
  raw_tcp_gbps: number;
  raw_tcp_onread_gbps: number;
}

const native = loadNative();
let peerCounter = 0;

/** Region shape for a block size: whole blocks, at most REGION_MAX_BYTES, passes to reach the total. */
function shape(blockBytes: number): { blocks: number; passes: number } {
  const total = TOTAL_MIB * MiB;
  const blocks = Math.max(1, Math.floor(Math.min(total / 4, REGION_MAX_BYTES) / blockBytes));
  return { blocks, passes: Math.max(1, Math.round(total / (blocks * blockBytes))) };
}

/** The same blocks copied in this process: the ceiling for shm. */
function memcpy(blockBytes: number): number {
  const { blocks, passes } = shape(blockBytes);
  const src = createMemoryRegion(1, blocks, blockBytes);
  const dst = createMemoryRegion(2, blocks, blockBytes);
  fillPattern(src, 1);
  const ids = Uint32Array.from({ length: blocks }, (_, i) => i);
  const copy = (): void => {
    if (native) {
      native.copyBlocks(src.buffer, ids, dst.buffer, ids, blockBytes);
    } else {
      for (let i = 0; i < blocks; i++) dst.view(i).set(src.view(i));
    }
  };
  copy(); // warm-up: fault the pages in
  const passMs: number[] = [];
  for (let pass = 0; pass < passes; pass++) {
    const started = performance.now();
    copy();
    passMs.push(performance.now() - started);
  }
  return medianGbps(blocks * blockBytes, passMs);
}

/**
 * The region's bytes from the peer over a plain loopback socket, no protocol: the ceiling
 * for TCP. `onread`: the socket reads into one reused buffer (as the agent's client does)
 * instead of a fresh buffer per 'data' event.
 */
async function rawTcp(peer: PeerProcess, regionBytes: number, passes: number, onread: boolean): Promise<number> {
  const { port } = await peer.call({ cmd: 'raw-serve', regionId: 1, passes: passes + 1 });
  let received = 0;
  // Time at each pass boundary; the first pass is the warm-up.
  const marks: number[] = [];
  const count = (n: number): void => {
    received += n;
    while (received >= (marks.length + 1) * regionBytes) marks.push(performance.now());
  };
  const reused = new Uint8Array(1 << 20);
  const socket = createConnection({
    port: port!,
    host: '127.0.0.1',
    noDelay: true,
    ...(onread ? { onread: { buffer: reused, callback: (n: number) => (count(n), true) } } : {}),
  });
  if (!onread) socket.on('data', (chunk: Buffer) => count(chunk.length));
  await new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('error', reject);
  });
  socket.destroy();
  if (received !== (passes + 1) * regionBytes) throw new Error(`raw socket: ${received} bytes arrived`);
  return medianGbps(
    regionBytes,
    marks.slice(1).map((mark, i) => mark - marks[i]!),
  );
}

/** Reads (or writes) the whole region `passes` times after one warm-up pass. */
async function transfer(
  agent: TransferAgent,
  peer: AgentMetadata,
  local: MemoryRegion,
  backend: TransferBackendKind,
  direction: 'read' | 'write',
  passes: number,
): Promise<number> {
  const ids = Uint32Array.from({ length: local.blocks }, (_, i) => i);
  const request = { regionId: 1, remoteBlockIds: ids, local, localBlockIds: ids, backend, timeoutMs: 600_000 };
  const once = (): Promise<unknown> =>
    direction === 'read' ? agent.readBlocks(peer, request) : agent.writeBlocks(peer, request);
  await once();
  const passMs: number[] = [];
  for (let pass = 0; pass < passes; pass++) {
    const started = performance.now();
    await once();
    passMs.push(performance.now() - started);
  }
  return medianGbps(local.byteLength, passMs);
}

async function measure(blockKib: number): Promise<Row> {
  const blockBytes = blockKib * KiB;
  const { blocks, passes } = shape(blockBytes);
  log(`${blockKib} KiB blocks: region ${(blocks * blockBytes) / MiB} MiB × ${passes} passes`);
  const row: Row = {
    block_kib: blockKib,
    memcpy_gbps: memcpy(blockBytes),
    shm_gbps: null,
    shm_write_gbps: null,
    tcp_gbps: 0,
    tcp_write_gbps: 0,
    tcp_typescript_gbps: 0,
    raw_tcp_gbps: 0,
    raw_tcp_onread_gbps: 0,
  };
  log(`  memcpy ${row.memcpy_gbps} GB/s`);

  for (const pure of [false, true]) {
    if (pure && !native) {
      row.tcp_typescript_gbps = row.tcp_gbps;
      continue;
    }
    const peer = await PeerProcess.start({
      agentId: `bench-peer-${process.pid}-${++peerCounter}`,
      ...(pure ? { native: false, backends: ['tcp'] } : {}),
      regions: [{ id: 1, blocks, blockBytes, seed: 42 }],
    });
    const agent = await TransferAgent.create({
      agentId: `bench-${process.pid}-${peerCounter}`,
      ...(pure ? { native: null, backends: ['tcp'] } : {}),
    });
    try {
      const local = agent.registerRegion(2, blocks, blockBytes);
      if (pure) {
        row.tcp_typescript_gbps = await transfer(agent, peer.metadata, local, 'tcp', 'read', passes);
        log(`  tcp (pure TypeScript) read ${row.tcp_typescript_gbps} GB/s`);
        continue;
      }
      if (agent.backendKinds.includes('shm')) {
        row.shm_gbps = await transfer(agent, peer.metadata, local, 'shm', 'read', passes);
        log(`  shm read ${row.shm_gbps} GB/s`);
        row.shm_write_gbps = await transfer(agent, peer.metadata, local, 'shm', 'write', passes);
        log(`  shm write ${row.shm_write_gbps} GB/s`);
      }
      local.bytes.fill(0);
      row.tcp_gbps = await transfer(agent, peer.metadata, local, 'tcp', 'read', passes);
      log(`  tcp read ${row.tcp_gbps} GB/s`);
      // The bytes really moved: a few blocks compared with the peer's.
      const sample = [0, Math.floor(blocks / 2), blocks - 1];
      if (blockDigests(local, sample).join() !== (await peer.digests(1, sample)).join()) {
        throw new Error('tcp read: blocks differ from the peer');
      }
      row.tcp_write_gbps = await transfer(agent, peer.metadata, local, 'tcp', 'write', passes);
      log(`  tcp write ${row.tcp_write_gbps} GB/s`);
      row.raw_tcp_gbps = await rawTcp(peer, blocks * blockBytes, passes, false);
      log(`  raw socket ${row.raw_tcp_gbps} GB/s`);
      row.raw_tcp_onread_gbps = await rawTcp(peer, blocks * blockBytes, passes, true);
      log(`  raw socket (onread, one reused buffer) ${row.raw_tcp_onread_gbps} GB/s`);
    } finally {
      await agent.close();
      await peer.stop();
    }
  }
  return row;
}

async function main(): Promise<void> {
  const status = nativeStatus();
  log(`native addon: ${status.loaded ? status.version : `not loaded (${status.reason})`}`);
  log(`total ${TOTAL_MIB} MiB per measurement, blocks of ${BLOCK_KIB.join(', ')} KiB`);
  const rows: Row[] = [];
  for (const kib of BLOCK_KIB) rows.push(await measure(kib));
  const head = rows.find((r) => r.block_kib === 256) ?? rows[rows.length - 1]!;
  const ratio = (a: number | null, b: number): number | null =>
    a === null || b === 0 ? null : Number((a / b).toFixed(3));
  const result = {
    shm_gbps: head.shm_gbps,
    tcp_gbps: head.tcp_gbps,
    memcpy_gbps: head.memcpy_gbps,
    raw_tcp_gbps: head.raw_tcp_gbps,
    shm_vs_memcpy: ratio(head.shm_gbps, head.memcpy_gbps),
    tcp_vs_raw_tcp: ratio(head.tcp_gbps, head.raw_tcp_gbps),
    tcp_vs_raw_tcp_onread: ratio(head.tcp_gbps, head.raw_tcp_onread_gbps),
    headline_block_kib: head.block_kib,
    total_mib: TOTAL_MIB,
    native: status.loaded ? status.version : null,
    by_block_size: rows,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
