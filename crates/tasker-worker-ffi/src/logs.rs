//! The library's log records, buffered for `poll_worker_logs`: a `tracing_subscriber::Layer` that keeps
//! every event the subscriber lets through (the first bootstrap's `log_level`) in one process-wide bounded
//! queue, which the TS side drains as a JSON array. Nothing calls back into JS.
//!
//! Bounds: at most [`CAPACITY`] records and [`MAX_BYTES`] of text; each string (message, field value) is
//! cut to [`MAX_TEXT`] bytes. When a new record does not fit, the oldest go, and the next drain starts with
//! a warn record saying how many went.

use serde_json::{json, Map, Number, Value};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Records held at most; the oldest are dropped to make room.
pub(crate) const CAPACITY: usize = 4096;

/// Text held at most (message, target, field names and values, plus [`RECORD_OVERHEAD`] per record): with
/// [`MAX_TEXT`] this bounds the buffer's memory whatever the records hold.
pub(crate) const MAX_BYTES: usize = 4 << 20;

/// Longest message or field value kept, in bytes; longer ones are cut at a char boundary and marked.
pub(crate) const MAX_TEXT: usize = 8 << 10;

/// What a record costs besides its text (the struct, the queue slot, the map nodes), as counted against
/// [`MAX_BYTES`]; a number or bool field counts as 8 bytes.
const RECORD_OVERHEAD: usize = 64;

/// The target of the record that reports dropped records.
const DROPPED_TARGET: &str = "tasker_worker::logs";

/// The target of the records `log_message` makes (the JS side's own logs).
pub(crate) const JS_TARGET: &str = "js";

/// The field that carries a JS record's fields as JSON object text; the buffer puts its members among the
/// record's fields (the stderr printer shows it as it is).
const JS_FIELDS: &str = "js_fields";

/// Why `log_message` refused a record (its negative return code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogInputError {
    /// `level` is not 0..=4.
    Level = -1,
    /// `message` is NULL or not UTF-8.
    Message = -2,
    /// `fields_json` is not UTF-8, not JSON, or not a JSON object.
    Fields = -3,
}

/// Emits one JS log record into the library's tracing (target [`JS_TARGET`]): `level` 0 error, 1 warn,
/// 2 info, 3 debug, 4 trace; `fields` a JSON object's text, or None. The subscriber's level filter applies
/// (before the first bootstrap no subscriber is installed and the record goes nowhere).
pub(crate) fn emit_js(level: i32, message: &str, fields: Option<&str>) -> Result<(), LogInputError> {
    let level = match level {
        0 => Level::ERROR,
        1 => Level::WARN,
        2 => Level::INFO,
        3 => Level::DEBUG,
        4 => Level::TRACE,
        _ => return Err(LogInputError::Level),
    };
    if let Some(text) = fields {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(_)) => {}
            _ => return Err(LogInputError::Fields),
        }
    }
    // tracing's levels and field names are fixed per call site: one site per level, with and without fields.
    macro_rules! at {
        ($level:expr) => {
            match fields {
                Some(f) => tracing::event!(target: JS_TARGET, $level, js_fields = f, "{}", message),
                None => tracing::event!(target: JS_TARGET, $level, "{}", message),
            }
        };
    }
    match level {
        Level::ERROR => at!(Level::ERROR),
        Level::WARN => at!(Level::WARN),
        Level::INFO => at!(Level::INFO),
        Level::DEBUG => at!(Level::DEBUG),
        _ => at!(Level::TRACE),
    }
    Ok(())
}

/// The process's buffer, fed by [`BufferLayer::global`] and drained by `poll_worker_logs`.
static GLOBAL: LogBuffer = LogBuffer::new();

/// One log event as the TS side receives it.
struct Record {
    ts_unix_ms: u64,
    level: &'static str,
    target: &'static str,
    message: String,
    fields: Map<String, Value>,
    /// Bytes counted against [`MAX_BYTES`].
    size: usize,
}

impl Record {
    fn into_json(self) -> Value {
        json!({
            "ts_unix_ms": self.ts_unix_ms,
            "level": self.level,
            "target": self.target,
            "message": self.message,
            "fields": Value::Object(self.fields),
        })
    }
}

#[derive(Default)]
struct Queue {
    records: VecDeque<Record>,
    /// Sum of the held records' `size`.
    bytes: usize,
    /// Records dropped since the last drain, and the time of the newest of them.
    dropped: u64,
    dropped_ts: u64,
}

/// A bounded queue of log records, drained oldest first.
pub(crate) struct LogBuffer {
    queue: Mutex<Queue>,
}

impl LogBuffer {
    pub(crate) const fn new() -> Self {
        Self {
            queue: Mutex::new(Queue {
                records: VecDeque::new(),
                bytes: 0,
                dropped: 0,
                dropped_ts: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding it; should something, the queue is still consistent.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, record: Record) {
        let mut q = self.lock();
        while !q.records.is_empty() && (q.records.len() >= CAPACITY || q.bytes + record.size > MAX_BYTES) {
            if let Some(old) = q.records.pop_front() {
                q.bytes -= old.size;
                q.dropped += 1;
                q.dropped_ts = old.ts_unix_ms;
            }
        }
        q.bytes += record.size;
        q.records.push_back(record);
    }

    /// Everything held, as a JSON array (oldest first, led by a "dropped" record if any were dropped since
    /// the last drain), or None when there is nothing to report. Empties the buffer.
    pub(crate) fn drain_json(&self) -> Option<String> {
        let (records, dropped, dropped_ts) = {
            let mut q = self.lock();
            let taken = std::mem::take(&mut *q);
            (taken.records, taken.dropped, taken.dropped_ts)
        };
        if records.is_empty() && dropped == 0 {
            return None;
        }
        let mut out = Vec::with_capacity(records.len() + 1);
        if dropped > 0 {
            out.push(json!({
                "ts_unix_ms": dropped_ts,
                "level": "warn",
                "target": DROPPED_TARGET,
                "message": format!("{dropped} log records dropped (buffer full)"),
                "fields": { "dropped": dropped },
            }));
        }
        out.extend(records.into_iter().map(Record::into_json));
        Some(Value::Array(out).to_string())
    }
}

/// The process's buffered records as JSON (see [`LogBuffer::drain_json`]).
pub(crate) fn drain_global() -> Option<String> {
    GLOBAL.drain_json()
}

/// The layer that copies each event into a [`LogBuffer`]. It filters nothing itself: the subscriber's
/// level filter decides which events reach it.
pub(crate) struct BufferLayer {
    buffer: &'static LogBuffer,
}

impl BufferLayer {
    /// Feeds the process's buffer, the one `poll_worker_logs` drains.
    pub(crate) fn global() -> Self {
        Self { buffer: &GLOBAL }
    }
}

impl<S: Subscriber> Layer<S> for BufferLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        let FieldVisitor { message, fields } = visitor;
        let message = message.unwrap_or_default();
        let size = RECORD_OVERHEAD
            + meta.target().len()
            + message.len()
            + fields.iter().map(|(k, v)| k.len() + value_size(v)).sum::<usize>();
        self.buffer.push(Record {
            ts_unix_ms: now_unix_ms(),
            level: level_name(*meta.level()),
            target: meta.target(),
            message,
            fields,
            size,
        });
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(_) | Value::Object(_) => v.to_string().len(),
        _ => 8,
    }
}

/// A JS field's value as kept: strings cut like any text, and an array or object whose JSON is longer than
/// [`MAX_TEXT`] replaced by that JSON text, cut.
fn capped_value(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(capped(s)),
        Value::Array(_) | Value::Object(_) => {
            let text = v.to_string();
            if text.len() > MAX_TEXT {
                Value::String(capped(text))
            } else {
                v
            }
        }
        other => other,
    }
}

/// `text` cut to [`MAX_TEXT`] bytes (at a char boundary), marked with its original length when cut.
fn capped(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let len = text.len();
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(&format!("...[truncated from {len} bytes]"));
    }
    text
}

/// Collects an event's `message` and its other fields as JSON values: strings (Display / Debug text of
/// anything else), numbers, bools.
#[derive(Default)]
struct FieldVisitor {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }

    fn put_text(&mut self, field: &Field, text: String) {
        self.put(field, Value::String(capped(text)));
    }
}

impl Visit for FieldVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinities: those go as text.
        match Number::from_f64(value) {
            Some(n) => self.put(field, Value::Number(n)),
            None => self.put_text(field, value.to_string()),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.put(field, Value::from(v)),
            Err(_) => self.put_text(field, value.to_string()),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.put(field, Value::from(v)),
            Err(_) => self.put_text(field, value.to_string()),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == JS_FIELDS {
            // `emit_js` checked it is an object; its members become the record's fields.
            if let Ok(Value::Object(members)) = serde_json::from_str::<Value>(value) {
                for (k, v) in members {
                    self.fields.insert(k, capped_value(v));
                }
                return;
            }
        }
        // Cut before copying: a huge &str is never copied whole.
        let text = if value.len() > MAX_TEXT {
            capped(value.to_owned())
        } else {
            value.to_owned()
        };
        self.put(field, Value::String(text));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_text(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields and the message arrive here, already formatted as Display.
        self.put_text(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;

    fn record(i: u64, text_len: usize) -> Record {
        Record {
            ts_unix_ms: i,
            level: "info",
            target: "t",
            message: format!("r{i}"),
            fields: Map::new(),
            size: RECORD_OVERHEAD + text_len,
        }
    }

    fn drain(buffer: &LogBuffer) -> Vec<Value> {
        let text = buffer.drain_json().expect("records");
        serde_json::from_str::<Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn empty_buffer_drains_to_none() {
        let buffer = LogBuffer::new();
        assert!(buffer.drain_json().is_none());
        buffer.push(record(1, 0));
        assert_eq!(drain(&buffer).len(), 1);
        assert!(buffer.drain_json().is_none(), "a drain empties the buffer");
    }

    #[test]
    fn overflow_drops_the_oldest_and_says_so_first() {
        let buffer = LogBuffer::new();
        let extra = 10u64;
        for i in 0..CAPACITY as u64 + extra {
            buffer.push(record(i, 0));
        }
        let records = drain(&buffer);
        assert_eq!(records.len(), CAPACITY + 1, "the kept records plus the dropped notice");
        assert_eq!(
            records[0],
            json!({
                "ts_unix_ms": extra - 1,
                "level": "warn",
                "target": "tasker_worker::logs",
                "message": format!("{extra} log records dropped (buffer full)"),
                "fields": {"dropped": extra},
            })
        );
        assert_eq!(records[1]["message"], format!("r{extra}"), "the oldest went");
        assert_eq!(
            records[CAPACITY]["message"],
            format!("r{}", CAPACITY as u64 + extra - 1)
        );
        // The count starts again after a drain.
        buffer.push(record(0, 0));
        let records = drain(&buffer);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["message"], "r0");
    }

    #[test]
    fn the_byte_budget_bounds_big_records() {
        let buffer = LogBuffer::new();
        let big = MAX_BYTES / 4;
        for i in 0..10 {
            buffer.push(record(i, big));
        }
        assert!(buffer.lock().bytes <= MAX_BYTES);
        let records = drain(&buffer);
        let kept = MAX_BYTES / (big + RECORD_OVERHEAD);
        assert_eq!(records.len(), kept + 1);
        assert_eq!(records[0]["fields"]["dropped"], 10 - kept as u64);
        assert_eq!(buffer.lock().bytes, 0);
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let text = "é".repeat(MAX_TEXT); // 2 bytes each
        let cut = capped(text.clone());
        assert!(cut.len() < MAX_TEXT + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!("...[truncated from {} bytes]", text.len())));
        assert_eq!(capped("short".into()), "short");
    }

    #[test]
    fn js_records_carry_their_fields_and_bad_input_is_refused() {
        static BUFFER: LogBuffer = LogBuffer::new();
        let subscriber = tracing_subscriber::registry()
            .with(LevelFilter::INFO)
            .with(BufferLayer { buffer: &BUFFER });
        tracing::subscriber::with_default(subscriber, || {
            let fields = json!({"order": 17, "user": {"id": "u1"}, "big": "x".repeat(MAX_TEXT + 10)}).to_string();
            assert_eq!(emit_js(1, "from js", Some(&fields)), Ok(()));
            assert_eq!(emit_js(2, "no fields", None), Ok(()));
            assert_eq!(emit_js(3, "below the level", None), Ok(()));
            assert_eq!(emit_js(5, "x", None), Err(LogInputError::Level));
            assert_eq!(emit_js(-1, "x", None), Err(LogInputError::Level));
            assert_eq!(emit_js(0, "x", Some("[1]")), Err(LogInputError::Fields));
            assert_eq!(emit_js(0, "x", Some("{")), Err(LogInputError::Fields));
        });
        let records = drain(&BUFFER);
        assert_eq!(records.len(), 2, "{records:?}");
        let r = &records[0];
        assert_eq!(
            (&r["level"], &r["target"], &r["message"]),
            (&json!("warn"), &json!("js"), &json!("from js"))
        );
        assert_eq!(r["fields"]["order"], 17);
        assert_eq!(r["fields"]["user"], json!({"id": "u1"}));
        assert!(r["fields"]["big"].as_str().unwrap().contains("...[truncated from"));
        assert!(r["fields"].get("js_fields").is_none());
        assert_eq!(
            (&records[1]["level"], &records[1]["fields"]),
            (&json!("info"), &json!({}))
        );
    }

    #[derive(Debug)]
    struct Opaque;

    #[test]
    fn the_layer_records_level_target_message_and_typed_fields() {
        static BUFFER: LogBuffer = LogBuffer::new();
        let subscriber = tracing_subscriber::registry()
            .with(LevelFilter::DEBUG)
            .with(BufferLayer { buffer: &BUFFER });
        let before = now_unix_ms();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!("below the level");
            tracing::debug!(
                count = 3u64,
                delta = -2i64,
                ratio = 0.5,
                nan = f64::NAN,
                ok = true,
                name = "x",
                shown = %"displayed",
                dbg = ?Opaque,
                big = u128::MAX,
                "hello {}",
                "world"
            );
            tracing::error!(target: "custom", "second");
        });
        let records = drain(&BUFFER);
        assert_eq!(records.len(), 2, "trace is filtered out: {records:?}");
        let r = &records[0];
        let ts = r["ts_unix_ms"].as_u64().unwrap();
        assert!(ts >= before && ts <= now_unix_ms());
        assert_eq!(r["level"], "debug");
        assert_eq!(r["target"], module_path!());
        assert_eq!(r["message"], "hello world");
        assert_eq!(
            r["fields"],
            json!({
                "count": 3, "delta": -2, "ratio": 0.5, "nan": "NaN", "ok": true, "name": "x",
                "shown": "displayed", "dbg": "Opaque", "big": u128::MAX.to_string(),
            })
        );
        assert_eq!(r.as_object().unwrap().len(), 5, "{r}");
        assert_eq!(
            (&records[1]["level"], &records[1]["target"], &records[1]["fields"]),
            (&json!("error"), &json!("custom"), &json!({}))
        );
    }
}
