// Projects over one set of options: `unit` (each package's co-located tests and the native
// addon's) and `integration` (tests/: real clusters of child processes) together, then
// `chaos` (tests/chaos: faults under load), then `timed` (the live-vs-offline latency
// agreement, alone). Plain `vitest run` runs all; `--project <name>` runs one.
import { defineConfig } from 'vitest/config';

/** Compares live latency with the offline replay: on two cores, any test beside it skews the live side. */
const TIMED = 'tests/integration/replay-agreement.test.ts';

export default defineConfig({
  test: {
    exclude: ['**/node_modules/**', '**/dist/**'],
    // zeromq and grpc hold native handles: separate processes are the safe pool.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['{libs,services,tools}/*/src/**/*.test.ts', 'native/*/test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['tests/**/*.test.ts'],
          exclude: ['tests/chaos/**', TIMED, '**/node_modules/**', '**/dist/**'],
        },
      },
      // The chaos suite starts many processes per test: it runs after the others.
      { extends: true, test: { name: 'chaos', include: ['tests/chaos/**/*.test.ts'], sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'timed', include: [TIMED], sequence: { groupOrder: 2 } } },
    ],
  },
});
