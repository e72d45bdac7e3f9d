/**
 * Ring roles and liveness (layout-spec.md sections 12 and 13): one identity word per role,
 * `pid | (start_time mod 2^32) << 32`, taken by CAS and given back by storing 0.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { RingPeerError } from '../errors.ts';
import { Control, writeU64 } from './layout.ts';
import type { RegionViews } from './region.ts';

/** State letter (field 3) and start time in clock ticks since boot (field 22) from `/proc/<pid>/stat`. */
function procStat(pid: number | 'self'): { state: string; startTime: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Field 2 (comm) may hold spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const value = Number(fields[19]); // field 22 overall = index 19 after pid and comm
    return { state: fields[0] ?? '', startTime: Number.isSafeInteger(value) ? value : 0 };
  } catch {
    return null;
  }
}

/** A process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), 0 if unknown. */
export function processStartTime(pid: number | 'self'): number {
  return procStat(pid)?.startTime ?? 0;
}

export type Liveness = 'alive' | 'dead' | 'absent';

/** This process's pid and start time's low 32 bits, read once (both are fixed for the process's life). */
let own: { pid: number; startTimeLow32: number } | null = null;

/**
 * Section 13: dead when the pid is gone, a zombie (exited, not yet reaped) or reused (start times differ).
 * A peer with this process's own identity (the worker core in this process: the usual producer) is alive
 * without asking the OS: a maintenance tick then costs no `kill` and no `/proc` read (issue 21, idle CPU).
 */
export function liveness(pid: number, startTimeLow32: number): Liveness {
  if (pid === 0) return 'absent';
  own ??= { pid: process.pid, startTimeLow32: processStartTime('self') % 2 ** 32 };
  if (pid === own.pid && startTimeLow32 !== 0 && startTimeLow32 === own.startTimeLow32) return 'alive';
  // Linux's pid_t is a signed 32-bit integer: a pid outside 1..2^31-1 names no process (process.kill would
  // throw a type error for it, not ESRCH).
  if (!Number.isInteger(pid) || pid < 0 || pid > 0x7fff_ffff) return 'dead';
  try {
    process.kill(pid, 0);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ESRCH') return 'dead';
    if (code !== 'EPERM') return 'alive'; // cannot tell: never declare a live peer dead
  }
  const stat = procStat(pid);
  if (stat === null) return 'alive';
  if (stat.state === 'Z' || stat.state === 'X') return 'dead';
  const now = stat.startTime;
  if (now !== 0 && startTimeLow32 !== 0 && now % 2 ** 32 !== startTimeLow32) return 'dead';
  return 'alive';
}

/** This process's identity word (pid in bits 0-31, start time's low 32 bits above). */
export function ownIdentity(): { word: bigint; pid: number; startTime: number } {
  const pid = process.pid;
  const startTime = processStartTime('self');
  const word = BigInt(pid) | (BigInt(startTime % 2 ** 32) << 32n);
  return { word, pid, startTime };
}

export type RoleSide = 'producer' | 'consumer';

/** A held role: give it back with `release()` exactly once. */
export interface HeldRole {
  /** The previous holder was dead: its partial work must be healed (section 12). */
  readonly tookOverFromDead: boolean;
  /** The identity word stored in the role's line (pid | start_time low 32 bits << 32), as a u64. */
  readonly identity: bigint;
  heartbeat(): void;
  release(): void;
}

/**
 * Takes `side` of the ring whose control block is at `control`. Throws `RingPeerError('ROLE_TAKEN')` when
 * a live process (this one included) holds it.
 */
export function takeRole(views: RegionViews, control: number, side: RoleSide, ringName: string): HeldRole {
  const line = control + (side === 'producer' ? Control.PRODUCER_PEER : Control.CONSUMER_PEER);
  const index = (line + Control.PEER_IDENTITY) >> 3;
  const me = ownIdentity();
  let tookOverFromDead = false;
  let expected = 0n;
  for (;;) {
    // AcqRel CAS: pairs with the previous holder's Release store of 0 (or our own takeover race).
    const found = BigInt.asUintN(64, Atomics.compareExchange(views.i64, index, expected, BigInt.asIntN(64, me.word)));
    if (found === BigInt.asUintN(64, expected)) break;
    if (found === 0n) {
      expected = 0n; // released meanwhile: a normal take
      tookOverFromDead = false;
      continue;
    }
    const pid = Number(found & 0xffffffffn);
    const startLow = Number(found >> 32n);
    if (found === me.word || liveness(pid, startLow) !== 'dead') {
      throw new RingPeerError('ROLE_TAKEN', `the ${side} role of the ${ringName} ring is held by live pid ${pid}`);
    }
    expected = BigInt.asIntN(64, found);
    tookOverFromDead = true;
  }
  writeU64(views.dv, line + Control.PEER_START_TIME, me.startTime);
  writeU64(views.dv, line + Control.PEER_HEARTBEAT, Date.now());
  let held = true;
  return {
    tookOverFromDead,
    identity: me.word,
    heartbeat() {
      if (held) writeU64(views.dv, line + Control.PEER_HEARTBEAT, Date.now());
    },
    release() {
      if (!held) return;
      held = false;
      writeU64(views.dv, line + Control.PEER_START_TIME, 0);
      // Release store of 0: pairs with the next taker's CAS, which then sees our final stores.
      Atomics.store(views.i64, index, 0n);
    },
  };
}

/** The holder of the other side of a ring, read for liveness reports. */
export function peerLiveness(views: RegionViews, control: number, side: RoleSide): { pid: number; state: Liveness; heartbeatAgeMs: number } {
  const line = control + (side === 'producer' ? Control.PRODUCER_PEER : Control.CONSUMER_PEER);
  const word = BigInt.asUintN(64, Atomics.load(views.i64, (line + Control.PEER_IDENTITY) >> 3));
  const pid = Number(word & 0xffffffffn);
  const hb = views.dv.getUint32(line + Control.PEER_HEARTBEAT, true) + views.dv.getUint32(line + Control.PEER_HEARTBEAT + 4, true) * 2 ** 32;
  return { pid, state: liveness(pid, Number(word >> 32n)), heartbeatAgeMs: hb === 0 ? -1 : Date.now() - hb };
}
