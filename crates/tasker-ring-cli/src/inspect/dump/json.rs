//! `dump --json`: the document's shape (serde structs, so the documented shape is the code;
//! docs/inspector-dump-tail.md) and the conversions from decoded records into it.

use super::{classify, Body};
use serde::Serialize;
use tasker_ring::scan::{flags_name, type_name, Capture, FrameInfo, ScannedMessage};
use tasker_ring::RegionView;

/// `--json` output: the whole document.
#[derive(Serialize)]
pub(super) struct DumpJson {
    /// `tasker-ring/dump/1`: bumped when a field changes meaning or disappears (fields may be added).
    pub(super) schema: &'static str,
    pub(super) region: String,
    pub(super) rings: Vec<RingJson>,
}

/// One ring of the `--json` output.
#[derive(Serialize)]
pub(super) struct RingJson {
    pub(super) ring: &'static str,
    pub(super) capacity: usize,
    pub(super) data_offset: u64,
    pub(super) consumer_position: u32,
    pub(super) producer_position: u32,
    pub(super) start: u32,
    pub(super) dropped_bytes: u32,
    pub(super) records: Vec<RecordJson>,
    pub(super) truncated: bool,
    pub(super) corrupt: Option<CorruptJson>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum RecordJson {
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
pub(super) struct MessageJson {
    pub(super) position: u32,
    pub(super) end_position: u32,
    pub(super) sequence: u64,
    pub(super) first_sequence: u64,
    pub(super) record_type: u16,
    pub(super) type_name: String,
    pub(super) payload_len: usize,
    pub(super) frames: Vec<FrameJson>,
    pub(super) event_id: Option<String>,
    pub(super) json: Option<serde_json::Value>,
    pub(super) text: Option<String>,
    pub(super) hex: Option<String>,
}

#[derive(Serialize)]
pub(super) struct FrameJson {
    pub(super) position: u32,
    pub(super) sequence: u64,
    pub(super) record_type: u16,
    pub(super) flags: u16,
    pub(super) flag_names: String,
    pub(super) length: u32,
}

#[derive(Serialize, Clone)]
pub(super) struct CorruptJson {
    pub(super) position: u32,
    pub(super) data_offset: usize,
    pub(super) file_offset: u64,
    pub(super) error: String,
    pub(super) header_hex: String,
}

/// Lower-case hex without separators.
fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn frame_json(f: &FrameInfo) -> FrameJson {
    FrameJson {
        position: f.position,
        sequence: f.sequence,
        record_type: f.record_type,
        flags: f.flags,
        flag_names: flags_name(f.flags),
        length: f.length,
    }
}

pub(super) fn message_json(m: &ScannedMessage<'_>, hex: bool) -> MessageJson {
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

/// Where a corrupt record sits, and the header bytes the copy holds there.
pub(super) fn corrupt_json(view: &RegionView, cap: &Capture, position: u32, error: String) -> CorruptJson {
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
