//! `tasker-ring list [--dir D] [--json]`: every region file (`*.ring`) of a directory, each attached
//! read-only: creator pid, alive or dead (pid plus start time), the youngest role heartbeat, layout
//! version, size and the fill of each ring. A file that fails to attach is listed with its error (and the
//! exit code `stat` would give it); the listing goes on. `--json` prints [`ListJson`].

use super::stat::{region_stat, RegionStat};
use super::{human_age_ms, human_bytes, open, region_files, InspectError};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use tasker_ring::liveness::now_unix_ms;
use tasker_ring::AttachError;

/// Arguments of `tasker-ring list`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to list (default: the worker's default, /dev/shm on Linux).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON object (the `tasker-ring/list/1` shape) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Schema tag of `tasker-ring list --json`; bumped only on an incompatible change of the shape.
pub const LIST_SCHEMA: &str = "tasker-ring/list/1";

/// Output of `tasker-ring list --json`.
#[derive(Serialize, Debug)]
pub struct ListJson {
    /// Always `"tasker-ring/list/1"` for this shape. New fields may be added; none is removed or changes
    /// meaning without a new tag.
    pub schema: &'static str,
    /// The directory listed.
    pub dir: String,
    /// When the listing was taken, Unix-epoch milliseconds.
    pub sampled_at_unix_ms: u64,
    /// One entry per `*.ring` file, sorted by file name.
    pub regions: Vec<ListEntry>,
}

/// One `*.ring` file: exactly one of `region` and `error` is non-null.
#[derive(Serialize, Debug)]
pub struct ListEntry {
    /// The file's path.
    pub path: String,
    /// The file name without `.ring` (the worker id).
    pub name: String,
    /// The region, as `tasker-ring stat --json` shows it (without the schema tag); null if it failed to
    /// attach.
    pub region: Option<RegionStat>,
    /// Why it failed to attach; null if it attached.
    pub error: Option<ErrorJson>,
}

/// An inspector error in JSON.
#[derive(Serialize, Debug, Clone)]
pub struct ErrorJson {
    /// A stable name: `not_found`, `permission_denied`, `symlink`, `not_a_regular_file`, `bad_magic`,
    /// `unsupported_major`, `unknown_features`, `truncated`, `size_mismatch`, `bad_header`, `not_ready`,
    /// `io`, `usage`, `corrupt_frames`.
    pub kind: &'static str,
    /// The exit code `tasker-ring stat` gives for this file.
    pub exit_code: u8,
    /// The one-line message `tasker-ring stat` prints (without the `tasker-ring: ` prefix).
    pub message: String,
}

impl ErrorJson {
    /// The JSON form of an error.
    pub fn new(e: &InspectError) -> Self {
        Self {
            kind: error_kind(e),
            exit_code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// A stable name for each kind of inspector error (the `kind` of [`ErrorJson`]).
pub fn error_kind(e: &InspectError) -> &'static str {
    match e {
        InspectError::Io(_) => "io",
        InspectError::Usage(_) => "usage",
        InspectError::CorruptFrames(_) => "corrupt_frames",
        InspectError::Attach(a) => match a {
            AttachError::NotFound(_) => "not_found",
            AttachError::PermissionDenied(_) => "permission_denied",
            AttachError::Symlink(_) => "symlink",
            AttachError::NotARegularFile { .. } => "not_a_regular_file",
            AttachError::WrongOwner { .. } => "wrong_owner",
            AttachError::InsecureMode { .. } => "insecure_mode",
            AttachError::Truncated { .. } => "truncated",
            AttachError::BadMagic(_) => "bad_magic",
            AttachError::NotReady => "not_ready",
            AttachError::UnsupportedMajor { .. } => "unsupported_major",
            AttachError::UnknownFeatures(_) => "unknown_features",
            AttachError::SizeMismatch { .. } => "size_mismatch",
            AttachError::BadHeader(_) => "bad_header",
            AttachError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                "permission_denied"
            }
            AttachError::Io { .. } => "io",
        },
    }
}

/// The `*.ring` files of `dir`, with a refused directory reported as a permission problem (exit 4)
/// rather than a generic I/O error.
pub fn regions_in(dir: &Path) -> Result<Vec<PathBuf>, InspectError> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(AttachError::PermissionDenied(dir.to_path_buf()).into())
        }
        Err(e) => Err(InspectError::Io(format!("{}: {e}", dir.display()))),
        Ok(_) => region_files(dir),
    }
}

/// Writes to stdout; a closed pipe (`tasker-ring list | head -1`) ends the output quietly.
pub fn write_stdout(s: &str) -> Result<(), InspectError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(InspectError::Io(format!("stdout: {e}"))),
        _ => Ok(()),
    }
}

/// Runs the command.
pub fn run(args: &Args) -> Result<(), InspectError> {
    let dir = args.dir.clone().unwrap_or_else(tasker_ring::default_dir);
    let files = regions_in(&dir)?;
    let sampled_at = now_unix_ms();
    let entries: Vec<ListEntry> = files
        .iter()
        .map(|path| {
            let (region, error) = match open(path) {
                Ok(view) => (Some(region_stat(&view, None)), None),
                Err(e) => (None, Some(ErrorJson::new(&e))),
            };
            ListEntry {
                path: path.display().to_string(),
                name: super::stat::region_name(path),
                region,
                error,
            }
        })
        .collect();
    let out = if args.json {
        let mut s = serde_json::to_string_pretty(&ListJson {
            schema: LIST_SCHEMA,
            dir: dir.display().to_string(),
            sampled_at_unix_ms: sampled_at,
            regions: entries,
        })
        .map_err(|e| InspectError::Io(format!("encoding JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        render(&dir, &entries)
    };
    write_stdout(&out)
}

/// An error message without a leading `<path>: ` (some attach errors name the path, some do not; a
/// listing line names it already).
pub fn without_path<'a>(message: &'a str, path: &Path) -> &'a str {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(prefix.as_str()).unwrap_or(message)
}

/// The youngest heartbeat among the role holders recorded in the region (any ring, either role).
pub fn youngest_heartbeat_ms(r: &RegionStat) -> Option<u64> {
    r.rings
        .iter()
        .flat_map(|ring| [&ring.producer, &ring.consumer])
        .filter(|p| p.pid != 0)
        .filter_map(|p| p.heartbeat_age_ms)
        .min()
}

/// The table form of `list`.
fn render(dir: &Path, entries: &[ListEntry]) -> String {
    if entries.is_empty() {
        return format!("no regions (*.ring) in {}\n", dir.display());
    }
    const HEAD: [&str; 9] = [
        "NAME",
        "PID",
        "START",
        "STATE",
        "HEARTBEAT",
        "LAYOUT",
        "SIZE",
        "EVENTS",
        "COMPLETIONS",
    ];
    let mut rows: Vec<Vec<String>> = vec![HEAD.iter().map(|h| h.to_string()).collect()];
    let mut errors: Vec<(usize, String)> = Vec::new();
    for e in entries {
        match (&e.region, &e.error) {
            (Some(r), _) => {
                let state = if r.creator.pid_reused {
                    "dead (pid reused)".to_string()
                } else {
                    r.creator.state.as_str().to_string()
                };
                let fill = |ring: &super::stat::RingStat| {
                    let mut s = format!("{:.1}%", ring.fill_percent);
                    if !ring.positions_valid {
                        s.push_str(" CORRUPT");
                    }
                    s
                };
                rows.push(vec![
                    e.name.clone(),
                    r.creator.pid.to_string(),
                    r.creator.start_time.to_string(),
                    state,
                    human_age_ms(youngest_heartbeat_ms(r)),
                    format!("{}.{}", r.layout_major, r.layout_minor),
                    human_bytes(r.region_size),
                    fill(&r.rings.events),
                    fill(&r.rings.completions),
                ]);
            }
            (None, Some(err)) => {
                let message = without_path(&err.message, Path::new(&e.path));
                errors.push((rows.len(), format!("error (exit {}): {message}", err.exit_code)));
                rows.push(vec![e.name.clone()]);
            }
            (None, None) => rows.push(vec![e.name.clone()]),
        }
    }
    let mut widths = [0usize; 9];
    for row in rows.iter().filter(|r| r.len() == HEAD.len()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        if let Some((_, msg)) = errors.iter().find(|(at, _)| *at == i) {
            line.push_str(&format!("{:<w$}  {msg}", row[0], w = widths[0]));
        } else {
            for (j, cell) in row.iter().enumerate() {
                if j + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[j]));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
