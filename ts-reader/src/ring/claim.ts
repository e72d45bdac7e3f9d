/**
 * The consumer's claim (layout-spec.md section 9.5), on a region whose `layout_minor` is at least 1: the
 * consumer takes responsibility for messages before it delivers them, so a producer that seals the ring
 * (section 8.1) knows exactly which messages the consumer will deliver and may hand every other one elsewhere.
 *
 * Invariants kept here:
 * - `claiming_identity` holds this consumer's identity word from the take until `release()`; it is written
 *   with single 64-bit stores (`BigInt64Array` + `Atomics.store`), so the producer never sees a torn word.
 * - The claim only moves forward, by CAS from the last value this consumer stored (`claimed`), to a position
 *   the consumer has read; it is never ahead of what was read, and the caller never releases a position
 *   past it (`consumer_position <= claim <= producer_position` by forward distance).
 * - `SEALED` (bit 0) is never cleared here: once a CAS finds it, the claim is over for good.
 * A region of minor 0 never gets one of these: the words are reserved there.
 */
import { CLAIM_SEALED, Control } from './layout.ts';
import type { RegionViews } from './region.ts';

/** What a claim attempt found: the messages are ours, the producer sealed first, or a stranger wrote. */
export type ClaimOutcome = 'claimed' | 'sealed' | 'corrupt';

export class ConsumerClaim {
  private readonly i32: Int32Array;
  private readonly i64: BigInt64Array;
  private readonly claimIndex: number;
  private readonly identityIndex: number;
  /** The last claim this consumer stored: a position (multiple of 8), `SEALED` clear. */
  private claimed: number;
  private outcome: ClaimOutcome;
  /** The word a failed CAS found (for the error that names it). */
  private foundWord = 0;
  private released = false;

  /**
   * Section 9.5's take step, right after the identity CAS: SeqCst store of `claiming_identity` = our
   * identity word, then a load of the claim; sealed already, or a CAS from it to `position` (the released
   * consumer position: a dead predecessor may have claimed past it, and what it claimed and did not run is
   * redelivered, as any unreleased read is). The outcome is kept for the reader's next read.
   */
  constructor(views: RegionViews, control: number, identity: bigint, position: number) {
    this.i32 = views.i32;
    this.i64 = views.i64;
    this.claimIndex = (control + Control.CONSUMER_CLAIM) >> 2;
    this.identityIndex = (control + Control.CLAIMING_IDENTITY) >> 3;
    this.claimed = position >>> 0;
    // SeqCst store (JS Atomics are SeqCst): pairs with the producer's fence and load in its seal (8.1 step
    // 3): either it sees us claiming, or our load below sees SEALED.
    Atomics.store(this.i64, this.identityIndex, BigInt.asIntN(64, identity));
    const seen = Atomics.load(this.i32, this.claimIndex) >>> 0;
    if ((seen & CLAIM_SEALED) !== 0) {
      this.outcome = 'sealed';
      this.foundWord = seen;
      return;
    }
    this.outcome = this.cas(seen, this.claimed);
  }

  /** `claimed` while the claim holds; `sealed` or `corrupt` once either was found (sticky). */
  get state(): ClaimOutcome {
    return this.outcome;
  }

  /** The word that ended the claim (a sealed or foreign value), for error messages. */
  get found(): number {
    return this.foundWord;
  }

  /** The last claimed position. */
  get position(): number {
    return this.claimed;
  }

  /**
   * Claims every message ending at or before `end` (a position this consumer has read) before any of them
   * reaches user code: CAS (AcqRel; JS: SeqCst) from the last claim to `end`, pairing with the producer's
   * `fetch_or(SEALED)`. Exactly one of the two wins the word.
   */
  advance(end: number): ClaimOutcome {
    if (this.outcome !== 'claimed') return this.outcome;
    if (end === this.claimed) return 'claimed';
    this.outcome = this.cas(this.claimed, end >>> 0);
    return this.outcome;
  }

  /** Whether the producer has sealed the ring (one Acquire load of the claim word; for idle checks). */
  isSealed(): boolean {
    if (this.outcome === 'sealed') return true;
    return ((Atomics.load(this.i32, this.claimIndex) >>> 0) & CLAIM_SEALED) !== 0;
  }

  /** Section 12's give-back: `claiming_identity` = 0 before the role's identity is released. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    Atomics.store(this.i64, this.identityIndex, 0n);
  }

  private cas(expected: number, next: number): ClaimOutcome {
    const found = Atomics.compareExchange(this.i32, this.claimIndex, expected | 0, next | 0) >>> 0;
    if (found === expected) {
      this.claimed = next;
      return 'claimed';
    }
    this.foundWord = found;
    // The producer's OR leaves our last claim with SEALED set; any word with SEALED is the seal.
    return (found & CLAIM_SEALED) !== 0 ? 'sealed' : 'corrupt';
  }
}
