// The conformance suite for the frontend's WorkerPort (services/frontend/src/pipeline/ports.ts):
// the gRPC Upstream and the in-memory FakeWorkerPool both run it, so the pipeline's unit
// tests on fakes hold for the real thing. It checks what the pipeline relies on:
// cancelling and aborting a stream reach the worker, a Prefill fails at its deadline, an
// address with no worker is `unavailable`, and ReleaseKv reaches the worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateRequest, GenerateResponse, PrefillResponse } from '@armature/proto';
import { asArmatureError } from '@armature/runtime';
import { waitFor } from './wait.js';

/** The shape of the frontend's WorkerPort. */
export interface WorkerPortLike {
  generate(
    address: string,
    request: GenerateRequest,
    signal: AbortSignal,
  ): AsyncIterable<GenerateResponse> & { cancel(): void; readonly accepted: Promise<void> };
  prefill(address: string, request: GenerateRequest, signal: AbortSignal, deadline: number): Promise<PrefillResponse>;
  releaseKv(address: string, pinId: string): void;
  forgetWorker(address: string): void;
}

export interface WorkerPortHarness {
  port: WorkerPortLike;
  /** A worker that streams tokens 1, 2, 3, ... one per message, at least 10, and whose Prefill never answers. */
  worker: string;
  /** An address where no worker listens. */
  deadWorker: string;
  /** Whether the worker saw the Generate call of this request cancelled. */
  sawCancel(requestId: string): boolean;
  /** Whether the worker got ReleaseKv for this pin. */
  sawRelease(pinId: string): boolean;
  dispose?(): Promise<void>;
}

const request = (requestId: string): GenerateRequest => ({ requestId, model: 'm', tokenIds: [1, 2, 3] });
const never = (): AbortSignal => new AbortController().signal;

export function workerPortConformance(name: string, makeHarness: () => Promise<WorkerPortHarness>): void {
  describe(`WorkerPort conformance: ${name}`, () => {
    let h: WorkerPortHarness;
    beforeAll(async () => {
      h = await makeHarness();
    });
    afterAll(async () => {
      await h?.dispose?.();
    });

    it('streams the worker its messages in order', async () => {
      const got: number[] = [];
      const stream = h.port.generate(h.worker, request('c-order'), never());
      for await (const msg of stream) {
        got.push(...msg.tokenIds);
        if (got.length === 3) {
          stream.cancel();
          break;
        }
      }
      expect(got).toEqual([1, 2, 3]);
    });

    it('says the call was accepted once the worker took it', async () => {
      const stream = h.port.generate(h.worker, request('c-accepted'), never());
      const iterator = stream[Symbol.asyncIterator]();
      const first = iterator.next(); // the real stream starts the call on the first read
      await stream.accepted;
      await first;
      stream.cancel();
      await iterator.return?.();
    });

    it('stops the worker when the stream is cancelled', async () => {
      const stream = h.port.generate(h.worker, request('c-cancel'), never());
      for await (const msg of stream) {
        if (msg.tokenIds[0] === 2) {
          stream.cancel();
          break;
        }
      }
      await waitFor(() => h.sawCancel('c-cancel'), 5_000, 10, 'the cancel on the worker');
    });

    it('cancels the call on the worker when the signal aborts; the stream throws cancelled', async () => {
      const abort = new AbortController();
      const stream = h.port.generate(h.worker, request('c-abort'), abort.signal);
      const err = await (async () => {
        for await (const msg of stream) if (msg.tokenIds[0] === 2) abort.abort();
      })().catch(asArmatureError);
      expect(err).toMatchObject({ cls: 'cancelled' });
      await waitFor(() => h.sawCancel('c-abort'), 5_000, 10, 'the cancel on the worker');
    });

    it('fails a Prefill at its deadline with deadline_exceeded', async () => {
      const started = Date.now();
      const err = await h.port
        .prefill(h.worker, request('c-deadline'), never(), Date.now() + 100)
        .catch(asArmatureError);
      expect(err).toMatchObject({ cls: 'deadline_exceeded' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    });

    it('fails a Prefill with cancelled when the signal aborts', async () => {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 20);
      const err = await h.port
        .prefill(h.worker, request('c-prefill-abort'), abort.signal, Date.now() + 5_000)
        .catch(asArmatureError);
      expect(err).toMatchObject({ cls: 'cancelled' });
    });

    it('says unavailable for an address with no worker', async () => {
      const err = await (async () => {
        for await (const _ of h.port.generate(h.deadWorker, request('c-dead'), never())) void _;
      })().catch(asArmatureError);
      expect(err).toMatchObject({ cls: 'unavailable' });
      const prefillErr = await h.port
        .prefill(h.deadWorker, request('c-dead-p'), never(), Date.now() + 5_000)
        .catch(asArmatureError);
      expect(prefillErr).toMatchObject({ cls: 'unavailable' });
      h.port.forgetWorker(h.deadWorker);
    });

    it('releases a pin on the worker', async () => {
      h.port.releaseKv(h.worker, 'pin-1');
      await waitFor(() => h.sawRelease('pin-1'), 5_000, 10, 'ReleaseKv');
    });
  });
}
