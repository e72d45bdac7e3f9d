//! What `watch` samples and computes: the region's control blocks read at each refresh (through
//! [`Watcher`], which also notices the file being removed, replaced or resized), and the [`Model`] of one
//! frame built from two such samples.

use crate::inspect::{open, InspectError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tasker_ring::liveness::{now_unix_ms, Liveness, ProcessIdentity};
use tasker_ring::{AttachError, Layout, RegionView, RingId, RingSnapshot};

/// One recorded process (a role holder or the creator) as the view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Pid (0: none).
    pub pid: u32,
    /// Alive, dead (gone or pid reused) or absent (pid 0).
    pub liveness: Liveness,
    /// Age of its stamp in ms (heartbeat, or creation for the creator); `None` if never stamped.
    pub age_ms: Option<u64>,
}

impl Peer {
    fn observe(
        pid: u32,
        start_time: u64,
        stamp_unix_ms: u64,
        now_unix_ms: u64,
        judge: &dyn Fn(ProcessIdentity) -> Liveness,
    ) -> Self {
        Self {
            pid,
            liveness: match pid {
                0 => Liveness::Absent,
                _ => judge(ProcessIdentity { pid, start_time }),
            },
            // A stamp from the future (another host's clock, a clock step) shows as 0 ms.
            age_ms: (stamp_unix_ms != 0).then(|| now_unix_ms.saturating_sub(stamp_unix_ms)),
        }
    }
}

/// One ring: the latest snapshot, the previous one (for rates) and its peers.
#[derive(Clone, Debug, PartialEq)]
pub struct RingModel {
    /// Which ring.
    pub id: RingId,
    /// Data area size in bytes.
    pub capacity: u32,
    /// Control block words read at this refresh.
    pub now: RingSnapshot,
    /// The same words read at the previous refresh (`None` on the first one).
    pub before: Option<RingSnapshot>,
    /// Producer role holder.
    pub producer: Peer,
    /// Consumer role holder.
    pub consumer: Peer,
}

/// Frames and payload bytes per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Records per second.
    pub frames: f64,
    /// Payload bytes per second (frame headers and padding excluded).
    pub bytes: f64,
}

impl Rate {
    fn between(frames: (u64, u64), bytes: (u64, u64), elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        // Counters only grow; a smaller value (a different region under the path) counts as no progress.
        Self {
            frames: frames.1.saturating_sub(frames.0) as f64 / secs,
            bytes: bytes.1.saturating_sub(bytes.0) as f64 / secs,
        }
    }
}

impl RingModel {
    /// Bytes published and not yet consumed: `producer - consumer` (mod 2^32), headers and padding included.
    /// The two positions are loaded one after the other (producer first), so the consumer may have moved
    /// past the producer value read: that shows as 0. `None` when the distance is impossible either way
    /// (a corrupt position).
    pub fn used_bytes(&self) -> Option<u32> {
        let (p, c) = (self.now.producer_position, self.now.consumer_position);
        let used = p.wrapping_sub(c);
        if used <= self.capacity {
            Some(used)
        } else if c.wrapping_sub(p) <= self.capacity {
            Some(0)
        } else {
            None
        }
    }

    /// Records published and not yet consumed (`frames(producer) - frames(consumer)`, clamped at 0: the
    /// two counters are loaded one after the other).
    pub fn lag_frames(&self) -> u64 {
        self.now.frames.saturating_sub(self.now.frames_read)
    }

    /// Publish and consume rates since the previous refresh; `None` on the first refresh.
    pub fn rates(&self, elapsed: Option<Duration>) -> Option<(Rate, Rate)> {
        let (b, n) = (self.before?, &self.now);
        let elapsed = elapsed.filter(|e| !e.is_zero())?;
        Some((
            Rate::between((b.frames, n.frames), (b.bytes, n.bytes), elapsed),
            Rate::between((b.frames_read, n.frames_read), (b.bytes_read, n.bytes_read), elapsed),
        ))
    }
}

/// How a frame is drawn (not read from the region).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewOptions {
    /// Refresh number, from 1.
    pub refresh: u64,
    /// Requested time between refreshes.
    pub interval_ms: u64,
    /// Columns available; every rendered line fits.
    pub width: usize,
    /// Full-screen on a terminal (the footer names the keys).
    pub interactive: bool,
    /// Wall clock at this refresh, Unix ms (heartbeat and creation ages).
    pub now_unix_ms: u64,
}

/// Everything one frame shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Region path as given.
    pub path: String,
    /// Layout major version.
    pub layout_major: u16,
    /// Layout minor version.
    pub layout_minor: u16,
    /// Region size in bytes.
    pub region_size: u64,
    /// The creating process; its `age_ms` is the region's age.
    pub creator: Peer,
    /// Events, then completions.
    pub rings: [RingModel; 2],
    /// Time between the previous snapshot and this one (`None` on the first refresh).
    pub elapsed: Option<Duration>,
    /// Drawing options.
    pub view: ViewOptions,
    /// A problem to show above everything (the region was removed, replaced or resized).
    pub alert: Option<String>,
}

impl Model {
    /// Builds a frame from the header, this refresh's snapshots of both rings, the previous refresh's
    /// snapshots with the time since them (`None` on the first refresh), and `judge`, which tells whether
    /// a recorded process lives ([`ProcessIdentity::liveness`]; tests pass a fixed answer).
    pub fn build(
        path: &Path,
        layout: &Layout,
        before: Option<(&[RingSnapshot; 2], Duration)>,
        now: &[RingSnapshot; 2],
        judge: &dyn Fn(ProcessIdentity) -> Liveness,
        view: ViewOptions,
    ) -> Self {
        let h = &layout.header;
        let t = view.now_unix_ms;
        let rings = RingId::ALL.map(|id| {
            let i = id.index();
            let s = now[i];
            RingModel {
                id,
                capacity: layout.rings[i].capacity,
                now: s,
                before: before.map(|(b, _)| b[i]),
                producer: Peer::observe(
                    s.producer.pid,
                    s.producer.start_time,
                    s.producer.heartbeat_unix_ms,
                    t,
                    judge,
                ),
                consumer: Peer::observe(
                    s.consumer.pid,
                    s.consumer.start_time,
                    s.consumer.heartbeat_unix_ms,
                    t,
                    judge,
                ),
            }
        });
        Self {
            path: path.display().to_string(),
            layout_major: h.layout_major,
            layout_minor: h.layout_minor,
            region_size: h.region_size,
            creator: Peer::observe(h.creator_pid, h.creator_start_time, h.created_at_unix_ms, t, judge),
            rings,
            elapsed: before.map(|(_, e)| e),
            view,
            alert: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reading the region.

/// The file a path named when it was attached: `(device, inode)`.
type FileId = (u64, u64);

fn file_id(path: &Path) -> Option<FileId> {
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The attached region and the state kept between refreshes.
pub(super) struct Watcher {
    view: RegionView,
    file: FileId,
    interval_ms: u64,
    pub(super) refresh: u64,
    /// Last snapshots read while the file checked out, and when.
    last: [RingSnapshot; 2],
    last_at: Instant,
    /// The last frame built from them (shown again, under the alert, when a check fails).
    shown: Option<Model>,
}

impl Watcher {
    /// Attaches read-only and pins the file: the path must name the same inode before and after the
    /// attach, so later refreshes can tell "this region was replaced" from "this region".
    pub(super) fn attach(path: &Path, interval_ms: u64) -> Result<Self, InspectError> {
        for _ in 0..5 {
            let before = file_id(path);
            let view = open(path)?;
            let after = file_id(path);
            if let (Some(file), true) = (after, before == after) {
                let last = Self::read(&view);
                return Ok(Self {
                    view,
                    file,
                    interval_ms,
                    refresh: 0,
                    last,
                    last_at: Instant::now(),
                    shown: None,
                });
            }
        }
        Err(InspectError::Io(format!(
            "{}: the region file keeps being replaced while attaching",
            path.display()
        )))
    }

    fn read(view: &RegionView) -> [RingSnapshot; 2] {
        RingId::ALL.map(|id| view.snapshot(id))
    }

    /// The path still names the attached file, at its full size; otherwise the error to exit with and
    /// what to tell the person watching. Checked before each read of the mapping: a file truncated under
    /// it would turn the read into a SIGBUS.
    fn check(&self) -> Result<(), (InspectError, String)> {
        let path = self.view.path();
        let size = self.view.layout().header.region_size;
        let shown = path.display();
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err((
                InspectError::Attach(AttachError::NotFound(path.to_path_buf())),
                format!("region removed: {shown} no longer exists (its worker stopped and unlinked it); last state read below"),
            )),
            Err(e) => Err((
                InspectError::Io(format!("{shown}: {e}")),
                format!("cannot check the region file: {e}"),
            )),
            Ok(m) if (m.dev(), m.ino()) != self.file => Err((
                InspectError::Attach(AttachError::NotFound(path.to_path_buf())),
                format!("region replaced: {shown} is now another file (the watched region was unlinked); run watch again to follow the new one"),
            )),
            Ok(m) if m.len() < size => Err((
                InspectError::Attach(AttachError::Truncated { needed: size, actual: m.len() }),
                format!("region truncated: the file has {} bytes, its header says {size}; not read again", m.len()),
            )),
            Ok(m) if m.len() > size => Err((
                InspectError::Attach(AttachError::SizeMismatch { header: size, file: m.len() }),
                format!("region size check failed: the file has {} bytes, its header says {size}", m.len()),
            )),
            Ok(_) => Ok(()),
        }
    }

    /// One refresh: check the file, read both control blocks, build the frame. On a failed check the
    /// frame is the last one drawn (the last state read, with its rates) under the alert, and the error
    /// is the exit status.
    pub(super) fn tick(&mut self, width: usize, interactive: bool) -> Result<Model, (Box<Model>, InspectError)> {
        self.refresh += 1;
        let view = ViewOptions {
            refresh: self.refresh,
            interval_ms: self.interval_ms,
            width,
            interactive,
            now_unix_ms: now_unix_ms(),
        };
        let judge = |p: ProcessIdentity| p.liveness();
        let (path, layout) = (self.view.path(), self.view.layout());
        if let Err((error, alert)) = self.check() {
            let mut model = match self.shown.take() {
                Some(shown) => shown,
                // Failed at the first refresh: the snapshots read right after attaching.
                None => Model::build(path, layout, None, &self.last, &judge, view),
            };
            model.alert = Some(alert);
            model.view.width = width;
            return Err((Box::new(model), error));
        }
        let now = Self::read(&self.view);
        let at = Instant::now();
        let before = (self.refresh > 1).then(|| (&self.last, at.duration_since(self.last_at)));
        let model = Model::build(path, layout, before, &now, &judge, view);
        self.last = now;
        self.last_at = at;
        self.shown = Some(model.clone());
        Ok(model)
    }
}

/// Models and snapshots for the unit tests of the model and its rendering.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use tasker_ring::layout::{RegionHeader, RingDescriptor};
    use tasker_ring::PeerSnapshot;

    pub const NOW_MS: u64 = 1_700_000_000_000;

    pub fn layout(events: u32, completions: u32) -> Layout {
        let mut header: RegionHeader = bytemuck::Zeroable::zeroed();
        header.layout_major = 1;
        header.layout_minor = 0;
        header.region_size = 4096 + events as u64 + completions as u64;
        header.creator_pid = 4242;
        header.created_at_unix_ms = NOW_MS - 90_000;
        let ring = |ring_id, capacity| RingDescriptor {
            control_offset: 1024 * (ring_id as u64 + 1),
            data_offset: 4096,
            capacity,
            ring_id,
            initial_position: 0,
            reserved: 0,
        };
        Layout {
            header,
            rings: [ring(0, events), ring(1, completions)],
        }
    }

    pub fn snapshot(producer_position: u32, consumer_position: u32, frames: u64, frames_read: u64) -> RingSnapshot {
        let peer = |pid| PeerSnapshot {
            pid,
            start_time: 0,
            heartbeat_unix_ms: NOW_MS - 1_500,
        };
        RingSnapshot {
            producer_position,
            consumer_position,
            consumer_sleeping: 0,
            claim: consumer_position,
            claiming_pid: 0,
            frames,
            bytes: frames.saturating_mul(100),
            pads: 0,
            full_stalls: 0,
            doorbells: 0,
            frames_read,
            bytes_read: frames_read.saturating_mul(100),
            sleeps: 0,
            producer: peer(4242),
            consumer: peer(4243),
        }
    }

    pub fn view(refresh: u64) -> ViewOptions {
        ViewOptions {
            refresh,
            interval_ms: 500,
            width: 80,
            interactive: true,
            now_unix_ms: NOW_MS,
        }
    }

    pub fn alive(_: ProcessIdentity) -> Liveness {
        Liveness::Alive
    }

    pub fn model(before: Option<(&[RingSnapshot; 2], Duration)>, now: &[RingSnapshot; 2], refresh: u64) -> Model {
        Model::build(
            Path::new("/dev/shm/w.ring"),
            &layout(4096, 1024),
            before,
            now,
            &alive,
            view(refresh),
        )
    }

    pub fn line<'a>(lines: &'a [String], ring: usize, starts: &str) -> &'a str {
        let heading = ["events (", "completions ("][ring];
        let from = lines.iter().position(|l| l.starts_with(heading)).expect("ring heading");
        lines[from + 1..]
            .iter()
            .find(|l| l.starts_with(starts))
            .unwrap_or_else(|| panic!("no line {starts:?} in ring {ring}: {lines:#?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{line, model, snapshot};
    use crate::inspect::watch::render::render;

    #[test]
    fn lag_across_the_u32_wrap_and_racing_or_corrupt_positions() {
        let ring =
            |p, c, frames, read| model(None, &[snapshot(p, c, frames, read), snapshot(0, 0, 0, 0)], 1).rings[0].clone();
        assert_eq!(ring(8, u32::MAX - 7, 2, 0).used_bytes(), Some(16), "wraps at 2^32");
        assert_eq!(ring(4096, 0, 0, 0).used_bytes(), Some(4096), "exactly full");
        // Consumer loaded after it moved past the producer value loaded: nothing unread, not 4 GiB.
        assert_eq!(ring(64, 128, 3, 5).used_bytes(), Some(0));
        assert_eq!(ring(64, 128, 3, 5).lag_frames(), 0);
        assert_eq!(
            ring(1 << 20, 0, 0, 0).used_bytes(),
            None,
            "more than the capacity either way"
        );
        let lines = render(&model(None, &[snapshot(1 << 20, 0, 0, 0), snapshot(0, 0, 0, 0)], 1));
        assert!(line(&lines, 0, "  fill").ends_with("  ?  positions inconsistent: producer 1048576, consumer 0"));
        assert!(line(&lines, 0, "  unread").starts_with("  unread    0 frames  ?  "));
    }
}
