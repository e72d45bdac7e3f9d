import { defineConfig } from 'tsup';

// ESM + CJS + .d.ts. `shims` gives the CJS build an import.meta.url (library discovery and lazy requires).
export default defineConfig({
  entry: ['src/index.ts'],
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
