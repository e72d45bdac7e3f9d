//! Prints the annotated hex dump of `layout-spec.md`, section "Worked example", from the real code.
//!
//! Creates a region in the temp dir whose events ring holds 256 bytes and whose positions start 64 bytes
//! below 2^32, writes two step events, reads the first one, then writes a 36-byte message: it pads the
//! last 8 bytes of the ring, wraps the positions past 2^32 to 0 and is split into three fragments.
//! Run with `cargo run --example spec_hexdump`.

use std::error::Error;
use tasker_ring::frame::FrameHeader;
use tasker_ring::layout::{control, flags, record_type, FRAME_ALIGN, FRAME_HEADER};
use tasker_ring::{Region, RegionConfig, RingId};

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::temp_dir().join(format!("spec-hexdump-{}.ring", std::process::id()));
    let config = RegionConfig {
        events_capacity: 256,
        completions_capacity: 64,
        max_frame_size: 32,
        max_message_size: 1024,
        initial_position: u32::MAX - 63,
    };
    let region = Region::create(&path, &config)?;
    let outcome = run(&region);
    region.unlink()?;
    outcome
}

fn run(region: &Region) -> Result<(), Box<dyn Error>> {
    let mut producer = region.producer(RingId::Events)?;
    let mut consumer = region.consumer(RingId::Events)?;
    producer.try_write(record_type::STEP_EVENT, br#"{"n":1}"#)?;
    producer.try_write(record_type::STEP_EVENT, br#"{"n":2,"k":"x"}"#)?;
    let first = consumer.read()?.ok_or("the first event is published")?;
    assert_eq!(&*first.payload(), br#"{"n":1}"#);
    drop(first); // releases it: the consumer position moves past it
    producer.try_write(record_type::STEP_EVENT, br#"{"msg":"fragmented across 3 frames"}"#)?;

    // The mapping is MAP_SHARED, so the file's bytes are the ring's bytes.
    let file = std::fs::read(region.path())?;
    let ring = region.layout().rings[RingId::Events.index()];
    let ctl = ring.control_offset as usize;
    println!("# region header (first 256 bytes)");
    dump(&file, 0, 256, false, |at| header_note(&file, at));
    println!("\n# events control block (at {ctl:#x}; rows without a field elided as ...)");
    dump(&file, ctl, ctl + control::SIZE, true, |at| control_note(&file, ctl, at));
    let data = ring.data_offset as usize;
    let capacity = ring.capacity as usize;
    let notes = records(&file, ring.initial_position, ctl, data, capacity);
    println!("\n# events data area (at {data:#x}, {capacity} bytes)");
    dump(&file, data, data + capacity, false, |at| {
        notes
            .iter()
            .filter(|(off, _)| (at - data..at - data + 16).contains(off))
            .map(|(_, note)| note.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    });
    drop((producer, consumer));
    Ok(())
}

/// Little-endian unsigned integer of `len` bytes at `at`.
fn le(file: &[u8], at: usize, len: usize) -> u64 {
    file[at..at + len]
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Prints `from..to` as xxd-style rows of 16 bytes with a note each. A run of rows without a note prints
/// as one `*` if they are all zero, or as one `...` if `elide` is set.
fn dump(file: &[u8], from: usize, to: usize, elide: bool, note: impl Fn(usize) -> String) {
    let mut skipped = false;
    for at in (from..to).step_by(16) {
        let bytes = &file[at..at + 16];
        let note = note(at);
        if note.is_empty() && (elide || bytes.iter().all(|&b| b == 0)) {
            if !skipped {
                println!("{}", if elide { "..." } else { "*" });
            }
            skipped = true;
            continue;
        }
        skipped = false;
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = bytes
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        let (left, right) = hex.split_at(8);
        let row = format!("{at:08x}: {}  {}  {text}  {note}", left.join(" "), right.join(" "));
        println!("{}", row.trim_end());
    }
}

fn header_note(f: &[u8], at: usize) -> String {
    match at {
        0x00 => format!(
            "magic \"TSKRRING\", major {}, minor {}, ready {:#010x} (\"RDY!\")",
            le(f, 8, 2),
            le(f, 10, 2),
            le(f, 12, 4)
        ),
        0x10 => format!(
            "feature_bits {}, header_size {}, ring_count {}",
            le(f, 16, 8),
            le(f, 24, 4),
            le(f, 28, 4)
        ),
        0x20 => format!(
            "region_size {}, max_frame_size {}, reserved",
            le(f, 32, 8),
            le(f, 40, 4)
        ),
        0x30 => format!(
            "max_message_size {}, creator_pid {}, reserved",
            le(f, 48, 8),
            le(f, 56, 4)
        ),
        0x40 => format!(
            "creator_start_time {}, created_at_unix_ms {}",
            le(f, 64, 8),
            le(f, 72, 8)
        ),
        0x50 => "reserved (zero) to 0x80".into(),
        0x80 | 0xa0 => format!(
            "ring {}: control_offset {:#x}, data_offset {:#x}",
            (at - 0x80) / 32,
            le(f, at, 8),
            le(f, at + 8, 8)
        ),
        0x90 | 0xb0 => format!(
            "ring {}: capacity {}, ring_id {}, initial_position {:#010x}, reserved",
            (at - 0x90) / 32,
            le(f, at, 4),
            le(f, at + 4, 4),
            le(f, at + 8, 4)
        ),
        0xc0 => "unused (zero) to the first control block".into(),
        _ => String::new(),
    }
}

fn control_note(f: &[u8], ctl: usize, at: usize) -> String {
    let u32_at = |rel: usize| le(f, ctl + rel, 4);
    let u64_at = |rel: usize| le(f, ctl + rel, 8);
    let (ps, cs) = (control::PRODUCER_STATS, control::CONSUMER_STATS);
    let (pp, cp) = (control::PRODUCER_PEER, control::CONSUMER_PEER);
    match at - ctl {
        control::PRODUCER_POSITION => format!("line 0: producer_position {:#010x}", u32_at(0)),
        control::CONSUMER_POSITION => format!(
            "line 1: consumer_position {:#010x}, consumer_claim {:#010x} (1.1)",
            u32_at(128),
            u32_at(control::CONSUMER_CLAIM)
        ),
        control::CONSUMER_SLEEPING => format!("line 2: consumer_sleeping {}", u32_at(256)),
        r if r == ps => format!(
            "line 3: cached_consumer_position {:#010x}, open_message {}, next_sequence {}",
            u32_at(ps),
            u32_at(ps + 4),
            u64_at(ps + 8)
        ),
        r if r == ps + 16 => format!("frames {}, bytes {}", u64_at(r), u64_at(r + 8)),
        r if r == ps + 32 => format!("pads {}, full_stalls {}", u64_at(r), u64_at(r + 8)),
        r if r == ps + 48 => format!("doorbells {}", u64_at(r)),
        r if r == cs => format!(
            "line 4: cached_producer_position {:#010x}, open_message {}, next_sequence {}",
            u32_at(cs),
            u32_at(cs + 4),
            u64_at(cs + 8)
        ),
        r if r == cs + 16 => format!("frames {}, bytes {}", u64_at(r), u64_at(r + 8)),
        r if r == cs + 32 => format!("sleeps {}", u64_at(r)),
        r if r == pp || r == cp => format!(
            "line {}: {} identity: pid {}, start_time low 32 bits {}; start_time {}",
            r / 128,
            if r == pp { "producer" } else { "consumer" },
            u32_at(r),
            u32_at(r + 4),
            u64_at(r + 8)
        ),
        r if r == pp + 16 => format!("heartbeat_unix_ms {}", u64_at(r)),
        r if r == cp + 16 => format!(
            "heartbeat_unix_ms {}, claiming_identity: pid {} (1.1)",
            u64_at(r),
            u32_at(control::CLAIMING_IDENTITY)
        ),
        _ => String::new(),
    }
}

/// Walks the records from the ring's first position to the producer position: (data offset, note).
fn records(f: &[u8], start: u32, ctl: usize, data: usize, capacity: usize) -> Vec<(usize, String)> {
    let end = le(f, ctl + control::PRODUCER_POSITION, 4) as u32;
    let consumed = (le(f, ctl + control::CONSUMER_POSITION, 4) as u32).wrapping_sub(start);
    let mut out = Vec::new();
    let mut pos = start;
    while pos != end {
        let off = pos as usize & (capacity - 1);
        let prefix: [u8; FRAME_ALIGN] = f[data + off..data + off + FRAME_ALIGN].try_into().unwrap();
        let h = FrameHeader::decode_prefix(prefix);
        let mut note = format!("pos {pos:#010x}: len {} type {:#06x}", h.length, h.record_type);
        if h.record_type == record_type::PADDING {
            note.push_str(" padding");
            if h.length as usize == FRAME_ALIGN {
                note.push_str(" (8 bytes: no sequence)");
            }
        } else {
            let seq = le(f, data + off + FRAME_ALIGN, 8);
            let names = [(flags::BEGIN, "BEGIN"), (flags::END, "END"), (flags::ABORT, "ABORT")];
            let set: Vec<&str> = names
                .iter()
                .filter(|(bit, _)| h.flags & bit != 0)
                .map(|(_, name)| *name)
                .collect();
            let set = if set.is_empty() { "0".to_string() } else { set.join("|") };
            let payload = h.length as usize - FRAME_HEADER;
            note.push_str(&format!(" flags {set} seq {seq}, payload {payload}"));
        }
        if pos.wrapping_sub(start) < consumed {
            note.push_str(" (consumed)");
        }
        out.push((off, note));
        pos = pos.wrapping_add(h.footprint() as u32);
    }
    out
}
