import { defineConfig } from 'tsup';

// ESM + CJS + .d.ts. `shims` gives the CJS build an import.meta.url (library discovery and lazy requires).
// Two entries: the package root and `@tasker-systems/worker/tasker-core` (tasker-core's NapiModule).
export default defineConfig({
  entry: { index: 'src/index.ts', 'tasker-core': 'src/tasker-core/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  shims: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'node',
  external: ['koffi', 'bun:ffi'],
  // Keep `node:fs`, `node:net`, ... as written (tsup strips the prefix by default): Deno and Bun resolve the
  // prefixed names, and a bundler downstream never mistakes them for npm packages.
  removeNodeProtocol: false,
});
