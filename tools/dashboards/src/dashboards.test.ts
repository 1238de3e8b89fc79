// The bundled dashboards against the metric catalog: each parses, has its own uid and
// title, every panel queries something, every name a query reads is a catalog family or
// a recording rule of infra/prometheus, and every catalog family is on some dashboard
// (or listed below with the reason it is not). Where promtool is on PATH, every query
// also parses as PromQL. Whether each query returns data is the live test's business.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { METRICS } from '@armature/metrics';
import {
  definedRecordingRules,
  expandVariables,
  loadDashboards,
  metricNames,
  panelQueries,
  recordingRuleNames,
  variableQueries,
} from './dashboards.js';

/** Catalog families no dashboard plots, each with why. Keep it short. */
const NOT_ON_DASHBOARDS: Record<string, string> = {};

const EXPECTED = ['disaggregation', 'overview', 'planner', 'router-kv', 'workers'];

const dashboards = loadDashboards();
const families = new Set(Object.keys(METRICS));
const rules = new Set(definedRecordingRules());

/** promtool has no PromQL subcommand, but `check rules` parses each rule's expr. */
const promtool: string | undefined = (() => {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return 'promtool';
  } catch {
    return undefined;
  }
})();

describe('metricNames', () => {
  it('reads families, strips histogram suffixes, skips rules and quoted values', () => {
    const expr =
      'histogram_quantile(0.99, sum by (le) (rate(armature_router_overhead_seconds_bucket{worker="armature_x"}[1m])))' +
      ' / armature:frontend_requests:rate1m + armature_process_gc_pause_seconds_count';
    expect(metricNames(expr)).toEqual(['armature_router_overhead_seconds', 'armature_process_gc_pause_seconds']);
    expect(recordingRuleNames(expr)).toEqual(['armature:frontend_requests:rate1m']);
  });
});

describe('grafana/dashboards', () => {
  it('holds the expected dashboards, each with its own uid and title', () => {
    expect(dashboards.map((d) => d.name)).toEqual(EXPECTED);
    const uids = dashboards.map((d) => d.dashboard.uid);
    const titles = dashboards.map((d) => d.dashboard.title);
    expect(new Set(uids).size).toBe(uids.length);
    expect(new Set(titles).size).toBe(titles.length);
    for (const { dashboard } of dashboards) {
      expect(dashboard.uid, dashboard.title).toMatch(/^[a-z0-9-]{1,40}$/);
      expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    }
  });

  it('gives every panel a title, a place and at least one query', () => {
    for (const { name, dashboard } of dashboards) {
      expect(dashboard.panels.length, name).toBeGreaterThan(0);
      for (const panel of dashboard.panels) {
        const where = `${name}: ${panel.title}`;
        expect(panel.title, where).toBeTruthy();
        expect(['timeseries', 'stat'], where).toContain(panel.type);
        expect(panel.gridPos.x + panel.gridPos.w, where).toBeLessThanOrEqual(24);
        expect(panel.targets?.length, where).toBeGreaterThan(0);
        for (const t of panel.targets!) expect(t.expr.trim(), `${where} ${t.refId}`).not.toBe('');
        const refIds = panel.targets!.map((t) => t.refId);
        expect(new Set(refIds).size, where).toBe(refIds.length);
      }
    }
  });

  it('reads only catalog families and defined recording rules', () => {
    for (const { dashboard } of dashboards) {
      const exprs = [
        ...panelQueries(dashboard).map((q) => [`${q.panel} ${q.refId}`, q.expr]),
        ...variableQueries(dashboard).map((e) => ['variable', e]),
      ];
      for (const [where, expr] of exprs) {
        for (const name of metricNames(expr)) {
          expect(families.has(name), `${dashboard.uid} / ${where}: ${name} is not in the catalog`).toBe(true);
        }
        for (const rule of recordingRuleNames(expr)) {
          expect(rules.has(rule), `${dashboard.uid} / ${where}: ${rule} is not a recording rule`).toBe(true);
        }
      }
    }
  });

  it('plots every catalog family somewhere, or says why not', () => {
    const plotted = new Set(dashboards.flatMap((d) => panelQueries(d.dashboard).flatMap((q) => metricNames(q.expr))));
    const missing = [...families].filter((f) => !plotted.has(f) && !(f in NOT_ON_DASHBOARDS));
    expect(missing, 'add a panel, or a reason to NOT_ON_DASHBOARDS').toEqual([]);
    for (const listed of Object.keys(NOT_ON_DASHBOARDS)) {
      expect(families.has(listed), `${listed} left the catalog`).toBe(true);
      expect(plotted.has(listed), `${listed} is on a dashboard now`).toBe(false);
    }
  });

  describe.skipIf(!promtool)('with promtool', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboards-promql-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('parses every query as PromQL', () => {
      const queries = dashboards.flatMap((d) => panelQueries(d.dashboard).map((q) => ({ ...q, d: d.dashboard })));
      // JSON is YAML: one recording rule per query.
      const file = join(dir, 'queries.yml');
      const ruleList = queries.map((q, i) => ({ record: `dashboards:q${i}`, expr: expandVariables(q.expr, q.d) }));
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboards', rules: ruleList }] }));
      try {
        execFileSync(promtool!, ['check', 'rules', file], { stdio: 'pipe' });
      } catch (err) {
        const out =
          String((err as { stdout?: Buffer }).stdout ?? '') + String((err as { stderr?: Buffer }).stderr ?? '');
        const named = [...out.matchAll(/dashboards:q(\d+)/g)].map((m) => queries[Number(m[1])]);
        const where = named.map((q) => `${q.dashboard} / ${q.panel} ${q.refId}: ${q.expr}`).join('\n');
        throw new Error(`promtool rejected a query:\n${out}\n${where}`);
      }
    });
  });
});
