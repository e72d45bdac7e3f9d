/** The acceptance: a program written against the seed's API runs unchanged on the ring transport. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runSeedProgram } from '../examples/seed-program.ts';

describe('a seed-API program', () => {
  it('runs unchanged on the ring transport', async () => {
    const { handled, transport } = await runSeedProgram(5000);
    assert.ok(handled >= 5000, `handled ${handled}`); // the poll that reached 5000 drained its whole batch
    assert.equal(transport, 'ring');
  });
});
