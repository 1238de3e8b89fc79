import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{libs,services,tools}/*/src/**/*.test.ts', 'tests/**/*.test.ts', 'native/*/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // zeromq and grpc hold native handles: separate processes are the safe pool.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
