// A transfer agent in its own process, driven over stdin/stdout with JSON lines, so tests
// and the benchmark can put a real peer in another process (and kill it). Started as
// `node dist/testing/test-peer.js '<json PeerConfig>'`; prints `{"event":"ready","metadata":...}`,
// then answers each command line `{"id":n,"cmd":...}` with `{"id":n,...}`. On 'close' it
// closes the agent and lets the process exit by itself (so a test sees leaked handles as
// a process that does not exit). Not part of the package's API.
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { TransferAgent } from '../agent.js';
import type { MemoryRegion } from '../region.js';
import type { AgentMetadata, TransferBackendKind } from '../types.js';
import { createFaultableAgent, injectFaults, type AgentFaults } from './faults.js';
import { blockDigests, fillPattern } from './patterns.js';

export interface PeerConfig {
  agentId: string;
  backends?: TransferBackendKind[];
  /** false: run without the native addon. */
  native?: boolean;
  regions: { id: number; blocks: number; blockBytes: number; seed?: number }[];
  faults?: AgentFaults;
}

export type PeerCommand =
  | { cmd: 'fill'; regionId: number; seed: number }
  | { cmd: 'digest'; regionId: number; ids: number[] }
  | { cmd: 'faults'; faults: AgentFaults }
  | {
      cmd: 'read' | 'write';
      peer: AgentMetadata;
      regionId: number;
      remoteIds: number[];
      localRegionId: number;
      localIds: number[];
    }
  | { cmd: 'raw-serve'; regionId: number; passes: number }
  | { cmd: 'close' };

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as PeerConfig;
  const agent = await createFaultableAgent({
    agentId: config.agentId,
    backends: config.backends,
    ...(config.native === false ? { native: null } : {}),
  });
  for (const r of config.regions) {
    const region = agent.registerRegion(r.id, r.blocks, r.blockBytes);
    if (r.seed !== undefined) fillPattern(region, r.seed);
  }
  if (config.faults) injectFaults(agent, config.faults);
  const reply = (value: object): void => {
    process.stdout.write(`${JSON.stringify(value)}\n`);
  };
  reply({ event: 'ready', metadata: agent.metadata(), pid: process.pid });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const { id, ...command } = JSON.parse(line) as PeerCommand & { id: number };
    try {
      const result = await run(agent, command);
      reply({ id, ok: true, ...result });
      if (command.cmd === 'close') {
        lines.close();
        process.stdin.destroy();
        return;
      }
    } catch (err) {
      const e = err as { kind?: string; message?: string };
      reply({ id, ok: false, kind: e.kind, message: e.message ?? String(err) });
    }
  }
  await agent.close();
}

async function run(agent: TransferAgent, command: PeerCommand): Promise<object> {
  const region = (id: number): MemoryRegion => {
    const r = agent.region(id);
    if (!r) throw new Error(`no region ${id}`);
    return r;
  };
  switch (command.cmd) {
    case 'fill':
      fillPattern(region(command.regionId), command.seed);
      return {};
    case 'digest':
      return { digests: blockDigests(region(command.regionId), command.ids) };
    case 'faults':
      injectFaults(agent, command.faults);
      return {};
    case 'read':
    case 'write': {
      const request = {
        regionId: command.regionId,
        remoteBlockIds: command.remoteIds,
        local: region(command.localRegionId),
        localBlockIds: command.localIds,
      };
      const stats =
        command.cmd === 'read'
          ? await agent.readBlocks(command.peer, request)
          : await agent.writeBlocks(command.peer, request);
      return { stats };
    }
    case 'raw-serve':
      return rawServe(region(command.regionId), command.passes);
    case 'close':
      await agent.close();
      return {};
  }
}

// The benchmark's baseline: a plain socket server that sends the region's bytes `passes`
// times to the first connection, no protocol, then closes. Resolves with its port.
async function rawServe(region: MemoryRegion, passes: number): Promise<object> {
  const server = createServer({ noDelay: true }, (socket) => {
    server.close();
    void (async () => {
      const chunk = 4 * 1024 * 1024;
      for (let pass = 0; pass < passes; pass++) {
        for (let off = 0; off < region.byteLength; off += chunk) {
          if (!socket.write(region.bytes.subarray(off, Math.min(region.byteLength, off + chunk)))) {
            await new Promise((resolve) => socket.once('drain', resolve));
          }
        }
      }
      socket.end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`test-peer: ${String(err)}\n`);
    process.exitCode = 1;
  });
}
