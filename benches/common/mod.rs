//! What the cross-thread benches (`throughput.rs`, `latency.rs`) share: the same payloads (same case
//! names), the same buffer size, the same pinning, the same consumer work, the same region set-up, so
//! their figures line up.

use rtrb::CopyToUninit;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tasker_ring::layout::FRAME_HEADER;
use tasker_ring::{Region, RegionConfig};

/// Buffer size of every implementation: the region's events ring, the rtrb ring, and (in messages)
/// the crossbeam channel.
pub const RING_BYTES: u32 = 4 << 20;
/// Largest payload measured; the region's max frame is this plus the frame header, so it is one frame.
pub const LARGE: usize = 64 << 10;

/// Index (into the CPUs this process may use) the bench thread, which consumes, is pinned to.
pub const CONSUMER_CPU: usize = 0;
/// Index the producer threads are pinned to.
pub const PRODUCER_CPU: usize = 1;

/// Pins the calling thread to the `index`-th CPU this process could run on at the first call (so
/// threads spawned by a pinned thread still see every CPU), if there are at least two.
/// Without pinning, the scheduler often wakes the producer on the consumer's core, and the two then
/// share one core until the load balancer separates them: samples become bimodal (BENCHMARKS.md, "Noise").
#[cfg(target_os = "linux")]
pub fn pin_to(index: usize) {
    static CPUS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    let cpus = CPUS.get_or_init(|| {
        // SAFETY: `cpu_set_t` is plain data for which all-zero bytes is the empty set.
        let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is the calling thread; the size and pointer describe `allowed`.
        if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut allowed) } != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` is below CPU_SETSIZE, the set's size.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &allowed) })
            .collect()
    });
    if cpus.len() < 2 {
        return;
    }
    // SAFETY: as above.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the CPU index came from the allowed set, so it is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpus[index % cpus.len()], &mut one) };
    // SAFETY: pid 0 is the calling thread; the size and pointer describe `one`.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one) } != 0 {
        eprintln!("could not pin thread: {}", std::io::Error::last_os_error());
    }
}

#[cfg(not(target_os = "linux"))]
pub fn pin_to(_index: usize) {}

/// A payload to carry, named by its size.
pub struct Case {
    pub name: String,
    pub payload: Arc<[u8]>,
}

pub fn cases() -> Vec<Case> {
    let pattern = |len: usize| (0..len).map(|i| (i * 31 + 7) as u8).collect::<Vec<u8>>();
    let fixture: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/step-event.json"
    )))
    .expect("fixture is JSON");
    let event = serde_json::to_vec(&fixture).expect("serialise fixture");
    vec![
        Case {
            name: "64B".into(),
            payload: pattern(64).into(),
        },
        Case {
            name: format!("{}B_step_event", event.len()),
            payload: event.into(),
        },
        Case {
            name: "64KiB".into(),
            payload: pattern(LARGE).into(),
        },
    ]
}

/// What the consumer does with each payload: copy it out, check it, keep it observable.
pub struct Sink {
    /// The last payload taken.
    pub scratch: Vec<u8>,
    len: usize,
    last: u8,
}

impl Sink {
    pub fn new(payload: &[u8]) -> Self {
        Self {
            scratch: Vec::with_capacity(payload.len()),
            len: payload.len(),
            last: *payload.last().expect("non-empty payload"),
        }
    }

    /// Takes one payload given as up to two slices (a ring's wrap may split it).
    pub fn take(&mut self, first: &[u8], second: &[u8]) {
        self.scratch.clear();
        self.scratch.extend_from_slice(first);
        self.scratch.extend_from_slice(second);
        assert_eq!(self.scratch.len(), self.len, "payload length");
        assert_eq!(self.scratch[self.len - 1], self.last, "payload last byte");
        black_box(&self.scratch);
    }
}

/// A region file that is unlinked when the run ends (the mapping outlives it harmlessly).
pub struct RegionFile {
    pub region: Region,
}

impl RegionFile {
    /// A fresh region named `<prefix>-<pid>-<nanos>.ring` in the default region directory.
    pub fn create(prefix: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path: PathBuf = tasker_ring::default_dir().join(format!("{prefix}-{}-{nanos}.ring", std::process::id()));
        let config = RegionConfig {
            events_capacity: RING_BYTES,
            completions_capacity: RING_BYTES,
            max_frame_size: (LARGE + FRAME_HEADER) as u32,
            ..RegionConfig::default()
        };
        let region = Region::create(&path, &config).expect("create region");
        Self { region }
    }
}

impl Drop for RegionFile {
    fn drop(&mut self) {
        if let Err(e) = self.region.unlink() {
            eprintln!("could not unlink {}: {e}", self.region.path().display());
        }
    }
}

/// Copies `src` to logical offset `at` of a chunk given as two slices.
pub fn copy_into(first: &mut [MaybeUninit<u8>], second: &mut [MaybeUninit<u8>], at: usize, src: &[u8]) {
    if at >= first.len() {
        let at = at - first.len();
        src.copy_to_uninit(&mut second[at..at + src.len()]);
    } else {
        let n = src.len().min(first.len() - at);
        src[..n].copy_to_uninit(&mut first[at..at + n]);
        src[n..].copy_to_uninit(&mut second[..src.len() - n]);
    }
}

/// Takes one length-prefixed record off an rtrb byte ring into `sink` (peek the u32 length prefix, then take
/// and commit prefix and payload together); `false` if no record is there yet.
pub fn rtrb_take(consumer: &mut rtrb::Consumer<u8>, sink: &mut Sink) -> bool {
    // Peek the length prefix (a chunk dropped without commit consumes nothing).
    let len = match consumer.read_chunk(4) {
        Ok(chunk) => {
            let (first, second) = chunk.as_slices();
            let mut prefix = [0u8; 4];
            prefix[..first.len()].copy_from_slice(first);
            prefix[first.len()..].copy_from_slice(second);
            u32::from_le_bytes(prefix) as usize
        }
        Err(_) => return false,
    };
    let chunk = consumer
        .read_chunk(4 + len)
        .expect("prefix and payload are committed together");
    let (first, second) = chunk.as_slices();
    let (first, second) = skip(first, second, 4);
    sink.take(first, second);
    chunk.commit_all();
    true
}

/// Splits the logical range `at..` of a chunk given as two slices.
pub fn skip<'a>(first: &'a [u8], second: &'a [u8], at: usize) -> (&'a [u8], &'a [u8]) {
    if at >= first.len() {
        (&second[at - first.len()..], &[])
    } else {
        (&first[at..], second)
    }
}

/// The criterion group type the criterion benches add their cases to.
#[allow(dead_code)] // rtrb_parity.rs, which includes this module too, does not use criterion
pub type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;
