//! `tasker-ring clean [--dir D] [--dry-run] [--grace-ms MS]`: removes the regions (`*.ring`) whose creator
//! is dead, and the dead worker's doorbell socket `<stem>.sock` beside each; never a live one. Every file
//! gets one line saying what was done and why. The rules are `tasker_ring::stale`'s (layout-spec.md
//! section 13), the same a worker applies to its directory before it creates its region.

use super::list::{regions_in, write_stdout};
use super::InspectError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tasker_ring::stale::{sweep, SocketOutcome, Verdict};
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

/// Runs the command.
pub fn run(args: &Args) -> Result<(), InspectError> {
    let dir = args.dir.clone().unwrap_or_else(tasker_ring::default_dir);
    // Listed first for the directory's own errors (missing, permission) with their exit codes.
    regions_in(&dir)?;
    let outcomes = sweep(&dir, Duration::from_millis(args.grace_ms), args.dry_run)
        .map_err(|e| InspectError::Io(format!("{}: {e}", dir.display())))?;
    let mut out = String::new();
    let (mut removed, mut kept) = (0usize, 0usize);
    let mut failure: Option<InspectError> = None;
    for o in &outcomes {
        let path = o.path.display();
        match (&o.verdict, &o.error) {
            (Verdict::Keep(why), None) => {
                kept += 1;
                let _ = writeln!(out, "kept          {path}: {why}");
            }
            (Verdict::Keep(why), Some(e)) => {
                kept += 1;
                let _ = writeln!(out, "error         {path}: {why}");
                failure.get_or_insert(removal_error(&o.path, e));
            }
            (Verdict::Remove(why), Some(e)) => {
                kept += 1;
                let _ = writeln!(out, "error         {path}: {e} (it would have been removed: {why})");
                failure.get_or_insert(removal_error(&o.path, e));
            }
            (Verdict::Remove(why), None) => {
                removed += 1;
                let done = if args.dry_run { "would remove " } else { "removed      " };
                let _ = writeln!(out, "{done} {path}: {why}");
                match &o.socket {
                    None => {}
                    Some(SocketOutcome::Removed(sock)) => {
                        let _ = writeln!(out, "{done} {}: the dead worker's doorbell socket", sock.display());
                    }
                    Some(SocketOutcome::NotASocket(sock)) => {
                        let _ = writeln!(out, "kept          {}: not a socket, so not a doorbell", sock.display());
                    }
                    Some(SocketOutcome::Failed(sock, e)) => {
                        let _ = writeln!(out, "error         {}: {e}", sock.display());
                        failure.get_or_insert(removal_error(sock, e));
                    }
                }
            }
        }
    }
    let _ = if outcomes.is_empty() {
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

fn removal_error(path: &Path, e: &std::io::Error) -> InspectError {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        AttachError::PermissionDenied(path.to_path_buf()).into()
    } else {
        InspectError::Io(format!("{}: {e}", path.display()))
    }
}
