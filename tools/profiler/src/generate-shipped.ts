// `npm run profiles:generate`: rewrites the profiles shipped in infra/profiles from the
// mocker in virtual time (seeded prompts: the points come out the same every time; only
// createdAt changes). mocker.json is infra/graphs/mocker.yaml's engine; mocker-replay.json
// the engine `armature replay` simulates (tools/bench's replayMockerDefaults(), speedup 1).
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replayMockerDefaults } from '@armature/bench';
import { parseProfile } from '@armature/planner-core';
import { roundProfile } from './report.js';
import { profileMockerVirtual } from './virtual.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

export const SHIPPED_PROFILES: Record<string, Record<string, unknown>> = {
  'mocker.json': {
    model: 'armature/mock-model',
    blockSize: 16,
    totalKvBlocks: 16384,
    maxNumSeqs: 256,
    maxNumBatchedTokens: 8192,
    contextLength: 8192,
    speedup: 1,
  },
  'mocker-replay.json': { model: 'armature/mock-model', ...replayMockerDefaults(), speedup: 1 },
};

for (const [file, engineArgs] of Object.entries(SHIPPED_PROFILES)) {
  const path = join(ROOT, 'infra/profiles', file);
  const profile = parseProfile(roundProfile(profileMockerVirtual(engineArgs)));
  await writeFile(path, JSON.stringify(profile, null, 2) + '\n');
  process.stdout.write(
    `wrote ${path}: ${profile.prefill.points.length} prefill, ${profile.decode.points.length} decode points\n`,
  );
}
