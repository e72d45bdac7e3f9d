//! Waiting for an SQLite store to change, without polling: an inotify watch on its WAL file.
//!
//! In WAL mode every commit, from any process, appends its frames to `<db>-wal` (or rewrites it from the
//! start after a checkpoint), so the file's `IN_MODIFY` is a commit's signal, as PostgreSQL's NOTIFY is
//! one. The worker's store thread waits on it while idle and claims when it fires; a commit it never
//! signals (a retry whose backoff ended, an expired claim) is left to the slow poll, as with LISTEN.
//!
//! Invariants: a write to the file after [`WalWatch::new`] makes the next [`WalWatch::changed`] return (the
//! kernel coalesces repeated events while none is read, so a burst of commits is one wake-up). The watch
//! ends (`changed` returns an error) when the file is removed or replaced, which SQLite does only when the
//! last connection closes; the caller then polls.

use std::io;
use std::path::Path;

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use inotify::{EventMask, Inotify, StreamExt, WatchMask};

    /// An inotify watch on one file's writes; see the module docs.
    pub(crate) struct WalWatch {
        events: inotify::EventStream<[u8; 1024]>,
    }

    impl WalWatch {
        /// Watches `wal` (which must exist). Needs a tokio runtime with I/O enabled.
        pub(crate) fn new(wal: &Path) -> io::Result<Self> {
            let inotify = Inotify::init()?;
            inotify
                .watches()
                .add(wal, WatchMask::MODIFY | WatchMask::DELETE_SELF | WatchMask::MOVE_SELF)?;
            Ok(Self {
                events: inotify.into_event_stream([0u8; 1024])?,
            })
        }

        /// Waits for the next write to the file. An error once the watch has ended (the file removed or
        /// replaced, the inotify descriptor failed): the caller drops the watch and polls.
        pub(crate) async fn changed(&mut self) -> io::Result<()> {
            match self.events.next().await {
                Some(Ok(event)) if event.mask.contains(EventMask::MODIFY) => Ok(()),
                Some(Ok(event)) => Err(io::Error::other(format!(
                    "the WAL file's watch ended ({:?})",
                    event.mask
                ))),
                Some(Err(e)) => Err(e),
                None => Err(io::Error::other("the WAL file's watch ended")),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    /// No inotify here: [`WalWatch::new`] always fails and the worker polls.
    pub(crate) struct WalWatch(());

    impl WalWatch {
        pub(crate) fn new(_wal: &Path) -> io::Result<Self> {
            Err(io::Error::new(io::ErrorKind::Unsupported, "inotify is Linux only"))
        }

        pub(crate) async fn changed(&mut self) -> io::Result<()> {
            std::future::pending().await
        }
    }
}

pub(crate) use imp::WalWatch;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_write_wakes_the_watch_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("store.db-wal");
        std::fs::write(&wal, b"").unwrap();
        runtime().block_on(async {
            let mut watch = WalWatch::new(&wal).unwrap();
            let quiet = tokio::time::timeout(Duration::from_millis(100), watch.changed()).await;
            assert!(quiet.is_err(), "no write, no wake-up");
            let _ = std::fs::read(&wal).unwrap(); // a read is not a change
            let quiet = tokio::time::timeout(Duration::from_millis(100), watch.changed()).await;
            assert!(quiet.is_err(), "a read is not a change");
            for _ in 0..3 {
                use std::io::Write;
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&wal)
                    .unwrap()
                    .write_all(b"frame")
                    .unwrap();
            }
            tokio::time::timeout(Duration::from_secs(10), watch.changed())
                .await
                .expect("a write wakes the watch")
                .unwrap();
            std::fs::remove_file(&wal).unwrap();
            let ended = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if watch.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
            assert!(ended.is_ok(), "removing the file ends the watch");
        });
    }
}
