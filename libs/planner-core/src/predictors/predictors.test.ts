// The conformance suite every predictor passes (input handling, bounds, leading zeros),
// and createPredictor's validation.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ArmatureError } from '@armature/runtime';
import { createPredictor, PREDICTOR_IDS, type Predictor } from './index.js';
import { ramp, run, seededRandom, sinusoid } from './test-series.js';

describe.each(PREDICTOR_IDS.map((id) => [id]))('%s conformance', (id) => {
  const make = (): Predictor => createPredictor({ id });

  it('reports its id', () => {
    expect(make().id).toBe(id);
  });

  it('predicts undefined before the first observation', () => {
    expect(make().predict()).toBeUndefined();
  });

  it('predicts a constant series as that constant', () => {
    const predictor = make();
    const predictions = run(predictor, new Array<number>(40).fill(37));
    for (const p of predictions) expect(p).toBeCloseTo(37, 9);
  });

  it('ignores and counts NaN, Infinity and negative observations', () => {
    const clean = make();
    const dirty = make();
    const series = ramp(30, 10, 2);
    let junk = 0;
    for (const value of series) {
      clean.observe(value);
      dirty.observe(value);
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -5]) {
        dirty.observe(bad);
        junk++;
      }
      expect(dirty.predict()).toBe(clean.predict());
    }
    expect(dirty.ignored).toBe(junk);
    expect(clean.ignored).toBe(0);
  });

  it('predicts 0 while only zeros have been seen', () => {
    const predictor = make();
    run(predictor, [0, 0, 0, 0, 0, 0, 0, 0]);
    expect(predictor.predict()).toBe(0);
  });

  it('is never negative and never NaN, whatever it is fed', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.double(), fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constant(0), fc.integer({ min: 0 })),
          { maxLength: 80 },
        ),
        (values) => {
          const predictor = make();
          for (const value of values) {
            predictor.observe(value);
            const p = predictor.predict();
            if (p !== undefined && !(Number.isFinite(p) && p >= 0)) return false;
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('does not go negative on a fall to zero', () => {
    const series = [...ramp(20, 1000, -50), 0, 0, 0, 0, 0];
    for (const p of run(make(), series)) expect(p).toBeGreaterThanOrEqual(0);
  });

  it('stays finite on a long noisy series', () => {
    const random = seededRandom(7);
    const series = sinusoid(2000, 500, 200, 48).map((v) => v + 100 * random());
    for (const p of run(make(), series)) expect(Number.isFinite(p)).toBe(true);
  });
});

describe.each(PREDICTOR_IDS.filter((id) => id !== 'constant').map((id) => [id]))('%s leading zeros', (id) => {
  it('skips them: the same forecasts as the series without them', () => {
    const series = [...ramp(15, 40, 3), 0, 12, 0];
    const withZeros = createPredictor({ id });
    run(withZeros, [0, 0, 0, 0, 0, 0]);
    const without = createPredictor({ id });
    expect(run(withZeros, series)).toEqual(run(without, series));
  });
});

describe('createPredictor', () => {
  const failure = (spec: unknown): ArmatureError => {
    try {
      createPredictor(spec as never);
    } catch (err) {
      return err as ArmatureError;
    }
    throw new Error('expected createPredictor to throw');
  };

  it('lists every id', () => {
    expect([...PREDICTOR_IDS]).toEqual(['constant', 'moving-average', 'kalman', 'arima', 'holt-winters']);
  });

  it('builds each id with no params', () => {
    for (const id of PREDICTOR_IDS) expect(createPredictor({ id }).id).toBe(id);
  });

  it('refuses an unknown id, naming the known ones', () => {
    const err = failure({ id: 'prophet' });
    expect(err).toBeInstanceOf(ArmatureError);
    expect(err.cls).toBe('invalid_argument');
    expect(err.reason).toBe('bad_planner_config');
    expect(err.param).toBe('predictor.id');
    expect(err.message).toMatch(/^predictor\.id: unknown predictor "prophet"; known: constant, moving-average/);
    expect(failure({ id: 'toString' }).param).toBe('predictor.id');
  });

  it('refuses a bad value, naming the field', () => {
    const err = failure({ id: 'moving-average', params: { window: 0 } });
    expect(err.reason).toBe('bad_planner_config');
    expect(err.param).toBe('predictor.params.window');
    expect(err.message).toBe('predictor.params.window: expected an integer >= 1, got 0');
    expect(failure({ id: 'moving-average', params: { window: 2.5 } }).param).toBe('predictor.params.window');
    expect(failure({ id: 'kalman', params: { r: 0 } }).message).toBe(
      'predictor.params.r: expected a number > 0, got 0',
    );
    expect(failure({ id: 'holt-winters', params: { alpha: 1.5 } }).message).toMatch(
      /alpha: expected a number > 0 <= 1/,
    );
    expect(failure({ id: 'arima', params: { d: 3 } }).param).toBe('predictor.params.d');
    expect(failure({ id: 'arima', params: { minPoints: 10, window: 8 } }).message).toMatch(
      /window: expected an integer >= 10/,
    );
    expect(failure({ id: 'kalman', params: { qLevel: '1' } }).message).toMatch(/got "1"/);
  });

  it('refuses an unknown parameter name', () => {
    const err = failure({ id: 'kalman', params: { q_level: 1 } });
    expect(err.param).toBe('predictor.params.q_level');
    expect(err.message).toBe(
      'predictor.params.q_level: unknown parameter for kalman; known: qLevel, qTrend, r, minPoints',
    );
    expect(failure({ id: 'constant', params: { window: 3 } }).message).toMatch(/it takes none/);
  });

  it('refuses params that are not an object, and a spec that is not one', () => {
    expect(failure({ id: 'constant', params: [1] }).param).toBe('predictor.params');
    expect(failure(null).param).toBe('predictor');
  });
});
