import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  // Legacy (experimentalDecorators) semantics, as tsconfig.base.json declares for tsc.
  oxc: { decorator: { legacy: true } },
  resolve: {
    alias: {
      '@easyremote/protocol': src('protocol'),
      '@easyremote/node': src('node'),
      '@easyremote/client': src('client'),
      '@easyremote/gateway': src('gateway'),
      '@easyremote/cli': src('cli'),
    },
  },
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Gateways and nodes log lifecycle events to stderr by default; tests that check them capture them.
    env: { EASYREMOTE_LOG_LEVEL: 'silent' },
    reporters: ['default'],
  },
});
