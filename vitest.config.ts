// Two projects over one set of options: `unit` (each package's co-located tests and the
// native addon's) and `integration` (tests/: real clusters of child processes). Plain
// `vitest run` runs both, exactly as before there were projects; `--project unit` or
// `--project integration` runs one (npm run test:unit / test:integration).
import { defineConfig } from 'vitest/config';

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
      { extends: true, test: { name: 'integration', include: ['tests/**/*.test.ts'] } },
    ],
  },
});
