// The settings tables and the config catalog must agree: every variable a table writes is
// in the catalog, and the catalog's doc states the table's default, so neither can drift
// (the process table every service reads included).
import { describe, expect, it } from 'vitest';
import { ENV_CATALOG } from '@armature/runtime';
import { SERVICE_KINDS } from '../service-kinds.js';
import type { Setting } from './setting.js';
import { PROCESS_SETTINGS, SETTINGS_BY_KIND } from './tables.js';

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const stated = (value: unknown): string => (typeof value === 'object' ? JSON.stringify(value) : String(value));

const settings = [
  ...SERVICE_KINDS.flatMap((kind) =>
    Object.entries(SETTINGS_BY_KIND[kind] as Record<string, Setting<unknown>>).map(
      ([key, s]) => [kind, key, s] as const,
    ),
  ),
  ...Object.entries(PROCESS_SETTINGS as Record<string, Setting<unknown>>).map(
    ([key, s]) => ['process', key, s] as const,
  ),
];

describe('settings tables and the config catalog', () => {
  it.each(settings)('%s.%s: its variable is in the catalog, which states its default', (_kind, _key, setting) => {
    const doc = (ENV_CATALOG as Record<string, string>)[setting.env];
    expect(doc, `${setting.env} is not in libs/runtime/src/config.ts`).toBeDefined();
    if (setting.default === '') {
      // Unset by default: the catalog says what that means ("default: the generated test model").
      expect(doc).toMatch(/\(default: /);
      return;
    }
    expect(doc).toMatch(new RegExp(`\\bdefault:? ${escape(stated(setting.default))}(?![\\w.])`));
  });

  it('gives every variable to one setting (the worker kinds share one table)', () => {
    const owners = new Map<string, Setting<unknown>>();
    for (const [, , s] of settings) {
      expect(owners.get(s.env) ?? s).toBe(s);
      owners.set(s.env, s);
    }
  });
});
