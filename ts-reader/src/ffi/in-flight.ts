/**
 * The events an adapter delivered and that are not completed yet, with each one's (coarse) delivery time:
 * the exact in-flight accounting behind `completeStepEvent`'s false for an id not in flight, the poller's
 * backpressure and the timeout cleanup. Answers exactly as a `Map<string, number>` would.
 *
 * Why not a Map: a Map hashes every key on its first use, and every event id arrives as a fresh string out
 * of JSON.parse, so each delivery paid a whole-string hash: `Map.set` + `delete` of a fresh id costs 252 ns on
 * Deno, 133 on Node, 55 on Bun, against 51-63 ns once hashed (`bench/in-flight-map.ts`). This table hashes
 * the last 8 characters itself (the random tail of a UUID, v4 or v7) and compares the whole string only on a
 * hash match, which is a pointer comparison when the caller passes the event's own `event_id`.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones). Invariants: the table is
 * at most half full (so every probe meets an empty slot); every live entry is reachable from its home slot
 * `hash & mask` without crossing an empty slot; `order` grows strictly in insertion order. Ids crafted to
 * share a tail only lengthen probes (bounded by the number in flight), never change an answer. The table
 * grows with the most ids ever in flight at once and does not shrink (the poller bounds it by maxInFlight).
 */

const MIN_CAPACITY = 64;
/** How many trailing characters the hash reads. */
const HASHED_TAIL = 8;

/** The hash of an id's last `HASHED_TAIL` characters and its length. */
function tailHash(id: string): number {
  const n = id.length;
  let h = n;
  for (let i = n > HASHED_TAIL ? n - HASHED_TAIL : 0; i < n; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x9e3779b1);
  return h ^ (h >>> 15);
}

export class InFlightIds {
  /** The id in each slot, or undefined for an empty slot. */
  #ids: (string | undefined)[];
  /** Each live slot's `tailHash`, kept so moves and growth never rehash. */
  #hashes: Int32Array;
  #readAt: Float64Array;
  /** Insertion counter of each live slot: the smallest is the oldest. */
  #order: Float64Array;
  #mask: number;
  #size = 0;
  #nextOrder = 0;

  constructor(capacity = MIN_CAPACITY) {
    const cap = Math.max(MIN_CAPACITY, 2 ** Math.ceil(Math.log2(capacity)));
    this.#ids = new Array<string | undefined>(cap).fill(undefined);
    this.#hashes = new Int32Array(cap);
    this.#readAt = new Float64Array(cap);
    this.#order = new Float64Array(cap);
    this.#mask = cap - 1;
  }

  /** Ids in flight. */
  get size(): number {
    return this.#size;
  }

  /**
   * Records `id` as delivered at `readAt`. An id already in flight keeps its place in the order, as a Map's.
   * A key that is not a string is a caller's bug: TypeError.
   */
  set(id: string, readAt: number): void {
    if (typeof id !== 'string') throw new TypeError(`in-flight ids are strings, got ${typeof id}`);
    const h = tailHash(id);
    const slot = this.#find(id, h);
    if (slot >= 0) {
      this.#readAt[slot] = readAt;
      return;
    }
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#grow();
    this.#place(id, h, readAt, this.#nextOrder++);
  }

  /** The delivery time of `id`, or undefined when it is not in flight. */
  get(id: string): number | undefined {
    if (typeof id !== 'string') return undefined;
    const slot = this.#find(id, tailHash(id));
    return slot >= 0 ? this.#readAt[slot] : undefined;
  }

  /** Removes `id` and returns its delivery time, or undefined when it was not in flight: one probe. */
  take(id: string): number | undefined {
    if (typeof id !== 'string') return undefined;
    const slot = this.#find(id, tailHash(id));
    if (slot < 0) return undefined;
    const readAt = this.#readAt[slot];
    this.#remove(slot);
    return readAt;
  }

  /** Removes `id`; true when it was in flight. */
  delete(id: string): boolean {
    return this.take(id) !== undefined;
  }

  /** Removes every id delivered at or before `readAtOrBefore` (the timeout cleanup). A full scan. */
  expire(readAtOrBefore: number): void {
    // A removal shifts later entries back into the freed slot: collect first, then take one by one.
    const stale: string[] = [];
    for (let slot = 0; slot <= this.#mask; slot++) {
      const id = this.#ids[slot];
      if (id !== undefined && (this.#readAt[slot] as number) <= readAtOrBefore) stale.push(id);
    }
    for (const id of stale) this.take(id);
  }

  /** The oldest id (first delivered) with its delivery time, and the newest's delivery time; null when empty. */
  range(): { oldestId: string; oldestReadAt: number; newestReadAt: number } | null {
    let oldest = -1;
    let newest = -1;
    for (let slot = 0; slot <= this.#mask; slot++) {
      if (this.#ids[slot] === undefined) continue;
      const order = this.#order[slot] as number;
      if (oldest < 0 || order < (this.#order[oldest] as number)) oldest = slot;
      if (newest < 0 || order > (this.#order[newest] as number)) newest = slot;
    }
    if (oldest < 0) return null;
    return { oldestId: this.#ids[oldest] as string, oldestReadAt: this.#readAt[oldest] as number, newestReadAt: this.#readAt[newest] as number };
  }

  /** The slot holding `id` (hash `h`), or -1. */
  #find(id: string, h: number): number {
    const ids = this.#ids;
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const held = ids[slot];
      if (held === undefined) return -1;
      if (hashes[slot] === h && held === id) return slot;
    }
  }

  /** Puts an absent id into the first empty slot from its home (the caller made room). */
  #place(id: string, h: number, readAt: number, order: number): void {
    const mask = this.#mask;
    let slot = h & mask;
    while (this.#ids[slot] !== undefined) slot = (slot + 1) & mask;
    this.#ids[slot] = id;
    this.#hashes[slot] = h;
    this.#readAt[slot] = readAt;
    this.#order[slot] = order;
    this.#size += 1;
  }

  /** Empties `slot`, moving back each later entry of the run whose home does not lie after the gap. */
  #remove(slot: number): void {
    const ids = this.#ids;
    const hashes = this.#hashes;
    const mask = this.#mask;
    let gap = slot;
    for (let next = (gap + 1) & mask; ids[next] !== undefined; next = (next + 1) & mask) {
      const home = (hashes[next] as number) & mask;
      // The entry at `next` may fill the gap when the gap lies on its probe path: home .. next, cyclically.
      if (((next - home) & mask) >= ((next - gap) & mask)) {
        ids[gap] = ids[next];
        hashes[gap] = hashes[next] as number;
        this.#readAt[gap] = this.#readAt[next] as number;
        this.#order[gap] = this.#order[next] as number;
        gap = next;
      }
    }
    ids[gap] = undefined;
    this.#size -= 1;
  }

  #grow(): void {
    const ids = this.#ids;
    const hashes = this.#hashes;
    const readAt = this.#readAt;
    const order = this.#order;
    const cap = ids.length * 2;
    this.#ids = new Array<string | undefined>(cap).fill(undefined);
    this.#hashes = new Int32Array(cap);
    this.#readAt = new Float64Array(cap);
    this.#order = new Float64Array(cap);
    this.#mask = cap - 1;
    this.#size = 0;
    for (let slot = 0; slot < ids.length; slot++) {
      const id = ids[slot];
      if (id !== undefined) this.#place(id, hashes[slot] as number, readAt[slot] as number, order[slot] as number);
    }
  }
}
