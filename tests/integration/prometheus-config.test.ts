// The bundled Prometheus set-up (infra/prometheus): promtool accepts the config and the
// rules, and every metric the rules read is in the catalog.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRICS } from '@armature/metrics';
import { ROOT } from './cluster.js';
import { promtool } from './promtool.js';

const DIR = join(ROOT, 'infra/prometheus');

describe('infra/prometheus', () => {
  it('reads only catalog metrics in its rules', () => {
    const rules = readFileSync(join(DIR, 'rules/armature.yml'), 'utf8');
    const names = new Set([...rules.matchAll(/\barmature_[a-z0-9_]+/g)].map((m) => m[0]));
    expect(names.size).toBeGreaterThan(5);
    const families = new Set(Object.keys(METRICS));
    for (const name of names) {
      const family = name.replace(/_(bucket|sum|count)$/, '');
      expect(families.has(name) || families.has(family), `${name} is not in the catalog`).toBe(true);
    }
  });

  // promtool comes with Debian's `prometheus` package, which .ci/run installs; elsewhere
  // this check needs it on PATH.
  it.skipIf(!promtool)('passes promtool check config and check rules', () => {
    execFileSync(promtool!, ['check', 'config', join(DIR, 'prometheus.yml')], { stdio: 'pipe' });
    execFileSync(promtool!, ['check', 'rules', join(DIR, 'rules/armature.yml')], { stdio: 'pipe' });
  });
});
