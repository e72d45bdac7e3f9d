//! Who holds a role, and whether that process still exists.
//!
//! A peer is dead when its pid is gone or has been reused (its start time differs). Heartbeats are only
//! ever shown as ages: a JS handler busy for a minute is not dead.

/// A process as the region records it: pid plus start time, so a reused pid is not mistaken for the peer.
///
/// ```
/// use tasker_ring::liveness::{Liveness, ProcessIdentity};
///
/// let me = ProcessIdentity::current();
/// assert_eq!(me.pid, std::process::id());
/// assert_eq!(me.liveness(), Liveness::Alive);
/// assert_eq!(ProcessIdentity::from_word(me.word()).pid, me.pid); // the peer line's one-word form
///
/// // The same pid with another start time is a later process: the recorded one is dead.
/// if cfg!(target_os = "linux") {
///     let earlier = ProcessIdentity { start_time: me.start_time + 1, ..me };
///     assert_eq!(earlier.liveness(), Liveness::Dead);
/// }
/// assert_eq!(ProcessIdentity { pid: 0, start_time: 0 }.liveness(), Liveness::Absent);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22); 0 where the OS does not say.
    pub start_time: u64,
}

/// What can be said about a recorded process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The pid exists and (where known) its start time matches.
    Alive,
    /// The pid does not exist, or it belongs to a different, later process.
    Dead,
    /// No process recorded (pid 0).
    Absent,
}

impl ProcessIdentity {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
        }
    }

    /// The one-word form stored in a peer line: pid in bits 0..32, low 32 bits of the start time above.
    pub fn word(&self) -> u64 {
        self.pid as u64 | ((self.start_time as u32 as u64) << 32)
    }

    /// Decodes [`Self::word`] (the start time keeps only its low 32 bits).
    pub fn from_word(word: u64) -> Self {
        Self {
            pid: word as u32,
            start_time: word >> 32,
        }
    }

    /// Whether the recorded process still runs. Start times are compared on their low 32 bits (the part a
    /// peer line keeps; 2^32 clock ticks is over a year at 100 Hz).
    pub fn liveness(&self) -> Liveness {
        if self.pid == 0 {
            return Liveness::Absent;
        }
        if !pid_exists(self.pid) {
            return Liveness::Dead;
        }
        let stat = proc_stat(self.pid);
        if stat.is_some_and(|(state, _)| matches!(state, 'Z' | 'X')) {
            // A zombie (exited, not yet reaped by its parent) answers kill(pid, 0) but will never touch
            // the region again.
            return Liveness::Dead;
        }
        match (self.start_time, stat.map(|(_, start)| start)) {
            (0, _) | (_, None) => Liveness::Alive,
            (recorded, Some(now)) if recorded as u32 == now as u32 => Liveness::Alive,
            _ => Liveness::Dead,
        }
    }
}

/// Whether a process with this pid exists (signal 0: EPERM still means it exists).
///
/// ```
/// use tasker_ring::liveness::{pid_exists, process_start_time};
///
/// assert!(pid_exists(std::process::id()));
/// assert!(!pid_exists(0)); // not a process: kill(0, 0) would mean the whole process group
/// if cfg!(target_os = "linux") {
///     assert!(process_start_time(std::process::id()).is_some_and(|ticks| ticks > 0));
/// }
/// ```
pub fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Start time of `pid` in clock ticks since boot, from `/proc/<pid>/stat` (Linux); `None` elsewhere.
pub fn process_start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// State letter (field 3: `R`, `S`, `Z`...) and start time (field 22) of `pid`, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may hold spaces and parentheses: fields after the last ')' start at field 3.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

/// Milliseconds since the Unix epoch, for heartbeats and creation times.
///
/// ```
/// let now = tasker_ring::liveness::now_unix_ms();
/// assert!(now > 1_600_000_000_000); // after September 2020
/// ```
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_dead() {
        let me = ProcessIdentity::current();
        assert_eq!(me.liveness(), Liveness::Alive);
        if cfg!(target_os = "linux") {
            assert!(me.start_time > 0);
            let reused = ProcessIdentity {
                start_time: me.start_time + 1,
                ..me
            };
            assert_eq!(
                reused.liveness(),
                Liveness::Dead,
                "a pid with another start time is a different process"
            );
        }
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        assert_eq!(ProcessIdentity { pid, start_time: 0 }.liveness(), Liveness::Dead);
        assert_eq!(ProcessIdentity { pid: 0, start_time: 0 }.liveness(), Liveness::Absent);
    }

    #[test]
    fn an_unreaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let id = ProcessIdentity {
            pid: child.id(),
            start_time: process_start_time(child.id()).unwrap_or(0),
        };
        if cfg!(target_os = "linux") {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while proc_stat(id.pid).is_some_and(|(state, _)| state != 'Z') {
                assert!(std::time::Instant::now() < deadline, "the child never exited");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert!(pid_exists(id.pid), "a zombie still answers kill(pid, 0)");
            assert_eq!(id.liveness(), Liveness::Dead, "but it is dead");
        }
        child.wait().expect("wait");
    }
}
