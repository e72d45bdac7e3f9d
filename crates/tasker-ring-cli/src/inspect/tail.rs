//! `tasker-ring tail`: follows a ring like `tail -f`. It polls the producer position, decodes the records
//! published since its own last position from a read-only copy, prints one line per message and a rate
//! line every second (to stderr), and notices when the producer has lapped it.
//!
//! It reads records whether or not the consumer has taken them already: a live consumer releases records
//! within microseconds, so `tail` reads released bytes the producer has not reused yet ([`Trust::Recent`]).
//! When it falls so far behind that the producer may have reused them (it was lapped), it says how many
//! bytes it skipped and resumes at the consumer position, a record boundary it can trust.

use super::dump::{parse_position, RingArg, Sink};
use super::{human_bytes, open, InspectError};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tasker_ring::frame::check_span;
use tasker_ring::scan::{
    capture, completion_parts, flags_name, type_name, PartialEnd, Record, RingGeometry, ScanOptions, ScannedMessage,
    Trust,
};
use tasker_ring::{record_type, RingId};

/// Arguments of `tasker-ring tail`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Region file (e.g. /dev/shm/worker-1.ring).
    pub region: PathBuf,
    /// Which ring to follow.
    #[arg(long, value_enum, default_value = "events")]
    pub ring: RingArg,
    /// Poll the producer position every MS milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10)]
    pub interval: u64,
    /// Stop after N messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this long (`30s`, `500ms`, `2m`, or seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Start at this record position instead of the producer position (decimal or 0x-hex; e.g. the consumer
    /// position from `tasker-ring stat`, to see the unconsumed backlog first).
    #[arg(long, value_name = "POS", value_parser = parse_position)]
    pub from: Option<u32>,
    /// Characters of payload shown per line.
    #[arg(long, value_name = "CHARS", default_value_t = 100)]
    pub excerpt: usize,
}

/// Parses `250ms`, `30s`, `2m`, `1h` or a plain number of seconds (fractions allowed).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like 500ms, 30s, 2m)"))?;
    if !value.is_finite() || value < 0.0 || value * scale > 1e9 {
        return Err(format!("`{s}` is not a usable duration"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// One line of a payload: control characters as spaces, cut at `max` characters with `…`.
pub fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// Messages and payload bytes shown since the last rate line.
struct Rate {
    since: Instant,
    msgs: u64,
    bytes: u64,
}

/// The follower's state between polls.
struct Follower {
    pos: u32,
    options: ScanOptions,
    shown: u64,
    total_bytes: u64,
    lapped_bytes: u64,
}

fn line(m: &ScannedMessage<'_>, note: &str, max: usize) -> String {
    let seq = if m.is_fragmented() {
        format!("seq {}..{}", m.first_sequence(), m.sequence())
    } else {
        format!("seq {}", m.sequence())
    };
    let mut body: &[u8] = &m.payload;
    let mut id = String::new();
    if m.record_type == record_type::COMPLETION {
        if let Some((event_id, rest)) = completion_parts(body) {
            id = format!(" event_id={event_id}");
            body = rest;
        }
    }
    let frags = if m.is_fragmented() {
        format!(" ({} fragments)", m.frames.len())
    } else {
        String::new()
    };
    format!(
        "{:#010x} {seq} {} len {}{frags}{note}{id} {}",
        m.first_position(),
        type_name(m.record_type),
        m.payload.len(),
        excerpt(body, max)
    )
}

/// Runs the command.
pub fn run(args: &Args) -> Result<(), InspectError> {
    let view = open(&args.region)?;
    let id: RingId = args.ring.into();
    let geometry = RingGeometry::of(view.layout(), id);
    let start = view.snapshot(id);
    let pos = args.from.unwrap_or(start.producer_position);
    if pos % 8 != 0 || start.producer_position.wrapping_sub(pos) as usize > geometry.capacity {
        return Err(InspectError::Usage(format!(
            "--from {pos:#010x} is not a record position within one capacity ({} B) before the producer position \
             {:#010x}",
            geometry.capacity, start.producer_position
        )));
    }
    let mut f = Follower {
        pos,
        options: ScanOptions::INSPECT,
        shown: 0,
        total_bytes: 0,
        lapped_bytes: 0,
    };
    eprintln!(
        "tail: following the {} ring of {} from position {pos:#010x} (Ctrl-C to stop)",
        id.name(),
        view.path().display()
    );
    let mut out = Sink {
        inner: std::io::stdout().lock(),
    };
    let io = |e: std::io::Error| InspectError::Io(format!("stdout: {e}"));
    let began = Instant::now();
    let mut rate = Rate {
        since: began,
        msgs: 0,
        bytes: 0,
    };
    let interval = Duration::from_millis(args.interval.max(1));
    loop {
        if args.count.is_some_and(|n| f.shown >= n) || args.duration.is_some_and(|d| began.elapsed() >= d) {
            break;
        }
        let elapsed = rate.since.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let secs = elapsed.as_secs_f64();
            eprintln!(
                "tail {}: {:.0} msgs/s, {}/s; total {} msgs, {}; lapped {}",
                id.name(),
                rate.msgs as f64 / secs,
                human_bytes((rate.bytes as f64 / secs) as u64),
                f.shown,
                human_bytes(f.total_bytes),
                human_bytes(f.lapped_bytes)
            );
            rate = Rate {
                since: Instant::now(),
                msgs: 0,
                bytes: 0,
            };
        }
        if view.snapshot(id).producer_position == f.pos {
            std::thread::sleep(interval);
            continue;
        }
        let cap = capture(&view, id, Some(f.pos), Trust::Recent);
        if check_span(f.pos, cap.end, geometry.capacity).is_err() || cap.dropped() > 0 {
            let now = view.snapshot(id);
            let (c, p) = (now.consumer_position, now.producer_position);
            if check_span(c, p, geometry.capacity).is_err() {
                return Err(InspectError::CorruptFrames(format!(
                    "corrupt frames: {} ring positions: consumer {c:#010x} and producer {p:#010x} are not within \
                     one capacity ({} B) of each other",
                    id.name(),
                    geometry.capacity
                )));
            }
            let from = f.pos;
            lapped(&mut out, &mut f, from, c).map_err(io)?;
            continue;
        }
        let c2 = cap.after.consumer_position;
        let mut next = (cap.end, None::<ScanOptions>);
        let mut scanner = cap.scanner(f.options);
        for record in scanner.by_ref() {
            if args.count.is_some_and(|n| f.shown >= n) {
                // Stopping: where the scan ends no longer matters.
                break;
            }
            let text = match &record {
                Record::Padding { .. } => continue,
                Record::Message(m) => line(m, "", args.excerpt),
                Record::Skippable(m) => line(m, " (skippable)", args.excerpt),
                Record::Abort(a) => format!(
                    "{:#010x} seq {} {} {} abort marker: the partial message before it is dropped",
                    a.position,
                    a.sequence,
                    type_name(a.record_type),
                    flags_name(a.flags)
                ),
                Record::Partial {
                    message,
                    begins_before,
                    ends: PartialEnd::Unpublished,
                } => {
                    // Not whole yet: decode it again from its start on the next poll.
                    next = (
                        message.first_position(),
                        Some(ScanOptions {
                            expected_sequence: Some(message.first_sequence()),
                            mid_message: *begins_before,
                        }),
                    );
                    break;
                }
                Record::Partial {
                    message,
                    begins_before,
                    ends,
                } => {
                    let why = match (begins_before, ends) {
                        (true, _) => " PARTIAL (began before tail's start)",
                        (false, PartialEnd::Aborted) => " PARTIAL (aborted)",
                        _ => " PARTIAL",
                    };
                    line(message, why, args.excerpt)
                }
                Record::Corrupt { position, error } => {
                    // A record the consumer has released passed the consumer's own checks: if it fails
                    // ours, the producer reused its bytes while we copied. That is a lap, not corruption.
                    let released = c2.wrapping_sub(*position) as usize;
                    if released > 0 && released <= geometry.capacity {
                        lapped(&mut out, &mut f, *position, c2).map_err(io)?;
                        next = (c2, Some(ScanOptions::INSPECT));
                        break;
                    }
                    let data_offset = *position as usize & (geometry.capacity - 1);
                    let file_offset = view.layout().rings[id.index()].data_offset + data_offset as u64;
                    writeln!(
                        out,
                        "{position:#010x} CORRUPT at data offset {data_offset:#x} (file offset {file_offset:#x}): {error}"
                    )
                    .map_err(io)?;
                    return Err(InspectError::CorruptFrames(format!(
                        "corrupt frames: {} ring at position {position:#010x} (data offset {data_offset:#x}, \
                         file offset {file_offset:#x}): {error}",
                        id.name()
                    )));
                }
            };
            writeln!(out, "{text}").map_err(io)?;
            if let Record::Message(m) | Record::Skippable(m) | Record::Partial { message: m, .. } = &record {
                f.shown += 1;
                f.total_bytes += m.payload.len() as u64;
                rate.msgs += 1;
                rate.bytes += m.payload.len() as u64;
            }
        }
        let (pos, options) = next;
        f.options = options.unwrap_or(ScanOptions {
            expected_sequence: scanner.next_sequence().or(f.options.expected_sequence),
            mid_message: false,
        });
        f.pos = pos;
        if pos != cap.end {
            // Waiting for the rest of a message: do not spin on the same bytes.
            std::thread::sleep(interval);
        }
    }
    out.flush().map_err(io)?;
    eprintln!(
        "tail {}: {} msgs, {} in {:.1} s; lapped {}",
        id.name(),
        f.shown,
        human_bytes(f.total_bytes),
        began.elapsed().as_secs_f64(),
        human_bytes(f.lapped_bytes)
    );
    Ok(())
}

/// Reports a lap at `from` and resumes at the consumer position `consumer` (a record boundary every reader
/// trusts).
fn lapped<W: Write>(out: &mut W, f: &mut Follower, from: u32, consumer: u32) -> std::io::Result<()> {
    let skipped = consumer.wrapping_sub(from);
    writeln!(
        out,
        "!! lapped: the producer may have reused the bytes from {from:#010x}; skipped {skipped} B, resuming at the \
         consumer position {consumer:#010x}"
    )?;
    f.lapped_bytes += skipped as u64;
    f.pos = consumer;
    f.options = ScanOptions::INSPECT;
    Ok(())
}
