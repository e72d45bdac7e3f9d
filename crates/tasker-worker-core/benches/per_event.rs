#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn
//! Rust-side cost per step event: the per-poll FFI baseline against the ring, same run.
//!
//! - `per_poll` is tasker-core's shape: under the global mutex the event is cloned into the in-flight map,
//!   serialised to a fresh `String`, turned into a `CString` and handed out; the reader copies the bytes
//!   and the string is freed (`free_rust_string`).
//! - `ring` serialises the event once, straight into the events ring (`serde_json::to_writer` into the
//!   frame), and the in-flight map keeps only the ids and the read time; the reader copies the bytes out
//!   of shared memory.
//!
//! - `floor_serialize` serialises the event into a reused `Vec`: the work both paths must do at least once,
//!   so `x - floor` is each path's own overhead.
//! - `ring_text` is what the worker's pump does today: both sources hand their events over as JSON text
//!   (`EventPayload::Text`: the store builds it, the synthetic source writes ids into a template), so the
//!   pump copies the text into the frame (`EventPayload::write_to`), with the same bookkeeping and reader as
//!   `ring`; its floor, `floor_copy`, copies the same text into a reused `Vec`. `ring_text_warm` is
//!   `ring_text` through a 256 KiB events ring, which stays in the core's L2 (the default 4 MiB does not).
//!
//! Both paths then retire the event from the in-flight map (as its completion would), so the maps stay the
//! same size. Events: the 2.7 KB fixture and a 64 KiB one. Heap allocations per event are counted by a counting
//! global allocator and printed after the criterion groups (and recorded in BENCHMARKS.md).

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tasker_ring::{record_type, Consumer, MappedRing, Producer, Region, RegionConfig, RingId};
use tasker_worker_core::source::EventPayload;
use tasker_worker_core::synthetic::StepEventGenerator;

/// Counts every allocation (and reallocation) made through the global allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An event as the source hands it over.
struct Event {
    id: u128,
    step: u128,
    json: serde_json::Value,
    /// The same event as the text the sources hand over.
    text: EventPayload,
}

fn event(bytes: usize) -> Event {
    let mut g = StepEventGenerator::new(bytes, 7);
    let (_, json) = g.next_event();
    Event {
        id: 1,
        step: 2,
        json: json.clone(),
        text: EventPayload::Text(json.to_string().into_boxed_str()),
    }
}

/// tasker-core's per-poll path.
struct PerPoll {
    in_flight: Mutex<HashMap<u128, serde_json::Value>>,
    copy: Vec<u8>,
}

impl PerPoll {
    fn new() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::with_capacity(1024)),
            copy: Vec::with_capacity(128 << 10),
        }
    }

    fn one(&mut self, e: &Event) {
        let ptr = {
            let mut map = self.in_flight.lock().unwrap();
            map.insert(e.id, e.json.clone());
            let s = serde_json::to_string(&e.json).unwrap();
            CString::new(s).unwrap().into_raw()
        };
        // The reader (JS) copies the string out, then frees it.
        // SAFETY: `ptr` came from `CString::into_raw` just above and is freed once, below.
        let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        self.copy.clear();
        self.copy.extend_from_slice(bytes);
        black_box(&self.copy);
        // SAFETY: as above: the pointer from `into_raw`, reclaimed exactly once.
        drop(unsafe { CString::from_raw(ptr) });
        self.in_flight.lock().unwrap().remove(&e.id);
    }
}

/// The ring path.
struct RingPath {
    _region: Region,
    producer: Producer<MappedRing>,
    consumer: Consumer<MappedRing>,
    in_flight: HashMap<u128, (u128, Instant)>,
    copy: Vec<u8>,
    tree_text: Vec<u8>,
}

impl RingPath {
    /// A region whose events ring holds `events_capacity` bytes (the worker's default is 4 MiB).
    fn new(tag: &str, events_capacity: u32) -> Self {
        let path = tasker_ring::default_dir().join(format!("bench-per-event-{tag}-{}.ring", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let region = Region::create(
            &path,
            &RegionConfig {
                events_capacity,
                completions_capacity: 4 << 20,
                max_frame_size: 128 << 10,
                ..RegionConfig::default()
            },
        )
        .unwrap();
        region.unlink().unwrap();
        let producer = region.producer(RingId::Events).unwrap();
        let consumer = region.consumer(RingId::Events).unwrap();
        Self {
            _region: region,
            producer,
            consumer,
            in_flight: HashMap::with_capacity(1024),
            copy: Vec::with_capacity(128 << 10),
            tree_text: Vec::with_capacity(128 << 10),
        }
    }

    /// The pump's path for tree events (`worker.rs` `write_event`): serialised into a reused buffer, then
    /// copied into the frame. Streaming serde's ~200 small writes straight into the frame cost 0.8 us more
    /// per 2.7 KB event (3.0 us against this bench's 1.95 us serialise-only floor; issue 21).
    fn one(&mut self, e: &Event) {
        self.tree_text.clear();
        serde_json::to_writer(&mut self.tree_text, &e.json).unwrap();
        let text = &self.tree_text;
        self.producer
            .try_write_with(record_type::STEP_EVENT, text.len(), |w| {
                std::io::Write::write_all(w, text)
            })
            .unwrap();
        self.read_and_retire(e);
    }

    /// The pump's path for text events: the text copied into the frame.
    fn one_text(&mut self, e: &Event) {
        let len = e.text.text_len().expect("text");
        self.producer
            .try_write_with(record_type::STEP_EVENT, len, |w| e.text.write_to(w))
            .unwrap();
        self.read_and_retire(e);
    }

    fn read_and_retire(&mut self, e: &Event) {
        // The reader (JS) copies the frame out of shared memory; its position passing the frame starts the
        // event's clock.
        let copy = &mut self.copy;
        self.consumer
            .read_batch(1, |m| {
                copy.clear();
                copy.extend_from_slice(m.payload);
            })
            .unwrap();
        black_box(&self.copy);
        self.in_flight.insert(e.id, (e.step, Instant::now()));
        self.in_flight.remove(&e.id);
    }
}

fn allocations_per_event(mut f: impl FnMut(), n: u64) -> f64 {
    for _ in 0..100 {
        f();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        f();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / n as f64
}

fn sizes() -> [(&'static str, usize); 2] {
    [("2.7KB_fixture", 0), ("64KiB", 64 << 10)]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_event");
    for (name, bytes) in sizes() {
        let e = event(bytes);
        group.throughput(Throughput::Elements(1));
        let mut poll = PerPoll::new();
        group.bench_function(BenchmarkId::new("per_poll", name), |b| b.iter(|| poll.one(&e)));
        let mut ring = RingPath::new(name, 4 << 20);
        group.bench_function(BenchmarkId::new("ring", name), |b| b.iter(|| ring.one(&e)));
        let mut out = Vec::with_capacity(128 << 10);
        group.bench_function(BenchmarkId::new("floor_serialize", name), |b| {
            b.iter(|| {
                out.clear();
                serde_json::to_writer(&mut out, &e.json).unwrap();
                black_box(&out);
            })
        });
        group.bench_function(BenchmarkId::new("ring_text", name), |b| b.iter(|| ring.one_text(&e)));
        // The same with a 256 KiB events ring, which stays in this core's 1 MiB L2: the difference is what
        // writing into lines the 4 MiB ring has let go cold costs.
        let mut warm = RingPath::new(&format!("{name}-warm"), 256 << 10);
        group.bench_function(BenchmarkId::new("ring_text_warm", name), |b| {
            b.iter(|| warm.one_text(&e))
        });
        group.bench_function(BenchmarkId::new("floor_copy", name), |b| {
            b.iter(|| {
                out.clear();
                e.text.write_to(&mut out).unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let mut counts = serde_json::Map::new();
    for (name, bytes) in sizes() {
        let e = event(bytes);
        let mut poll = PerPoll::new();
        let mut ring = RingPath::new(name, 4 << 20);
        let p = allocations_per_event(|| poll.one(&e), 1000);
        let r = allocations_per_event(|| ring.one(&e), 1000);
        let t = allocations_per_event(|| ring.one_text(&e), 1000);
        println!("heap allocations per event, {name}: per_poll {p:.3}, ring {r:.3}, ring_text {t:.3}");
        counts.insert(
            name.into(),
            serde_json::json!({ "per_poll": p, "ring": r, "ring_text": t }),
        );
    }
    // Next to criterion's own output, for scripts/bench-report.
    let dir = criterion_home().join("per_event");
    if std::fs::create_dir_all(&dir).is_ok() {
        let text = serde_json::to_string_pretty(&counts).expect("serialises");
        if let Err(e) = std::fs::write(dir.join("allocations.json"), text) {
            eprintln!("per_event: could not write allocations.json: {e}");
        }
    }
}

/// Where criterion writes its results: `CRITERION_HOME`, else `<target dir>/criterion`, the target directory
/// being three levels above this binary (`<target>/<profile>/deps/per_event-*`).
fn criterion_home() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    match exe.ancestors().nth(3) {
        Some(target) => target.join("criterion"),
        None => "target/criterion".into(),
    }
}
