//! The "hostile-v1" corrupt-region generator and the oracle that uses a region image, shared by
//! `tests/hostile.rs` (proptest) and the cargo-fuzz target `fuzz/fuzz_targets/attach_raw.rs`;
//! `ts-reader/tests/hostile.test.ts` implements the same generator (`fixtures/hostile-golden.json` checks).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tasker_ring::{record_type, Region, RingId};

// ---- the generator (hostile-v1) ---------------------------------------------------------------------

/// splitmix64.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values written into u32 fields: edges of sizes, alignments and signedness; index 21 draws a random one.
pub const BOUNDARY: [u32; 21] = [
    0,
    1,
    7,
    8,
    15,
    16,
    31,
    32,
    63,
    64,
    128,
    255,
    256,
    1024,
    4095,
    4096,
    4097,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fff8,
    0xffff_ffff,
];

pub fn boundary(r: &mut SplitMix) -> u32 {
    match r.below(BOUNDARY.len() + 1) {
        i if i < BOUNDARY.len() => BOUNDARY[i],
        _ => r.next() as u32,
    }
}

/// u32 fields of the header (layout-spec.md section 3) and of the two ring descriptors (section 3.2).
pub fn header_fields() -> Vec<usize> {
    let mut f = vec![8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 52, 56];
    for ring in 0..2 {
        f.extend([0, 4, 8, 12, 16, 20, 24].map(|o| 128 + 32 * ring + o));
    }
    f
}

/// u32 words of a control block (section 4): positions, sleeping, both statistics lines, both identities.
pub const CONTROL_WORDS: [usize; 14] = [0, 128, 256, 384, 388, 392, 512, 516, 520, 524, 640, 644, 768, 772];

/// Offsets in a frame header (section 6.1): length, type and flags, sequence (low word).
pub const FRAME_WORDS: [usize; 3] = [0, 4, 8];

pub fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

pub fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

pub fn put_u32(img: &mut [u8], off: usize, v: u32) {
    if off + 4 <= img.len() {
        img[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// The corrupted image for `seed`: 1 to 4 corruptions, each one of six kinds, offsets taken from the base
/// image's own descriptors.
pub fn mutate(base: &[u8], seed: u64) -> Vec<u8> {
    let rings: Vec<(usize, usize, usize)> = (0..2)
        .map(|i| {
            let d = 128 + 32 * i;
            (
                u64_at(base, d) as usize,
                u64_at(base, d + 8) as usize,
                u32_at(base, d + 16) as usize,
            )
        })
        .collect();
    let fields = header_fields();
    let mut r = SplitMix(seed);
    let mut img = base.to_vec();
    let n = 1 + r.below(4);
    for _ in 0..n {
        let kind = r.below(6);
        let len = img.len();
        match kind {
            0 if len > 0 => {
                let off = r.below(len);
                img[off] = r.next() as u8;
            }
            1 => {
                let off = fields[r.below(fields.len())];
                let v = boundary(&mut r);
                put_u32(&mut img, off, v);
            }
            2 => {
                let (control, _, _) = rings[r.below(2)];
                let off = control + CONTROL_WORDS[r.below(CONTROL_WORDS.len())];
                let v = boundary(&mut r);
                put_u32(&mut img, off, v);
            }
            3 => {
                let (_, data, capacity) = rings[r.below(2)];
                let off = data + 8 * r.below(capacity / 8) + FRAME_WORDS[r.below(FRAME_WORDS.len())];
                let v = boundary(&mut r);
                put_u32(&mut img, off, v);
            }
            4 => {
                let keep = r.below(len + 1);
                img.truncate(keep);
            }
            5 if len > 0 => {
                let off = r.below(len);
                let run = 1 + r.below(64);
                for b in img.iter_mut().skip(off).take(run) {
                    *b = r.next() as u8;
                }
            }
            _ => {}
        }
    }
    img
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A per-process scratch directory for region files (tmpfs when it is the temp dir).
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tasker-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- the oracle -------------------------------------------------------------------------------------

/// Attaches `img` as a region file and uses every role; returns a short description of what happened.
/// Any panic inside is the failure this test looks for.
pub fn exercise(img: &[u8], dir: &Path) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!("case-{}.ring", N.fetch_add(1, Ordering::Relaxed)));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        f.write_all(img).unwrap();
    }
    let outcome = match Region::attach(&path) {
        Err(e) => format!("attach: {e:?}").chars().take(40).collect(),
        Ok(region) => {
            let mut outcome = String::from("attached");
            for id in RingId::ALL {
                if let Ok(mut c) = region.consumer(id) {
                    for _ in 0..1000 {
                        match c.read_batch(64, |m| {
                            std::hint::black_box(m.payload.iter().map(|&b| b as u64).sum::<u64>());
                        }) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(_) => {
                                outcome.push_str(" read-error");
                                break;
                            }
                        }
                    }
                }
                if let Ok(mut p) = region.producer(id) {
                    if p.try_write(record_type::STEP_EVENT, b"{\"probe\":true}").is_err() {
                        outcome.push_str(" write-error");
                    }
                }
            }
            outcome
        }
    };
    std::fs::remove_file(&path).unwrap();
    outcome
}
