// The TCP backend, pure TypeScript over node:net: it serves the agent's regions to peers
// (tcp-server.ts) and reaches peers' regions over one reused, multiplexed connection per
// peer (tcp-client.ts). It also negotiates the block checksum: the requester uses the
// first algorithm in its own preference order that the peer advertises.
import { CHECKSUM_CODE, type BlockChecksummer } from '../checksum.js';
import { TransferError } from '../errors.js';
import type { TransferFaultHooks } from '../fault-hooks.js';
import type { MemoryRegion } from '../region.js';
import type { AgentMetadata, ChecksumAlgorithm, RegionMetadata } from '../types.js';
import type { BackendTransfer, TransferBackend } from './backend.js';
import { TcpConnection } from './tcp-client.js';
import { TcpServer } from './tcp-server.js';

export interface TcpBackendOptions {
  /** Interface to listen on. */
  host: string;
  /** Host peers connect to. */
  advertiseHost: string;
  port: number;
  region(id: number): MemoryRegion | undefined;
  /** Checksums this process computes, preferred first. */
  checksummers: readonly BlockChecksummer[];
  /** 'auto': the first of `checksummers` the peer supports; or one algorithm (bad_request if the peer lacks it). */
  checksum: 'auto' | ChecksumAlgorithm;
  /** Where tests make the server misbehave (NO_FAULTS in production). */
  faults: TransferFaultHooks;
  onServed(bytes: number): void;
  onServerError(): void;
}

/** Algorithms a peer verifies when its metadata does not say. */
const DEFAULT_PEER_CHECKSUMS: readonly ChecksumAlgorithm[] = ['xxh3-64'];

export class TcpBackend implements TransferBackend {
  readonly kind = 'tcp' as const;
  private readonly connections = new Map<string, TcpConnection>();
  private readonly byCode: Map<number, BlockChecksummer>;

  private constructor(
    private readonly options: TcpBackendOptions,
    private readonly server: TcpServer,
  ) {
    this.byCode = new Map(options.checksummers.map((c) => [CHECKSUM_CODE[c.algorithm], c]));
  }

  /** Starts the server; resolves once it listens. */
  static async start(options: TcpBackendOptions): Promise<TcpBackend> {
    const byCode = new Map(options.checksummers.map((c) => [CHECKSUM_CODE[c.algorithm], c]));
    const server = await TcpServer.listen({
      host: options.host,
      port: options.port,
      region: options.region,
      checksummers: byCode,
      faults: options.faults,
      onServed: options.onServed,
      onError: options.onServerError,
    });
    return new TcpBackend(options, server);
  }

  /** The `tcp` section of the agent's metadata. */
  metadata(): NonNullable<AgentMetadata['tcp']> {
    return {
      address: formatAddress(this.options.advertiseHost, this.server.port),
      checksums: this.options.checksummers.map((c) => c.algorithm),
    };
  }

  reachability(peer: AgentMetadata, _region: RegionMetadata): TransferError | undefined {
    if (!peer.tcp) return new TransferError('bad_request', `peer ${peer.agentId} does not serve tcp`);
    const address = parseAddress(peer.tcp.address);
    if (typeof address === 'string') return new TransferError('bad_request', `peer ${peer.agentId}: ${address}`);
    const checksum = this.chooseChecksum(peer);
    return checksum instanceof TransferError ? checksum : undefined;
  }

  read(transfer: BackendTransfer): Promise<void> {
    return this.run('read', transfer);
  }

  write(transfer: BackendTransfer): Promise<void> {
    return this.run('write', transfer);
  }

  async dropPeer(agentId: string): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, connection] of this.connections) {
      if (key.startsWith(`${agentId}|`)) {
        this.connections.delete(key);
        closing.push(connection.close(new TransferError('peer_unreachable', `peer ${agentId} left`)));
      }
    }
    await Promise.all(closing);
  }

  async close(): Promise<void> {
    const closing = [...this.connections.values()].map((c) => c.close());
    this.connections.clear();
    await Promise.all([this.server.close(), ...closing]);
  }

  private run(kind: 'read' | 'write', t: BackendTransfer): Promise<void> {
    const unreachable = this.reachability(t.peer, t.region);
    if (unreachable) return Promise.reject(unreachable);
    const checksum = this.chooseChecksum(t.peer) as { code: number; checksummer: BlockChecksummer | undefined };
    const connection = this.connection(t.peer);
    const transfer = {
      regionId: t.region.id,
      blockBytes: t.region.blockBytes,
      remoteIds: t.remoteIds,
      local: t.local,
      localIds: t.localIds,
      checksumCode: checksum.code,
      checksummer: checksum.checksummer,
      timeoutMs: t.timeoutMs,
    };
    return kind === 'read' ? connection.read(transfer) : connection.write(transfer);
  }

  private chooseChecksum(
    peer: AgentMetadata,
  ): { code: number; checksummer: BlockChecksummer | undefined } | TransferError {
    const wanted = this.options.checksum;
    if (wanted === 'none') return { code: 0, checksummer: undefined };
    const peerChecksums = peer.tcp?.checksums ?? DEFAULT_PEER_CHECKSUMS;
    for (const checksummer of this.options.checksummers) {
      if (wanted !== 'auto' && checksummer.algorithm !== wanted) continue;
      if (peerChecksums.includes(checksummer.algorithm)) {
        return { code: CHECKSUM_CODE[checksummer.algorithm], checksummer };
      }
    }
    return new TransferError(
      'bad_request',
      `no common checksum with peer ${peer.agentId} (it verifies ${peerChecksums.join(', ') || 'none'}, we want ${wanted})`,
    );
  }

  private connection(peer: AgentMetadata): TcpConnection {
    const key = `${peer.agentId}|${peer.incarnation ?? ''}|${peer.tcp!.address}`;
    let connection = this.connections.get(key);
    if (!connection || connection.isClosed) {
      const { host, port } = parseAddress(peer.tcp!.address) as { host: string; port: number };
      connection = new TcpConnection(host, port, `peer ${peer.agentId} at ${peer.tcp!.address}`);
      this.connections.set(key, connection);
    }
    return connection;
  }
}

/** `host:port`, with IPv6 hosts in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Splits `host:port` (or `[v6]:port`); returns an error message when malformed. */
export function parseAddress(address: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) return `bad tcp address '${address}' (want host:port)`;
  return { host: m[1] ?? m[2]!, port };
}
