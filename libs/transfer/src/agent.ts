// A transfer agent: one per worker. It owns the worker's registered memory regions,
// describes them in metadata the worker publishes through discovery, serves them to
// peers, and reads or writes lists of blocks from or to a peer's regions through the best
// backend that reaches the peer (shared memory on one host, TCP otherwise). It validates
// every request before any byte moves, counts bytes, transfers and failures, and on
// close() frees every socket, mapping and shared-memory object it made.
import { randomBytes } from 'node:crypto';
import { compileAgentOptions, type CompiledAgentOptions, type TransferAgentOptions } from './agent-options.js';
import type { BackendTransfer, TransferBackend } from './backends/backend.js';
import { ShmBackend } from './backends/shm.js';
import { TcpBackend } from './backends/tcp.js';
import { createChecksummers } from './checksum.js';
import { TRANSFER_ERROR_KINDS, TransferError } from './errors.js';
import { localHostKey } from './host-key.js';
import { MemoryRegion, toBlockIds, validateRegionShape } from './region.js';
import { allocateShmRegion, releaseShmRegion } from './shm-regions.js';
import type {
  AgentMetadata,
  BlockTransferRequest,
  TransferBackendKind,
  TransferCounters,
  TransferStats,
} from './types.js';

/** Moves KV blocks between this worker's registered regions and its peers'. */
export class TransferAgent {
  readonly agentId: string;
  /** Random per instance: peers tell a restarted agent from the old one by it. */
  readonly incarnation = randomBytes(8).toString('hex');
  readonly counters: TransferCounters;
  private readonly regions = new Map<number, MemoryRegion>();
  private readonly backends: TransferBackend[] = [];
  private tcp: TcpBackend | undefined;
  private shm: ShmBackend | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  private constructor(private readonly options: CompiledAgentOptions) {
    this.agentId = options.agentId;
    this.counters = {
      bytes: 0,
      transfers: 0,
      failures: Object.fromEntries(TRANSFER_ERROR_KINDS.map((k) => [k, 0])) as TransferCounters['failures'],
      byBackend: { shm: { bytes: 0, transfers: 0 }, tcp: { bytes: 0, transfers: 0 } },
      servedBytes: 0,
      servedErrors: 0,
    };
  }

  /** Creates an agent and starts its TCP server (when 'tcp' is among its backends). */
  static async create(options: TransferAgentOptions): Promise<TransferAgent> {
    const compiled = compileAgentOptions(options);
    const agent = new TransferAgent(compiled);
    const checksummers = await createChecksummers(compiled.native);
    for (const kind of compiled.backends) {
      if (kind === 'shm') {
        agent.shm = new ShmBackend(compiled.native!, localHostKey(), compiled.faults);
        agent.backends.push(agent.shm);
      } else {
        agent.tcp = await TcpBackend.start({
          host: compiled.host,
          advertiseHost: compiled.advertiseHost,
          port: compiled.port,
          region: (id) => agent.regions.get(id),
          checksummers,
          checksum: compiled.checksum,
          faults: compiled.faults,
          onServed: (bytes) => {
            agent.counters.servedBytes += bytes;
          },
          onServerError: () => {
            agent.counters.servedErrors++;
          },
        });
        agent.backends.push(agent.tcp);
      }
    }
    return agent;
  }

  /** Backends in preference order. */
  get backendKinds(): TransferBackendKind[] {
    return this.backends.map((b) => b.kind);
  }

  /**
   * Allocates and registers `blocks` blocks of `blockBytes` bytes (zero-filled) under `id`:
   * POSIX shared memory named `/armature-<agentId>-<id>@<pid>` when the shm backend is on, else
   * a SharedArrayBuffer. Peers can reach it once the metadata is republished.
   */
  registerRegion(id: number, blocks: number, blockBytes: number): MemoryRegion {
    this.assertOpen();
    validateRegionShape(id, blocks, blockBytes);
    if (this.regions.has(id)) throw new TransferError('bad_request', `region ${id} is already registered`);
    const region = this.shm
      ? allocateShmRegion(this.options.native!, `/armature-${this.agentId}-${id}`, id, blocks, blockBytes)
      : new MemoryRegion(id, blocks, blockBytes, new SharedArrayBuffer(blocks * blockBytes));
    this.regions.set(id, region);
    return region;
  }

  /** A registered region. */
  region(id: number): MemoryRegion | undefined {
    return this.regions.get(id);
  }

  /** What peers need to reach this agent; publish it in the worker's discovery record. */
  metadata(): AgentMetadata {
    const meta: AgentMetadata = {
      agentId: this.agentId,
      host: this.options.advertiseHost,
      incarnation: this.incarnation,
      regions: [...this.regions.values()].map((r) => ({
        id: r.id,
        blocks: r.blocks,
        blockBytes: r.blockBytes,
        ...(r.shmName ? { shmName: r.shmName } : {}),
      })),
    };
    if (this.tcp) meta.tcp = this.tcp.metadata();
    if (this.shm) meta.shm = { hostKey: localHostKey() };
    return meta;
  }

  /** Copies blocks `remoteBlockIds` of the peer's region into `localBlockIds` of `local`. */
  readBlocks(peer: AgentMetadata, request: BlockTransferRequest): Promise<TransferStats> {
    return this.transfer('read', peer, request);
  }

  /** Copies blocks `localBlockIds` of `local` into `remoteBlockIds` of the peer's region. */
  writeBlocks(peer: AgentMetadata, request: BlockTransferRequest): Promise<TransferStats> {
    return this.transfer('write', peer, request);
  }

  /** Releases connections and mappings held for a peer that left discovery. */
  async dropPeer(agentId: string): Promise<void> {
    await Promise.all(this.backends.map((b) => b.dropPeer(agentId)));
  }

  /**
   * Stops the server, fails transfers in flight with `closed`, closes peer connections and
   * mappings, then unmaps and unlinks this agent's shared memory. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.close()));
    await Promise.allSettled([...this.inFlight]);
    for (const region of this.regions.values()) releaseShmRegion(region, this.options.native);
    this.regions.clear();
  }

  private transfer(
    direction: 'read' | 'write',
    peer: AgentMetadata,
    request: BlockTransferRequest,
  ): Promise<TransferStats> {
    let run: Promise<TransferStats>;
    try {
      this.assertOpen();
      const { backend, transfer } = this.prepare(peer, request);
      run = this.execute(direction, backend, transfer);
    } catch (err) {
      run = Promise.reject(err);
    }
    const tracked = run.catch((err: unknown) => {
      const error = err instanceof TransferError ? err : toTransferError(err);
      this.counters.failures[error.kind]++;
      throw error;
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked)).catch(() => {});
    return tracked;
  }

  private async execute(
    direction: 'read' | 'write',
    backend: TransferBackend,
    transfer: BackendTransfer,
  ): Promise<TransferStats> {
    const started = performance.now();
    const blocks = transfer.remoteIds.length;
    if (blocks > 0) await (direction === 'read' ? backend.read(transfer) : backend.write(transfer));
    const bytes = blocks * transfer.region.blockBytes;
    this.counters.bytes += bytes;
    this.counters.transfers++;
    this.counters.byBackend[backend.kind].bytes += bytes;
    this.counters.byBackend[backend.kind].transfers++;
    return { bytes, blocks, durationMs: performance.now() - started, backend: backend.kind };
  }

  // Validates the request against the peer's metadata and the local region, and picks the backend.
  private prepare(
    peer: AgentMetadata,
    request: BlockTransferRequest,
  ): { backend: TransferBackend; transfer: BackendTransfer } {
    const region = peer.regions.find((r) => r.id === request.regionId);
    if (!region) throw new TransferError('bad_request', `peer ${peer.agentId} has no region ${request.regionId}`);
    const { local } = request;
    if (!(local instanceof MemoryRegion)) throw new TransferError('bad_request', 'local must be a MemoryRegion');
    if (local.blockBytes !== region.blockBytes) {
      throw new TransferError(
        'bad_request',
        `block sizes differ: local region ${local.id} has ${local.blockBytes} bytes, peer region ${region.id} ${region.blockBytes}`,
      );
    }
    if (request.remoteBlockIds.length !== request.localBlockIds.length) {
      throw new TransferError(
        'bad_request',
        `${request.remoteBlockIds.length} remote block ids but ${request.localBlockIds.length} local ones`,
      );
    }
    const timeoutMs = request.timeoutMs ?? this.options.timeoutMs;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
      throw new TransferError('bad_request', `timeoutMs must be positive, got ${timeoutMs}`);
    }
    const transfer: BackendTransfer = {
      peer,
      region,
      remoteIds: toBlockIds(request.remoteBlockIds, region.blocks, 'remoteBlockIds'),
      local,
      localIds: toBlockIds(request.localBlockIds, local.blocks, 'localBlockIds'),
      timeoutMs,
      verify: request.verify ?? false,
    };
    return { backend: this.pickBackend(peer, region, request.backend ?? 'auto'), transfer };
  }

  private pickBackend(
    peer: AgentMetadata,
    region: AgentMetadata['regions'][number],
    choice: 'auto' | TransferBackendKind,
  ): TransferBackend {
    if (choice !== 'auto') {
      const backend = this.backends.find((b) => b.kind === choice);
      if (!backend) throw new TransferError('bad_request', `backend ${choice} is not enabled on agent ${this.agentId}`);
      const unreachable = backend.reachability(peer, region);
      if (unreachable) throw unreachable;
      return backend;
    }
    const errors: TransferError[] = [];
    for (const backend of this.backends) {
      const unreachable = backend.reachability(peer, region);
      if (!unreachable) return backend;
      errors.push(unreachable);
    }
    // A backend that applies but failed (the peer's memory is gone) says more than one that does not apply.
    const failed = errors.find((e) => e.kind !== 'bad_request');
    if (failed) throw failed;
    throw new TransferError('bad_request', `no backend reaches region ${region.id} of peer ${peer.agentId}`, {
      detail: errors.map((e, i) => `${this.backends[i]!.kind}: ${e.message}`).join('; '),
    });
  }

  private assertOpen(): void {
    if (this.closing) throw new TransferError('closed', `transfer agent ${this.agentId} is closed`);
  }
}

function toTransferError(err: unknown): TransferError {
  if (err instanceof TransferError) return err;
  return new TransferError('bad_request', err instanceof Error ? err.message : String(err), { cause: err });
}
