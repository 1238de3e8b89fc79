// The bundled Grafana dashboards (grafana/dashboards/*.json) as data: loading them, the
// PromQL of every panel target, the metric names and recording rules a query reads, and
// the dashboard's template variables expanded to "all", so that tests can hold the
// queries to the metric catalog and the renderer can send them to Prometheus.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is tools/dashboards/{src,dist}/dashboards.*). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Where the bundled dashboards live. */
export const DASHBOARDS_DIR = join(REPO_ROOT, 'grafana/dashboards');
/** The Prometheus rules whose recording rules dashboards may read. */
export const RULES_FILE = join(REPO_ROOT, 'infra/prometheus/rules/armature.yml');

/** The part of a Grafana panel target this project uses. */
export interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
}

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The part of a Grafana panel this project uses. */
export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: GridPos;
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Target[];
}

/** A template variable (type `query`); "all" selects `allValue`. */
export interface Variable {
  name: string;
  type: string;
  definition?: string;
  query?: string | { query?: string };
  allValue?: string;
}

/** The part of a Grafana dashboard JSON model this project uses. */
export interface Dashboard {
  uid: string;
  title: string;
  description?: string;
  schemaVersion: number;
  panels: Panel[];
  templating?: { list: Variable[] };
}

/** A dashboard read from disk, with its file name without `.json` (`overview`). */
export interface DashboardFile {
  name: string;
  path: string;
  dashboard: Dashboard;
}

/** One PromQL query of one panel. */
export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

/** Every `*.json` in `dir` (default the bundled dashboards), parsed, sorted by file name. */
export function loadDashboards(dir: string = DASHBOARDS_DIR): DashboardFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const path = join(dir, f);
      let dashboard: Dashboard;
      try {
        dashboard = JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
      } catch (err) {
        throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
      }
      return { name: basename(f, '.json'), path, dashboard };
    });
}

/** The PromQL of every panel target, in panel order. */
export function panelQueries(dashboard: Dashboard): PanelQuery[] {
  return dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((t) => ({ dashboard: dashboard.uid, panel: panel.title, refId: t.refId, expr: t.expr })),
  );
}

/** The PromQL of the dashboard's query variables (`label_values(...)` and the like). */
export function variableQueries(dashboard: Dashboard): string[] {
  return (dashboard.templating?.list ?? [])
    .filter((v) => v.type === 'query')
    .map((v) => (typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '')));
}

/** The catalog families an expression reads: `armature_*` names, `_bucket`/`_sum`/`_count` stripped. */
export function metricNames(expr: string): string[] {
  const names = [...withoutStrings(expr).matchAll(/\barmature_[a-zA-Z0-9_]+/g)].map((m) =>
    m[0].replace(/_(bucket|sum|count)$/, ''),
  );
  return [...new Set(names)];
}

/** The recording rules (`armature:...`) an expression reads. */
export function recordingRuleNames(expr: string): string[] {
  return [...new Set([...withoutStrings(expr).matchAll(/\barmature:[a-zA-Z0-9_:]+/g)].map((m) => m[0]))];
}

/** The recording rules `rulesFile` (default infra/prometheus/rules/armature.yml) defines. */
export function definedRecordingRules(rulesFile: string = RULES_FILE): string[] {
  return [...readFileSync(rulesFile, 'utf8').matchAll(/^\s*-?\s*record:\s*(\S+)/gm)].map((m) => m[1]);
}

/** `expr` with the dashboard's variables (`$name`, `${name}`) set to "all": their allValue, default `.*`. */
export function expandVariables(expr: string, dashboard: Dashboard): string {
  let out = expr;
  for (const v of dashboard.templating?.list ?? []) {
    const all = v.allValue ?? '.*';
    out = out.replaceAll(`\${${v.name}}`, all).replace(new RegExp(`\\$${v.name}\\b`, 'g'), all);
  }
  return out;
}

/** Label values in quotes hold no metric names (`{worker="armature_x"}` reads nothing). */
function withoutStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
}
