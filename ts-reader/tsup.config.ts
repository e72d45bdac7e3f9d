import { defineConfig } from 'tsup';

// ESM + CJS + .d.ts. `shims` gives the CJS build an import.meta.url (library discovery and lazy requires).
// Two entries: the package root and `@tasker-systems/worker/tasker-core` (tasker-core's NapiModule).
export default defineConfig({
  entry: { index: 'src/index.ts', 'tasker-core': 'src/tasker-core/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  // Shared chunks in the CJS build too (ESM splits by default): one copy of the error classes, so an error of
  // `@tasker-systems/worker/tasker-core` is `instanceof FfiError` of the package root under require() as well.
  splitting: true,
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
