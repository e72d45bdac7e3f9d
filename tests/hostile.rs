//! Hostile bytes: property-based fuzzing of attach and frame decoding. Every case starts from one valid
//! region image (`fixtures/hostile-base.ring`), applies the seeded corruptions of the generator below,
//! writes the result as a region file and attaches it, then takes each role of each ring and reads (and
//! writes) through it. The property: a typed error or valid data, never a panic; every read
//! of shared memory is bounds-checked (`MappedRing::read` asserts its range, so an out-of-bounds read would
//! be a panic here, not silent).
//!
//! The generator ("hostile-v1") is specified here and implemented the same way in
//! `ts-reader/tests/hostile.test.ts`; `fixtures/hostile-golden.json` holds the FNV-1a hash of the image
//! it makes for seeds 0..32, which both tests reproduce, so the two languages fuzz the same inputs.
//! Cases: `TASKER_HOSTILE_CASES` (default 2000; the long form runs 1 000 000). `TASKER_BLESS=1` rewrites
//! the fixture and the golden hashes after a deliberate change of the base image or the generator.

mod support_hostile;

use proptest::prelude::*;
use std::path::PathBuf;
use support_hostile::{exercise, fnv1a64, mutate, scratch_dir, u64_at};
use tasker_ring::{record_type, Region, RegionConfig, RingId};

const BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hostile-base.ring");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hostile-golden.json");
const GOLDEN_SEEDS: u64 = 32;

fn cases() -> u32 {
    std::env::var("TASKER_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

// ---- the base image ---------------------------------------------------------------------------------

fn config() -> RegionConfig {
    RegionConfig {
        events_capacity: 4096,
        completions_capacity: 1024,
        max_frame_size: 256,
        max_message_size: 1 << 16,
        initial_position: 0xFFFF_FF00,
    }
}

/// A region with unread step events (some fragmented, positions about to wrap 2^32), two read and
/// released, and one unread completion; roles given back; then every field that names a process or a
/// time zeroed, so the image is the same on every machine.
fn build_base() -> Vec<u8> {
    let path = scratch_dir().join("base.ring");
    let _ = std::fs::remove_file(&path);
    let region = Region::create(&path, &config()).unwrap();
    {
        let mut p = region.producer(RingId::Events).unwrap();
        // Step-event-shaped JSON (an event_id and padding), so a reader gets as far as parsing them.
        for (i, n) in [10usize, 100, 240, 500, 30, 700, 64].into_iter().enumerate() {
            let body = format!(
                r#"{{"event_id":"0192f0c1-7a1b-7c3d-8e4f-a5b6c7d8e9f{i}","pad":"{}"}}"#,
                "a".repeat(n)
            );
            p.try_write(record_type::STEP_EVENT, body.as_bytes()).unwrap();
        }
        let mut c = region.consumer(RingId::Events).unwrap();
        assert_eq!(c.read_batch(2, |_| {}).unwrap(), 2);
        let mut completions = region.producer(RingId::Completions).unwrap();
        let mut completion = b"0192f0c1-7a1b-7c3d-8e4f-a5b6c7d8e9f0".to_vec();
        completion.extend_from_slice(br#"{"success":true,"result":{"n":1}}"#);
        completions.try_write(record_type::COMPLETION, &completion).unwrap();
    }
    let mut img = std::fs::read(&path).unwrap();
    region.unlink().unwrap();
    img[56..60].fill(0); // creator pid
    img[64..80].fill(0); // creator start time, created_at
    for ring in 0..2 {
        let control = u64_at(&img, 128 + 32 * ring) as usize;
        img[control + 640..control + 664].fill(0); // producer identity, start time, heartbeat
        img[control + 768..control + 800].fill(0); // consumer identity, start time, heartbeat, claiming identity
    }
    img
}

// ---- the tests --------------------------------------------------------------------------------------

#[test]
fn base_fixture_and_golden_hashes_are_current() {
    let built = build_base();
    let golden: Vec<(u64, u64)> = (0..GOLDEN_SEEDS).map(|s| (s, fnv1a64(&mutate(&built, s)))).collect();
    let golden_json = serde_json::json!({
        "generator": "hostile-v1",
        "base_fnv1a64": format!("{:016x}", fnv1a64(&built)),
        "cases": golden.iter().map(|(s, h)| serde_json::json!({"seed": s, "fnv1a64": format!("{h:016x}")})).collect::<Vec<_>>(),
    });
    if std::env::var_os("TASKER_BLESS").is_some() {
        std::fs::write(BASE, &built).unwrap();
        std::fs::write(
            GOLDEN,
            format!("{}\n", serde_json::to_string_pretty(&golden_json).unwrap()),
        )
        .unwrap();
        println!("wrote {BASE} and {GOLDEN}");
        return;
    }
    let committed = std::fs::read(BASE).expect("fixtures/hostile-base.ring (TASKER_BLESS=1 writes it)");
    assert!(
        committed == built,
        "fixtures/hostile-base.ring differs from what the code builds; after a deliberate layout change run \
         TASKER_BLESS=1 cargo test --test hostile, and check the TS side still agrees"
    );
    let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
    assert_eq!(
        on_disk, golden_json,
        "the generator no longer makes fixtures/hostile-golden.json's images"
    );
    // The base itself is a valid region whose messages read back whole.
    let dir = scratch_dir();
    assert_eq!(exercise(&built, &dir), "attached");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn corrupt_regions_give_typed_errors_or_valid_data(seed in any::<u64>()) {
        thread_local! {
            static BASE_IMAGE: Vec<u8> = std::fs::read(BASE).expect("fixtures/hostile-base.ring");
            static DIR: PathBuf = scratch_dir();
        }
        let img = BASE_IMAGE.with(|b| mutate(b, seed));
        DIR.with(|dir| exercise(&img, dir));
    }
}

/// The generator reaches every layer: over a fixed range of seeds some images fail at attach, some attach
/// and fail while reading or writing, some read and write clean. A generator that stopped reaching the
/// frame decoder would fail here, not pass silently.
#[test]
fn the_generator_reaches_attach_decode_and_write() {
    let base = std::fs::read(BASE).expect("fixtures/hostile-base.ring");
    let dir = scratch_dir();
    let mut mix = std::collections::BTreeMap::<String, u32>::new();
    for seed in 0..2000 {
        let outcome = exercise(&mutate(&base, seed), &dir);
        let class = if outcome.starts_with("attach:") {
            outcome.split(['(', ' ', '{']).nth(1).unwrap_or("?").to_string()
        } else {
            outcome
        };
        *mix.entry(class).or_default() += 1;
    }
    println!("outcomes over seeds 0..2000: {mix:?}");
    let count = |pred: &dyn Fn(&str) -> bool| mix.iter().filter(|(k, _)| pred(k)).map(|(_, n)| n).sum::<u32>();
    assert!(
        count(&|k| !k.starts_with("attached")) > 0,
        "some images fail at attach: {mix:?}"
    );
    assert!(
        count(&|k| k.contains("read-error")) > 0,
        "some fail in the frame decoder: {mix:?}"
    );
    assert!(
        count(&|k| k.contains("write-error")) > 0,
        "some fail in the writer: {mix:?}"
    );
    assert!(
        count(&|k| k == "attached") > 0,
        "some still read and write clean: {mix:?}"
    );
}
