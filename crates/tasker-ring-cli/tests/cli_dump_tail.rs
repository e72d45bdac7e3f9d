//! `tasker-ring dump` and `tasker-ring tail` against live regions: this test process holds the producer
//! and consumer roles (paused while the inspector runs), the inspector binary attaches read-only.
//!
//! Checked: dump decodes exactly what was written (compared with what the real consumer then reads),
//! including a message fragmented beyond `max_frame_size`, the padding at the wrap and positions crossing
//! 2^32; `--json`, `--limit`, `--from`, `--hex`; the region's bytes are identical before and after; a corrupt
//! frame is shown with its offsets and exits 9 while the other ring is still dumped; tail prints frames
//! published after it started (with a live consumer releasing them at once), reports a lap, a rate line
//! and corrupt frames.

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tasker_ring::{record_type, Region, RegionConfig, RingId};

/// Positions start 2048 bytes below 2^32: in a 4096-byte ring that is offset 2048, so the ring's end is
/// exactly where the u32 positions wrap to 0.
const INITIAL: u32 = 0u32.wrapping_sub(2048);
const CAPACITY: u32 = 4096;
const MAX_FRAME: u32 = 256;
const EVENT_ID: &str = "0190f3a2-7c1e-7b3a-9d2e-000000000001";

fn config() -> RegionConfig {
    RegionConfig {
        events_capacity: CAPACITY,
        completions_capacity: CAPACITY,
        max_frame_size: MAX_FRAME,
        max_message_size: 1 << 20,
        initial_position: INITIAL,
    }
}

use tasker_test_support::region::TempDir;

fn run(args: &[&str]) -> Output {
    Command::cargo_bin("tasker-ring").unwrap().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn event(n: usize) -> Vec<u8> {
    format!(r#"{{"event_id":"{EVENT_ID}","step_uuid":"0190f3a2-7c1e-7b3a-9d2e-0000000000aa","n":{n}}}"#).into_bytes()
}

/// A JSON object of about `size` bytes (fragmented when above `MAX_FRAME - 16`).
fn big_event(size: usize) -> Vec<u8> {
    let head = br#"{"event_id":"big","blob":""#;
    let fill = size - head.len() - 2;
    let mut v = head.to_vec();
    v.extend(std::iter::repeat_n(b'x', fill));
    v.extend_from_slice(b"\"}");
    v
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The records of one ring in a dump's JSON.
fn ring<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["rings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ring"] == name)
        .unwrap_or_else(|| panic!("no {name} ring in {doc:#}"))
}

fn records<'a>(doc: &'a Value, name: &str) -> &'a Vec<Value> {
    ring(doc, name)["records"].as_array().unwrap()
}

/// A region in a known state. Events ring: 13 small events written (128 bytes each), 11 read, then a
/// 600-byte event in 3 fragments with the padding at the wrap between its first two, then 3 small events; completions ring: one
/// completion (event id + JSON) and one skippable record. Roles stay held (the "worker" is paused).
struct Scene {
    _dir: TempDir,
    path: PathBuf,
    region: Region,
    events: tasker_ring::Producer<tasker_ring::MappedRing>,
    reader: tasker_ring::Consumer<tasker_ring::MappedRing>,
    _completions: tasker_ring::Producer<tasker_ring::MappedRing>,
    big: Vec<u8>,
}

fn scene(tag: &str) -> Scene {
    let dir = TempDir::new(tag);
    let path = dir.path("scene.ring");
    let region = Region::create(&path, &config()).unwrap();
    let mut events = region.producer(RingId::Events).unwrap();
    let mut reader = region.consumer(RingId::Events).unwrap();
    for n in 0..13 {
        events.try_write(record_type::STEP_EVENT, &event(n)).unwrap();
    }
    assert_eq!(reader.read_batch(11, |_| {}).unwrap(), 11);
    let big = big_event(600);
    events.try_write(record_type::STEP_EVENT, &big).unwrap();
    for n in 100..103 {
        events.try_write(record_type::STEP_EVENT, &event(n)).unwrap();
    }
    let mut completions = region.producer(RingId::Completions).unwrap();
    let mut payload = EVENT_ID.as_bytes().to_vec();
    payload.extend_from_slice(br#"{"step_uuid":"0190f3a2-7c1e-7b3a-9d2e-000000000003","success":true}"#);
    completions.try_write(record_type::COMPLETION, &payload).unwrap();
    completions.try_write(0x8123, b"extension").unwrap();
    Scene {
        _dir: dir,
        path,
        region,
        events,
        reader,
        _completions: completions,
        big,
    }
}

#[test]
fn dump_decodes_what_was_written_and_changes_no_byte() {
    let mut s = scene("decode");
    let p = s.path.to_str().unwrap();
    let before = fs::read(&s.path).unwrap();
    let text = run(&["dump", p]);
    let doc_out = run(&["dump", p, "--json"]);
    let hex_out = run(&["dump", p, "--json", "--hex"]);
    let after = fs::read(&s.path).unwrap();
    assert!(before == after, "dump changed the region's bytes");
    for o in [&text, &doc_out, &hex_out] {
        assert!(o.status.success(), "{}", stderr(o));
    }

    let doc = json(&doc_out);
    assert_eq!(doc["schema"], "tasker-ring/dump/1");
    let ev = ring(&doc, "events");
    let consumer = ev["consumer_position"].as_u64().unwrap() as u32;
    let producer = ev["producer_position"].as_u64().unwrap() as u32;
    assert_eq!(consumer, s.reader.position());
    assert_eq!(producer, s.events.position());
    assert!(
        consumer > 0xffff_0000 && producer < 0x1000,
        "positions cross 2^32: {consumer:#x} {producer:#x}"
    );
    assert_eq!(ev["start"].as_u64().unwrap() as u32, consumer);
    assert_eq!(ev["dropped_bytes"], 0);
    assert_eq!(ev["truncated"], false);
    assert!(ev["corrupt"].is_null());

    // Kinds in position order: 2 events, the fragmented one, the padding inside it reported after it, 3 more.
    let recs = records(&doc, "events");
    let kinds: Vec<&str> = recs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["message", "message", "message", "padding", "message", "message", "message"]
    );
    assert_eq!(recs[0]["position"].as_u64().unwrap() as u32, consumer);
    let frag = &recs[2];
    let frames = frag["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 3);
    let flags: Vec<&str> = frames.iter().map(|f| f["flag_names"].as_str().unwrap()).collect();
    assert_eq!(flags, ["BEGIN", "-", "END"]);
    assert_eq!(frames[0]["length"], MAX_FRAME);
    assert_eq!(
        frames[1]["position"], 0,
        "the second fragment starts at offset 0 after the wrap"
    );
    assert_eq!(frag["payload_len"], 600);
    assert_eq!(
        frag["first_sequence"].as_u64().unwrap() + 2,
        frag["sequence"].as_u64().unwrap()
    );
    let pad = &recs[3];
    let pad_pos = pad["position"].as_u64().unwrap() as u32;
    assert_eq!(
        pad["length"].as_u64().unwrap() as u32,
        0u32.wrapping_sub(pad_pos),
        "padding runs to 2^32"
    );
    assert_eq!(frag["json"]["blob"].as_str().unwrap().len(), 600 - 28);
    assert_eq!(recs[4]["json"]["n"], 100);

    // Completions: the event id shown apart from the JSON; the skippable record marked as such.
    let comp = records(&doc, "completions");
    assert_eq!(comp[0]["kind"], "message");
    assert_eq!(comp[0]["type_name"], "completion");
    assert_eq!(comp[0]["event_id"], EVENT_ID);
    assert_eq!(comp[0]["json"]["success"], true);
    assert_eq!(comp[1]["kind"], "skippable");
    assert_eq!(comp[1]["text"], "extension");

    // Exactly what the real consumer reads next, byte for byte (`--hex` carries the payload bytes).
    let hex_doc = json(&hex_out);
    let dumped: Vec<(u64, Vec<u8>)> = records(&hex_doc, "events")
        .iter()
        .filter(|r| r["kind"] == "message")
        .map(|r| (r["sequence"].as_u64().unwrap(), unhex(r["hex"].as_str().unwrap())))
        .collect();
    let mut read = Vec::new();
    s.reader
        .read_batch(usize::MAX, |m| {
            assert_eq!(m.record_type, record_type::STEP_EVENT);
            read.push((m.sequence, m.payload.to_vec()));
        })
        .unwrap();
    assert_eq!(dumped, read);
    assert_eq!(read[2].1, s.big);

    // The text form says the same.
    let t = stdout(&text);
    assert!(
        t.contains(&format!(
            "events ring of {p}: capacity 4096 B, consumer {consumer:#010x}"
        )),
        "{t}"
    );
    assert!(t.contains(&format!(
        "{pad_pos:#010x}  padding  {} B to the ring's end",
        0u32.wrapping_sub(pad_pos)
    )));
    assert!(t.contains("3 fragments  payload 600 B"), "{t}");
    assert!(t.contains("    fragment 0x00000000  seq"), "{t}");
    assert!(t.contains(&format!("    event_id {EVENT_ID}")), "{t}");
    assert!(t.contains("\"n\": 100"), "{t}");
    assert!(t.contains("(skippable type: consumers skip it)"), "{t}");
    assert!(t.contains("events: 6 records shown (6 messages), 1 padding; ends at the producer position"));
    drop(s.region);
}

#[test]
fn limit_from_and_hex() {
    let s = scene("options");
    let p = s.path.to_str().unwrap();
    let all = json(&run(&["dump", p, "--json", "--ring", "events"]));
    assert_eq!(all["rings"].as_array().unwrap().len(), 1, "--ring dumps one ring");
    let recs = records(&all, "events");

    let limited = run(&["dump", p, "--json", "--limit", "2"]);
    let doc = json(&limited);
    for name in ["events", "completions"] {
        assert_eq!(records(&doc, name).len(), 2, "{name}");
    }
    assert_eq!(ring(&doc, "events")["truncated"], true);
    assert_eq!(ring(&doc, "completions")["truncated"], false);
    let t = stdout(&run(&["dump", p, "--limit", "1", "--ring", "events"]));
    assert!(t.contains("--limit 1 reached, more records follow"), "{t}");

    // --from a record position (decimal or hex) starts there.
    let third = recs[2]["position"].as_u64().unwrap();
    for from in [third.to_string(), format!("{third:#x}")] {
        let doc = json(&run(&["dump", p, "--json", "--ring", "events", "--from", &from]));
        let got = records(&doc, "events");
        assert_eq!(got.len(), recs.len() - 2);
        assert_eq!(got[0], recs[2]);
    }
    // A position inside a record, outside the unconsumed range, or without --ring: usage errors (exit 2).
    let inside = (third + 8).to_string();
    let outside = (s.events.position().wrapping_add(64)).to_string();
    for args in [
        vec!["dump", p, "--ring", "events", "--from", &inside],
        vec!["dump", p, "--ring", "events", "--from", &outside],
        vec!["dump", p, "--ring", "events", "--from", "12"],
        vec!["dump", p, "--from", &inside],
        vec!["dump", p, "--ring", "events", "--from", "zz"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
    let e = stderr(&run(&["dump", p, "--ring", "events", "--from", &inside]));
    assert!(e.starts_with("tasker-ring: no valid record at --from"), "{e}");
    assert_eq!(e.lines().count(), 1, "one-line error: {e}");

    // --hex: a hex dump of the payload instead of JSON.
    let t = stdout(&run(&["dump", p, "--hex", "--ring", "events", "--limit", "1"]));
    assert!(t.contains("    000000  7b 22 65 76 65 6e 74 5f  69 64"), "{t}");
    assert!(t.contains("|{\"event_id\":\"019|"), "{t}");
    assert!(!t.contains("\"n\": "), "{t}");
}

/// Overwrites bytes of a region file (the test's own file, with no role held).
fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_at(bytes, offset).unwrap();
}

#[test]
fn a_corrupt_frame_is_shown_with_its_offset_and_exits_9() {
    let dir = TempDir::new("corrupt");
    let path = dir.path("bad.ring");
    let region = Region::create(&path, &config()).unwrap();
    {
        let mut events = region.producer(RingId::Events).unwrap();
        for n in 0..3 {
            events.try_write(record_type::STEP_EVENT, &event(n)).unwrap();
        }
        let mut completions = region.producer(RingId::Completions).unwrap();
        completions.try_write(0x8123, b"still shown").unwrap();
    }
    let layout = *region.layout();
    drop(region);
    let p = path.to_str().unwrap();
    let good = json(&run(&["dump", p, "--json"]));
    let second = records(&good, "events")[1]["position"].as_u64().unwrap() as u32;
    let data_offset = second as usize & (CAPACITY as usize - 1);
    let file_offset = layout.rings[0].data_offset + data_offset as u64;
    patch(&path, file_offset, &3u32.to_le_bytes());

    let before = fs::read(&path).unwrap();
    let o = run(&["dump", p]);
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(t.contains("\"n\": 0"), "the record before it is shown: {t}");
    assert!(
        t.contains(&format!(
            "{second:#010x}  CORRUPT at data offset {data_offset:#x} (file offset {file_offset:#x}): record at {second}: \
             length 3 is shorter than the 16-byte header"
        )),
        "{t}"
    );
    assert!(t.contains("    header bytes: 03 00 00 00 10 00 03 00 01 00"), "{t}");
    assert!(!t.contains("\"n\": 2"), "nothing past it: {t}");
    assert!(t.contains("still shown"), "the completions ring is still dumped: {t}");
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with(&format!(
            "tasker-ring: corrupt frames: events ring at position {second:#010x}"
        )),
        "{e}"
    );

    let o = run(&["dump", p, "--json"]);
    assert_eq!(o.status.code(), Some(9));
    let doc = json(&o);
    let c = &ring(&doc, "events")["corrupt"];
    assert_eq!(c["position"].as_u64().unwrap() as u32, second);
    assert_eq!(c["data_offset"].as_u64().unwrap() as usize, data_offset);
    assert_eq!(c["file_offset"].as_u64().unwrap(), file_offset);
    assert!(c["header_hex"].as_str().unwrap().starts_with("03000000"));
    let recs = records(&doc, "events");
    assert_eq!(recs.last().unwrap()["kind"], "corrupt");
    assert_eq!(recs.len(), 2);
    assert_eq!(records(&doc, "completions")[0]["kind"], "skippable");

    // Positions a capacity apart: the span check fails before any record is read.
    let control = layout.rings[1].control_offset;
    patch(&path, control, &INITIAL.wrapping_add(2 * CAPACITY).to_le_bytes());
    let o = run(&["dump", p, "--ring", "completions"]);
    assert_eq!(o.status.code(), Some(9));
    assert!(stdout(&o).contains("CORRUPT"), "{}", stdout(&o));
    assert!(stderr(&o).contains("corrupt positions"), "{}", stderr(&o));
}

#[test]
fn errors_are_one_line_with_distinct_exit_codes() {
    let dir = TempDir::new("errors");
    let missing = dir.path("missing.ring");
    let o = run(&["dump", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stderr(&o).lines().count(), 1);
    let junk = dir.path("junk.ring");
    fs::write(&junk, vec![7u8; 8192]).unwrap();
    for cmd in ["dump", "tail"] {
        let o = run(&[cmd, junk.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(5), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with(&format!("tasker-ring: {}: not a tasker-ring region", junk.display())),
            "{}",
            stderr(&o)
        );
    }
}

/// A running `tail` whose output lines arrive on channels; killed if the test fails.
struct Tail {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

impl Tail {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::cargo_bin("tasker-ring")
            .unwrap()
            .arg("tail")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let out = lines(Box::new(child.stdout.take().unwrap()));
        let err = lines(Box::new(child.stderr.take().unwrap()));
        let tail = Self { child, out, err };
        let first = tail.err.recv_timeout(Duration::from_secs(20)).expect("tail starts");
        assert!(first.starts_with("tail: following the"), "{first}");
        tail
    }

    fn line(&self) -> String {
        self.out
            .recv_timeout(Duration::from_secs(20))
            .expect("tail printed a line in time")
    }

    /// Waits (bounded) for the exit code; returns it with the rest of stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                let rest: Vec<String> = self.err.try_iter().collect();
                return (status.code(), rest.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tail did not exit in time");
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tail_follows_frames_published_after_it_started() {
    let s = scene("tail");
    let (mut events, mut reader) = (s.events, s.reader);
    reader.read_batch(usize::MAX, |_| {}).unwrap();
    let tail = Tail::spawn(&[
        s.path.to_str().unwrap(),
        "--count",
        "5",
        "--duration",
        "60s",
        "--interval",
        "2",
        "--excerpt",
        "200",
    ]);
    let start = events.position();
    // A live consumer: every record is released at once, so tail reads released bytes.
    let big = big_event(700);
    let mut expected = Vec::new();
    for n in 0..4 {
        let payload = if n == 2 { big.clone() } else { event(200 + n) };
        events.try_write(record_type::STEP_EVENT, &payload).unwrap();
        reader.read_batch(usize::MAX, |m| expected.push(m.sequence)).unwrap();
    }
    events.try_write(0x8123, b"ext").unwrap();
    assert_eq!(
        reader.read_batch(usize::MAX, |_| {}).unwrap(),
        0,
        "skippable records are not delivered"
    );
    let lines: Vec<String> = (0..5).map(|_| tail.line()).collect();
    assert!(
        lines[0].starts_with(&format!("{start:#010x} seq {} step_event len ", expected[0])),
        "{lines:?}"
    );
    assert!(lines[0].contains(r#"{"event_id":"0190f3a2-7c1e-7b3a-9d2e-000000000001","step_uuid""#));
    assert!(lines[2].contains("step_event len 700 (3 fragments)"), "{lines:?}");
    assert!(lines[2].ends_with('…'), "long payloads are cut: {lines:?}");
    assert!(lines[3].contains(r#""n":203}"#), "{lines:?}");
    assert!(lines[4].contains("0x8123 len 3 (skippable) ext"), "{lines:?}");
    for (line, seq) in lines.iter().zip(&expected) {
        assert!(
            line.contains(&format!(" seq {seq}")) || line.contains(&format!("..{seq} ")),
            "{line}"
        );
    }
    let (code, err) = tail.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("tail events: 5 msgs"), "{err}");
}

#[test]
fn tail_reports_a_lap_and_resumes_at_the_consumer() {
    let s = scene("lap");
    let (mut events, mut reader) = (s.events, s.reader);
    // Lap the ring: publish and consume more than a capacity.
    let mut written = 0;
    while written < 2 * CAPACITY as usize {
        events.try_write(record_type::STEP_EVENT, &event(written)).unwrap();
        reader.read_batch(usize::MAX, |_| {}).unwrap();
        written += 128;
    }
    let behind = events.position().wrapping_sub(CAPACITY);
    let from = behind.to_string();
    let resume = reader.position();
    let tail = Tail::spawn(&[
        s.path.to_str().unwrap(),
        "--from",
        &from,
        "--count",
        "2",
        "--duration",
        "60s",
        "--excerpt",
        "200",
    ]);
    // Published after tail started and not consumed: shown after the lap.
    events.try_write(record_type::STEP_EVENT, &event(900)).unwrap();
    events.try_write(record_type::STEP_EVENT, &event(901)).unwrap();
    let lap = tail.line();
    assert!(
        lap.starts_with(&format!(
            "!! lapped: the producer may have reused the bytes from {behind:#010x}; skipped"
        )),
        "{lap}"
    );
    assert!(
        lap.ends_with(&format!("resuming at the consumer position {resume:#010x}")),
        "{lap}"
    );
    assert!(tail.line().contains(r#""n":900}"#));
    assert!(tail.line().contains(r#""n":901}"#));
    let (code, err) = tail.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("lapped 4.0 KiB"), "{err}");
}

#[test]
fn tail_prints_a_rate_line_and_stops_at_its_duration() {
    let s = scene("rate");
    let tail = Tail::spawn(&[
        s.path.to_str().unwrap(),
        "--duration",
        "1300ms",
        "--ring",
        "completions",
    ]);
    let (code, err) = tail.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("tail completions: 0 msgs/s, 0 B/s; total 0 msgs"), "{err}");
}

#[test]
fn tail_stops_at_a_corrupt_frame_with_exit_9() {
    let dir = TempDir::new("tail-corrupt");
    let path = dir.path("bad.ring");
    let region = Region::create(&path, &config()).unwrap();
    let mut events = region.producer(RingId::Events).unwrap();
    events.try_write(record_type::STEP_EVENT, &event(1)).unwrap();
    let at = events.position();
    events.try_write(record_type::STEP_EVENT, &event(2)).unwrap();
    let file_offset = region.layout().rings[0].data_offset + (at & (CAPACITY - 1)) as u64;
    patch(&path, file_offset + 4, &0x0042u16.to_le_bytes());
    let from = INITIAL.to_string();
    let p = path.to_str().unwrap();
    let tail = Tail::spawn(&[p, "--from", &from, "--duration", "60s", "--excerpt", "200"]);
    assert!(tail.line().contains(r#""n":1}"#));
    let bad = tail.line();
    assert!(bad.starts_with(&format!("{at:#010x} CORRUPT at data offset")), "{bad}");
    assert!(bad.ends_with("unknown record type 0x0042"), "{bad}");
    let (code, err) = tail.finish();
    assert_eq!(code, Some(9), "{err}");
    assert!(
        err.contains("tasker-ring: corrupt frames: events ring at position"),
        "{err}"
    );
}

#[test]
fn dump_and_tail_on_a_busy_ring_see_only_intact_records() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = TempDir::new("busy");
    let path = dir.path("busy.ring");
    let region = Arc::new(
        Region::create(
            &path,
            &RegionConfig {
                initial_position: 0,
                ..config()
            },
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    // The producer writes `"n": sequence` in every payload; a consumer that lags now and then.
    let writer = {
        let (region, stop) = (Arc::clone(&region), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut events = region.producer(RingId::Events).unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                if events.try_write(record_type::STEP_EVENT, &event(n)).is_ok() {
                    n += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        })
    };
    let reader = {
        let (region, stop) = (Arc::clone(&region), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reader = region.consumer(RingId::Events).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                reader
                    .read_batch(1 + (i % 7) as usize, |m| {
                        let v: Value = serde_json::from_slice(m.payload).unwrap();
                        assert_eq!(v["n"].as_u64(), Some(m.sequence));
                    })
                    .unwrap();
                i += 1;
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
        })
    };
    let p = path.to_str().unwrap();
    let mut seen = 0;
    for _ in 0..20 {
        let o = run(&["dump", p, "--json", "--ring", "events"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        for r in records(&json(&o), "events") {
            assert_eq!(r["kind"], "message", "{r:#}");
            assert_eq!(r["json"]["n"], r["sequence"], "an intact record: {r:#}");
            seen += 1;
        }
    }
    let tail = Tail::spawn(&[p, "--duration", "1s", "--interval", "1", "--excerpt", "300"]);
    let mut lines = 0;
    while let Ok(line) = tail.out.recv_timeout(Duration::from_secs(20)) {
        if line.starts_with("!! lapped") {
            continue;
        }
        let (head, payload) = line.split_once(" {").unwrap_or_else(|| panic!("{line}"));
        let v: Value = serde_json::from_str(&format!("{{{payload}")).unwrap_or_else(|e| panic!("{e}: {line}"));
        let seq: u64 = head.split(' ').nth(2).unwrap().parse().unwrap();
        assert_eq!(v["n"].as_u64(), Some(seq), "{line}");
        lines += 1;
    }
    let (code, err) = tail.finish();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    reader.join().unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(lines > 0 && seen > 0, "tail saw {lines} messages, dump {seen}");
}
