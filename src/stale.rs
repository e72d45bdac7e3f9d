//! Stale regions: which region files (`*.ring`) in a directory belong to dead workers, and removing them
//! with their doorbell sockets (layout-spec.md section 13). Used by `tasker-ring clean` and by a worker
//! before it creates its own region. A live region is never removed.
//!
//! A region is removed only when all of these hold:
//! - it belongs to this process's effective user (another user's file is never even mapped);
//! - it attaches read-only (a file that is not a readable region of this layout is never touched);
//! - its creator pid is recorded and dead (gone, or reused by a later process: the start time differs);
//! - no process recorded in a producer or consumer role of either ring is alive;
//! - no such role holder stamped a heartbeat within the grace period (pids are only comparable inside one
//!   pid namespace: a live worker seen from another namespace looks dead, but it heartbeats every 100 ms).
//!
//! A file whose creator never finished initialising it (ready word 0) is removed when the creator pid in
//! its header is dead and the file was not modified within the grace period. Each decision is made twice,
//! the second time right before the unlink, which also checks that the path still names the same file.

use crate::layout::MAGIC;
use crate::liveness::{now_unix_ms, pid_exists, Liveness, ProcessIdentity};
use crate::region::{RegionView, RingId};
use crate::AttachError;
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Default grace period: how recent a heartbeat (or, for an unfinished file, a change) keeps a region
/// whose pids look dead.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// What to do with one file, and why (one human sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its worker is dead: remove it.
    Remove(String),
    /// Keep it.
    Keep(String),
}

/// What happened to the doorbell socket `<stem>.sock` beside a removed (or, dry run, removable) region.
#[derive(Debug)]
pub enum SocketOutcome {
    /// Removed (dry run: would be removed).
    Removed(PathBuf),
    /// Something that is not a socket has that name: left alone.
    NotASocket(PathBuf),
    /// Removing it failed.
    Failed(PathBuf, io::Error),
}

/// One region file's outcome in a [`sweep`].
#[derive(Debug)]
pub struct Outcome {
    /// The region file.
    pub path: PathBuf,
    /// The final decision (made twice before an unlink).
    pub verdict: Verdict,
    /// The unlink failed (verdict `Remove`), or the file could not be opened to judge it (verdict `Keep`,
    /// `PermissionDenied`: another user's region). Either way the file is still there.
    pub error: Option<io::Error>,
    /// The doorbell socket beside a removed region, if there was anything of that name.
    pub socket: Option<SocketOutcome>,
}

impl Outcome {
    /// Whether the region file was removed (dry run: would be).
    pub fn removed(&self) -> bool {
        matches!(self.verdict, Verdict::Remove(_)) && self.error.is_none()
    }
}

/// The region files (`*.ring`) directly in `dir`, sorted by name.
///
/// # Errors
/// The `io::Error` of listing `dir`.
pub fn region_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ring"))
        .collect();
    files.sort();
    Ok(files)
}

/// Decides for every region file in `dir` and, unless `dry_run`, removes those of dead workers and their
/// doorbell sockets. Fails only when `dir` cannot be listed; per-file failures are in the outcomes.
///
/// ```
/// use tasker_ring::stale::{judge, sweep, Verdict, DEFAULT_GRACE};
/// # fn main() -> std::io::Result<()> {
/// # let nanos = std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos();
/// let dir = std::env::temp_dir().join(format!("tasker-ring-doc-stale-{}-{nanos}", std::process::id()));
/// std::fs::create_dir(&dir)?;
/// assert!(sweep(&dir, DEFAULT_GRACE, false)?.is_empty()); // no region files
///
/// // A file that is not a readable region is never removed.
/// let junk = dir.join("junk.ring");
/// std::fs::write(&junk, b"not a region")?;
/// assert!(matches!(judge(&junk, DEFAULT_GRACE), Verdict::Keep(_)));
/// let outcomes = sweep(&dir, DEFAULT_GRACE, false)?;
/// assert!(outcomes.len() == 1 && !outcomes[0].removed() && junk.exists());
///
/// std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// The `io::Error` of listing `dir` (not found, not a directory, permission denied).
pub fn sweep(dir: &Path, grace: Duration, dry_run: bool) -> io::Result<Vec<Outcome>> {
    let files = region_files(dir)?;
    Ok(files.into_iter().map(|path| sweep_one(path, grace, dry_run)).collect())
}

fn sweep_one(path: PathBuf, grace: Duration, dry_run: bool) -> Outcome {
    let identity = file_identity(&path);
    let (first, denied) = assess(&path, grace);
    if denied {
        return Outcome {
            path,
            verdict: first,
            error: Some(io::Error::from(io::ErrorKind::PermissionDenied)),
            socket: None,
        };
    }
    let verdict = match first {
        Verdict::Remove(_) if !dry_run => {
            // Decide again right before the unlink, on the same file: a worker may have been restarted
            // under this name, or taken a role, since the first look.
            let again = judge(&path, grace);
            if file_identity(&path) != identity {
                Verdict::Keep("the file was replaced while deciding; look again".to_string())
            } else {
                again
            }
        }
        v => v,
    };
    let mut outcome = Outcome {
        path,
        verdict,
        error: None,
        socket: None,
    };
    if !matches!(outcome.verdict, Verdict::Remove(_)) {
        return outcome;
    }
    if !dry_run {
        if let Err(e) = std::fs::remove_file(&outcome.path) {
            outcome.error = Some(e);
            return outcome;
        }
    }
    let sock = outcome.path.with_extension("sock");
    outcome.socket = match std::fs::symlink_metadata(&sock) {
        Err(_) => None,
        Ok(meta) if !meta.file_type().is_socket() => Some(SocketOutcome::NotASocket(sock)),
        Ok(_) if dry_run => Some(SocketOutcome::Removed(sock)),
        Ok(_) => match std::fs::remove_file(&sock) {
            Ok(()) => Some(SocketOutcome::Removed(sock)),
            Err(e) => Some(SocketOutcome::Failed(sock, e)),
        },
    };
    outcome
}

/// Device and inode of the file at `path` (not following links), if it can be read.
pub fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The verdict for one file (see the module's rules).
///
/// ```
/// use tasker_ring::stale::{judge, Verdict, DEFAULT_GRACE};
/// use tasker_ring::{region_path, Region, RegionConfig};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let nanos = std::time::UNIX_EPOCH.elapsed()?.as_nanos();
/// # let name = format!("tasker-ring-doc-judge-{}-{nanos}", std::process::id());
/// let path = region_path(&std::env::temp_dir(), &name)?;
/// let small = RegionConfig {
///     events_capacity: 4096,
///     completions_capacity: 4096,
///     max_frame_size: 1024,
///     ..RegionConfig::default()
/// };
/// let region = Region::create(&path, &small)?;
/// match judge(&path, DEFAULT_GRACE) {
///     Verdict::Keep(why) => assert!(why.ends_with("alive"), "{why}"), // its creator: this process
///     Verdict::Remove(why) => panic!("a live region judged stale: {why}"),
/// }
/// region.unlink()?;
/// # Ok(()) }
/// ```
pub fn judge(path: &Path, grace: Duration) -> Verdict {
    assess(path, grace).0
}

/// The verdict, and whether it is a Keep only because this user may not open the file (another user's
/// region: it may well be dead, but only its owner can tell and remove it).
///
/// Another user's file is never mapped ([`RegionView::attach_owned`]): its owner controls its bytes and its
/// size, so it could make this process read hostile offsets or die of SIGBUS mid-sweep. Only its owner
/// judges it.
fn assess(path: &Path, grace: Duration) -> (Verdict, bool) {
    let another_users = |what: &str| {
        let owner = std::fs::symlink_metadata(path).map_or_else(
            |_| String::new(),
            |m| format!(" (owner uid {}, mode {:04o})", m.uid(), m.mode() & 0o7777),
        );
        let why = format!("{what}{owner}: another user's file; only its owner can judge and remove it");
        (Verdict::Keep(why), true)
    };
    match RegionView::attach_owned(path) {
        Ok(view) => (judge_region(&view, grace), false),
        Err(AttachError::NotReady) => (judge_unfinished(path, grace), false),
        Err(AttachError::PermissionDenied(_)) => another_users("permission denied"),
        Err(AttachError::WrongOwner { .. }) => another_users("not mapped"),
        Err(e) => (
            Verdict::Keep(format!(
                "{} (only readable regions with a dead creator are removed)",
                without_path(&e.to_string(), path)
            )),
            false,
        ),
    }
}

/// An error message without the `<path>: ` prefix some variants carry (the caller names the file).
fn without_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// `pid P (start S) alive`, `... dead: no such process`, `... dead: the pid now belongs to a later process`.
pub fn creator_text(creator: ProcessIdentity) -> String {
    let liveness = creator.liveness();
    describe_creator(creator, liveness, liveness == Liveness::Dead && pid_exists(creator.pid))
}

/// [`creator_text`] from a liveness already found (`pid_reused`: dead, but the pid exists again).
///
/// ```
/// use tasker_ring::liveness::{Liveness, ProcessIdentity};
/// use tasker_ring::stale::describe_creator;
///
/// let creator = ProcessIdentity { pid: 4242, start_time: 77 };
/// let text = describe_creator(creator, Liveness::Dead, true);
/// assert_eq!(text, "pid 4242 (start 77) dead: the pid now belongs to a later process");
/// ```
pub fn describe_creator(creator: ProcessIdentity, liveness: Liveness, pid_reused: bool) -> String {
    let ProcessIdentity { pid, start_time } = creator;
    match liveness {
        Liveness::Absent => "none recorded (pid 0)".to_string(),
        Liveness::Alive => format!("pid {pid} (start {start_time}) alive"),
        Liveness::Dead if pid_reused => {
            format!("pid {pid} (start {start_time}) dead: the pid now belongs to a later process")
        }
        Liveness::Dead => format!("pid {pid} (start {start_time}) dead: no such process"),
    }
}

fn judge_region(view: &RegionView, grace: Duration) -> Verdict {
    let header = &view.layout().header;
    let creator = ProcessIdentity {
        pid: header.creator_pid,
        start_time: header.creator_start_time,
    };
    match creator.liveness() {
        Liveness::Alive => return Verdict::Keep(format!("creator {}", creator_text(creator))),
        Liveness::Absent => return Verdict::Keep("no creator pid recorded, so its liveness is unknown".into()),
        Liveness::Dead => {}
    }
    let creator = creator_text(creator);
    let now_ms = now_unix_ms();
    let mut youngest_heartbeat: Option<u64> = None;
    for id in RingId::ALL {
        let snapshot = view.snapshot(id);
        for (role, peer) in [("producer", snapshot.producer), ("consumer", snapshot.consumer)] {
            let holder = ProcessIdentity {
                pid: peer.pid,
                start_time: peer.start_time,
            };
            if holder.liveness() == Liveness::Alive {
                return Verdict::Keep(format!(
                    "creator {creator}, but the {} {role}, pid {}, is alive",
                    id.name(),
                    peer.pid
                ));
            }
            if peer.pid != 0 && peer.heartbeat_unix_ms != 0 {
                let age = now_ms.saturating_sub(peer.heartbeat_unix_ms);
                youngest_heartbeat = Some(youngest_heartbeat.map_or(age, |y| y.min(age)));
            }
        }
    }
    match youngest_heartbeat {
        Some(age) if u128::from(age) < grace.as_millis() => Verdict::Keep(format!(
            "creator {creator}; no role holder is alive, but one stamped a heartbeat {} ago, within the \
             {} ms grace (a worker in another pid namespace looks dead from here); look again later",
            human_age_ms(Some(age)),
            grace.as_millis()
        )),
        Some(age) => Verdict::Remove(format!(
            "creator {creator}; no role holder is alive; last heartbeat {} ago",
            human_age_ms(Some(age))
        )),
        None => Verdict::Remove(format!("creator {creator}; no role holder is alive or recorded")),
    }
}

/// A file whose ready word is 0: its header is not guaranteed, but a creator writes its pid with the
/// magic, and the file starts zero-filled, so a non-zero pid next to the magic is the creator's.
fn judge_unfinished(path: &Path, grace: Duration) -> Verdict {
    let Some((pid, start_time, modified)) = raw_creator(path) else {
        return Verdict::Keep("not ready, and its header cannot be read".to_string());
    };
    let creator = ProcessIdentity { pid, start_time };
    match creator.liveness() {
        Liveness::Alive => Verdict::Keep(format!(
            "not ready: its creator, pid {pid}, is alive and may still be initialising it"
        )),
        Liveness::Absent => Verdict::Keep("not ready, and no creator pid recorded".to_string()),
        Liveness::Dead => {
            let age = modified.and_then(|m| SystemTime::now().duration_since(m).ok());
            match age {
                Some(age) if age >= grace => Verdict::Remove(format!(
                    "never finished initialising (ready word 0) and its creator, pid {pid}, is dead"
                )),
                _ => Verdict::Keep(format!(
                    "not ready and its creator, pid {pid}, looks dead, but the file changed within the {} ms \
                     grace; look again later",
                    grace.as_millis()
                )),
            }
        }
    }
}

/// Creator pid, start time and modification time of a file that carries the region magic.
fn raw_creator(path: &Path) -> Option<(u32, u64, Option<SystemTime>)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut header = [0u8; 128];
    file.read_exact_at(&mut header, 0).ok()?;
    if header[..8] != MAGIC {
        return None;
    }
    let pid = u32::from_le_bytes(header[56..60].try_into().ok()?);
    let start_time = u64::from_le_bytes(header[64..72].try_into().ok()?);
    Some((pid, start_time, meta.modified().ok()))
}

/// An age for people: `-`, `250 ms`, `3.2 s`, `4 min`, `2 h`.
///
/// ```
/// use tasker_ring::stale::human_age_ms;
///
/// assert_eq!(human_age_ms(None), "-");
/// assert_eq!(human_age_ms(Some(3_200)), "3.2 s");
/// assert_eq!(human_age_ms(Some(2 * 3_600_000 + 1)), "2 h");
/// ```
pub fn human_age_ms(age: Option<u64>) -> String {
    match age {
        None => "-".to_string(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) if ms < 3_600_000 => format!("{} min", ms / 60_000),
        Some(ms) => format!("{} h", ms / 3_600_000),
    }
}
