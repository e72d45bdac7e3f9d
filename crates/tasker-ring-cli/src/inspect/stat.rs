//! `tasker-ring stat <region>`: one region in detail, read through a `PROT_READ` mapping. Header fields,
//! versions and feature bits; per ring: positions, lag in bytes and frames, fill, the producer's and the
//! consumer's pid, liveness and heartbeat age, the sleeping flag and every counter. With `--interval MS`
//! it samples twice and adds per-second rates. `--json` prints [`StatJson`].
//!
//! The JSON structs here ([`RegionStat`] and what it holds) are also what `tasker-ring list --json`
//! reports for each readable region: one documented shape for both commands.

use super::{human_age_ms, human_bytes, open, InspectError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tasker_ring::layout::{CLAIM_SEALED, READY_VALUE};
use tasker_ring::liveness::{now_unix_ms, pid_exists, Liveness, ProcessIdentity};
use tasker_ring::{AttachError, PeerSnapshot, RegionView, RingId, RingSnapshot};

/// Arguments of `tasker-ring stat`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Region file, or a worker id (looked up as `<dir>/<id>.ring` when no such path exists).
    pub region: PathBuf,
    /// Directory a worker id is looked up in (default: the worker's default, /dev/shm on Linux).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON object (the `tasker-ring/stat/1` shape) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Sample twice, this many milliseconds apart, and add per-second rates (1 ..= 3600000).
    #[arg(long, value_name = "MS")]
    pub interval: Option<u64>,
}

/// Schema tag of `tasker-ring stat --json`; bumped only on an incompatible change of the shape.
pub const STAT_SCHEMA: &str = "tasker-ring/stat/1";

/// Output of `tasker-ring stat --json`: the schema tag followed by the fields of [`RegionStat`].
#[derive(Serialize, Debug)]
pub struct StatJson {
    /// Always `"tasker-ring/stat/1"` for this shape. New fields may be added; none is removed or changes
    /// meaning without a new tag.
    pub schema: &'static str,
    /// The region.
    #[serde(flatten)]
    pub region: RegionStat,
}

/// One region as the inspector sees it (in `stat --json`, and per readable region in `list --json`).
#[derive(Serialize, Debug, Clone)]
pub struct RegionStat {
    /// The region file's path, as given or as found in the directory.
    pub path: String,
    /// The file name without `.ring`: the worker id for regions a worker created.
    pub name: String,
    /// When the (last) sample was taken, Unix-epoch milliseconds.
    pub sampled_at_unix_ms: u64,
    /// Layout major version (header offset 8).
    pub layout_major: u16,
    /// Layout minor version (header offset 10).
    pub layout_minor: u16,
    /// Feature bits (header offset 16); 0 in layout 1.0.
    pub feature_bits: u64,
    /// The ready word: always true here (a region that is not ready fails to attach, exit 8).
    pub ready: bool,
    /// Header page size in bytes.
    pub header_size: u32,
    /// Number of ring descriptors.
    pub ring_count: u32,
    /// Total file size in bytes.
    pub region_size: u64,
    /// Largest frame record in bytes, header included.
    pub max_frame_size: u32,
    /// Largest reassembled message in bytes.
    pub max_message_size: u64,
    /// The process that created the region.
    pub creator: CreatorStat,
    /// The two rings.
    pub rings: Rings,
    /// Measured time between the two samples of `--interval`, in milliseconds; null with one sample.
    pub interval_ms: Option<f64>,
}

/// The creator recorded in the header.
#[derive(Serialize, Debug, Clone)]
pub struct CreatorStat {
    /// Creator pid (header offset 56); 0 if none was recorded.
    pub pid: u32,
    /// Creator start time, clock ticks since boot (`/proc/<pid>/stat` field 22); 0 if unknown.
    pub start_time: u64,
    /// `alive`, `dead` (pid gone or reused by a later process) or `absent` (pid 0).
    pub state: ProcessState,
    /// True when the pid exists but belongs to a later process (start times differ): dead.
    pub pid_reused: bool,
    /// Creation time, Unix-epoch milliseconds.
    pub created_at_unix_ms: u64,
    /// Milliseconds since creation (null if the creation time is 0).
    pub age_ms: Option<u64>,
}

/// Whether a recorded process still runs (layout-spec.md section 13).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProcessState {
    /// The pid exists and its start time matches (or one of them is unknown).
    Alive,
    /// The pid does not exist, or a later process has it.
    Dead,
    /// No process recorded (pid 0; for a role: free).
    Absent,
}

impl ProcessState {
    /// The word shown to people and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Dead => "dead",
            Self::Absent => "absent",
        }
    }
}

impl From<Liveness> for ProcessState {
    fn from(l: Liveness) -> Self {
        match l {
            Liveness::Alive => Self::Alive,
            Liveness::Dead => Self::Dead,
            Liveness::Absent => Self::Absent,
        }
    }
}

/// Both rings of a region, by name.
#[derive(Serialize, Debug, Clone)]
pub struct Rings {
    /// Ring 0: step events, Rust -> TS.
    pub events: RingStat,
    /// Ring 1: completions, TS -> Rust.
    pub completions: RingStat,
}

impl Rings {
    /// The rings in descriptor order.
    pub fn iter(&self) -> impl Iterator<Item = &RingStat> {
        [&self.events, &self.completions].into_iter()
    }
}

/// One ring: descriptor, positions, derived lag and fill, both peers, counters, rates.
#[derive(Serialize, Debug, Clone)]
pub struct RingStat {
    /// `events` or `completions`.
    pub name: &'static str,
    /// Descriptor index: 0 events, 1 completions.
    pub ring_id: u32,
    /// Data area size in bytes (a power of two).
    pub capacity: u32,
    /// File offset of the control block.
    pub control_offset: u64,
    /// File offset of the data area.
    pub data_offset: u64,
    /// Position both counters started at.
    pub initial_position: u32,
    /// Free-running byte position of the end of the last published record (u32, wraps).
    pub producer_position: u32,
    /// Free-running byte position up to which the consumer has released (u32, wraps).
    pub consumer_position: u32,
    /// False when the positions are more than a capacity apart or not multiples of 8 (a corrupt ring);
    /// the lag and fill fields are then clamped and meaningless.
    pub positions_valid: bool,
    /// Published, not yet consumed bytes: `(producer_position - consumer_position) mod 2^32`, frame
    /// headers and padding included.
    pub lag_bytes: u64,
    /// `capacity - lag_bytes`.
    pub free_bytes: u64,
    /// `lag_bytes` as a percentage of the capacity, two decimals.
    pub fill_percent: f64,
    /// Records published but not consumed: `counters.frames - counters.frames_read` (0 if negative).
    pub lag_frames: u64,
    /// Payload bytes published but not consumed: `counters.bytes - counters.bytes_read` (0 if negative).
    pub lag_payload_bytes: u64,
    /// True while the consumer sleeps and wants a doorbell.
    pub consumer_sleeping: bool,
    /// Layout 1.1: the position up to which the consumer claimed messages (null on a region of minor 0).
    pub claimed_position: Option<u32>,
    /// Layout 1.1: the producer sealed the ring (its orderly end: it publishes nothing more).
    pub sealed: bool,
    /// Layout 1.1: pid of the consumer that declared it claims (0: none; a 1.0 consumer never declares).
    pub claiming_pid: u32,
    /// The process holding the producer role.
    pub producer: PeerStat,
    /// The process holding the consumer role.
    pub consumer: PeerStat,
    /// Cumulative counters from the control block.
    pub counters: Counters,
    /// Per-second rates over `interval_ms` (with `--interval`); null with one sample.
    pub rates: Option<Rates>,
}

/// The holder of a producer or consumer role.
#[derive(Serialize, Debug, Clone)]
pub struct PeerStat {
    /// Holder pid; 0 when the role is free.
    pub pid: u32,
    /// Holder start time, clock ticks since boot; 0 if unknown or free.
    pub start_time: u64,
    /// `alive`, `dead` or `absent` (free).
    pub state: ProcessState,
    /// Last heartbeat, Unix-epoch milliseconds; 0 if never stamped.
    pub heartbeat_unix_ms: u64,
    /// Milliseconds since the last heartbeat; null if never stamped. An age, never proof of death.
    pub heartbeat_age_ms: Option<u64>,
}

/// Cumulative counters of one ring (layout-spec.md section 4, lines 3 and 4).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Non-padding records published (each fragment and abort marker counts once).
    pub frames: u64,
    /// Payload bytes published (headers excluded).
    pub bytes: u64,
    /// Padding records written at the wrap.
    pub pads: u64,
    /// All-or-nothing writes refused because the ring was full.
    pub full_stalls: u64,
    /// Doorbells rung for a sleeping consumer.
    pub doorbells: u64,
    /// Non-padding records consumed.
    pub frames_read: u64,
    /// Payload bytes consumed.
    pub bytes_read: u64,
    /// Times the consumer went to sleep.
    pub sleeps: u64,
}

/// Per-second rates between two samples (counter deltas divided by the measured interval).
#[derive(Serialize, Debug, Clone, Copy)]
pub struct Rates {
    /// Records published per second.
    pub frames_per_sec: f64,
    /// Payload bytes published per second.
    pub bytes_per_sec: f64,
    /// Records consumed per second.
    pub frames_read_per_sec: f64,
    /// Payload bytes consumed per second.
    pub bytes_read_per_sec: f64,
    /// Producer position advance per second (ring bytes: headers and padding included).
    pub producer_position_per_sec: f64,
    /// Consumer position advance per second (ring bytes).
    pub consumer_position_per_sec: f64,
    /// Padding records per second.
    pub pads_per_sec: f64,
    /// Full stalls per second.
    pub full_stalls_per_sec: f64,
    /// Doorbells per second.
    pub doorbells_per_sec: f64,
    /// Consumer sleeps per second.
    pub sleeps_per_sec: f64,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<(), InspectError> {
    if let Some(ms) = args.interval {
        if !(1..=3_600_000).contains(&ms) {
            return Err(InspectError::Usage(format!(
                "--interval {ms}: must be 1 ..= 3600000 milliseconds"
            )));
        }
    }
    let path = resolve(&args.region, args.dir.as_deref());
    let view = open(&path)?;
    let stat = match args.interval {
        None => region_stat(&view, None),
        Some(ms) => {
            let identity = file_identity(&path);
            let first = sample(&view);
            let started = Instant::now();
            std::thread::sleep(Duration::from_millis(ms));
            // The mapping stays valid if the file is unlinked, but a file truncated under it would turn
            // the next load into SIGBUS: re-check the size first, as a worker does on its maintenance ticks.
            check_not_truncated(&path, identity, view.layout().header.region_size)?;
            region_stat(&view, Some((first, started.elapsed())))
        }
    };
    let out = if args.json {
        let mut s = serde_json::to_string_pretty(&StatJson {
            schema: STAT_SCHEMA,
            region: stat,
        })
        .map_err(|e| InspectError::Io(format!("encoding JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        render(&stat)
    };
    super::list::write_stdout(&out)
}

/// A region argument: a path if something is there; otherwise a bare worker id names `<dir>/<id>.ring`.
pub fn resolve(arg: &Path, dir: Option<&Path>) -> PathBuf {
    let bare = arg.components().count() == 1 && !arg.as_os_str().is_empty();
    if std::fs::symlink_metadata(arg).is_ok() || !bare {
        return arg.to_path_buf();
    }
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(tasker_ring::default_dir);
    let mut name = arg.as_os_str().to_os_string();
    if arg.extension().is_none_or(|x| x != "ring") {
        name.push(".ring");
    }
    let candidate = dir.join(name);
    if std::fs::symlink_metadata(&candidate).is_ok() {
        candidate
    } else {
        arg.to_path_buf()
    }
}

pub use tasker_ring::stale::file_identity;

fn check_not_truncated(path: &Path, identity: Option<(u64, u64)>, region_size: u64) -> Result<(), InspectError> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if Some((m.dev(), m.ino())) == identity && m.len() < region_size {
            return Err(AttachError::Truncated {
                needed: region_size,
                actual: m.len(),
            }
            .into());
        }
    }
    Ok(())
}

/// Both rings' control blocks, loaded now.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// By `RingId::index`.
    pub rings: [RingSnapshot; 2],
}

/// Loads both control blocks (read-only atomic loads; nothing is written).
pub fn sample(view: &RegionView) -> Sample {
    Sample {
        rings: RingId::ALL.map(|id| view.snapshot(id)),
    }
}

/// The region's state now, with rates against `earlier` (a sample and the time since it) when given.
pub fn region_stat(view: &RegionView, earlier: Option<(Sample, Duration)>) -> RegionStat {
    let now = sample(view);
    let now_ms = now_unix_ms();
    let layout = view.layout();
    let h = &layout.header;
    let ring = |id: RingId| {
        let i = id.index();
        ring_stat(view, id, &now.rings[i], earlier.map(|(s, d)| (s.rings[i], d)), now_ms)
    };
    let creator = ProcessIdentity {
        pid: h.creator_pid,
        start_time: h.creator_start_time,
    };
    let creator_state = ProcessState::from(creator.liveness());
    RegionStat {
        path: view.path().display().to_string(),
        name: region_name(view.path()),
        sampled_at_unix_ms: now_ms,
        layout_major: h.layout_major,
        layout_minor: h.layout_minor,
        feature_bits: h.feature_bits,
        ready: h.ready == READY_VALUE,
        header_size: h.header_size,
        ring_count: h.ring_count,
        region_size: h.region_size,
        max_frame_size: h.max_frame_size,
        max_message_size: h.max_message_size,
        creator: CreatorStat {
            pid: h.creator_pid,
            start_time: h.creator_start_time,
            state: creator_state,
            pid_reused: creator_state == ProcessState::Dead && pid_exists(h.creator_pid),
            created_at_unix_ms: h.created_at_unix_ms,
            age_ms: (h.created_at_unix_ms != 0).then(|| now_ms.saturating_sub(h.created_at_unix_ms)),
        },
        rings: Rings {
            events: ring(RingId::Events),
            completions: ring(RingId::Completions),
        },
        interval_ms: earlier.map(|(_, d)| round2(d.as_secs_f64() * 1000.0)),
    }
}

/// File name without the `.ring` extension.
pub fn region_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn ring_stat(
    view: &RegionView,
    id: RingId,
    s: &RingSnapshot,
    earlier: Option<(RingSnapshot, Duration)>,
    now_ms: u64,
) -> RingStat {
    let d = view.layout().rings[id.index()];
    let capacity = d.capacity as u64;
    let forward = s.producer_position.wrapping_sub(s.consumer_position) as u64;
    let backward = s.consumer_position.wrapping_sub(s.producer_position) as u64;
    let aligned = s.producer_position % 8 == 0 && s.consumer_position % 8 == 0;
    let (lag, valid) = if forward <= capacity {
        (forward, aligned)
    } else if backward <= capacity {
        // The consumer overtook the producer position loaded just before it: nothing is pending.
        (0, aligned)
    } else {
        (capacity, false)
    };
    RingStat {
        name: id.name(),
        ring_id: d.ring_id,
        capacity: d.capacity,
        control_offset: d.control_offset,
        data_offset: d.data_offset,
        initial_position: d.initial_position,
        producer_position: s.producer_position,
        consumer_position: s.consumer_position,
        positions_valid: valid,
        lag_bytes: lag,
        free_bytes: capacity - lag,
        fill_percent: round2(lag as f64 * 100.0 / capacity as f64),
        lag_frames: s.frames.saturating_sub(s.frames_read),
        lag_payload_bytes: s.bytes.saturating_sub(s.bytes_read),
        consumer_sleeping: s.consumer_sleeping != 0,
        claimed_position: (view.layout().header.layout_minor >= 1).then_some(s.claim & !CLAIM_SEALED),
        sealed: view.layout().header.layout_minor >= 1 && s.claim & CLAIM_SEALED != 0,
        claiming_pid: if view.layout().header.layout_minor >= 1 {
            s.claiming_pid
        } else {
            0
        },
        producer: peer_stat(&s.producer, now_ms),
        consumer: peer_stat(&s.consumer, now_ms),
        counters: counters(s),
        rates: earlier.map(|(e, elapsed)| rates(&e, s, elapsed)),
    }
}

fn peer_stat(p: &PeerSnapshot, now_ms: u64) -> PeerStat {
    let state = ProcessIdentity {
        pid: p.pid,
        start_time: p.start_time,
    }
    .liveness();
    PeerStat {
        pid: p.pid,
        start_time: p.start_time,
        state: state.into(),
        heartbeat_unix_ms: p.heartbeat_unix_ms,
        heartbeat_age_ms: (p.heartbeat_unix_ms != 0).then(|| now_ms.saturating_sub(p.heartbeat_unix_ms)),
    }
}

fn counters(s: &RingSnapshot) -> Counters {
    Counters {
        frames: s.frames,
        bytes: s.bytes,
        pads: s.pads,
        full_stalls: s.full_stalls,
        doorbells: s.doorbells,
        frames_read: s.frames_read,
        bytes_read: s.bytes_read,
        sleeps: s.sleeps,
    }
}

fn rates(a: &RingSnapshot, b: &RingSnapshot, elapsed: Duration) -> Rates {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let per = |from: u64, to: u64| round2(to.saturating_sub(from) as f64 / secs);
    let pos = |from: u32, to: u32| round2(to.wrapping_sub(from) as f64 / secs);
    Rates {
        frames_per_sec: per(a.frames, b.frames),
        bytes_per_sec: per(a.bytes, b.bytes),
        frames_read_per_sec: per(a.frames_read, b.frames_read),
        bytes_read_per_sec: per(a.bytes_read, b.bytes_read),
        producer_position_per_sec: pos(a.producer_position, b.producer_position),
        consumer_position_per_sec: pos(a.consumer_position, b.consumer_position),
        pads_per_sec: per(a.pads, b.pads),
        full_stalls_per_sec: per(a.full_stalls, b.full_stalls),
        doorbells_per_sec: per(a.doorbells, b.doorbells),
        sleeps_per_sec: per(a.sleeps, b.sleeps),
    }
}

/// Rounds to two decimals (JSON stays short and stable).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `pid 1234 alive`, `pid 99 dead`, `none`.
fn peer_text(p: &PeerStat) -> String {
    if p.pid == 0 {
        return "none (role free)".to_string();
    }
    let hb = match p.heartbeat_age_ms {
        Some(_) => format!("heartbeat {} ago", human_age_ms(p.heartbeat_age_ms)),
        None => "no heartbeat".to_string(),
    };
    format!("pid {} (start {}) {}, {hb}", p.pid, p.start_time, p.state.as_str())
}

/// The creator's pid, start time and state for people.
pub fn creator_text(c: &CreatorStat) -> String {
    let liveness = match c.state {
        ProcessState::Alive => Liveness::Alive,
        ProcessState::Dead => Liveness::Dead,
        ProcessState::Absent => Liveness::Absent,
    };
    let identity = ProcessIdentity {
        pid: c.pid,
        start_time: c.start_time,
    };
    tasker_ring::stale::describe_creator(identity, liveness, c.pid_reused)
}

fn rate_text(r: &Rates) -> [String; 3] {
    let b = |x: f64| human_bytes(x.round() as u64);
    [
        format!(
            "in  {:.1} frames/s, {}/s payload, {}/s ring",
            r.frames_per_sec,
            b(r.bytes_per_sec),
            b(r.producer_position_per_sec)
        ),
        format!(
            "out {:.1} frames/s, {}/s payload, {}/s ring",
            r.frames_read_per_sec,
            b(r.bytes_read_per_sec),
            b(r.consumer_position_per_sec)
        ),
        format!(
            "{:.1} pads/s, {:.1} full-stalls/s, {:.1} doorbells/s, {:.1} sleeps/s",
            r.pads_per_sec, r.full_stalls_per_sec, r.doorbells_per_sec, r.sleeps_per_sec
        ),
    ]
}

/// The text form of `stat`.
pub fn render(s: &RegionStat) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "region      {}", s.path);
    let _ = writeln!(
        o,
        "layout      {}.{}, feature bits {:#x}, {}",
        s.layout_major,
        s.layout_minor,
        s.feature_bits,
        if s.ready { "ready" } else { "not ready" }
    );
    let _ = writeln!(
        o,
        "size        {} ({} B): header {} B, {} rings, max frame {} B, max message {}",
        human_bytes(s.region_size),
        s.region_size,
        s.header_size,
        s.ring_count,
        s.max_frame_size,
        human_bytes(s.max_message_size)
    );
    let _ = writeln!(o, "creator     {}", creator_text(&s.creator));
    let _ = match s.creator.age_ms {
        Some(age) => writeln!(
            o,
            "created     {} ago (unix ms {})",
            human_age_ms(Some(age)),
            s.creator.created_at_unix_ms
        ),
        None => writeln!(o, "created     unknown (no creation time recorded)"),
    };
    if let Some(ms) = s.interval_ms {
        let _ = writeln!(o, "sampled     twice, {ms:.0} ms apart (rates per second)");
    }
    for r in s.rings.iter() {
        let direction = if r.ring_id == 0 { "Rust -> TS" } else { "TS -> Rust" };
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{} ({direction}): capacity {} ({} B), control at {:#x}, data at {:#x}",
            r.name,
            human_bytes(r.capacity as u64),
            r.capacity,
            r.control_offset,
            r.data_offset
        );
        let _ = writeln!(
            o,
            "  positions   producer {:#010x}, consumer {:#010x} (initial {:#010x}){}",
            r.producer_position,
            r.consumer_position,
            r.initial_position,
            if r.positions_valid {
                ""
            } else {
                "  CORRUPT: more than a capacity apart or misaligned"
            }
        );
        let _ = writeln!(
            o,
            "  lag         {} B in {} frames ({} B payload); fill {:.2}%, free {}",
            r.lag_bytes,
            r.lag_frames,
            r.lag_payload_bytes,
            r.fill_percent,
            human_bytes(r.free_bytes)
        );
        let _ = writeln!(o, "  producer    {}", peer_text(&r.producer));
        let _ = writeln!(
            o,
            "  consumer    {}; {}",
            peer_text(&r.consumer),
            if r.consumer_sleeping { "sleeping" } else { "awake" }
        );
        if let Some(claimed) = r.claimed_position {
            let _ = writeln!(
                o,
                "  claim       {claimed:#010x}{}{}",
                if r.claiming_pid != 0 {
                    format!(", declared by pid {}", r.claiming_pid)
                } else {
                    ", no claiming consumer".to_string()
                },
                if r.sealed {
                    "; SEALED (the producer's orderly end)"
                } else {
                    ""
                }
            );
        }
        let c = &r.counters;
        let _ = writeln!(
            o,
            "  published   {} frames, {} B payload, {} pads, {} full-stalls, {} doorbells",
            c.frames, c.bytes, c.pads, c.full_stalls, c.doorbells
        );
        let _ = writeln!(
            o,
            "  consumed    {} frames, {} B payload, {} sleeps",
            c.frames_read, c.bytes_read, c.sleeps
        );
        if let Some(rates) = &r.rates {
            let [a, b, c] = rate_text(rates);
            let _ = writeln!(o, "  rates       {a}");
            let _ = writeln!(o, "              {b}");
            let _ = writeln!(o, "              {c}");
        }
    }
    o
}
