//! The checked message stream the cross-process tests send (`cross_process`, `kill_loop`): message `i`
//! carries its counter, a deterministic body and an FNV-1a checksum, so a reader can tell a gap, a
//! reorder, a torn or a foreign message from the real thing.
#![allow(dead_code)]

/// FNV-1a, 32 bits.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5u32, |h, &b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// Deterministic body sizes: mostly under 1500 bytes, 1 in 64 between 4 and 12 KiB (fragmented when the
/// ring's frames are smaller).
pub fn size_for(i: u64) -> usize {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    if x % 64 == 0 {
        4096 + (x >> 8) as usize % 8192
    } else {
        (x >> 8) as usize % 1500
    }
}

/// Message `i`: counter (8 bytes) | body | FNV-1a of counter and body (4 bytes).
pub fn payload(i: u64, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&i.to_le_bytes());
    let n = size_for(i);
    buf.extend((0..n).map(|k| (k as u64 ^ i) as u8));
    let sum = fnv1a(buf);
    buf.extend_from_slice(&sum.to_le_bytes());
}

/// Checks a received message whole and returns its counter; panics (naming what is wrong) otherwise.
pub fn check(p: &[u8]) -> u64 {
    assert!(p.len() >= 12, "message too short: {} bytes", p.len());
    let (body, sum) = p.split_at(p.len() - 4);
    let counter = u64::from_le_bytes(body[..8].try_into().unwrap());
    assert_eq!(body.len() - 8, size_for(counter), "length of message {counter}");
    assert_eq!(
        fnv1a(body),
        u32::from_le_bytes(sum.try_into().unwrap()),
        "checksum of message {counter}"
    );
    counter
}

/// Two threads stream a checked sequence through one ring, the producer on a spawned thread: gapless and
/// intact (a small ring wraps thousands of times; with 1 KiB frames a third of the messages fragment).
/// Its main reader is scripts/tsan: every payload byte is written by one thread and read by the other, so
/// a missing Release/Acquire pair on the positions is a report. `TASKER_STRESS_MESSAGES` (default 20 000).
pub fn two_threads<M>(mut p: tasker_ring::Producer<M>, mut c: tasker_ring::Consumer<M>)
where
    M: tasker_ring::RingMemory + Send + 'static,
{
    use std::time::{Duration, Instant};
    let n: u64 = std::env::var("TASKER_STRESS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..n {
            payload(i, &mut buf);
            p.write_blocking(tasker_ring::record_type::STEP_EVENT, &buf, Duration::from_secs(60))
                .expect("write");
        }
    });
    let mut next = 0u64;
    let started = Instant::now();
    while next < n {
        let got = c
            .read_batch(64, |m| {
                assert_eq!(check(m.payload), next, "gap or reorder");
                next += 1;
            })
            .expect("read");
        if got == 0 {
            assert!(started.elapsed() < Duration::from_secs(120), "stalled at {next}");
            std::thread::yield_now();
        }
    }
    writer.join().unwrap();
}
