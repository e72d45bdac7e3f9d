//! Drawing one `watch` frame: a pure function of a [`Model`] to lines of text, none wider than the view.

use super::model::{Model, Peer, Rate, RingModel};
use crate::inspect::{human_age_ms, human_bytes};
use std::time::Duration;
use tasker_ring::liveness::Liveness;
use tasker_ring::{RingId, RingSnapshot};

/// Narrowest layout; a narrower terminal sees lines cut at its edge.
const MIN_WIDTH: usize = 40;

/// Draws one frame: plain lines, none empty, none wider than `model.view.width` (at least 40) columns.
pub fn render(model: &Model) -> Vec<String> {
    let width = model.view.width.max(MIN_WIDTH);
    let mut out = Vec::new();
    out.push(format!("tasker-ring watch  {}", model.path));
    if let Some(alert) = &model.alert {
        wrap(&mut out, &format!("!! {alert}"), width);
    }
    out.push(format!(
        "region    layout {}.{}  size {}  creator {}  created {}",
        model.layout_major,
        model.layout_minor,
        human_bytes(model.region_size),
        peer_text(&model.creator),
        ago(model.creator.age_ms),
    ));
    for ring in &model.rings {
        render_ring(&mut out, ring, model.elapsed, width);
    }
    wrap(
        &mut out,
        "in flight: the region shows only unread frames (above); dispatch in-flight counts (read, not \
         completed) live in the worker: get_ffi_dispatch_metrics",
        width,
    );
    out.push(format!(
        "refresh {}, every {} ms | {}",
        model.view.refresh,
        model.view.interval_ms,
        if model.view.interactive {
            "q, Esc or Ctrl-C quits | read-only"
        } else {
            "read-only, one frame per refresh"
        }
    ));
    out.into_iter().map(|line| cut(line, width)).collect()
}

fn render_ring(out: &mut Vec<String>, ring: &RingModel, elapsed: Option<Duration>, width: usize) {
    let (s, cap) = (&ring.now, ring.capacity);
    let direction = match ring.id {
        RingId::Events => "Rust -> TS",
        RingId::Completions => "TS -> Rust",
    };
    out.push(format!(
        "{} ({direction})  capacity {}",
        ring.id.name(),
        human_bytes(cap as u64)
    ));

    let bar = width.saturating_sub(38).clamp(10, 60);
    let used = ring.used_bytes();
    out.push(match used {
        Some(used) => {
            let fraction = used as f64 / cap as f64;
            let mut filled = ((fraction * bar as f64).round() as usize).min(bar);
            if used > 0 && filled == 0 {
                filled = 1; // a non-empty ring never looks empty
            }
            format!(
                "  fill      [{}{}] {:5.1}%  {} used",
                "#".repeat(filled),
                ".".repeat(bar - filled),
                fraction * 100.0,
                human_bytes(used as u64)
            )
        }
        None => format!(
            "  fill      ?  positions inconsistent: producer {}, consumer {}",
            s.producer_position, s.consumer_position
        ),
    });
    out.push(format!(
        "  unread    {} frames  {}  (lag: published, not yet consumed)",
        group(ring.lag_frames()),
        used.map_or("?".to_string(), |u| human_bytes(u as u64))
    ));

    let rates = ring.rates(elapsed);
    let rate = |r: Option<Rate>| match r {
        Some(r) => format!(
            "{} frames/s {}/s",
            per_second(r.frames),
            human_bytes(r.bytes.round() as u64)
        ),
        None => "-/s (next refresh)".to_string(),
    };
    let offset = |pos: u32| pos as usize & (cap as usize - 1);
    let before = ring.before.as_ref();
    let delta = |f: fn(&RingSnapshot) -> u64| counter(f(s), before.map(f));
    out.push(format!(
        "  producer  {}   pos {} @{:#x}",
        peer_with_heartbeat(&ring.producer),
        s.producer_position,
        offset(s.producer_position)
    ));
    out.push(format!(
        "            published {}  total {} frames",
        rate(rates.map(|r| r.0)),
        count(s.frames),
    ));
    out.push(format!(
        "            doorbells {}  full-stalls {}  pads {}",
        delta(|x| x.doorbells),
        delta(|x| x.full_stalls),
        delta(|x| x.pads),
    ));
    out.push(format!(
        "  consumer  {}   pos {} @{:#x}",
        peer_with_heartbeat(&ring.consumer),
        s.consumer_position,
        offset(s.consumer_position)
    ));
    out.push(format!(
        "            consumed {}  total {} frames",
        rate(rates.map(|r| r.1)),
        count(s.frames_read),
    ));
    out.push(format!(
        "            sleeps {}  {}",
        delta(|x| x.sleeps),
        if s.consumer_sleeping != 0 {
            "SLEEPING (waits for a doorbell)"
        } else {
            "awake"
        }
    ));
}

fn peer_text(p: &Peer) -> String {
    match p.liveness {
        Liveness::Absent => "none".to_string(),
        Liveness::Alive => format!("pid {} alive", p.pid),
        Liveness::Dead => format!("pid {} DEAD", p.pid),
    }
}

fn peer_with_heartbeat(p: &Peer) -> String {
    match p.liveness {
        Liveness::Absent => "none (role free)".to_string(),
        _ => format!("{}  heartbeat {}", peer_text(p), ago(p.age_ms)),
    }
}

fn ago(age_ms: Option<u64>) -> String {
    match age_ms {
        None => "never".to_string(),
        age => format!("{} ago", human_age_ms(age)),
    }
}

/// A counter with its growth since the previous refresh: `12`, `12 (+3)`.
fn counter(now: u64, before: Option<u64>) -> String {
    match before.map(|b| now.saturating_sub(b)) {
        Some(d) if d > 0 => format!("{} (+{})", count(now), count(d)),
        _ => count(now),
    }
}

/// A total for people: exact (grouped) below ten million, then `12.3M`, `4.6G`.
fn count(n: u64) -> String {
    match n {
        0..=9_999_999 => group(n),
        10_000_000..=9_999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// Digits grouped by thousands: `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A per-second figure: one decimal below 10, whole and grouped above.
fn per_second(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1}")
    } else {
        group(x.round() as u64)
    }
}

/// Greedy word wrap into lines of at most `width` columns; continuation lines are indented by two.
fn wrap(out: &mut Vec<String>, text: &str, width: usize) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.trim().is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::replace(&mut line, "  ".to_string()));
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.trim().is_empty() {
        out.push(line);
    }
}

/// Cuts a line to `width` characters (one column each: the view is ASCII apart from the path).
fn cut(line: String, width: usize) -> String {
    match line.char_indices().nth(width) {
        Some((at, _)) => line[..at].to_string(),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::watch::model::fixtures::{layout, line, model, snapshot, view};
    use std::path::Path;
    use tasker_ring::liveness::ProcessIdentity;
    use tasker_ring::PeerSnapshot;

    #[test]
    fn fill_bar_lag_and_capacity_of_each_ring() {
        let now = [snapshot(1024, 0, 10, 0), snapshot(0, 0, 0, 0)];
        let lines = render(&model(None, &now, 1));
        assert_eq!(lines[0], "tasker-ring watch  /dev/shm/w.ring");
        assert!(
            lines.iter().any(|l| l == "events (Rust -> TS)  capacity 4.0 KiB"),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l == "completions (TS -> Rust)  capacity 1.0 KiB"));
        let fill = line(&lines, 0, "  fill");
        let bar = &fill[fill.find('[').unwrap() + 1..fill.find(']').unwrap()];
        assert_eq!(bar.len(), 42, "80 columns leave a 42-column bar");
        assert_eq!(bar.matches('#').count(), 11, "a quarter full");
        assert!(fill.ends_with(" 25.0%  1.0 KiB used"), "{fill}");
        assert!(line(&lines, 0, "  unread").starts_with("  unread    10 frames  1.0 KiB  (lag"));
        assert!(line(&lines, 1, "  fill").contains("  0.0%  0 B used"));
        assert!(!line(&lines, 1, "  fill").contains('#'));
    }

    #[test]
    fn first_refresh_has_no_rates_later_ones_do() {
        let first = [snapshot(0, 0, 1000, 900), snapshot(0, 0, 0, 0)];
        let lines = render(&model(None, &first, 1));
        assert_eq!(
            line(&lines, 0, "            published"),
            "            published -/s (next refresh)  total 1,000 frames"
        );

        let second = [snapshot(0, 0, 1500, 1400), snapshot(0, 0, 5, 0)];
        let m = model(Some((&first, Duration::from_millis(500))), &second, 2);
        let lines = render(&m);
        assert_eq!(
            lines.last().unwrap(),
            "refresh 2, every 500 ms | q, Esc or Ctrl-C quits | read-only"
        );
        assert_eq!(
            line(&lines, 0, "            published"),
            "            published 1,000 frames/s 97.7 KiB/s  total 1,500 frames"
        );
        assert_eq!(
            line(&lines, 0, "            consumed"),
            "            consumed 1,000 frames/s 97.7 KiB/s  total 1,400 frames"
        );
        assert_eq!(
            line(&lines, 1, "            published"),
            "            published 10 frames/s 1000 B/s  total 5 frames"
        );
        assert!(line(&lines, 1, "            consumed").starts_with("            consumed 0.0 frames/s 0 B/s"));
        // Counters that went backwards (never in one region) read as no progress, not as a huge rate.
        let m = model(Some((&second, Duration::from_millis(500))), &first, 3);
        assert!(line(&render(&m), 0, "            published").contains("published 0.0 frames/s 0 B/s"));
    }

    #[test]
    fn peers_positions_counters_and_sleeping() {
        let mut now = [snapshot(4104, 4096, 7, 6), snapshot(0, 0, 0, 0)];
        let mut before = now;
        now[0].doorbells = 5;
        before[0].doorbells = 2;
        now[0].pads = 1;
        before[0].pads = 1;
        now[0].consumer_sleeping = 1;
        now[0].sleeps = 9;
        now[1].producer = PeerSnapshot {
            pid: 0,
            start_time: 0,
            heartbeat_unix_ms: 0,
        };
        now[1].consumer.heartbeat_unix_ms = 0;
        let judge = |p: ProcessIdentity| if p.pid == 4243 { Liveness::Dead } else { Liveness::Alive };
        let mut m = Model::build(
            Path::new("r.ring"),
            &layout(4096, 1024),
            Some((&before, Duration::from_secs(1))),
            &now,
            &judge,
            view(2),
        );
        m.view.width = 120;
        let lines = render(&m);
        assert_eq!(
            line(&lines, 0, "  producer"),
            "  producer  pid 4242 alive  heartbeat 1.5 s ago   pos 4104 @0x8"
        );
        assert_eq!(
            line(&lines, 0, "  consumer"),
            "  consumer  pid 4243 DEAD  heartbeat 1.5 s ago   pos 4096 @0x0"
        );
        assert_eq!(
            line(&lines, 0, "            doorbells"),
            "            doorbells 5 (+3)  full-stalls 0  pads 1"
        );
        assert_eq!(
            line(&lines, 0, "            sleeps"),
            "            sleeps 9 (+9)  SLEEPING (waits for a doorbell)"
        );
        assert_eq!(line(&lines, 1, "            sleeps"), "            sleeps 0  awake");
        assert!(line(&lines, 1, "  producer").starts_with("  producer  none (role free)   pos 0 @0x0"));
        assert!(line(&lines, 1, "  consumer").contains("pid 4243 DEAD  heartbeat never"));
        assert_eq!(
            lines[1],
            "region    layout 1.0  size 9.0 KiB  creator pid 4242 alive  created 1 min ago"
        );
    }

    #[test]
    fn every_line_fits_none_is_empty_and_the_footer_says_where_dispatch_counts_live() {
        let now = [
            snapshot(u32::MAX - 7, u32::MAX - 7, u64::MAX / 3, 0),
            snapshot(0, 0, 0, 0),
        ];
        for width in [20, 40, 60, 80, 132] {
            let mut m = model(None, &now, 1);
            m.view.width = width;
            m.alert =
                Some("region removed: /dev/shm/w.ring no longer exists (its worker stopped and unlinked it)".into());
            let lines = render(&m);
            for l in &lines {
                assert!(l.chars().count() <= width.max(MIN_WIDTH), "{width}: {l:?}");
                assert!(!l.trim().is_empty(), "{width}: empty line in {lines:#?}");
            }
            assert!(lines[1].starts_with("!! region removed"), "the alert comes first");
            let text = lines.join(" ");
            assert!(text.contains("get_ffi_dispatch_metrics"), "{width}: {text}");
        }
        let mut m = model(None, &now, 1);
        assert!(render(&m)
            .last()
            .unwrap()
            .ends_with("q, Esc or Ctrl-C quits | read-only"));
        m.view.interactive = false;
        assert!(!render(&m).last().unwrap().contains("quits"));
        assert!(
            !render(&m).iter().any(|l| l.starts_with("!!")),
            "no alert, no alert line"
        );
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(per_second(0.0), "0.0");
        assert_eq!(per_second(2.54), "2.5");
        assert_eq!(per_second(12_345.6), "12,346");
        assert_eq!(counter(5, None), "5");
        assert_eq!(counter(5, Some(5)), "5");
        assert_eq!(counter(5, Some(2)), "5 (+3)");
        assert_eq!(counter(25_000_000, Some(2)), "25.0M (+25.0M)");
        assert_eq!(count(9_999_999), "9,999,999");
        assert_eq!(count(864_012_345), "864.0M");
        assert_eq!(count(12_345_678_901), "12.3G");
        assert_eq!(cut("abcdef".into(), 4), "abcd");
        assert_eq!(cut("abc".into(), 4), "abc");
        let mut out = Vec::new();
        wrap(&mut out, "aaa bbb ccc ddd", 8);
        assert_eq!(out, ["aaa bbb", "  ccc", "  ddd"]);
    }
}
