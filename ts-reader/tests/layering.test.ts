/**
 * The import direction between src/'s folders (ring <- ffi <- events <- worker, all over the root modules) is
 * a lint rule of biome.json: these cases lint probe files with the package's biome.json in a scratch
 * project and check that a wrong-way import fails and a right-way one passes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const packageDir = fileURLToPath(new URL('../', import.meta.url));
const biome = join(packageDir, 'node_modules', '.bin', 'biome');
const scratch = mkdtempSync(join(tmpdir(), 'tasker-layering-'));
const config = JSON.parse(readFileSync(join(packageDir, 'biome.json'), 'utf8')) as Record<string, unknown>;
delete config.$schema;
writeFileSync(join(scratch, 'biome.json'), JSON.stringify(config));

const refused: [string, string][] = [
  ['ring', '../ffi/factory.ts'],
  ['ring', '../events/event-poller.ts'],
  ['ring', '../index.ts'],
  ['ffi', '../events/event-names.ts'],
  ['ffi', '../worker/worker.ts'],
  ['events', '../worker/errors.ts'],
  ['', './ffi/factory.ts'],
  ['', './ring/layout.ts'],
];
const allowed: [string, string][] = [
  ['ring', '../errors.ts'],
  ['ring', './layout.ts'],
  ['ffi', '../ring/transport.ts'],
  ['events', '../ffi/native-adapter.ts'],
  ['worker', '../events/event-poller.ts'],
  ['', './protocol.ts'],
];

/** One probe file per case, each holding one import; linted in one run. */
const probes = [...refused, ...allowed].map(([folder, specifier], i) => {
  const path = join('src', folder, `probe-${i}.ts`);
  mkdirSync(join(scratch, 'src', folder), { recursive: true });
  writeFileSync(join(scratch, path), `import { x } from '${specifier}';\nexport const y = x;\n`);
  return { path, specifier };
});
const run = spawnSync(biome, ['lint', '--reporter=json', '--max-diagnostics=none', 'src'], { cwd: scratch, encoding: 'utf8' });
const diagnostics = (JSON.parse(run.stdout) as { diagnostics: { category: string; message: string; location: { path: string } }[] }).diagnostics;
rmSync(scratch, { recursive: true, force: true });

/** The import-direction diagnostics of one probe. */
function restricted(path: string): string[] {
  return diagnostics.filter((d) => d.category === 'lint/style/noRestrictedImports' && d.location.path === path).map((d) => d.message);
}

describe('import direction between src/ folders (biome noRestrictedImports)', () => {
  probes.forEach(({ path, specifier }, i) => {
    const wrongWay = i < refused.length;
    it(`${path.replace(/probe-\d+/, 'x')} importing ${specifier} ${wrongWay ? 'fails the lint' : 'passes'}`, () => {
      const messages = restricted(path);
      if (wrongWay) {
        assert.equal(messages.length, 1, `expected one noRestrictedImports diagnostic, got ${JSON.stringify(messages)}`);
        assert.match(messages[0] as string, /ring <- ffi <- events <- worker/);
      } else assert.deepEqual(messages, []);
    });
  });
});
