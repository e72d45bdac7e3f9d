//! `tasker-ring clean [--dir D] [--dry-run] [--grace-ms MS]`: removes the regions (`*.ring`) whose creator
//! is dead, and the dead worker's doorbell socket `<stem>.sock` beside each; never a live one. Every file
//! gets one line saying what was done and why.
//!
//! A region is removed only when all of these hold (layout-spec.md section 13):
//! - it attaches read-only (a file that is not a readable region of this layout is never touched);
//! - its creator pid is recorded and dead (gone, or reused by a later process: the start time differs);
//! - no process recorded in a producer or consumer role of either ring is alive;
//! - no such role holder stamped a heartbeat within `--grace-ms` (pids are only comparable inside one pid
//!   namespace: a live worker seen from another namespace looks dead, but it heartbeats every 100 ms).
//!
//! A file whose creator never finished initialising it (ready word 0) is removed when the creator pid in
//! its header is dead and the file was not modified within the grace period. Each decision is made twice,
//! the second time right before the unlink, which also checks that the path still names the same file.

use super::list::{regions_in, without_path, write_stdout, youngest_heartbeat_ms};
use super::stat::{creator_text, file_identity, region_stat, ProcessState, RegionStat};
use super::{human_age_ms, open, InspectError};
use std::fmt::Write as _;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tasker_ring::layout::MAGIC;
use tasker_ring::liveness::{Liveness, ProcessIdentity};
use tasker_ring::AttachError;

/// Arguments of `tasker-ring clean`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to clean (default: the worker's default, /dev/shm on Linux).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Say what would be removed, and why, without removing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep a region whose pids look dead if one of its role holders stamped a heartbeat (or, for an
    /// unfinished file, the file changed) less than this many milliseconds ago.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub grace_ms: u64,
}

/// What to do with one file, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Remove(String),
    Keep(String),
}

/// Runs the command.
pub fn run(args: &Args) -> Result<(), InspectError> {
    let dir = args.dir.clone().unwrap_or_else(tasker_ring::default_dir);
    let files = regions_in(&dir)?;
    let grace = Duration::from_millis(args.grace_ms);
    let mut out = String::new();
    let (mut removed, mut kept) = (0usize, 0usize);
    let mut failure: Option<InspectError> = None;
    for path in &files {
        let identity = file_identity(path);
        let decision = match decide(path, grace) {
            Decision::Remove(_) if !args.dry_run => {
                // Decide again right before the unlink, on the same file: a worker may have been
                // restarted under this name, or taken a role, since the first look.
                let again = decide(path, grace);
                if file_identity(path) != identity {
                    Decision::Keep("the file was replaced while deciding; look again".to_string())
                } else {
                    again
                }
            }
            d => d,
        };
        match decision {
            Decision::Keep(why) => {
                kept += 1;
                let _ = writeln!(out, "kept          {}: {why}", path.display());
            }
            Decision::Remove(why) if args.dry_run => {
                removed += 1;
                let _ = writeln!(out, "would remove  {}: {why}", path.display());
                if let Some(sock) = socket_beside(path, &mut out) {
                    let _ = writeln!(
                        out,
                        "would remove  {}: the dead worker's doorbell socket",
                        sock.display()
                    );
                }
            }
            Decision::Remove(why) => match std::fs::remove_file(path) {
                Ok(()) => {
                    removed += 1;
                    let _ = writeln!(out, "removed       {}: {why}", path.display());
                    if let Some(sock) = socket_beside(path, &mut out) {
                        match std::fs::remove_file(&sock) {
                            Ok(()) => {
                                let _ = writeln!(
                                    out,
                                    "removed       {}: the dead worker's doorbell socket",
                                    sock.display()
                                );
                            }
                            Err(e) => {
                                let _ = writeln!(out, "error         {}: {e}", sock.display());
                                failure.get_or_insert(removal_error(&sock, e));
                            }
                        }
                    }
                }
                Err(e) => {
                    kept += 1;
                    let _ = writeln!(
                        out,
                        "error         {}: {e} (it would have been removed: {why})",
                        path.display()
                    );
                    failure.get_or_insert(removal_error(path, e));
                }
            },
        }
    }
    let _ = if files.is_empty() {
        writeln!(out, "no regions (*.ring) in {}", dir.display())
    } else if args.dry_run {
        writeln!(out, "dry run: {removed} would be removed, {kept} kept")
    } else {
        writeln!(out, "{removed} removed, {kept} kept")
    };
    write_stdout(&out)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn removal_error(path: &Path, e: std::io::Error) -> InspectError {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        AttachError::PermissionDenied(path.to_path_buf()).into()
    } else {
        InspectError::Io(format!("{}: {e}", path.display()))
    }
}

/// `<stem>.sock` beside a region, when it is a socket; anything else of that name is reported and left.
fn socket_beside(region: &Path, out: &mut String) -> Option<PathBuf> {
    let sock = region.with_extension("sock");
    let meta = std::fs::symlink_metadata(&sock).ok()?;
    if meta.file_type().is_socket() {
        Some(sock)
    } else {
        let _ = writeln!(out, "kept          {}: not a socket, so not a doorbell", sock.display());
        None
    }
}

fn decide(path: &Path, grace: Duration) -> Decision {
    match open(path) {
        Ok(view) => decide_region(&region_stat(&view, None), grace),
        Err(InspectError::Attach(AttachError::NotReady)) => decide_unfinished(path, grace),
        Err(e) => Decision::Keep(format!(
            "{} (only readable regions with a dead creator are removed)",
            without_path(&e.to_string(), path)
        )),
    }
}

fn decide_region(r: &RegionStat, grace: Duration) -> Decision {
    match r.creator.state {
        ProcessState::Alive => return Decision::Keep(format!("creator {}", creator_text(&r.creator))),
        ProcessState::Absent => {
            return Decision::Keep("no creator pid recorded, so its liveness is unknown".to_string())
        }
        ProcessState::Dead => {}
    }
    let creator = creator_text(&r.creator);
    for ring in r.rings.iter() {
        for (role, peer) in [("producer", &ring.producer), ("consumer", &ring.consumer)] {
            if peer.state == ProcessState::Alive {
                return Decision::Keep(format!(
                    "creator {creator}, but the {} {role}, pid {}, is alive",
                    ring.name, peer.pid
                ));
            }
        }
    }
    let heartbeat = youngest_heartbeat_ms(r);
    match heartbeat {
        Some(age) if (age as u128) < grace.as_millis() => Decision::Keep(format!(
            "creator {creator}; no role holder is alive, but one stamped a heartbeat {} ago, within the \
             {} ms grace (a worker in another pid namespace looks dead from here); look again later",
            human_age_ms(Some(age)),
            grace.as_millis()
        )),
        Some(age) => Decision::Remove(format!(
            "creator {creator}; no role holder is alive; last heartbeat {} ago",
            human_age_ms(Some(age))
        )),
        None => Decision::Remove(format!("creator {creator}; no role holder is alive or recorded")),
    }
}

/// A file whose ready word is 0: its header is not guaranteed, but a creator writes its pid with the
/// magic, and the file starts zero-filled, so a non-zero pid next to the magic is the creator's.
fn decide_unfinished(path: &Path, grace: Duration) -> Decision {
    let Some((pid, start_time, modified)) = raw_creator(path) else {
        return Decision::Keep("not ready, and its header cannot be read".to_string());
    };
    let creator = ProcessIdentity { pid, start_time };
    match creator.liveness() {
        Liveness::Alive => Decision::Keep(format!(
            "not ready: its creator, pid {pid}, is alive and may still be initialising it"
        )),
        Liveness::Absent => Decision::Keep("not ready, and no creator pid recorded".to_string()),
        Liveness::Dead => {
            let age = modified.and_then(|m| SystemTime::now().duration_since(m).ok());
            match age {
                Some(age) if age >= grace => Decision::Remove(format!(
                    "never finished initialising (ready word 0) and its creator, pid {pid}, is dead"
                )),
                _ => Decision::Keep(format!(
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
