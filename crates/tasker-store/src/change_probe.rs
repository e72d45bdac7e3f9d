//! Whether an SQLite store changed, without a database call: a look at the WAL-index header.
//!
//! In WAL mode every connection to a database file, in any process, shares the `-shm` file (the WAL
//! index, <https://www.sqlite.org/walformat.html>, "The WAL-Index Header"), and every commit rewrites the
//! header at its start: `iChange` counts transactions, `mxFrame` is the last committed frame, the salts
//! change when the WAL restarts. So 48 bytes read with one `pread` tell whether anything committed since
//! the last look, where an empty claim costs two thread hand-offs, four file locks and a transaction. The
//! worker core's idle claim polls this instead of the store (issue 21: an idle worker's CPU).
//!
//! Invariants: a look never misses a commit. The header is read with no lock, so a look during a commit may
//! see a torn copy; torn bytes differ from the last look's (reported as a change, a claim for nothing) or
//! equal it only before the commit's write lands, and then the next look sees the commit. A header that
//! cannot be read (no `-shm` file: not WAL, or an in-memory database) reports a change on every look,
//! which is the plain poll.
//! What a commit never signals, a retry whose backoff ended or an expired claim, the caller covers with a
//! slow poll (as PostgreSQL's LISTEN does).

use std::fs::File;
use std::path::{Path, PathBuf};

/// Bytes of the first copy of the WAL-index header (`WalIndexHdr`).
const HEADER_LEN: usize = 48;

/// A look at an SQLite store's WAL-index header; see the module docs.
#[derive(Debug)]
pub struct ChangeProbe {
    path: PathBuf,
    /// The WAL file beside the index (`<db>-wal`).
    wal: PathBuf,
    file: Option<File>,
    /// The header at the last look; `None` before the first or after a failed read.
    last: Option<[u8; HEADER_LEN]>,
}

impl ChangeProbe {
    /// A probe of the database file `db` (its WAL index is `db` + `-shm`).
    pub(crate) fn for_database(db: &Path) -> Self {
        let beside = |suffix: &str| {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            PathBuf::from(path)
        };
        Self::new(beside("-shm"), beside("-wal"))
    }

    /// A probe of the WAL-index file `shm` (for tests: any file stands in for one; its WAL file is `shm`
    /// with `-shm` replaced by `-wal`).
    pub fn for_wal_index(shm: PathBuf) -> Self {
        let text = shm.as_os_str().to_string_lossy();
        let wal = PathBuf::from(format!("{}-wal", text.strip_suffix("-shm").unwrap_or(&text)));
        Self::new(shm, wal)
    }

    fn new(shm: PathBuf, wal: PathBuf) -> Self {
        Self {
            file: File::open(&shm).ok(),
            path: shm,
            wal,
            last: None,
        }
    }

    /// The WAL-index file looked at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's WAL file (`<db>-wal` beside the index `<db>-shm`), which every commit writes.
    pub fn wal_path(&self) -> &Path {
        &self.wal
    }

    /// Whether a transaction may have committed since the previous look: true at the first look, when the
    /// header changed, and when it cannot be read (then the file is opened again at the next look).
    pub fn changed(&mut self) -> bool {
        let mut header = [0u8; HEADER_LEN];
        if !self.read(&mut header) {
            self.file = File::open(&self.path).ok();
            self.last = None;
            return true;
        }
        // SQLite removes the index only when its last connection closes; the caller's store keeps its own
        // open, so the file read here is the one every connection maps.
        let changed = self.last != Some(header);
        self.last = Some(header);
        changed
    }

    #[cfg(unix)]
    fn read(&self, header: &mut [u8; HEADER_LEN]) -> bool {
        use std::os::unix::fs::FileExt;
        self.file.as_ref().is_some_and(|f| f.read_exact_at(header, 0).is_ok())
    }

    #[cfg(not(unix))]
    fn read(&self, _header: &mut [u8; HEADER_LEN]) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_reports_a_change_of_the_header_once_and_an_unreadable_one_always() {
        let dir = tempfile::tempdir().unwrap();
        let shm = dir.path().join("db-shm");
        std::fs::write(&shm, [1u8; 64]).unwrap();
        let mut probe = ChangeProbe::for_wal_index(shm.clone());
        assert!(probe.changed(), "the first look has nothing to compare with");
        assert!(!probe.changed());
        let mut bytes = [1u8; 64];
        bytes[8] = 2; // iChange
        std::fs::write(&shm, bytes).unwrap();
        assert!(probe.changed());
        assert!(!probe.changed());
        bytes[50] = 9; // past the first copy of the header: not looked at
        std::fs::write(&shm, bytes).unwrap();
        assert!(!probe.changed());
        std::fs::write(&shm, [3u8; 10]).unwrap();
        assert!(
            probe.changed() && probe.changed(),
            "an unreadable header is a change at every look"
        );
        std::fs::write(&shm, [3u8; 64]).unwrap();
        assert!(probe.changed(), "the first readable look after a failure");
        assert!(!probe.changed());
    }

    #[test]
    fn a_short_file_reads_as_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let shm = dir.path().join("db-shm");
        std::fs::write(&shm, [0u8; 10]).unwrap();
        let mut probe = ChangeProbe::for_database(&dir.path().join("db"));
        assert_eq!(probe.path(), shm);
        assert_eq!(probe.wal_path(), dir.path().join("db-wal"));
        assert!(probe.changed() && probe.changed());
    }
}
