// Incremental decoder of the TCP wire format (protocol.ts) that lands DATA payload bytes
// straight in their destination blocks. It serves two reading styles: `push(chunk)` for
// sockets that hand over chunks (the server), and `nextBuffer()` / `advance(n)` for a
// client socket created with `onread`, where the kernel reads into the buffer the decoder
// names (a view of the destination region), so received blocks are never copied in
// JavaScript. It never buffers payload: only headers, checksums and request bodies
// (bounded by protocol.ts) are held.
import {
  HEADER_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_IDS_PER_REQUEST,
  Op,
  checksumBytesPerBlock,
  decodeHeader,
  type FrameHeader,
} from './protocol.js';

/** Where the payload of one DATA frame goes. */
export interface DataSink {
  /** The bytes of block `index` (0-based in the frame) land in this view (blockBytes long); undefined: discard. */
  target(index: number): Uint8Array | undefined;
  /** The frame is complete; `checksums` are its wire checksums (n × 8 bytes, or empty; valid only during the call). */
  end(checksums: Uint8Array): void;
}

export interface FrameHandler {
  /** A complete frame other than DATA (READ, WRITE, DONE, ERROR, CANCEL) with its body. */
  onControl(header: FrameHeader, body: Uint8Array): void;
  /** A DATA frame starts; return where its blocks go, or undefined to discard them. */
  onData(header: FrameHeader): DataSink | undefined;
  /** The stream cannot be decoded any further (bad magic, impossible lengths). */
  onProtocolError(message: string): void;
}

const enum State {
  Header,
  Body,
  Checksums,
  Payload,
  Failed,
}

/** Reads smaller than this go through the scratch buffer instead of straight into blocks. */
const MIN_DIRECT_READ = 64 * 1024;
const SCRATCH_BYTES = 256 * 1024;
const MAX_CONTROL_BODY = Math.max(MAX_IDS_PER_REQUEST * 4, 1 + MAX_ERROR_MESSAGE_BYTES);

export class FrameDecoder {
  private state = State.Header;
  private readonly header = new Uint8Array(HEADER_BYTES);
  private filled = 0;
  private frame: FrameHeader | undefined;
  private body = new Uint8Array(0);
  private checksums = new Uint8Array(8 * 64);
  private checksumLength = 0;
  private sink: DataSink | undefined;
  // Payload position: block `blockIndex` of the frame, `blockOffset` bytes into it.
  private blockIndex = 0;
  private blockOffset = 0;
  // The unfilled rest of the current run of blocks whose targets are contiguous.
  private run: Uint8Array | undefined;
  private readonly scratch = new Uint8Array(SCRATCH_BYTES);
  private nextIsScratch = false;

  constructor(private readonly handler: FrameHandler) {}

  /** Feeds received bytes (copying payload into its blocks). */
  push(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length && this.state !== State.Failed) {
      const target = this.target(false);
      const k = Math.min(target === undefined ? this.discardable() : target.length, chunk.length - pos);
      if (target !== undefined) target.set(chunk.subarray(pos, pos + k));
      pos += k;
      this.consume(k);
    }
  }

  /** For `onread`: where the next socket read should land (never empty). */
  nextBuffer(): Uint8Array {
    const target = this.state === State.Failed ? undefined : this.target(true);
    this.nextIsScratch = target === undefined;
    return target ?? this.scratch;
  }

  /** For `onread`: `n` bytes were read into the buffer nextBuffer() returned last. */
  advance(n: number): void {
    if (this.nextIsScratch) {
      this.push(this.scratch.subarray(0, n));
    } else {
      this.consume(n);
    }
  }

  /** The sink of the DATA frame being received, if any. */
  get activeSink(): DataSink | undefined {
    return this.state === State.Payload || this.state === State.Checksums ? this.sink : undefined;
  }

  /** Stops decoding (the connection is going away). */
  fail(): void {
    this.state = State.Failed;
    this.sink = undefined;
    this.run = undefined;
  }

  // The buffer the next bytes belong in; undefined when they are to be discarded (or, with
  // `directOnly`, when they should go through the scratch buffer).
  private target(directOnly: boolean): Uint8Array | undefined {
    switch (this.state) {
      case State.Header:
        return this.header.subarray(this.filled);
      case State.Body:
        return this.body.subarray(this.filled);
      case State.Checksums:
        return this.checksums.subarray(this.filled, this.checksumLength);
      case State.Payload: {
        const run = this.currentRun();
        if (run === undefined) return undefined;
        if (directOnly && run.length < MIN_DIRECT_READ) return undefined;
        return run;
      }
      default:
        return undefined;
    }
  }

  // Bytes of the current block still to be skipped (its payload is being discarded).
  private discardable(): number {
    return this.frame!.blockBytes - this.blockOffset;
  }

  private currentRun(): Uint8Array | undefined {
    if (this.run !== undefined) return this.run;
    if (this.sink === undefined) return undefined;
    const h = this.frame!;
    const first = this.sink.target(this.blockIndex);
    if (first === undefined) return undefined;
    let end = this.blockIndex + 1;
    let length = h.blockBytes;
    // Extend over following blocks whose targets continue this one in the same buffer.
    while (end < h.n) {
      const next = this.sink.target(end);
      if (next === undefined || next.buffer !== first.buffer || next.byteOffset !== first.byteOffset + length) break;
      length += h.blockBytes;
      end++;
    }
    this.run = new Uint8Array(first.buffer, first.byteOffset + this.blockOffset, length - this.blockOffset);
    return this.run;
  }

  private consume(k: number): void {
    switch (this.state) {
      case State.Header:
        this.filled += k;
        if (this.filled === HEADER_BYTES) this.onHeader();
        return;
      case State.Body:
        this.filled += k;
        if (this.filled === this.body.length) this.finishControl(this.body);
        return;
      case State.Checksums:
        this.filled += k;
        if (this.filled === this.checksumLength) this.startPayload();
        return;
      case State.Payload:
        this.consumePayload(k);
        return;
      default:
        return;
    }
  }

  private onHeader(): void {
    this.filled = 0;
    const h = decodeHeader(this.header);
    if (typeof h === 'string') {
      this.state = State.Failed;
      this.handler.onProtocolError(h);
      return;
    }
    this.frame = h;
    if (h.op !== Op.DATA) {
      if (h.bodyBytes > MAX_CONTROL_BODY) {
        this.state = State.Failed;
        this.handler.onProtocolError(`control body of ${h.bodyBytes} bytes`);
        return;
      }
      if (h.bodyBytes === 0) {
        this.finishControl(new Uint8Array(0));
        return;
      }
      this.body = new Uint8Array(h.bodyBytes);
      this.state = State.Body;
      return;
    }
    this.sink = this.handler.onData(h);
    this.checksumLength = h.n * checksumBytesPerBlock(h.checksum);
    if (this.checksums.length < this.checksumLength) this.checksums = new Uint8Array(this.checksumLength);
    if (this.checksumLength === 0) {
      this.startPayload();
    } else {
      this.state = State.Checksums;
    }
  }

  private finishControl(body: Uint8Array): void {
    this.state = State.Header;
    this.filled = 0;
    const h = this.frame!;
    this.frame = undefined;
    this.body = new Uint8Array(0);
    this.handler.onControl(h, body);
  }

  private startPayload(): void {
    this.state = State.Payload;
    this.filled = 0;
    this.blockIndex = 0;
    this.blockOffset = 0;
    this.run = undefined;
  }

  private consumePayload(k: number): void {
    const h = this.frame!;
    // Bytes went into the run (or were skipped from the current block): move block by block.
    if (this.run !== undefined) this.run = k === this.run.length ? undefined : this.run.subarray(k);
    const total = this.blockOffset + k;
    const whole = Math.floor(total / h.blockBytes);
    this.blockIndex += whole;
    this.blockOffset = total - whole * h.blockBytes;
    if (this.blockIndex >= h.n) this.finishData();
  }

  private finishData(): void {
    const sink = this.sink;
    const checksums = this.checksums.subarray(0, this.checksumLength);
    this.state = State.Header;
    this.filled = 0;
    this.frame = undefined;
    this.sink = undefined;
    this.run = undefined;
    sink?.end(checksums);
  }
}
