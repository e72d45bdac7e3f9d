//! The doorbell: a Unix socket owned by the Rust side. A sleeping TS consumer connects with `node:net`
//! and waits for a byte; the producer writes one to every connection when the consumer has published
//! "sleeping" (layout-spec.md, "Sleep and doorbell"). Writes never block: a full socket buffer already
//! holds an unread wake-up, so rings coalesce.

use std::fs::FileType;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The listening socket and its connected peers.
pub struct Doorbell {
    path: PathBuf,
    listener: UnixListener,
    peers: Mutex<Vec<UnixStream>>,
}

impl Doorbell {
    /// Binds a non-blocking listener at `path`, mode 0600. A stale socket there (a dead worker's) is
    /// replaced; anything else (a regular file, a directory, a symlink planted there) is refused with
    /// `AlreadyExists` and left alone.
    pub fn bind(path: &Path) -> std::io::Result<Self> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
            Ok(meta) => {
                return Err(std::io::Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "a {} is in the doorbell socket's place; refusing to replace it",
                        file_kind(&meta.file_type())
                    ),
                ))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        // Only this user connects: another user's process could otherwise hold connections open.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            path: path.to_path_buf(),
            listener,
            peers: Mutex::new(Vec::new()),
        })
    }

    /// The socket path TS connects to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts every pending connection (non-blocking; called from the pump's idle and maintenance steps).
    pub fn accept_pending(&self) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                peers.push(stream);
            }
        }
    }

    /// Rings: one byte to every peer; peers that went away are dropped. Returns how many were rung.
    pub fn ring(&self) -> usize {
        self.accept_pending();
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|s| {
            // SAFETY: a valid connected socket and a 1-byte buffer that outlives the call; MSG_NOSIGNAL turns
            // a closed peer into EPIPE instead of killing the host process (Node, Bun, Deno) with SIGPIPE.
            let rc = unsafe {
                libc::send(
                    s.as_raw_fd(),
                    [1u8].as_ptr().cast(),
                    1,
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            rc == 1 || std::io::Error::last_os_error().kind() == ErrorKind::WouldBlock
        });
        peers.len()
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a non-socket file in the doorbell's place is, for the error message.
fn file_kind(ft: &FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn rings_reach_connected_peers_and_coalesce_without_blocking() {
        let path = std::env::temp_dir().join(format!("tasker-doorbell-{}.sock", std::process::id()));
        let bell = Doorbell::bind(&path).unwrap();
        let mut peer = UnixStream::connect(&path).unwrap();
        assert_eq!(bell.ring(), 1);
        let mut b = [0u8; 1];
        peer.read_exact(&mut b).unwrap();
        assert_eq!(b, [1]);
        for _ in 0..100_000 {
            bell.ring(); // never blocks, even with nobody reading
        }
        drop(peer);
        bell.ring();
        assert_eq!(bell.ring(), 0, "a closed peer is dropped");
        drop(bell);
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_socket_is_replaced_and_anything_else_is_refused() {
        let dir = std::env::temp_dir().join(format!("tasker-doorbell-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("w.sock");
        // A dead worker's socket: bound, then its listener gone without unlinking.
        drop(UnixListener::bind(&path).unwrap());
        let bell = Doorbell::bind(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        UnixStream::connect(&path).unwrap();
        drop(bell);

        let target = dir.join("target");
        std::fs::write(&target, b"keep me").unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        let e = Doorbell::bind(&path).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("regular file"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket", "left alone");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = Doorbell::bind(&path).err().unwrap();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(
            std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink(),
            "the link stays"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
