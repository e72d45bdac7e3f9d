//! `tasker-ring dump`: decodes the unconsumed records of a ring (from the consumer position to the producer
//! position) without consuming them: position, sequence, type, flags, length and payload of each message
//! (fragments reassembled), padding marked, corrupt records shown with their offsets.
//!
//! The decoding is the library's [`tasker_ring::scan`]: the checks of layout-spec.md 9.2 and the rules of
//! 9.3 over a copy of the ring, re-validated against the positions after copying. A corrupt record stops
//! the decoding of its ring (its length cannot be trusted, so the next record cannot be found); the other
//! ring is still dumped, and the command exits 9.
//!
//! Output goes through [`text`] (written as the records are decoded) or [`json`] (one document at the
//! end); what a payload is (JSON, other text, binary) is decided once, here, for both.

mod json;
mod text;

use super::{open, InspectError};
use json::{corrupt_json, frame_json, message_json, CorruptJson, DumpJson, RecordJson, RingJson};
use std::io::Write;
use std::path::PathBuf;
use tasker_ring::layout::record_type;
use tasker_ring::scan::{capture, completion_parts, flags_name, type_name, Record, ScanOptions, Trust};
use tasker_ring::{RegionView, RingId};
use text::{partial_note, plural, Text};

/// Which ring (`--ring`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingArg {
    /// Step events, Rust -> TS.
    Events,
    /// Completions, TS -> Rust.
    Completions,
}

impl From<RingArg> for RingId {
    fn from(r: RingArg) -> Self {
        match r {
            RingArg::Events => RingId::Events,
            RingArg::Completions => RingId::Completions,
        }
    }
}

/// Arguments of `tasker-ring dump`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Region file (e.g. /dev/shm/worker-1.ring).
    pub region: PathBuf,
    /// Dump only this ring (default: events, then completions).
    #[arg(long, value_enum)]
    pub ring: Option<RingArg>,
    /// Show at most N records per ring (messages, partial messages, abort markers; padding does not count).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Start at this record position (decimal or 0x-hex, as dump prints them) instead of the consumer
    /// position; it must lie between the consumer and producer positions. Needs --ring.
    #[arg(long, value_name = "POS", value_parser = parse_position, requires = "ring")]
    pub from: Option<u32>,
    /// Show payloads as a hex dump instead of pretty-printed JSON.
    #[arg(long)]
    pub hex: bool,
    /// Print one JSON document instead of text (shape: docs/inspector-dump-tail.md).
    #[arg(long)]
    pub json: bool,
}

/// Parses a position: decimal, or hexadecimal with a `0x` prefix.
pub fn parse_position(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(&hex.replace('_', ""), 16),
        None => s.replace('_', "").parse::<u32>(),
    };
    parsed.map_err(|e| format!("`{s}` is not a position (a u32, decimal or 0x-hex): {e}"))
}

/// How a payload is shown.
enum Body<'p> {
    /// Valid JSON text.
    Json(&'p str),
    Text(&'p str),
    Hex(&'p [u8]),
}

/// Splits a payload into the completion event id (if it is one) and the body, and classifies the body.
fn classify(record_type_code: u16, payload: &[u8], hex: bool) -> (Option<&str>, Body<'_>) {
    let (event_id, body) = match record_type_code {
        record_type::COMPLETION => match completion_parts(payload) {
            Some((id, rest)) => (Some(id), rest),
            None => (None, payload),
        },
        _ => (None, payload),
    };
    if hex {
        return (event_id, Body::Hex(body));
    }
    match std::str::from_utf8(body) {
        Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => (event_id, Body::Json(text)),
        Ok(text) => (event_id, Body::Text(text)),
        Err(_) => (event_id, Body::Hex(body)),
    }
}

/// What a dump found in one ring.
struct RingOutcome {
    corrupt: Option<(CorruptJson, String)>,
}

fn dump_ring<W: Write>(
    view: &RegionView,
    id: RingId,
    args: &Args,
    out: &mut W,
    json: Option<&mut Vec<RingJson>>,
) -> Result<RingOutcome, InspectError> {
    let io = |e: std::io::Error| InspectError::Io(format!("stdout: {e}"));
    let geometry = tasker_ring::scan::RingGeometry::of(view.layout(), id);
    if let Some(from) = args.from {
        let s = view.snapshot(id);
        let (c, p) = (s.consumer_position, s.producer_position);
        if from % 8 != 0 {
            return Err(InspectError::Usage(format!(
                "--from {from:#010x} is not a record position (positions are multiples of 8)"
            )));
        }
        // With corrupt positions (more than a capacity apart) the scan reports them; no range to check.
        let sane = p.wrapping_sub(c) as usize <= geometry.capacity;
        if sane && from.wrapping_sub(c) > p.wrapping_sub(c) {
            return Err(InspectError::Usage(format!(
                "--from {from:#010x} is outside the unconsumed part of the {} ring ({c:#010x} .. {p:#010x})",
                id.name()
            )));
        }
    }
    let cap = capture(view, id, args.from, Trust::Unconsumed);
    let descriptor = view.layout().rings[id.index()];
    let mut records_json = Vec::new();
    let mut text = Text { out, hex: args.hex };
    if json.is_none() {
        let used = cap.before.producer_position.wrapping_sub(cap.before.consumer_position);
        writeln!(
            text.out,
            "{} ring of {}: capacity {} B, consumer {:#010x}, producer {:#010x}, {} B unconsumed",
            id.name(),
            view.path().display(),
            geometry.capacity,
            cap.before.consumer_position,
            cap.before.producer_position,
            used
        )
        .map_err(io)?;
        if cap.requested != cap.before.consumer_position {
            writeln!(text.out, "  starting at --from {:#010x}", cap.requested).map_err(io)?;
        }
        if cap.dropped() > 0 {
            writeln!(
                text.out,
                "  note: {} B from {:#010x} were consumed while copying and are not shown (they may be reused)",
                cap.dropped(),
                cap.requested
            )
            .map_err(io)?;
        }
    }
    let mut shown = 0usize;
    let mut truncated = false;
    let mut corrupt = None;
    let (mut messages, mut pads) = (0usize, 0usize);
    for record in cap.scanner(ScanOptions::INSPECT) {
        let counts = !matches!(record, Record::Padding { .. } | Record::Corrupt { .. });
        if counts && args.limit.is_some_and(|l| shown >= l) {
            truncated = true;
            break;
        }
        if counts {
            shown += 1;
        }
        if let Record::Corrupt { position, error } = &record {
            // A bad first record at a --from other than the consumer position is most likely a position
            // that is not a record boundary: a usage error, not a corrupt ring.
            let at_from = args.from.is_some() && *position == cap.requested && cap.dropped() == 0;
            if at_from && cap.requested != cap.before.consumer_position {
                return Err(InspectError::Usage(format!(
                    "no valid record at --from {:#010x} in the {} ring: {error} (not a record boundary? use a \
                     position that dump prints)",
                    cap.requested,
                    id.name()
                )));
            }
        }
        match &record {
            Record::Padding { position, length } => {
                pads += 1;
                if json.is_some() {
                    records_json.push(RecordJson::Padding {
                        position: *position,
                        length: *length,
                    });
                } else {
                    writeln!(text.out, "{position:#010x}  padding  {length} B to the ring's end").map_err(io)?;
                }
            }
            Record::Message(m) => {
                messages += 1;
                if json.is_some() {
                    records_json.push(RecordJson::Message(message_json(m, args.hex)));
                } else {
                    text.message(m, "").map_err(io)?;
                }
            }
            Record::Skippable(m) => {
                if json.is_some() {
                    records_json.push(RecordJson::Skippable(message_json(m, args.hex)));
                } else {
                    text.message(m, "  (skippable type: consumers skip it)").map_err(io)?;
                }
            }
            Record::Abort(f) => {
                if json.is_some() {
                    records_json.push(RecordJson::Abort(frame_json(f)));
                } else {
                    writeln!(
                        text.out,
                        "{:#010x}  seq {}  {}  {}  len {}  abort marker: readers drop the partial message before it",
                        f.position,
                        f.sequence,
                        type_name(f.record_type),
                        flags_name(f.flags),
                        f.length
                    )
                    .map_err(io)?;
                }
            }
            Record::Partial {
                message,
                begins_before,
                ends,
            } => {
                if json.is_some() {
                    records_json.push(RecordJson::Partial {
                        message: message_json(message, args.hex),
                        begins_before_scan: *begins_before,
                        ends: ends.name(),
                    });
                } else {
                    text.message(message, &partial_note(*begins_before, *ends))
                        .map_err(io)?;
                }
            }
            Record::Corrupt { position, error } => {
                let c = corrupt_json(view, &cap, *position, error.to_string());
                if json.is_some() {
                    records_json.push(RecordJson::Corrupt(c.clone()));
                } else {
                    writeln!(
                        text.out,
                        "{position:#010x}  CORRUPT at data offset {:#x} (file offset {:#x}): {error}",
                        c.data_offset, c.file_offset
                    )
                    .map_err(io)?;
                    if !c.header_hex.is_empty() {
                        let idx = position.wrapping_sub(cap.start) as usize;
                        let bytes = &cap.bytes[idx..(idx + 16).min(cap.bytes.len())];
                        let spaced: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                        writeln!(text.out, "    header bytes: {}", spaced.join(" ")).map_err(io)?;
                    }
                    writeln!(
                        text.out,
                        "    the {} ring cannot be decoded past this record: its length cannot be trusted",
                        id.name()
                    )
                    .map_err(io)?;
                }
                let summary = format!(
                    "corrupt frames: {} ring at position {position:#010x} (data offset {:#x}, file offset {:#x}): {error}",
                    id.name(),
                    c.data_offset,
                    c.file_offset
                );
                corrupt = Some((c, summary));
            }
        }
    }
    if json.is_none() {
        let stop = if truncated {
            format!("; --limit {} reached, more records follow", args.limit.unwrap_or(0))
        } else if corrupt.is_some() {
            "; stopped at the corrupt record".to_string()
        } else {
            format!("; ends at the producer position {:#010x}", cap.end)
        };
        writeln!(
            text.out,
            "{}: {} shown ({}), {pads} padding{stop}\n",
            id.name(),
            plural(shown, "record"),
            plural(messages, "message")
        )
        .map_err(io)?;
    }
    if let Some(list) = json {
        list.push(RingJson {
            ring: id.name(),
            capacity: geometry.capacity,
            data_offset: descriptor.data_offset,
            consumer_position: cap.before.consumer_position,
            producer_position: cap.before.producer_position,
            start: cap.start,
            dropped_bytes: cap.dropped(),
            records: records_json,
            truncated,
            corrupt: corrupt.as_ref().map(|(c, _)| c.clone()),
        });
    }
    Ok(RingOutcome { corrupt })
}

/// Standard output that treats a closed pipe (`dump | head`) as the end of the reader's interest, not as
/// an error: the rest of the output is discarded.
pub struct Sink<W: Write> {
    /// The real output.
    pub inner: W,
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.inner.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.inner.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

/// Runs the command.
pub fn run(args: &Args) -> Result<(), InspectError> {
    let view = open(&args.region)?;
    let rings: Vec<RingId> = match args.ring {
        Some(r) => vec![r.into()],
        None => RingId::ALL.to_vec(),
    };
    let mut out = std::io::BufWriter::new(Sink {
        inner: std::io::stdout().lock(),
    });
    let mut json = args.json.then(Vec::new);
    let mut failures = Vec::new();
    for id in rings {
        let ring = dump_ring(&view, id, args, &mut out, json.as_mut())?;
        if let Some((_, summary)) = ring.corrupt {
            failures.push(summary);
        }
    }
    if let Some(rings) = json.take() {
        let doc = DumpJson {
            schema: "tasker-ring/dump/1",
            region: view.path().display().to_string(),
            rings,
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| InspectError::Io(format!("json: {e}")))?;
        writeln!(out, "{text}").map_err(|e| InspectError::Io(format!("stdout: {e}")))?;
    }
    out.flush().map_err(|e| InspectError::Io(format!("stdout: {e}")))?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(InspectError::CorruptFrames(failures.join("; ")))
    }
}
