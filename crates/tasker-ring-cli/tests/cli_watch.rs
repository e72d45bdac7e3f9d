//! `tasker-ring watch` with stdout piped (plain mode): one frame per refresh separated by a blank line,
//! `--frames N`, rates while a producer in this test writes, the capacities, read-only (the file's bytes
//! are identical before and after a watch of a paused ring), and the exit codes when the region is
//! missing, not a region, or removed or truncated while being watched.

use assert_cmd::cargo::CommandCargoExt;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tasker_ring::{record_type, Region, RegionConfig, RingId, WriteError};

fn config() -> RegionConfig {
    RegionConfig {
        events_capacity: 64 << 10,
        completions_capacity: 16 << 10,
        max_frame_size: 512,
        max_message_size: 1 << 20,
        initial_position: 0,
    }
}

use tasker_test_support::region::TempDir;

fn watch(path: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("tasker-ring").unwrap();
    cmd.arg("watch").arg(path).args(extra);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

fn run(path: &Path, extra: &[&str]) -> (Output, String) {
    let out = watch(path, extra).output().unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    (out, stdout)
}

/// Frames are separated by one blank line and hold none.
fn frames(stdout: &str) -> Vec<&str> {
    stdout
        .split("\n\n")
        .map(str::trim_end)
        .filter(|f| !f.is_empty())
        .collect()
}

/// The lines of one ring in a frame, from its heading to the next ring (or the footer).
fn ring<'a>(frame: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = frame.lines().skip_while(|l| !l.starts_with(&format!("{name} (")));
    let heading = lines.next().unwrap_or_else(|| panic!("no {name} ring in:\n{frame}"));
    std::iter::once(heading)
        .chain(lines.take_while(|l| l.starts_with(' ')))
        .collect()
}

/// The first line (indentation removed) starting with `starts`.
fn line<'a>(lines: &[&'a str], starts: &str) -> &'a str {
    lines
        .iter()
        .map(|l| l.trim_start())
        .find(|l| l.starts_with(starts))
        .unwrap_or_else(|| panic!("no {starts:?} line in {lines:#?}"))
}

/// The frames/s figure of a `published` or `consumed` line; `None` before the first measured interval.
fn rate(lines: &[&str], side: &str) -> Option<f64> {
    let l = line(lines, side);
    let figure = l[side.len()..].split_whitespace().next().unwrap();
    figure
        .strip_suffix("/s")
        .is_none()
        .then(|| figure.replace(',', "").parse().unwrap())
}

#[test]
fn live_region_three_frames_with_rates_and_capacities() {
    let dir = TempDir::new("live");
    let path = dir.path("live.ring");
    let region = Region::create(&path, &config()).unwrap();
    let stop = AtomicBool::new(false);
    let me = std::process::id();
    let (out, stdout) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut events = region.producer(RingId::Events).unwrap();
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match events.try_write(record_type::STEP_EVENT, br#"{"event_id":"0123456789abcdef"}"#) {
                    Ok(()) => written += 1,
                    Err(WriteError::Full { .. }) => {}
                    Err(e) => panic!("write: {e}"),
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            written
        });
        let reader = s.spawn(|| {
            let mut events = region.consumer(RingId::Events).unwrap();
            while !stop.load(Ordering::Relaxed) {
                if events.read_batch(64, |_| {}).unwrap() == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        // Let frames flow before the first refresh, so every measured interval sees some.
        std::thread::sleep(Duration::from_millis(50));
        let result = run(&path, &["--interval", "100", "--frames", "3"]);
        stop.store(true, Ordering::Relaxed);
        assert!(writer.join().unwrap() > 0);
        reader.join().unwrap();
        result
    });
    assert!(out.status.success(), "{out:?}");
    let frames = frames(&stdout);
    assert_eq!(frames.len(), 3, "three refreshes, three frames:\n{stdout}");
    for (i, frame) in frames.iter().enumerate() {
        let first = frame.lines().next().unwrap();
        assert_eq!(first, format!("tasker-ring watch  {}", path.display()));
        assert!(frame.contains(&format!("creator pid {me} alive")), "{frame}");
        assert!(frame.contains("layout 1.1"), "{frame}");
        assert!(
            frame.ends_with(&format!(
                "refresh {}, every 100 ms | read-only, one frame per refresh",
                i + 1
            )),
            "{frame}"
        );
        assert!(frame.contains("get_ffi_dispatch_metrics"));

        let events = ring(frame, "events");
        assert_eq!(events[0], "events (Rust -> TS)  capacity 64.0 KiB");
        assert!(line(&events, "fill").contains('['), "{events:#?}");
        assert!(line(&events, "unread").contains(" frames "), "{events:#?}");
        assert!(line(&events, "producer").contains(&format!("pid {me} alive  heartbeat ")));
        assert!(line(&events, "consumer").contains(&format!("pid {me} alive  heartbeat ")));
        let completions = ring(frame, "completions");
        assert_eq!(completions[0], "completions (TS -> Rust)  capacity 16.0 KiB");
        assert!(line(&completions, "producer").contains("none (role free)"));
        assert_eq!(rate(&completions, "published"), if i == 0 { None } else { Some(0.0) });

        let (published, consumed) = (rate(&events, "published"), rate(&events, "consumed"));
        if i == 0 {
            assert_eq!((published, consumed), (None, None), "no rate before a second snapshot");
        } else {
            assert!(published.unwrap() > 0.0, "frames are flowing: {events:#?}");
            assert!(consumed.unwrap() > 0.0, "and being consumed: {events:#?}");
        }
    }
}

#[test]
fn watching_changes_no_byte_of_the_region() {
    let dir = TempDir::new("readonly");
    let path = dir.path("paused.ring");
    let region = Region::create(&path, &config()).unwrap();
    let mut producer = region.producer(RingId::Events).unwrap();
    let mut consumer = region.consumer(RingId::Events).unwrap();
    for i in 0..20 {
        producer
            .try_write(
                record_type::STEP_EVENT,
                format!(r#"{{"event_id":"{i:04}"}}"#).as_bytes(),
            )
            .unwrap();
    }
    assert_eq!(consumer.read_batch(5, |_| {}).unwrap(), 5);
    // Producer and consumer keep their roles but are paused: nothing in this process writes any more.
    let before = fs::read(&path).unwrap();
    let (out, stdout) = run(&path, &["--interval", "50", "--frames", "3"]);
    let after = fs::read(&path).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(before == after, "watch changed the region's bytes");

    let frames = frames(&stdout);
    assert_eq!(frames.len(), 3, "{stdout}");
    let events = ring(frames[2], "events");
    assert!(
        line(&events, "unread").starts_with("unread    15 frames  "),
        "{events:#?}"
    );
    assert_eq!(
        rate(&events, "published"),
        Some(0.0),
        "a paused producer publishes nothing"
    );
    assert!(line(&events, "published").ends_with("total 20 frames"), "{events:#?}");
    assert!(line(&events, "consumed").ends_with("total 5 frames"), "{events:#?}");
    assert!(line(&events, "sleeps").ends_with("awake"), "{events:#?}");
    drop((producer, consumer));
}

#[test]
fn a_missing_region_exits_3_and_a_non_region_5() {
    let dir = TempDir::new("missing");
    let (out, stdout) = run(&dir.path("nope.ring"), &["--frames", "1"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such region"),
        "{out:?}"
    );

    let junk = dir.path("junk.ring");
    fs::write(&junk, vec![0u8; 8192]).unwrap();
    let (out, _) = run(&junk, &["--frames", "1"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");

    let (out, _) = run(&junk, &["--interval", "0"]);
    assert_eq!(out.status.code(), Some(2), "an interval of 0 is a usage error: {out:?}");
}

/// Starts a long watch, lets it draw a few frames, applies `change`, and returns how it ended.
fn watch_while(path: &Path, change: impl FnOnce()) -> (Output, String) {
    let child = watch(path, &["--interval", "50", "--frames", "400"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    change();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "watch noticed within a few refreshes"
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    (out, stdout)
}

#[test]
fn a_region_removed_while_watched_is_shown_and_exits_3() {
    let dir = TempDir::new("removed");
    let path = dir.path("gone.ring");
    let region = Region::create(&path, &config()).unwrap();
    let (out, stdout) = watch_while(&path, || region.unlink().unwrap());
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let frames = frames(&stdout);
    assert!(frames.len() >= 2, "{stdout}");
    let last = frames.last().unwrap();
    assert!(
        last.lines().nth(1).unwrap().starts_with("!! region removed: "),
        "the last frame says why:\n{last}"
    );
    assert!(
        rate(&ring(last, "events"), "published").is_some(),
        "and repeats the last state read, rates included:\n{last}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such region"));
}

#[test]
fn a_region_truncated_while_watched_is_shown_and_exits_7() {
    let dir = TempDir::new("truncated");
    let path = dir.path("short.ring");
    let size = Region::create(&path, &config()).unwrap().layout().header.region_size;
    // Keep the header page (the control blocks live there), drop the last data page.
    let (out, stdout) = watch_while(&path, || {
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size - 4096)
            .unwrap()
    });
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let last = *frames(&stdout).last().unwrap();
    assert!(last.contains("!! region truncated: "), "{last}");
}
