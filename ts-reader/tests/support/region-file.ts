/**
 * Corrupts a live region through its file (the mapping is shared, so the worker and the reader see the
 * bytes at once): the hostile peer a fatal-error test needs, without touching the package's private views.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { Control, Descriptor, Header } from '../../src/ring/layout.ts';

/**
 * Moves the producer position of ring `ring` (0 events, 1 completions) 12 bytes forward: a position that is
 * not a multiple of 8, which its consumer must refuse (the JS reader's `MISALIGNED`, the worker core's
 * corrupt completions ring).
 */
export function misalignProducerPosition(regionPath: string, ring: 0 | 1): void {
  const fd = openSync(regionPath, 'r+');
  try {
    const entry = new Uint8Array(Header.RING_ENTRY_SIZE);
    readSync(fd, entry, 0, entry.length, Header.RING_TABLE + Header.RING_ENTRY_SIZE * ring);
    const control = Number(new DataView(entry.buffer).getBigUint64(Descriptor.CONTROL_OFFSET, true));
    const word = new Uint8Array(4);
    const at = control + Control.PRODUCER_POSITION;
    readSync(fd, word, 0, 4, at);
    const view = new DataView(word.buffer);
    view.setUint32(0, (view.getUint32(0, true) + 12) >>> 0, true);
    writeSync(fd, word, 0, 4, at);
  } finally {
    closeSync(fd);
  }
}
