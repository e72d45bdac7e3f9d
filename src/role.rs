//! Taking and giving back the producer or consumer role of a ring, recorded in its peer line.
//!
//! The holder is one 64-bit word (pid + low 32 bits of its start time), taken by CAS and released by a
//! store of 0, so a rival never pairs one holder's pid with another's start time.

use crate::error::RoleError;
use crate::layout::PeerLine;
use crate::liveness::{now_unix_ms, Liveness, ProcessIdentity};
use crate::sync::Ordering;

/// What taking a role found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takeover {
    /// The role was free.
    Fresh,
    /// A dead process held it; its unpublished work is gone and a partial message may need aborting.
    FromDead(ProcessIdentity),
}

/// Records this process in `line` unless a live process holds it.
pub fn take(line: &PeerLine, ring: &'static str, role: &'static str) -> Result<Takeover, RoleError> {
    let me = ProcessIdentity::current();
    let mine = me.word();
    let mut found = Takeover::Fresh;
    let mut expected = 0u64;
    loop {
        // AcqRel: pairs with `release`'s Release store of 0 and with a rival's successful CAS, so a
        // process that sees the role free also sees its previous holder's final stores.
        match line
            .identity
            .compare_exchange(expected, mine, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(0) => {
                // Released meanwhile: a normal hand-over, not a takeover.
                expected = 0;
                found = Takeover::Fresh;
            }
            Err(word) => {
                let holder = ProcessIdentity::from_word(word);
                // Our own word: this process holds it. Our pid with another start time: an earlier
                // process that had our pid (a restarted container), which is dead.
                if word == mine || holder.liveness() == Liveness::Alive {
                    return Err(RoleError::Taken {
                        ring,
                        role,
                        pid: holder.pid,
                    });
                }
                found = Takeover::FromDead(holder);
                expected = word;
            }
        }
    }
    // Relaxed: identity and heartbeat are read by inspectors only, never to order data.
    line.start_time.store(me.start_time, Ordering::Relaxed);
    line.heartbeat_unix_ms.store(now_unix_ms(), Ordering::Relaxed);
    Ok(found)
}

/// Gives the role back (on drop of the producer or consumer) if this process still holds it; returns
/// whether it did. A line another process has taken over (it judged this one dead) is left alone: a blind
/// store of 0 would free a role its new holder is using.
pub fn release(line: &PeerLine) -> bool {
    let mine = ProcessIdentity::current().word();
    // Relaxed: only this process ever stores `mine` (no other process has our pid and start time), so a
    // stale read can only be `mine` itself or a rival's word, and neither changes under us except by the
    // rival's takeover, which the CAS below sees.
    if line.identity.load(Ordering::Relaxed) != mine {
        return false;
    }
    // Relaxed: informational; ordered before the identity CAS below.
    line.start_time.store(0, Ordering::Relaxed);
    // Release: pairs with `take`'s AcqRel CAS, publishing this holder's last stores to the next one.
    // Relaxed on failure: nothing was stored, nothing to order.
    line.identity
        .compare_exchange(mine, 0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

/// Stamps a heartbeat (an age for operators; never a liveness verdict).
pub fn heartbeat(line: &PeerLine) {
    // Relaxed: informational.
    line.heartbeat_unix_ms.store(now_unix_ms(), Ordering::Relaxed);
}

/// The process recorded in `line` and whether it still runs.
pub fn holder(line: &PeerLine) -> (u32, Liveness) {
    // Acquire: pairs with `take`'s CAS; one word, so pid and start time belong to the same holder.
    let holder = ProcessIdentity::from_word(line.identity.load(Ordering::Acquire));
    (holder.pid, holder.liveness())
}
