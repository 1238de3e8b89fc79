// Where the public traces are: $ARMATURE_TRACES_DIR, else ../shared/traces beside the
// checkout (the full files), else the 500-request slices committed under fixtures/.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));

export interface TraceFile {
  path: string;
  /** False when only the committed slice was found. */
  full: boolean;
}

/** Locates a trace by file name (e.g. `mooncake_conversation.jsonl`). */
export function findTrace(name: string): TraceFile {
  const dirs = [process.env.ARMATURE_TRACES_DIR, resolve(ROOT, '../shared/traces')].filter((d): d is string => !!d);
  for (const dir of dirs) {
    const path = resolve(dir, name);
    if (existsSync(path)) return { path, full: true };
  }
  const slice = resolve(ROOT, 'tools/bench/fixtures/traces', name);
  if (existsSync(slice)) return { path: slice, full: false };
  throw new Error(`trace ${name} not found in ${[...dirs, resolve(ROOT, 'tools/bench/fixtures/traces')].join(', ')}`);
}
