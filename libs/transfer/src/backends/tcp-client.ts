// The requesting half of the TCP backend: one connection to one peer agent, multiplexing
// any number of reads and writes by request id. The socket reads with `onread` into the
// buffers the frame decoder names, so the blocks of a read land in the local region
// straight from the kernel; every block is verified against the checksum the peer sent.
// Each request has its own deadline. The connection does not retry or reconnect: when it
// closes, every request on it fails with `peer_unreachable` and the pool opens a new one.
import { connect, type Socket } from 'node:net';
import type { BlockChecksummer } from '../checksum.js';
import { checksumWireBytes } from '../checksum.js';
import { TransferError, type TransferErrorKind } from '../errors.js';
import type { MemoryRegion } from '../region.js';
import { FrameDecoder, type DataSink } from './frame-decoder.js';
import {
  HEADER_BYTES,
  MAX_QUEUED_BYTES,
  Op,
  WireError,
  blocksPerFrame,
  checksumBytesPerBlock,
  controlFrame,
  decodeErrorBody,
  encodeHeader,
  idsToBody,
  type FrameHeader,
} from './protocol.js';
import { DrainWaiters, writeBlockRuns } from './socket-io.js';

/** One read or write over a connection; ids are validated by the caller. */
export interface TcpTransfer {
  regionId: number;
  blockBytes: number;
  remoteIds: Uint32Array;
  local: MemoryRegion;
  localIds: Uint32Array;
  /** Wire code of the checksum and its implementation (undefined for 'none'). */
  checksumCode: number;
  checksummer: BlockChecksummer | undefined;
  timeoutMs: number;
}

interface Pending {
  readonly id: number;
  readonly kind: 'read' | 'write';
  readonly transfer: TcpTransfer;
  /** Index of the next block expected (read) or acknowledged frame boundary. */
  nextFirst: number;
  done: boolean;
  /** The sink of the DATA frame of this request being received, if any. */
  sink: DataSink | undefined;
  sums: BigUint64Array;
  timer: NodeJS.Timeout | undefined;
  resolve(): void;
  reject(err: TransferError): void;
}

const KIND_OF_WIRE_ERROR: Record<number, TransferErrorKind> = {
  [WireError.BAD_REQUEST]: 'bad_request',
  [WireError.CHECKSUM_MISMATCH]: 'checksum_mismatch',
  [WireError.CLOSED]: 'peer_unreachable',
};

/** A connection to one peer's TCP server. */
export class TcpConnection {
  private readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private readonly drain: DrainWaiters;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private closedError: TransferError | undefined;
  private readonly closedPromise: Promise<void>;

  constructor(
    host: string,
    port: number,
    /** For messages: who the peer is. */
    private readonly peerLabel: string,
  ) {
    this.decoder = new FrameDecoder({
      onControl: (h, body) => this.onControl(h, body),
      onData: (h) => this.onData(h),
      onProtocolError: (message) =>
        this.destroy(new TransferError('peer_unreachable', `${peerLabel} sent an undecodable stream: ${message}`)),
    });
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: () => this.decoder.nextBuffer(),
        callback: (n: number) => {
          try {
            this.decoder.advance(n);
          } catch (err) {
            // A bug, not the peer's input: never let it escape into the socket's read loop.
            this.destroy(new TransferError('peer_unreachable', `receiving from ${peerLabel} failed`, { cause: err }));
          }
          return true;
        },
      },
    });
    this.drain = new DrainWaiters(this.socket);
    let lastError: Error | undefined;
    this.socket.on('error', (err) => {
      lastError = err;
    });
    this.closedPromise = new Promise((resolve) => {
      this.socket.once('close', () => {
        const code = (lastError as NodeJS.ErrnoException | undefined)?.code;
        this.shutDown(
          this.closedError ??
            new TransferError('peer_unreachable', `connection to ${peerLabel} closed`, {
              detail: code ?? lastError?.message,
              cause: lastError,
            }),
        );
        resolve();
      });
    });
  }

  /** True once the connection is closed or closing; a new one is needed. */
  get isClosed(): boolean {
    return this.closedError !== undefined || this.socket.destroyed;
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Reads blocks `remoteIds` of the peer's region into `localIds` of `local`. */
  read(transfer: TcpTransfer): Promise<void> {
    return this.start('read', transfer);
  }

  /** Writes blocks `localIds` of `local` into `remoteIds` of the peer's region. */
  write(transfer: TcpTransfer): Promise<void> {
    return this.start('write', transfer);
  }

  /** Closes the connection; requests in flight fail with `error` (default: `closed`). */
  async close(error?: TransferError): Promise<void> {
    this.destroy(error ?? new TransferError('closed', `transfer agent closed its connection to ${this.peerLabel}`));
    await this.closedPromise;
  }

  private start(kind: 'read' | 'write', transfer: TcpTransfer): Promise<void> {
    if (this.isClosed) {
      return Promise.reject(
        this.closedError ?? new TransferError('peer_unreachable', `connection to ${this.peerLabel} closed`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const p: Pending = {
        id: this.allocateId(),
        kind,
        transfer,
        nextFirst: 0,
        done: false,
        sink: undefined,
        sums: new BigUint64Array(Math.min(blocksPerFrame(transfer.blockBytes), transfer.remoteIds.length)),
        timer: undefined,
        resolve,
        reject,
      };
      this.pending.set(p.id, p);
      p.timer = setTimeout(() => this.onTimeout(p), transfer.timeoutMs);
      const body = idsToBody(transfer.remoteIds);
      this.socket.write(
        controlFrame(
          {
            op: kind === 'read' ? Op.READ : Op.WRITE,
            checksum: transfer.checksumCode,
            flags: 0,
            requestId: p.id,
            regionId: transfer.regionId,
            blockBytes: transfer.blockBytes,
            count: transfer.remoteIds.length,
            first: 0,
            n: 0,
          },
          body,
        ),
      );
      if (kind === 'write') {
        this.streamWrite(p).catch((err: unknown) =>
          this.finish(p, new TransferError('bad_request', `write to ${this.peerLabel} failed: ${String(err)}`)),
        );
      }
    });
  }

  private allocateId(): number {
    do {
      this.nextRequestId = this.nextRequestId >= 0xffffffff ? 1 : this.nextRequestId + 1;
    } while (this.pending.has(this.nextRequestId));
    return this.nextRequestId;
  }

  // The blocks of a write, in DATA frames, waiting for the socket whenever more than
  // MAX_QUEUED_BYTES are queued. The peer answers DONE once all arrived intact.
  private async streamWrite(p: Pending): Promise<void> {
    const t = p.transfer;
    const sumBytes = checksumBytesPerBlock(t.checksumCode);
    const perFrame = blocksPerFrame(t.blockBytes);
    const count = t.localIds.length;
    for (let first = 0; first < count; first += perFrame) {
      if (p.done || this.isClosed) return;
      const n = Math.min(perFrame, count - first);
      const frameIds = t.localIds.subarray(first, first + n);
      const prelude = new Uint8Array(HEADER_BYTES + n * sumBytes);
      encodeHeader(
        {
          op: Op.DATA,
          checksum: t.checksumCode,
          flags: 0,
          requestId: p.id,
          regionId: t.regionId,
          blockBytes: t.blockBytes,
          count,
          first,
          n,
          bodyBytes: n * (sumBytes + t.blockBytes),
        },
        prelude,
      );
      if (t.checksummer) {
        t.checksummer.checksumBlocks(t.local.buffer, frameIds, t.blockBytes, p.sums.subarray(0, frameIds.length));
        prelude.set(checksumWireBytes(p.sums).subarray(0, n * 8), HEADER_BYTES);
      }
      this.socket.cork();
      this.socket.write(prelude);
      writeBlockRuns(this.socket, t.local, frameIds);
      this.socket.uncork();
      if (this.socket.writableLength > MAX_QUEUED_BYTES) await this.drain.wait();
    }
  }

  private onControl(h: FrameHeader, body: Uint8Array): void {
    if (h.op === Op.ERROR) {
      const { code, message } = decodeErrorBody(body);
      const kind = KIND_OF_WIRE_ERROR[code] ?? 'bad_request';
      if (h.requestId === 0) {
        this.destroy(new TransferError('peer_unreachable', `${this.peerLabel} dropped the connection: ${message}`));
        return;
      }
      const p = this.pending.get(h.requestId);
      if (p) this.finish(p, new TransferError(kind, `${this.peerLabel}: ${message}`));
      return;
    }
    if (h.op === Op.DONE) {
      const p = this.pending.get(h.requestId);
      if (p?.kind === 'write') this.finish(p);
    }
    // Anything else from a server is ignored: requests only flow the other way.
  }

  // DATA of a read: its blocks land in the local region, then are verified.
  private onData(h: FrameHeader): DataSink | undefined {
    const p = this.pending.get(h.requestId);
    if (!p || p.kind !== 'read' || p.done) return undefined;
    const t = p.transfer;
    if (
      h.first !== p.nextFirst ||
      h.n > t.localIds.length - h.first ||
      h.blockBytes !== t.blockBytes ||
      h.checksum !== t.checksumCode
    ) {
      this.finish(p, new TransferError('bad_request', `${this.peerLabel} sent a data frame out of sequence`));
      this.cancel(p);
      return undefined;
    }
    const bytes = t.local.bytes;
    const blockBytes = t.blockBytes;
    const sink: DataSink = {
      target: (i) => {
        if (p.done) return undefined;
        const start = t.localIds[h.first + i]! * blockBytes;
        return bytes.subarray(start, start + blockBytes);
      },
      end: (checksums) => {
        p.sink = undefined;
        if (!p.done) this.endReadFrame(p, h, checksums);
      },
    };
    p.sink = sink;
    return sink;
  }

  private endReadFrame(p: Pending, h: FrameHeader, checksums: Uint8Array): void {
    const t = p.transfer;
    if (t.checksummer) {
      const frameIds = t.localIds.subarray(h.first, h.first + h.n);
      t.checksummer.checksumBlocks(t.local.buffer, frameIds, t.blockBytes, p.sums.subarray(0, frameIds.length));
      const actual = checksumWireBytes(p.sums);
      for (let i = 0; i < h.n * 8; i++) {
        if (actual[i] !== checksums[i]) {
          const index = h.first + Math.floor(i / 8);
          this.finish(
            p,
            new TransferError(
              'checksum_mismatch',
              `block ${t.remoteIds[index]} of region ${t.regionId} from ${this.peerLabel} arrived corrupted`,
            ),
          );
          this.cancel(p);
          return;
        }
      }
    }
    p.nextFirst += h.n;
    if (p.nextFirst === t.localIds.length) this.finish(p);
  }

  private onTimeout(p: Pending): void {
    if (p.done) return;
    // A read whose frame is being received may have a socket read armed into its blocks:
    // only closing the socket guarantees nothing lands there after the caller gave up.
    const landing = p.kind === 'read' && p.sink !== undefined && this.decoder.activeSink === p.sink;
    this.finish(
      p,
      new TransferError(
        'timeout',
        `${p.kind} of ${p.transfer.remoteIds.length} blocks from ${this.peerLabel} timed out`,
        {
          detail: `after ${p.transfer.timeoutMs} ms`,
        },
      ),
    );
    if (landing) {
      this.destroy(
        new TransferError('peer_unreachable', `connection to ${this.peerLabel} reset after a timed-out read`),
      );
    } else {
      this.cancel(p);
    }
  }

  private cancel(p: Pending): void {
    if (this.isClosed) return;
    this.socket.write(
      controlFrame({
        op: Op.CANCEL,
        checksum: 0,
        flags: 0,
        requestId: p.id,
        regionId: p.transfer.regionId,
        blockBytes: 0,
        count: 0,
        first: 0,
        n: 0,
      }),
    );
  }

  private finish(p: Pending, error?: TransferError): void {
    if (p.done) return;
    p.done = true;
    clearTimeout(p.timer);
    this.pending.delete(p.id);
    if (error) p.reject(error);
    else p.resolve();
  }

  private destroy(error: TransferError): void {
    this.closedError ??= error;
    this.socket.destroy();
    this.shutDown(this.closedError);
  }

  private shutDown(error: TransferError): void {
    this.closedError ??= error;
    this.decoder.fail();
    for (const p of [...this.pending.values()]) {
      this.finish(p, new TransferError(error.kind, error.message, { detail: error.detail, cause: error.cause }));
    }
  }
}
