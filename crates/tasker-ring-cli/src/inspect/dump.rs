//! `tasker-ring dump`: decodes the unconsumed records of a ring (from the consumer position to the producer
//! position) without consuming them: position, sequence, type, flags, length and payload of each message
//! (fragments reassembled), padding marked, corrupt records shown with their offsets.
//!
//! The decoding is the library's [`tasker_ring::scan`]: the checks of layout-spec.md 9.2 and the rules of
//! 9.3 over a copy of the ring, re-validated against the positions after copying. A corrupt record stops
//! the decoding of its ring (its length cannot be trusted, so the next record cannot be found); the other
//! ring is still dumped, and the command exits 9.

use super::{open, InspectError};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use tasker_ring::layout::record_type;
use tasker_ring::scan::{
    capture, completion_parts, flags_name, type_name, Capture, FrameInfo, PartialEnd, Record, ScanOptions,
    ScannedMessage, Trust,
};
use tasker_ring::{RegionView, RingId};

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

/// `--json` output: the whole document.
#[derive(Serialize)]
struct DumpJson {
    /// `tasker-ring/dump/1`: bumped when a field changes meaning or disappears (fields may be added).
    schema: &'static str,
    region: String,
    rings: Vec<RingJson>,
}

/// One ring of the `--json` output.
#[derive(Serialize)]
struct RingJson {
    ring: &'static str,
    capacity: usize,
    data_offset: u64,
    consumer_position: u32,
    producer_position: u32,
    start: u32,
    dropped_bytes: u32,
    records: Vec<RecordJson>,
    truncated: bool,
    corrupt: Option<CorruptJson>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RecordJson {
    Padding {
        position: u32,
        length: u32,
    },
    Message(MessageJson),
    Skippable(MessageJson),
    Abort(FrameJson),
    Partial {
        #[serde(flatten)]
        message: MessageJson,
        begins_before_scan: bool,
        ends: &'static str,
    },
    Corrupt(CorruptJson),
}

#[derive(Serialize)]
struct MessageJson {
    position: u32,
    end_position: u32,
    sequence: u64,
    first_sequence: u64,
    record_type: u16,
    type_name: String,
    payload_len: usize,
    frames: Vec<FrameJson>,
    event_id: Option<String>,
    json: Option<serde_json::Value>,
    text: Option<String>,
    hex: Option<String>,
}

#[derive(Serialize)]
struct FrameJson {
    position: u32,
    sequence: u64,
    record_type: u16,
    flags: u16,
    flag_names: String,
    length: u32,
}

#[derive(Serialize, Clone)]
struct CorruptJson {
    position: u32,
    data_offset: usize,
    file_offset: u64,
    error: String,
    header_hex: String,
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

/// Re-indents valid JSON text two spaces per level without reordering keys or reformatting numbers (what
/// the ring holds, made readable). The caller has checked that `text` is valid JSON.
pub fn pretty_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Lower-case hex without separators.
fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A classic hex dump (offset, 16 bytes, ASCII), each line indented.
fn hexdump(bytes: &[u8], indent: &str) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let half = |h: &[u8]| h.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
        let hex = if chunk.len() > 8 {
            format!("{}  {}", half(&chunk[..8]), half(&chunk[8..]))
        } else {
            half(chunk)
        };
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!("{indent}{:06x}  {hex:<48}  |{ascii}|\n", i * 16));
    }
    out
}

fn frame_json(f: &FrameInfo) -> FrameJson {
    FrameJson {
        position: f.position,
        sequence: f.sequence,
        record_type: f.record_type,
        flags: f.flags,
        flag_names: flags_name(f.flags),
        length: f.length,
    }
}

fn message_json(m: &ScannedMessage<'_>, hex: bool) -> MessageJson {
    let (event_id, body) = classify(m.record_type, &m.payload, hex);
    let (json, text, hex) = match body {
        Body::Json(t) => (serde_json::from_str(t).ok(), None, None),
        Body::Text(t) => (None, Some(t.to_string()), None),
        Body::Hex(b) => (None, None, Some(hex_string(b))),
    };
    MessageJson {
        position: m.first_position(),
        end_position: m.end_position(),
        sequence: m.sequence(),
        first_sequence: m.first_sequence(),
        record_type: m.record_type,
        type_name: type_name(m.record_type).into_owned(),
        payload_len: m.payload.len(),
        frames: m.frames.iter().map(frame_json).collect(),
        event_id: event_id.map(str::to_string),
        json,
        text,
        hex,
    }
}

/// What a dump found in one ring.
struct RingOutcome {
    corrupt: Option<(CorruptJson, String)>,
}

/// Where a corrupt record sits, and the header bytes the copy holds there.
fn corrupt_json(view: &RegionView, cap: &Capture, position: u32, error: String) -> CorruptJson {
    let capacity = cap.geometry.capacity;
    let data_offset = position as usize & (capacity - 1);
    let idx = position.wrapping_sub(cap.start) as usize;
    let header = if idx < cap.bytes.len() {
        &cap.bytes[idx..(idx + 16).min(cap.bytes.len())]
    } else {
        &[][..]
    };
    CorruptJson {
        position,
        data_offset,
        file_offset: view.layout().rings[cap.ring.index()].data_offset + data_offset as u64,
        error,
        header_hex: hex_string(header),
    }
}

/// Text output, written as the records are decoded.
struct Text<'w, W: Write> {
    out: &'w mut W,
    hex: bool,
}

impl<W: Write> Text<'_, W> {
    fn payload(&mut self, record_type_code: u16, payload: &[u8]) -> std::io::Result<()> {
        const IND: &str = "    ";
        if payload.is_empty() {
            return writeln!(self.out, "{IND}(empty payload)");
        }
        let (event_id, body) = classify(record_type_code, payload, self.hex);
        if let Some(id) = event_id {
            writeln!(self.out, "{IND}event_id {id}")?;
        }
        match body {
            Body::Json(t) => {
                for line in pretty_json(t).lines() {
                    writeln!(self.out, "{IND}{line}")?;
                }
                Ok(())
            }
            Body::Text(t) => writeln!(self.out, "{IND}(not JSON) {t:?}"),
            Body::Hex(b) => {
                if !self.hex {
                    writeln!(self.out, "{IND}(not UTF-8; hex)")?;
                }
                write!(self.out, "{}", hexdump(b, IND))
            }
        }
    }

    fn frames(&mut self, m: &ScannedMessage<'_>) -> std::io::Result<()> {
        if m.is_fragmented() || m.frames[0].flags != tasker_ring::flags::UNFRAGMENTED {
            for f in &m.frames {
                writeln!(
                    self.out,
                    "    fragment {:#010x}  seq {}  {}  len {}",
                    f.position,
                    f.sequence,
                    flags_name(f.flags),
                    f.length
                )?;
            }
        }
        Ok(())
    }

    fn message(&mut self, m: &ScannedMessage<'_>, note: &str) -> std::io::Result<()> {
        let seq = if m.is_fragmented() {
            format!("seq {}..{}", m.first_sequence(), m.sequence())
        } else {
            format!("seq {}", m.sequence())
        };
        let shape = if m.is_fragmented() {
            format!("{} fragments", m.frames.len())
        } else {
            format!("{}  len {}", flags_name(m.frames[0].flags), m.frames[0].length)
        };
        writeln!(
            self.out,
            "{:#010x}  {seq}  {}  {shape}  payload {} B{note}",
            m.first_position(),
            type_name(m.record_type),
            m.payload.len()
        )?;
        self.frames(m)?;
        self.payload(m.record_type, &m.payload)
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn partial_note(begins_before: bool, ends: PartialEnd) -> String {
    let mut parts = Vec::new();
    if begins_before {
        parts.push("begins before the dump's start (the consumer already took its first fragments)");
    }
    parts.push(match ends {
        PartialEnd::End => "ends here",
        PartialEnd::Aborted => "abandoned: an abort marker follows",
        PartialEnd::Interrupted => "interrupted: a new message starts before its END",
        PartialEnd::Unpublished => "unfinished: the rest is not published yet",
        PartialEnd::Corrupt => "cut short by the corrupt record that follows",
    });
    format!("  PARTIAL: {}", parts.join("; "))
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
