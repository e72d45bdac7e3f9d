//! `dump`'s text output: one block per record as it is decoded, payloads pretty-printed JSON or a hex dump.

use super::{classify, Body};
use std::io::Write;
use tasker_ring::scan::{flags_name, type_name, PartialEnd, ScannedMessage};

/// Re-indents valid JSON text two spaces per level without reordering keys or reformatting numbers (what
/// the ring holds, made readable). The caller has checked that `text` is valid JSON.
fn pretty_json(text: &str) -> String {
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

/// Text output, written as the records are decoded.
pub(super) struct Text<'w, W: Write> {
    pub(super) out: &'w mut W,
    pub(super) hex: bool,
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

    pub(super) fn message(&mut self, m: &ScannedMessage<'_>, note: &str) -> std::io::Result<()> {
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

pub(super) fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

pub(super) fn partial_note(begins_before: bool, ends: PartialEnd) -> String {
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
