//! Boundary values, exhaustively (issue 20): every integer field of the header, the ring descriptors, both
//! control blocks and every frame header in the hostile base image (`fixtures/hostile-base.ring`) is set,
//! one case at a time, to each edge of its width (0, 1, 2^31, 2^32, 2^53, 2^63, 2^64, each minus one, and
//! 2^15, 2^16 for u16 fields, as far as the width holds them) and to offsets near the mapping's end; the
//! position fields also to their own value one, eight, a capacity and a capacity plus eight away, and the
//! frame lengths to the distance to the data area's end and around it. Then the image is cut just short of
//! each data area's end and of the mapping's end. Each case goes through the same oracle as
//! `tests/hostile.rs`: a typed error or valid data, never a panic (every shared-memory access asserts its
//! range, and under `--profile checked` every arithmetic overflow panics too).
//!
//! The random generator of `tests/hostile.rs` draws its u32 edge values at random fields, several at a time;
//! this one is deterministic and reaches every field with every edge, u64 fields included.

mod support_hostile;

use support_hostile::{exercise, scratch_dir, u32_at, u64_at};
use tasker_ring::layout::{align_frame, record_type};

const BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hostile-base.ring");

/// An integer field: file offset and width in bytes.
type Field = (usize, usize);

/// The edges of each width, as far as the width holds them.
fn edges(width: usize) -> Vec<u64> {
    let mut v = vec![
        0,
        1,
        (1 << 15) - 1,
        1 << 15,
        (1 << 16) - 1,
        (1 << 31) - 1,
        1 << 31,
        (1 << 32) - 1,
        1 << 32,
        (1 << 53) - 1,
        1 << 53,
        (1 << 63) - 1,
        1 << 63,
        u64::MAX, // 2^64 - 1; 2^64 itself wraps to 0, above
    ];
    if width < 8 {
        v.retain(|x| *x < 1u64 << (8 * width));
    }
    if width != 2 {
        v.retain(|x| !matches!(*x, 0x7fff | 0x8000 | 0xffff));
    }
    v
}

/// Offsets near the end of a mapping of `len` bytes (for fields wide enough to hold them).
fn near_end(len: u64) -> Vec<u64> {
    let mut v: Vec<u64> = [1u64, 8, 16, 128, 1024, 4096]
        .iter()
        .filter_map(|k| len.checked_sub(*k))
        .collect();
    v.extend([len, len + 1, len + 8, len + 128]);
    v
}

fn put(img: &mut [u8], (off, width): Field, value: u64) {
    img[off..off + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

fn get(img: &[u8], (off, width): Field) -> u64 {
    let mut b = [0u8; 8];
    b[..width].copy_from_slice(&img[off..off + width]);
    u64::from_le_bytes(b)
}

/// The fields of the header (layout-spec.md section 3), reserved words included.
fn header_fields() -> Vec<Field> {
    vec![
        (8, 2),  // layout_major
        (10, 2), // layout_minor
        (12, 4), // ready
        (16, 8), // feature_bits
        (24, 4), // header_size
        (28, 4), // ring_count
        (32, 8), // region_size
        (40, 4), // max_frame_size
        (44, 4),
        (48, 8), // max_message_size
        (56, 4), // creator_pid
        (60, 4),
        (64, 8), // creator_start_time
        (72, 8), // created_at_unix_ms
    ]
}

/// Ring `ring`'s descriptor (section 3.2): control and data offsets, capacity, ring id, initial position.
fn descriptor_fields(ring: usize) -> Vec<Field> {
    let d = 128 + 32 * ring;
    vec![(d, 8), (d + 8, 8), (d + 16, 4), (d + 20, 4), (d + 24, 4), (d + 28, 4)]
}

/// A control block's words (section 4), relative to its start; the first three are positions.
const CONTROL_U32: [usize; 8] = [0, 128, 132, 384, 256, 388, 512, 516];
const CONTROL_U64: [usize; 17] = [
    392, 400, 408, 416, 424, 432, 520, 528, 536, 544, 640, 648, 656, 768, 776, 784, 792,
];

/// One ring's layout in the base image: control block, data area, capacity, and the readable records
/// (from the consumer position to the producer position) as (file offset, bytes to the data area's end).
struct Ring {
    control: usize,
    data: usize,
    capacity: usize,
    records: Vec<(usize, u64)>,
}

fn ring(base: &[u8], i: usize) -> Ring {
    let d = 128 + 32 * i;
    let (control, data, capacity) = (
        u64_at(base, d) as usize,
        u64_at(base, d + 8) as usize,
        u32_at(base, d + 16) as usize,
    );
    let (mut pos, end) = (u32_at(base, control + 128), u32_at(base, control));
    let mut records = Vec::new();
    while pos != end {
        let at = pos as usize & (capacity - 1);
        let to_end = (capacity - at) as u64;
        let off = data + at;
        records.push((off, to_end));
        let step = if u16::from_le_bytes([base[off + 4], base[off + 5]]) == record_type::PADDING {
            to_end as u32
        } else {
            align_frame(u32_at(base, off) as usize) as u32
        };
        pos = pos.wrapping_add(step);
    }
    Ring {
        control,
        data,
        capacity,
        records,
    }
}

/// Every case: (what, image).
fn cases(base: &[u8]) -> Vec<(String, Vec<u8>)> {
    let len = base.len() as u64;
    let rings = [ring(base, 0), ring(base, 1)];
    let mut out = Vec::new();
    let mut set = |what: String, field: Field, values: &[u64]| {
        let mut seen = std::collections::BTreeSet::new();
        for &v in values {
            let v = if field.1 < 8 {
                v & ((1u64 << (8 * field.1)) - 1)
            } else {
                v
            };
            if seen.insert(v) {
                let mut img = base.to_vec();
                put(&mut img, field, v);
                out.push((format!("{what} = {v:#x}"), img));
            }
        }
    };
    let wide = |width: usize| -> Vec<u64> {
        let mut v = edges(width);
        if width >= 4 {
            v.extend(near_end(len));
        }
        v
    };
    for f in header_fields() {
        set(format!("header @{}", f.0), f, &wide(f.1));
    }
    for (i, r) in rings.iter().enumerate() {
        for f in descriptor_fields(i) {
            set(format!("descriptor {i} @{}", f.0), f, &wide(f.1));
        }
        for (n, &word) in CONTROL_U32.iter().enumerate() {
            let f = (r.control + word, 4);
            let mut v = wide(4);
            if n < 3 {
                // Positions: one, eight, a capacity and a capacity plus eight either side of their own value.
                let own = get(base, f) as u32;
                for k in [1u32, 8, r.capacity as u32, r.capacity as u32 + 8] {
                    v.extend([own.wrapping_add(k) as u64, own.wrapping_sub(k) as u64]);
                }
            }
            set(format!("control {i} +{word}"), f, &v);
        }
        for &word in &CONTROL_U64 {
            set(format!("control {i} +{word}"), (r.control + word, 8), &wide(8));
        }
        for (n, &(off, to_end)) in r.records.iter().enumerate() {
            let mut lengths = wide(4);
            lengths.extend([to_end - 8, to_end - 1, to_end, to_end + 1, to_end + 8]);
            lengths.extend([r.capacity as u64, r.capacity as u64 + 8]);
            set(format!("ring {i} record {n} length"), (off, 4), &lengths);
            set(format!("ring {i} record {n} type"), (off + 4, 2), &edges(2));
            set(format!("ring {i} record {n} flags"), (off + 6, 2), &edges(2));
            set(format!("ring {i} record {n} sequence"), (off + 8, 8), &edges(8));
        }
    }
    // The file cut just short of each data area's end and of the mapping's end.
    let mut cuts: Vec<u64> = near_end(len).into_iter().filter(|c| *c < len).collect();
    for r in &rings {
        let end = (r.data + r.capacity) as u64;
        cuts.extend([end - 1, end - 8, end - 4096].into_iter().filter(|c| *c < len));
    }
    cuts.sort_unstable();
    cuts.dedup();
    for c in cuts {
        out.push((format!("cut at {c}"), base[..c as usize].to_vec()));
    }
    out
}

#[test]
fn every_integer_field_at_every_boundary_gives_typed_errors_or_valid_data() {
    let base = std::fs::read(BASE).expect("fixtures/hostile-base.ring");
    let dir = scratch_dir();
    let cases = cases(&base);
    let records: usize = [ring(&base, 0), ring(&base, 1)].iter().map(|r| r.records.len()).sum();
    let mut mix = std::collections::BTreeMap::<String, u32>::new();
    let mut panics = Vec::new();
    for (what, img) in &cases {
        let Ok(outcome) = std::panic::catch_unwind(|| exercise(img, &dir)) else {
            panics.push(what.as_str());
            continue;
        };
        let class = if outcome.starts_with("attach:") {
            "attach error".to_string()
        } else {
            outcome
        };
        *mix.entry(class).or_default() += 1;
    }
    println!("{} boundary cases over {records} frame records: {mix:?}", cases.len());
    assert!(
        panics.is_empty(),
        "{} cases panicked instead of giving a typed error or valid data: {panics:?}",
        panics.len()
    );
    // The enumeration reaches every layer: a field list that stopped covering one would show here.
    let count = |pred: &dyn Fn(&str) -> bool| mix.iter().filter(|(k, _)| pred(k)).map(|(_, n)| n).sum::<u32>();
    assert!(count(&|k| k == "attach error") > 0, "{mix:?}");
    assert!(count(&|k| k.contains("read-error")) > 0, "{mix:?}");
    assert!(count(&|k| k.contains("write-error")) > 0, "{mix:?}");
    assert!(count(&|k| k == "attached") > 0, "{mix:?}");
    assert!(records >= 8, "the base image's readable records were walked: {records}");
}
