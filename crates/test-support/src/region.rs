//! Region-level helpers shared by the ring library's tests and the CLI's: temp dirs, a small region
//! configuration, patching bytes of a file, and dropping to `nobody` for the permission cases.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use tasker_ring::RegionConfig;

/// A fresh directory under the temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory named after `tag`, this process and a counter.
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tasker-ring-test-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A small region: 4 KiB events ring, 1 KiB completions ring, 256-byte frames.
pub fn small_config(initial_position: u32) -> RegionConfig {
    RegionConfig {
        events_capacity: 4096,
        completions_capacity: 1024,
        max_frame_size: 256,
        max_message_size: 1 << 16,
        initial_position,
    }
}

/// Bytes a single-frame record of `payload` bytes occupies in a ring.
pub fn footprint(payload: usize) -> u32 {
    ((16 + payload + 7) & !7) as u32
}

/// Overwrites bytes of a file.
pub fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// Whether this process runs as root (the permission tests then drop to `nobody`): a file it creates
/// is owned by its effective uid.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("uid");
    let probe = dir.path("probe");
    fs::write(&probe, b"").unwrap();
    fs::metadata(&probe).unwrap().uid() == 0
}

/// `setpriv` arguments that run a command as `nobody:nogroup` with no supplementary groups, or why that
/// is not possible here.
pub fn as_nobody() -> Result<Vec<String>, String> {
    if !is_root() {
        return Err("not running as root, so cannot drop to nobody".into());
    }
    let found = Command::new("setpriv").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        return Err("setpriv (util-linux) is not installed".into());
    }
    Ok(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        .map(String::from)
        .to_vec())
}
