// The conformance suite every Discovery backend must pass. A backend's test file calls
// `discoveryConformance(name, harness)`; the same assertions run against each backend.
import { afterEach, describe, expect, it } from 'vitest';
import type { Discovery, DiscoveryEvent, InstanceRecord } from '@armature/runtime';
import { waitFor } from './wait.js';

export interface DiscoveryHarness {
  /** A fresh client; clients from the same harness instance share one store. */
  client(): Discovery;
  /** Releases the store (temp dirs). */
  dispose?(): Promise<void>;
}

const record = (id: string, extra: Partial<InstanceRecord> = {}): InstanceRecord => ({
  instanceId: id,
  role: 'decode',
  model: 'm',
  grpcAddress: '127.0.0.1:1',
  ...extra,
});

export function discoveryConformance(name: string, makeHarness: () => Promise<DiscoveryHarness>): void {
  describe(`discovery conformance: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    const setup = async () => {
      const h = await makeHarness();
      const clients: Discovery[] = [];
      cleanups.push(async () => {
        for (const c of clients) await c.close();
        await h.dispose?.();
      });
      return () => {
        const c = h.client();
        clients.push(c);
        return c;
      };
    };
    afterEach(async () => {
      for (const c of cleanups.splice(0)) await c();
    });

    it('lists what another client registered, filtered by role and model', async () => {
      const client = await setup();
      const a = client();
      const b = client();
      await a.register(record('w1'));
      await a.register(record('w2', { model: 'other' }));
      await a.register(record('r1', { role: 'router', model: undefined }));
      await waitFor(async () => (await b.list()).length === 3);
      expect((await b.list({ role: 'decode' })).map((r) => r.instanceId).sort()).toEqual(['w1', 'w2']);
      expect((await b.list({ role: 'decode', model: 'm' })).map((r) => r.instanceId)).toEqual(['w1']);
      expect((await b.list({ role: 'router' }))[0]).toMatchObject({ instanceId: 'r1', role: 'router' });
    });

    it('watch reports existing records, additions, updates and removals', async () => {
      const client = await setup();
      const a = client();
      const b = client();
      await a.register(record('w1'));
      const events: DiscoveryEvent[] = [];
      const watch = b.watch({ role: 'decode' }, (e) => events.push(e));
      await waitFor(() => events.length === 1);
      expect(events[0]).toMatchObject({ type: 'added', record: { instanceId: 'w1' } });
      const reg2 = await a.register(record('w2'));
      await waitFor(() => events.some((e) => e.type === 'added' && e.record.instanceId === 'w2'));
      await reg2.update(record('w2', { grpcAddress: '127.0.0.1:2' }));
      await waitFor(() => events.some((e) => e.type === 'updated' && e.record.grpcAddress === '127.0.0.1:2'));
      await reg2.unregister();
      await waitFor(() => events.some((e) => e.type === 'removed' && e.record.instanceId === 'w2'));
      await a.register(record('x', { role: 'router' }));
      await new Promise((r) => setTimeout(r, 300));
      expect(events.some((e) => e.record.instanceId === 'x')).toBe(false);
      watch.close();
    });

    it('keeps a live record past its lease by renewing it', async () => {
      const client = await setup();
      const a = client();
      await a.register(record('w1'), { leaseMs: 300 });
      await new Promise((r) => setTimeout(r, 900));
      expect((await client().list()).map((r) => r.instanceId)).toEqual(['w1']);
    });

    it('drops a crashed instance when its lease expires', async () => {
      const client = await setup();
      const a = client();
      const b = client();
      const reg = await a.register(record('w1'), { leaseMs: 300 });
      const events: DiscoveryEvent[] = [];
      b.watch({}, (e) => events.push(e));
      await waitFor(() => events.length === 1);
      const crashedAt = Date.now();
      reg.abandon();
      await waitFor(() => events.some((e) => e.type === 'removed'), 3_000);
      const elapsed = Date.now() - crashedAt;
      expect(elapsed).toBeLessThan(1_500);
      expect(await b.list()).toEqual([]);
    });
  });
}
