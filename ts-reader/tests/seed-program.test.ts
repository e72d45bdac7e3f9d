/**
 * A program written against the seed's API runs unchanged on the ring transport, and its seed-style config
 * (`namespace`, `log_level`, a top-level `database_url`) reaches the step store: the events it handles are
 * the store's steps, not fabricated ones.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runSeedProgram } from '../examples/seed-program.ts';
import { enqueue, storeSteps, tempDir } from './support/store.ts';

describe('a seed-API program', () => {
  it('runs unchanged on the ring transport, fed by the step store its config names', async () => {
    const dir = tempDir('seed');
    try {
      const url = `sqlite:${dir.path}/steps.db`;
      enqueue(url, 1250); // 1250 linear tasks: 5000 steps, each ready once its parent is complete
      const { handled, transport } = await runSeedProgram(5000, url);
      assert.equal(handled, 5000, 'every step of the store, once (the store holds no more)');
      assert.equal(transport, 'ring');
      const steps = storeSteps(url);
      assert.equal(steps.total, 5000);
      assert.ok(steps.complete >= 4000, `the results reached the store (${JSON.stringify(steps)})`);
    } finally {
      dir.remove();
    }
  });
});
