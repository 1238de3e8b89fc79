// The conformance suite for the frontend's RouterPort (services/frontend/src/pipeline/ports.ts):
// the gRPC Upstream and the in-memory FakeRouter both run it, so the pipeline's unit tests
// on the fake hold for the real thing. It checks what the pipeline relies on: Route answers
// the router's placement; the notifications about a request reach the router that placed
// it, in order, and never throw (not for a repeated Free nor an unknown id); the router's
// own refusal reaches the caller with its class and reason; aborting a Route that waits in
// the router's queue cancels it there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteRequest, RouteResponse } from '@armature/proto';
import { asArmatureError } from '@armature/runtime';
import { waitFor } from './wait.js';

/** The shape of the frontend's RouterPort. */
export interface RouterPortLike {
  route(request: RouteRequest, signal: AbortSignal): Promise<RouteResponse>;
  markPrefillComplete(requestId: string): void;
  markPrefillLocal(requestId: string): void;
  free(requestId: string): void;
}

/** The models a harness's router treats specially. */
export const CONFORMANCE_MODELS = {
  /** Placed on the harness's `decodeId`. */
  served: 'conformance/served',
  /** Refused with resource_exhausted / queue_full, as a router whose queue is full. */
  full: 'conformance/full',
  /** Held in the router's queue until the caller gives up. */
  held: 'conformance/held',
} as const;

export interface RouterPortHarness {
  port: RouterPortLike;
  /** The decode worker the router places `served` requests on. */
  decodeId: string;
  /** The operations the router received for a request id, in order: route, markPrefillLocal, ... */
  received(requestId: string): string[];
  /** Whether the router saw this request's Route cancelled while it waited. */
  sawRouteCancel(requestId: string): boolean;
  dispose?(): Promise<void>;
}

const route = (requestId: string, model: string): RouteRequest => ({
  requestId,
  model,
  tokenIds: [1, 2, 3],
  excludedWorkerIds: [],
  failedWorkerIds: [],
});
const never = (): AbortSignal => new AbortController().signal;

export function routerPortConformance(name: string, makeHarness: () => Promise<RouterPortHarness>): void {
  describe(`RouterPort conformance: ${name}`, () => {
    let h: RouterPortHarness;
    beforeAll(async () => {
      h = await makeHarness();
    });
    afterAll(async () => {
      await h?.dispose?.();
    });

    it("answers Route with the router's placement", async () => {
      const res = await h.port.route(route('rc-place', CONFORMANCE_MODELS.served), never());
      expect(res.decode?.instanceId).toBe(h.decodeId);
      h.port.free('rc-place');
    });

    it('sends the notifications to the router, in order; a repeated Free and an unknown id do not throw', async () => {
      await h.port.route(route('rc-notes', CONFORMANCE_MODELS.served), never());
      h.port.markPrefillLocal('rc-notes');
      h.port.markPrefillComplete('rc-notes');
      h.port.free('rc-notes');
      expect(() => h.port.free('rc-notes')).not.toThrow();
      expect(() => h.port.free('rc-never-routed')).not.toThrow();
      expect(() => h.port.markPrefillComplete('rc-never-routed')).not.toThrow();
      await waitFor(() => h.received('rc-notes').includes('free'), 5_000, 10, 'Free at the router');
      expect(h.received('rc-notes').slice(0, 4)).toEqual(['route', 'markPrefillLocal', 'markPrefillComplete', 'free']);
    });

    it("passes the router's refusal on with its class and reason", async () => {
      const err = await h.port.route(route('rc-full', CONFORMANCE_MODELS.full), never()).catch(asArmatureError);
      expect(err).toMatchObject({ cls: 'resource_exhausted', reason: 'queue_full' });
    });

    it('cancels a Route waiting in the router when the signal aborts; the Route throws cancelled', async () => {
      const abort = new AbortController();
      const pending = h.port.route(route('rc-held', CONFORMANCE_MODELS.held), abort.signal).catch(asArmatureError);
      await waitFor(() => h.received('rc-held').includes('route'), 5_000, 10, 'the Route at the router');
      abort.abort();
      expect(await pending).toMatchObject({ cls: 'cancelled' });
      await waitFor(() => h.sawRouteCancel('rc-held'), 5_000, 10, 'the cancel at the router');
    });

    it('rejects a Route whose signal is already aborted with cancelled', async () => {
      const abort = new AbortController();
      abort.abort();
      const err = await h.port.route(route('rc-gone', CONFORMANCE_MODELS.served), abort.signal).catch(asArmatureError);
      expect(err).toMatchObject({ cls: 'cancelled' });
    });
  });
}
