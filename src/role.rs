//! Taking and giving back the producer or consumer role of a ring, recorded in its peer line.

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
    let mut found = Takeover::Fresh;
    let mut expected = 0u32;
    loop {
        // AcqRel: pairs with `release`'s Release store of 0 and with a rival's successful CAS, so a
        // process that sees the role free also sees its previous holder's final stores.
        match line
            .pid
            .compare_exchange(expected, me.pid, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(holder) => {
                let identity = ProcessIdentity {
                    pid: holder,
                    // Relaxed: informational; a torn view only makes a live holder look alive.
                    start_time: line.start_time.load(Ordering::Relaxed),
                };
                if holder == me.pid || identity.liveness() == Liveness::Alive {
                    return Err(RoleError::Taken {
                        ring,
                        role,
                        pid: holder,
                    });
                }
                found = Takeover::FromDead(identity);
                expected = holder;
            }
        }
    }
    // Relaxed: identity and heartbeat are read by inspectors only, never to order data.
    line.start_time.store(me.start_time, Ordering::Relaxed);
    line.heartbeat_unix_ms.store(now_unix_ms(), Ordering::Relaxed);
    Ok(found)
}

/// Gives the role back (on drop of the producer or consumer).
pub fn release(line: &PeerLine) {
    // Release: pairs with `take`'s AcqRel CAS, publishing this holder's last stores to the next one.
    line.pid.store(0, Ordering::Release);
}

/// Stamps a heartbeat (an age for operators; never a liveness verdict).
pub fn heartbeat(line: &PeerLine) {
    // Relaxed: informational.
    line.heartbeat_unix_ms.store(now_unix_ms(), Ordering::Relaxed);
}
