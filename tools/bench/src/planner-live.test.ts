import { describe, expect, it } from 'vitest';
import type { PlanRecord } from '@armature/proto';
import { decisionChanges, decisionSteps, rampIntegral, stackSvgs } from './planner-live.js';

const plan = (atMs: number, from: number, to: number): PlanRecord =>
  ({
    atMs,
    decisions: [{ pool: 'decode', from, to, reason: to > from ? 'load' : 'idle', applied: true }],
  }) as PlanRecord;

describe('planner-live helpers', () => {
  it('integrates a ramp (linear between points)', () => {
    expect(
      rampIntegral([
        [0, 2],
        [60, 40],
        [150, 40],
        [210, 2],
        [300, 2],
      ]),
    ).toBeCloseTo(21 * 60 + 40 * 90 + 21 * 60 + 2 * 90);
    expect(
      rampIntegral(
        [
          [0, 0],
          [10, 10],
        ],
        5,
      ),
    ).toBeCloseTo(12.5);
    expect(rampIntegral([[0, 4]], 3)).toBeCloseTo(12);
  });

  it('turns decisions into a step line and a list of changes', () => {
    const plans = [plan(1_000, 1, 1), plan(6_000, 1, 3), plan(11_000, 3, 3), plan(16_000, 3, 2)];
    expect(decisionSteps(plans, 'decode', 1_000, 20)).toEqual([
      [0, 1],
      [5, 1],
      [5, 3],
      [15, 3],
      [15, 2],
      [20, 2],
    ]);
    expect(decisionSteps(plans, 'prefill', 0, 20)).toEqual([]);
    expect(decisionChanges(plans, 'decode', 1_000).map((c) => [c.t_s, c.from, c.to])).toEqual([
      [5, 1, 3],
      [15, 3, 2],
    ]);
  });

  it('stacks charts into one SVG', () => {
    const svg = stackSvgs([
      { svg: '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="5"></svg>', width: 10, height: 5 },
      { svg: '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="5"></svg>', width: 10, height: 5 },
    ]);
    expect(svg).toContain('height="10"');
    expect(svg).toContain('<svg x="0" y="5" ');
  });
});
