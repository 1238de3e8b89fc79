// docs/observability.md's metric tables match the catalog, and every catalog family has
// its row in its area's table.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRICS } from '@armature/metrics';
import { BEGIN, DOC, END, catalogTable, withTable } from './catalog-table.js';

describe('catalog table', () => {
  it('has a row for every catalog family', () => {
    const table = catalogTable();
    for (const name of Object.keys(METRICS))
      expect(table).toContain(`| \`${name}\` | ${METRICS[name as keyof typeof METRICS].type} |`);
  });

  it('replaces only what lies between the markers', () => {
    const doc = `# T\n\nbefore\n\n${BEGIN}\nold\n${END}\n\nafter\n`;
    expect(withTable(doc, 'new\n')).toBe(`# T\n\nbefore\n\n${BEGIN}\n\nnew\n\n${END}\n\nafter\n`);
    expect(() => withTable('# no markers\n', 'x')).toThrow(/catalog:begin/);
  });

  it('is current in docs/observability.md (if not: npm run docs:catalog)', () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(doc === withTable(doc, catalogTable()), 'docs/observability.md is stale: run npm run docs:catalog').toBe(
      true,
    );
  });
});
