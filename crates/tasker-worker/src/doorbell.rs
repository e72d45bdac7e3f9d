//! The doorbell: a Unix socket owned by the Rust side. A sleeping TS consumer connects with `node:net`
//! and waits for a byte; the producer writes one to every connection when the consumer has published
//! "sleeping" (layout-spec.md, "Sleep and doorbell"). Writes never block: a full socket buffer already
//! holds an unread wake-up, so rings coalesce.

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
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
    /// Binds a non-blocking listener at `path` (a stale socket file there is replaced).
    pub fn bind(path: &Path) -> std::io::Result<Self> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
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
}
