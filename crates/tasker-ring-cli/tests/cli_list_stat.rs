//! `tasker-ring list` and `tasker-ring stat` against a live region: a "worker" thread holds the events
//! producer and completions consumer roles, a "handler" thread the other two, as the real worker and TS
//! poller do. The outputs (text and `--json`) are checked for real values: positions and counters equal
//! what the threads wrote and read, positions advance between two stats, rates appear with `--interval`,
//! and the region's bytes are identical before and after every read-only command.

mod support;

use serde_json::Value;
use std::fs;
use std::time::{Duration, Instant};
use support::*;
use tasker_ring::record_type;

/// Where a producer lands after publishing single-frame messages of these payload sizes from `pos`, and
/// how many padding records it writes on the way (layout-spec.md section 5, the wrap rule).
fn simulate(mut pos: u32, capacity: u32, sizes: &[usize]) -> (u32, u64) {
    let mut pads = 0;
    for &n in sizes {
        let fp = footprint(n);
        let to_end = capacity - (pos & (capacity - 1));
        if to_end < fp {
            pos = pos.wrapping_add(to_end);
            pads += 1;
        }
        pos = pos.wrapping_add(fp);
    }
    (pos, pads)
}

fn u(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{ptr} missing or not a number in {v:#}"))
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{ptr} missing or not a string in {v:#}"))
}

fn stat_json(path: &std::path::Path) -> Value {
    let v = run_json(["stat".as_ref(), path.as_os_str(), "--json".as_ref()]);
    assert_eq!(s(&v, "/schema"), "tasker-ring/stat/1");
    v
}

const INITIAL: u32 = 0xffff_fc00;

#[test]
fn stat_and_list_show_what_the_threads_wrote_and_read() {
    let dir = TempDir::new("stat");
    let path = dir.path("w1.ring");
    let config = small_config(INITIAL);
    let live = Live::start(&path, &config);
    let me = std::process::id() as u64;

    let first: Vec<usize> = (0..10).map(|i| 20 + 7 * i).collect();
    live.publish(&first);
    assert_eq!(live.consume(4), 4);
    // The handler answers four events; the worker drains two of the answers.
    live.handler(|h| {
        for _ in 0..4 {
            h.completions.try_write(record_type::COMPLETION, &[b'c'; 40]).unwrap();
        }
    });
    assert_eq!(live.worker(|w| w.completions.read_batch(2, |_| {}).unwrap()), 2);

    let v = stat_json(&path);
    let (head, pads) = simulate(INITIAL, 4096, &first);
    let (tail, _) = simulate(INITIAL, 4096, &first[..4]);
    let e = "/rings/events";
    assert_eq!(u(&v, &format!("{e}/producer_position")), head as u64);
    assert_eq!(u(&v, &format!("{e}/consumer_position")), tail as u64);
    assert_eq!(u(&v, &format!("{e}/initial_position")), INITIAL as u64);
    assert_eq!(u(&v, &format!("{e}/lag_bytes")), head.wrapping_sub(tail) as u64);
    assert_eq!(u(&v, &format!("{e}/free_bytes")), 4096 - head.wrapping_sub(tail) as u64);
    assert_eq!(u(&v, &format!("{e}/lag_frames")), 6);
    assert_eq!(
        u(&v, &format!("{e}/lag_payload_bytes")),
        first[4..].iter().sum::<usize>() as u64
    );
    let fill = v.pointer(&format!("{e}/fill_percent")).unwrap().as_f64().unwrap();
    let expected_fill = head.wrapping_sub(tail) as f64 * 100.0 / 4096.0;
    assert!((fill - expected_fill).abs() < 0.01, "{fill} vs {expected_fill}");
    assert_eq!(u(&v, &format!("{e}/counters/frames")), 10);
    assert_eq!(
        u(&v, &format!("{e}/counters/bytes")),
        first.iter().sum::<usize>() as u64
    );
    assert_eq!(u(&v, &format!("{e}/counters/pads")), pads);
    assert_eq!(u(&v, &format!("{e}/counters/frames_read")), 4);
    assert_eq!(
        u(&v, &format!("{e}/counters/bytes_read")),
        first[..4].iter().sum::<usize>() as u64
    );
    assert_eq!(u(&v, &format!("{e}/counters/full_stalls")), 0);
    assert_eq!(v.pointer(&format!("{e}/positions_valid")), Some(&Value::Bool(true)));
    assert_eq!(v.pointer(&format!("{e}/consumer_sleeping")), Some(&Value::Bool(false)));
    assert_eq!(v.pointer(&format!("{e}/rates")), Some(&Value::Null));
    // Layout 1.1: the consumer declared it claims, and claimed what it read; nothing is sealed.
    assert_eq!(v.pointer(&format!("{e}/sealed")), Some(&Value::Bool(false)));
    assert_eq!(u(&v, &format!("{e}/claiming_pid")), me);
    assert_eq!(
        u(&v, &format!("{e}/claimed_position")),
        u(&v, &format!("{e}/consumer_position"))
    );
    for role in ["producer", "consumer"] {
        assert_eq!(u(&v, &format!("{e}/{role}/pid")), me);
        assert_eq!(s(&v, &format!("{e}/{role}/state")), "alive");
        assert!(u(&v, &format!("{e}/{role}/start_time")) > 0);
        assert!(u(&v, &format!("{e}/{role}/heartbeat_age_ms")) < 60_000);
    }
    let c = "/rings/completions";
    assert_eq!(u(&v, &format!("{c}/counters/frames")), 4);
    assert_eq!(u(&v, &format!("{c}/counters/bytes")), 160);
    assert_eq!(u(&v, &format!("{c}/counters/frames_read")), 2);
    assert_eq!(u(&v, &format!("{c}/lag_frames")), 2);
    assert_eq!(u(&v, &format!("{c}/lag_bytes")), 2 * footprint(40) as u64);
    assert_eq!(u(&v, &format!("{c}/capacity")), 1024);
    // Header and creator.
    assert_eq!(s(&v, "/path"), path.display().to_string());
    assert_eq!(s(&v, "/name"), "w1");
    assert_eq!(u(&v, "/layout_major"), 1);
    assert_eq!(u(&v, "/layout_minor"), 1);
    assert_eq!(u(&v, "/feature_bits"), 0);
    assert_eq!(u(&v, "/region_size"), fs::metadata(&path).unwrap().len());
    assert_eq!(u(&v, "/region_size"), 4096 + 4096 + 4096);
    assert_eq!(u(&v, "/max_frame_size"), 256);
    assert_eq!(u(&v, "/max_message_size"), 1 << 16);
    assert_eq!(u(&v, "/creator/pid"), me);
    assert_eq!(s(&v, "/creator/state"), "alive");
    assert_eq!(v.pointer("/creator/pid_reused"), Some(&Value::Bool(false)));
    assert_eq!(
        u(&v, "/creator/start_time"),
        tasker_ring::liveness::ProcessIdentity::current().start_time
    );
    assert_eq!(v.pointer("/interval_ms"), Some(&Value::Null));

    // Five more, larger: they cross the end of the data area (a padding record) and 2^32.
    let second: Vec<usize> = (0..5).map(|i| 60 + 10 * i).collect();
    live.publish(&second);
    let all: Vec<usize> = first.iter().chain(&second).copied().collect();
    let (head2, pads2) = simulate(INITIAL, 4096, &all);
    assert!(
        pads2 >= 1 && head2 < INITIAL,
        "the test must wrap the ring and the position"
    );
    let v2 = stat_json(&path);
    assert_eq!(u(&v2, &format!("{e}/producer_position")), head2 as u64);
    assert_ne!(head2, head, "positions advance between two stats");
    assert_eq!(u(&v2, &format!("{e}/consumer_position")), tail as u64);
    assert_eq!(u(&v2, &format!("{e}/counters/frames")), 15);
    assert_eq!(u(&v2, &format!("{e}/counters/pads")), pads2);
    assert_eq!(u(&v2, &format!("{e}/lag_frames")), 11);
    assert_eq!(u(&v2, &format!("{e}/counters/bytes")), all.iter().sum::<usize>() as u64);

    // The text form carries the same values.
    let text = run(["stat".as_ref(), path.as_os_str()]);
    assert_eq!(text.code, Some(0), "{}", text.stderr);
    let t = &text.stdout;
    for needle in [
        format!("region      {}", path.display()),
        "layout      1.1, feature bits 0x0, ready".to_string(),
        format!("creator     pid {me} ("),
        format!("producer {head2:#010x}, consumer {tail:#010x} (initial {INITIAL:#010x})"),
        format!(
            "published   15 frames, {} B payload, {pads2} pads, 0 full-stalls, 0 doorbells",
            all.iter().sum::<usize>()
        ),
        format!(
            "consumed    4 frames, {} B payload, 0 sleeps",
            first[..4].iter().sum::<usize>()
        ),
        format!("lag         {} B in 11 frames", head2.wrapping_sub(tail)),
        format!("claim       {tail:#010x}, declared by pid {me}"),
        "completions (TS -> Rust): capacity 1.0 KiB (1024 B)".to_string(),
        "published   4 frames, 160 B payload".to_string(),
    ] {
        assert!(t.contains(&needle), "missing {needle:?} in:\n{t}");
    }
    assert!(t.contains(&format!("producer    pid {me} (start ")), "{t}");
    assert!(t.contains("alive, heartbeat "), "{t}");

    // A bare worker id is looked up in --dir.
    let by_id = run_json([
        "stat".as_ref(),
        "w1".as_ref(),
        "--dir".as_ref(),
        dir.dir().as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(
        by_id.pointer("/rings/events/producer_position"),
        v2.pointer("/rings/events/producer_position")
    );

    // list: the same region, the same values.
    let l = run_json([
        "list".as_ref(),
        "--dir".as_ref(),
        dir.dir().as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(s(&l, "/schema"), "tasker-ring/list/1");
    assert_eq!(s(&l, "/dir"), dir.dir().display().to_string());
    let regions = l.pointer("/regions").unwrap().as_array().unwrap();
    assert_eq!(regions.len(), 1);
    let r = &regions[0];
    assert_eq!(s(r, "/name"), "w1");
    assert_eq!(r.pointer("/error"), Some(&Value::Null));
    assert_eq!(u(r, "/region/creator/pid"), me);
    assert_eq!(s(r, "/region/creator/state"), "alive");
    for ptr in [
        "/rings/events/producer_position",
        "/rings/events/consumer_position",
        "/rings/events/counters",
        "/rings/completions/counters",
        "/rings/events/fill_percent",
    ] {
        assert_eq!(r.pointer(&format!("/region{ptr}")), v2.pointer(ptr), "{ptr}");
    }
    let table = run(["list".as_ref(), "--dir".as_ref(), dir.dir().as_os_str()]);
    assert_eq!(table.code, Some(0), "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", table.stdout);
    let head_cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head_cols,
        [
            "NAME",
            "PID",
            "START",
            "STATE",
            "HEARTBEAT",
            "LAYOUT",
            "SIZE",
            "EVENTS",
            "COMPLETIONS"
        ]
    );
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cols[0], "w1");
    assert_eq!(cols[1], me.to_string());
    assert_eq!(cols[3], "alive");
    assert!(lines[1].contains(" 1.1 "), "{}", lines[1]);
    assert!(lines[1].contains("12.0 KiB"), "{}", lines[1]);
    let events_fill = format!("{:.1}%", head2.wrapping_sub(tail) as f64 * 100.0 / 4096.0);
    assert!(lines[1].contains(&events_fill), "{events_fill} in {}", lines[1]);
    let completions_fill = format!("{:.1}%", 2.0 * footprint(40) as f64 * 100.0 / 1024.0);
    assert!(
        lines[1].ends_with(&completions_fill),
        "{completions_fill} in {}",
        lines[1]
    );
}

#[test]
fn sleeping_flag_doorbells_and_full_stalls_are_counted() {
    let dir = TempDir::new("counters");
    let path = dir.path("w2.ring");
    let live = Live::start(&path, &small_config(0));
    assert!(
        live.handler(|h| h.events.prepare_sleep()),
        "empty ring: the handler may sleep"
    );
    let v = stat_json(&path);
    assert_eq!(v.pointer("/rings/events/consumer_sleeping"), Some(&Value::Bool(true)));
    assert_eq!(u(&v, "/rings/events/counters/sleeps"), 1);
    assert!(run(["stat".as_ref(), path.as_os_str()]).stdout.contains("; sleeping\n"));

    // One publish finds the handler asleep: one doorbell, flag cleared.
    let rang = live.worker(|w| {
        w.events.try_write(record_type::STEP_EVENT, b"{\"wake\":1}").unwrap();
        w.events.consumer_needs_wakeup()
    });
    assert!(rang);
    let v = stat_json(&path);
    assert_eq!(v.pointer("/rings/events/consumer_sleeping"), Some(&Value::Bool(false)));
    assert_eq!(u(&v, "/rings/events/counters/doorbells"), 1);

    // Fill the ring, then three more all-or-nothing writes are refused: three full stalls.
    let (written, stalls) = live.worker(|w| {
        let mut written = 1u64;
        while w.events.try_write(record_type::STEP_EVENT, &[b'x'; 200]).is_ok() {
            written += 1;
        }
        let mut stalls = 1u64;
        for _ in 0..3 {
            assert!(w.events.try_write(record_type::STEP_EVENT, &[b'x'; 200]).is_err());
            stalls += 1;
        }
        (written, stalls)
    });
    let v = stat_json(&path);
    assert_eq!(u(&v, "/rings/events/counters/full_stalls"), stalls);
    assert_eq!(u(&v, "/rings/events/counters/frames"), written);
    assert_eq!(u(&v, "/rings/events/lag_frames"), written);
    let fill = v.pointer("/rings/events/fill_percent").unwrap().as_f64().unwrap();
    assert!(fill >= 90.0, "{v:#}");
    let text = run(["stat".as_ref(), path.as_os_str()]).stdout;
    assert!(text.contains(&format!("{stalls} full-stalls, 1 doorbells")), "{text}");
    // The handler reads all: lag 0, every frame read.
    assert_eq!(live.consume(usize::MAX) as u64, written);
    let v = stat_json(&path);
    assert_eq!(u(&v, "/rings/events/lag_bytes"), 0);
    assert_eq!(u(&v, "/rings/events/counters/frames_read"), written);
}

#[test]
fn positions_advance_and_rates_appear_while_streaming() {
    let dir = TempDir::new("rates");
    let path = dir.path("w3.ring");
    let live = Live::start(&path, &small_config(0));
    let streaming = live.start_streaming();
    // Let it get going.
    let deadline = Instant::now() + Duration::from_secs(10);
    let a = loop {
        let a = stat_json(&path);
        if u(&a, "/rings/events/counters/frames") > 0 || Instant::now() > deadline {
            break a;
        }
    };
    // Two stats a little apart (longer on a loaded machine, up to the deadline).
    let b = loop {
        std::thread::sleep(Duration::from_millis(50));
        let b = stat_json(&path);
        let moved = u(&b, "/rings/events/counters/frames") > u(&a, "/rings/events/counters/frames")
            && u(&b, "/rings/events/counters/frames_read") > 0;
        if moved || Instant::now() > deadline {
            break b;
        }
    };
    assert!(
        u(&b, "/rings/events/counters/frames") > u(&a, "/rings/events/counters/frames"),
        "frames advance"
    );
    assert_ne!(
        u(&b, "/rings/events/producer_position"),
        u(&a, "/rings/events/producer_position"),
        "positions advance between two stats"
    );
    assert!(u(&b, "/rings/events/counters/frames_read") > 0);

    let v = run_json([
        "stat".as_ref(),
        path.as_os_str(),
        "--json".as_ref(),
        "--interval".as_ref(),
        "300".as_ref(),
    ]);
    let interval = v.pointer("/interval_ms").unwrap().as_f64().unwrap();
    assert!((300.0..10_000.0).contains(&interval), "{interval}");
    let rate = |p: &str| v.pointer(p).unwrap().as_f64().unwrap();
    assert!(rate("/rings/events/rates/frames_per_sec") > 0.0, "{v:#}");
    assert!(rate("/rings/events/rates/bytes_per_sec") > 0.0);
    assert!(rate("/rings/events/rates/frames_read_per_sec") > 0.0);
    assert!(rate("/rings/events/rates/producer_position_per_sec") > rate("/rings/events/rates/bytes_per_sec"));
    assert!(rate("/rings/completions/rates/frames_per_sec") > 0.0);
    let text = run(["stat".as_ref(), path.as_os_str(), "--interval".as_ref(), "100".as_ref()]);
    assert_eq!(text.code, Some(0), "{}", text.stderr);
    assert!(text.stdout.contains("sampled     twice, "), "{}", text.stdout);
    assert!(text.stdout.contains("  rates       in  "), "{}", text.stdout);
    assert!(text.stdout.contains(" frames/s, "), "{}", text.stdout);

    // Paused: the counters equal what the threads counted.
    let totals = live.stop_streaming(streaming);
    assert!(totals.frames > 0);
    assert_eq!(totals.frames, totals.frames_read, "the handler read every event");
    let v = stat_json(&path);
    assert_eq!(u(&v, "/rings/events/counters/frames"), totals.frames);
    assert_eq!(u(&v, "/rings/events/counters/bytes"), totals.bytes);
    assert_eq!(u(&v, "/rings/events/counters/frames_read"), totals.frames_read);
    assert_eq!(u(&v, "/rings/events/counters/bytes_read"), totals.bytes_read);
    assert_eq!(u(&v, "/rings/events/lag_bytes"), 0);
    assert_eq!(u(&v, "/rings/completions/counters/frames"), totals.completions);
    assert_eq!(u(&v, "/rings/completions/counters/bytes"), totals.completions * 48);
    assert_eq!(
        u(&v, "/rings/completions/counters/frames_read"),
        totals.completions_read
    );
    assert_eq!(totals.completions, totals.completions_read);
    assert!(u(&v, "/rings/events/counters/pads") > 0, "the run wrapped the ring");
}

#[test]
fn read_only_commands_leave_every_byte_of_the_region_unchanged() {
    let dir = TempDir::new("readonly");
    let path = dir.path("w4.ring");
    let live = Live::start(&path, &small_config(INITIAL));
    // Some history, then both sides paused (they only touch the region inside a job).
    let streaming = live.start_streaming();
    std::thread::sleep(Duration::from_millis(100));
    live.stop_streaming(streaming);
    live.publish(&[30, 40, 50]);
    assert!(live.handler(|h| h.events.read_batch(1, |_| {}).unwrap()) == 1);
    let before = fs::read(&path).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let d = dir.dir().to_str().unwrap();
    let p = path.to_str().unwrap();
    let commands: [&[&str]; 8] = [
        &["list", "--dir", d],
        &["list", "--dir", d, "--json"],
        &["stat", p],
        &["stat", p, "--json"],
        &["stat", p, "--interval", "30"],
        &["stat", p, "--json", "--interval", "30"],
        &["stat", "w4", "--dir", d],
        &["clean", "--dir", d, "--dry-run"],
    ];
    for args in commands {
        let r = run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
        assert!(!r.stdout.is_empty(), "{args:?}");
        let after = fs::read(&path).unwrap();
        assert!(before == after, "{args:?} changed the region's bytes");
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime, "{args:?}");
    }
    // `clean` (not a dry run) keeps a live region and does not touch it either.
    let r = run(["clean", "--dir", d]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("kept "), "{}", r.stdout);
    assert!(before == fs::read(&path).unwrap(), "clean changed a live region");
}

#[test]
fn list_of_an_empty_or_missing_directory_and_usage_errors() {
    let dir = TempDir::new("empty");
    let r = run(["list".as_ref(), "--dir".as_ref(), dir.dir().as_os_str()]);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.starts_with("no regions (*.ring) in "), "{}", r.stdout);
    let v = run_json([
        "list".as_ref(),
        "--dir".as_ref(),
        dir.dir().as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(v.pointer("/regions").unwrap().as_array().unwrap().len(), 0);
    // Files that are not *.ring are not regions and not listed.
    fs::write(dir.path("notes.txt"), b"hello").unwrap();
    let v = run_json([
        "list".as_ref(),
        "--dir".as_ref(),
        dir.dir().as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(v.pointer("/regions").unwrap().as_array().unwrap().len(), 0);

    let missing = dir.path("nope");
    let r = run(["list".as_ref(), "--dir".as_ref(), missing.as_os_str()]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_one_line_error(&r, "missing dir");

    let path = dir.path("w5.ring");
    let _live = Live::start(&path, &small_config(0));
    let r = run(["stat".as_ref(), path.as_os_str(), "--interval".as_ref(), "0".as_ref()]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert_one_line_error(&r, "--interval 0");
    let r = run([
        "stat".as_ref(),
        path.as_os_str(),
        "--interval".as_ref(),
        "soon".as_ref(),
    ]);
    assert_eq!(r.code, Some(2), "clap's usage errors exit 2 too: {}", r.stderr);
    let r = run(["stat"]);
    assert_eq!(r.code, Some(2));
}
