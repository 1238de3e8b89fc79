// `npm run docs:catalog`: the metric catalog (libs/metrics/src/catalog.ts) as markdown
// tables, one per area, written between the catalog markers of docs/observability.md so
// the doc never drifts from the code (catalog-table.test.ts fails when it has).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { METRICS, type MetricSpec } from '@armature/metrics';
import { REPO_ROOT } from './dashboards.js';

export const BEGIN = '<!-- catalog:begin -->';
export const END = '<!-- catalog:end -->';
/** The doc that holds the table. */
export const DOC = join(REPO_ROOT, 'docs/observability.md');

/** Areas in the order the doc lists them, each with the name prefixes it owns. */
const AREAS: Array<{ title: string; prefixes: string[] }> = [
  { title: 'Process (every service)', prefixes: ['armature_build_info', 'armature_process_', 'armature_tracing_'] },
  { title: 'Frontend', prefixes: ['armature_frontend_'] },
  { title: 'Router', prefixes: ['armature_router_'] },
  { title: 'Worker', prefixes: ['armature_worker_'] },
  { title: 'Transfer', prefixes: ['armature_transfer_'] },
  { title: 'Planner', prefixes: ['armature_planner_'] },
];

/** The markdown for `catalog` (default METRICS): a heading and a table per area, in catalog order. */
export function catalogTable(catalog: Record<string, MetricSpec> = METRICS): string {
  const names = Object.keys(catalog);
  const unplaced = names.filter((n) => !AREAS.some((a) => a.prefixes.some((p) => n.startsWith(p))));
  if (unplaced.length) throw new Error(`no area in catalog-table.ts for ${unplaced.join(', ')}`);
  const sections = AREAS.map(({ title, prefixes }) => {
    const rows = names
      .filter((n) => prefixes.some((p) => n.startsWith(p)))
      .map((n) => {
        const spec = catalog[n];
        const labels = spec.labels.length ? spec.labels.map((l) => `\`${l}\``).join(', ') : '–';
        return `| \`${n}\` | ${spec.type} | ${labels} | ${cell(spec.help)} |`;
      });
    return [`### ${title}`, '', '| name | type | labels | help |', '| --- | --- | --- | --- |', ...rows].join('\n');
  });
  const note =
    'Generated from `libs/metrics/src/catalog.ts` by `npm run docs:catalog`: edit the catalog, not this table.';
  return `${[note, ...sections].join('\n\n')}\n`;
}

/** `doc` with the text between the markers replaced by `table`. */
export function withTable(doc: string, table: string): string {
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`the doc has no ${BEGIN} ... ${END} section`);
  return `${doc.slice(0, begin + BEGIN.length)}\n\n${table}\n${doc.slice(end)}`;
}

/** Table cells hold one line, and a `|` would end the cell. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const before = readFileSync(DOC, 'utf8');
  const after = withTable(before, catalogTable());
  if (after === before) {
    process.stderr.write(`docs:catalog: ${DOC} is up to date\n`);
  } else {
    writeFileSync(DOC, after);
    process.stderr.write(`docs:catalog: wrote ${Object.keys(METRICS).length} metrics to ${DOC}\n`);
  }
}
