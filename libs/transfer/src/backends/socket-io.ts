// Sending helpers shared by both ends of the TCP backend: block runs written as views of a
// region (no copies), and one 'drain' listener per socket that wakes every sender waiting
// for the socket to drain.
import type { Socket } from 'node:net';
import type { MemoryRegion } from '../region.js';

/**
 * Writes blocks `ids` of `region` to the socket, one write per run of consecutive ids.
 * The writes are views of the region's memory, not copies.
 */
export function writeBlockRuns(socket: Socket, region: MemoryRegion, ids: Uint32Array): void {
  const { blockBytes, bytes } = region;
  let i = 0;
  while (i < ids.length) {
    let end = i + 1;
    while (end < ids.length && ids[end] === ids[end - 1]! + 1) end++;
    const start = ids[i]! * blockBytes;
    const view = bytes.subarray(start, start + (end - i) * blockBytes);
    socket.write(view);
    i = end;
  }
}

/** Lets any number of senders wait for one socket to drain (or close) with a single listener. */
export class DrainWaiters {
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(socket: Socket) {
    socket.on('drain', () => this.wake());
    socket.once('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Resolves on the next 'drain', or at once when the socket is closed. */
  wait(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
