import { describe, expect, it } from 'vitest';
import { WORKER_SETTINGS } from '@armature/deploy/settings';
import { DEFAULT_PIN_TIMEOUT_MS, PinTable } from './pin-table.js';

describe('PinTable', () => {
  it('frees a pin when released, once', () => {
    const freed: string[] = [];
    const ends: string[] = [];
    const pins = new PinTable({
      release: (id) => (freed.push(id), true),
      timeoutMs: 60_000,
      onEnd: (id, how) => ends.push(`${id}:${how}`),
    });
    const deadline = pins.add('a');
    expect(deadline).toBeGreaterThan(Date.now() + 59_000);
    expect(pins.size).toBe(1);
    expect(pins.release('a')).toBe(true);
    expect(pins.release('a')).toBe(false);
    expect(freed).toEqual(['a']);
    expect(ends).toEqual(['a:released']);
    expect(() => (pins.add('b'), pins.add('b'))).toThrow(/already exists/);
    pins.close();
    expect(ends).toEqual(['a:released', 'b:closed']);
    expect(pins.size).toBe(0);
  });

  it('frees a pin nobody released when its timeout passes', async () => {
    const ends: string[] = [];
    const pins = new PinTable({ release: () => true, timeoutMs: 30, onEnd: (id, how) => ends.push(`${id}:${how}`) });
    pins.add('late');
    await new Promise((r) => setTimeout(r, 80));
    expect(ends).toEqual(['late:expired']);
    expect(pins.release('late')).toBe(false);
  });

  it('rejects a non-positive timeout', () => {
    expect(() => new PinTable({ release: () => true, timeoutMs: 0 })).toThrow(/positive/);
  });

  it("has the deploy table's default pin timeout, so a worker and a library user agree", () => {
    expect(WORKER_SETTINGS.pinTimeoutMs.default).toBe(DEFAULT_PIN_TIMEOUT_MS);
  });

  it('resolves idle() once the last pin ends, at once when none is held', async () => {
    const pins = new PinTable({ release: () => true, timeoutMs: 60_000 });
    await pins.idle();
    pins.add('a');
    pins.add('b');
    let idle = false;
    const waiting = pins.idle().then(() => (idle = true));
    pins.release('a');
    await new Promise((r) => setImmediate(r));
    expect(idle).toBe(false);
    pins.release('b');
    await waiting;
    expect(idle).toBe(true);
    pins.close();
  });
});
