//! The read-only inspector: subcommands that attach to live regions with a `PROT_READ` mapping
//! (`RegionView`), never write a byte of them, never move a position and never take a role or a lock a
//! worker needs. Shared here: the typed error with its distinct exit code, opening a region, finding the
//! regions of a directory, and small formatting helpers.

pub mod clean;
pub mod dump;
pub mod list;
pub mod stat;
pub mod tail;
pub mod watch;

use std::fmt;
use std::path::{Path, PathBuf};
use tasker_ring::{AttachError, RegionView};

/// Why an inspector command failed. Each variant has its own exit code (documented in the README and
/// in `tasker-ring --help`), so scripts can tell a missing region from a corrupt one.
#[derive(Debug)]
pub enum InspectError {
    /// The region could not be attached (not found, not a region, wrong version, truncated, ...).
    Attach(AttachError),
    /// A command-line value is unusable (beyond what clap checks).
    Usage(String),
    /// Any other I/O failure (reading a directory, writing to stdout, removing a file).
    Io(String),
    /// A ring holds a record that fails the reader's checks (`dump` reports it and goes on where it can;
    /// this is the exit status when it had to stop).
    CorruptFrames(String),
}

impl InspectError {
    /// The process exit code: 0 success, 1 other I/O, 2 usage (clap's too), 3 no such region,
    /// 4 permission denied, 5 not a region file (not regular, symlink, bad magic), 6 unsupported layout
    /// version or features, 7 truncated or corrupt region, 8 region not ready yet, 9 corrupt frames.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Io(_) => 1,
            Self::Usage(_) => 2,
            Self::Attach(e) => match e {
                AttachError::NotFound(_) => 3,
                AttachError::PermissionDenied(_)
                | AttachError::WrongOwner { .. }
                | AttachError::InsecureMode { .. } => 4,
                AttachError::Symlink(_) | AttachError::NotARegularFile { .. } | AttachError::BadMagic(_) => 5,
                AttachError::UnsupportedMajor { .. } | AttachError::UnknownFeatures(_) => 6,
                AttachError::Truncated { .. } | AttachError::SizeMismatch { .. } | AttachError::BadHeader(_) => 7,
                AttachError::NotReady => 8,
                AttachError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => 4,
                AttachError::Io { .. } => 1,
            },
            Self::CorruptFrames(_) => 9,
        }
    }
}

impl InspectError {
    /// An attach error whose message does not name the file (bad magic, truncated, versions...): the
    /// caller prefixes the region's path so the one-line error says which file it was.
    pub fn needs_path(&self) -> bool {
        matches!(
            self,
            Self::Attach(
                AttachError::Truncated { .. }
                    | AttachError::BadMagic(_)
                    | AttachError::NotReady
                    | AttachError::UnsupportedMajor { .. }
                    | AttachError::UnknownFeatures(_)
                    | AttachError::SizeMismatch { .. }
                    | AttachError::BadHeader(_)
            )
        )
    }
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attach(e) => write!(f, "{e}"),
            Self::Usage(why) => write!(f, "{why}"),
            Self::Io(why) => write!(f, "{why}"),
            Self::CorruptFrames(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for InspectError {}

impl From<AttachError> for InspectError {
    fn from(e: AttachError) -> Self {
        Self::Attach(e)
    }
}

/// Attaches read-only (layout-spec.md section 11.2, with a `PROT_READ` mapping): the only way the
/// inspector opens a region.
pub fn open(path: &Path) -> Result<RegionView, InspectError> {
    RegionView::attach(path).map_err(InspectError::from)
}

/// Region files of a directory (`*.ring`, sorted by name). Never follows symlinks.
pub fn region_files(dir: &Path) -> Result<Vec<PathBuf>, InspectError> {
    tasker_ring::stale::region_files(dir).map_err(|e| InspectError::Io(format!("{}: {e}", dir.display())))
}

/// Bytes for people: `512 B`, `4.0 KiB`, `12.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub use tasker_ring::stale::human_age_ms;
