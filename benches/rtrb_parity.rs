//! Rust -> Rust throughput parity with rtrb (issue 21), measured so that it survives a noisy VM.
//!
//! The same streaming loops as `throughput.rs` (`common/stream.rs`: one pinned producer thread per ring,
//! the consumer on the pinned bench thread, each payload copied out and checked), but instead of criterion's
//! separate sample sets the two rings run in **interleaved rounds**: in each round, for each payload size,
//! the same number of messages goes through `tasker_ring` and through `rtrb` back to back, the order
//! alternating from round to round (ours first in even rounds, rtrb first in odd ones). A burst of noise
//! then hits both sides of a round's ratio rather than one implementation's whole sample set.
//!
//! Per size it reports the per-round ratio `rtrb time / ours time` (above 1: ours is faster): the median,
//! the quartiles, min and max, and the distribution-free 95% confidence interval of the median (order
//! statistics of the binomial). Verdict against the goal "ratio >= 1.0": `met` when that interval lies at or
//! above 1.0, `not met` when it lies below, `undecided` when it straddles 1.0 (or there are too few rounds to
//! form one: fewer than 6).
//!
//! Usage (`scripts/bench` runs the full mode; `scripts/bench --quick` the smoke mode through `cargo test`):
//!
//! ```text
//! cargo test --release --bench rtrb_parity -- --bench            # full: 15 rounds, ~100 ms per run
//! cargo test --release --bench rtrb_parity                       # smoke (no --bench): 3 rounds, ~2 ms per run
//! cargo test --release --bench rtrb_parity -- --bench --rounds 31 --json /tmp/parity.json
//! TASKER_PARITY_ROUNDS=31 TASKER_PARITY_RUN_MS=200 cargo test --release --bench rtrb_parity -- --bench
//! ```
//!
//! `TASKER_PARITY_ONLY=ours` (or `rtrb`) runs one ring alone for as many rounds, for a profiler
//! (`perf record -e cpu-clock -g`), and prints its time per message: no ratio, no verdict, no JSON.
//! `TASKER_PARITY_CASE=64KiB` keeps only the payloads whose name contains that text.
//!
//! The number of messages per run is calibrated once per size before the first round (five warm-up runs of
//! each ring; the fastest sets the count), so that a run takes at least about `TASKER_PARITY_RUN_MS`
//! milliseconds; both rings then carry exactly that many messages in every round. The JSON (default `target/bench/rtrb-parity.json`, smoke:
//! `target/bench/rtrb-parity-quick.json`) holds every round's times and the summary, plus the 1-minute load
//! average before and after, for `scripts/bench-report`.

mod common;
#[path = "common/stream.rs"]
mod stream;

use common::{cases, pin_to, Case, Sink, CONSUMER_CPU};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stream::{Ours, Rtrb};

/// How the run is sized.
struct Settings {
    quick: bool,
    rounds: usize,
    run_ms: u64,
    json: PathBuf,
}

impl Settings {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        // `cargo bench` and `cargo test -- --bench` pass `--bench`; plain `cargo test` does not: smoke mode.
        let quick = args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench");
        let value = |flag: &str| {
            args.iter().position(|a| a == flag).map(|i| {
                args.get(i + 1)
                    .unwrap_or_else(|| panic!("{flag} needs a value"))
                    .clone()
            })
        };
        let env_num = |name: &str| std::env::var(name).ok().map(|v| v.parse::<u64>().expect("a number"));
        let rounds = value("--rounds")
            .map(|v| v.parse::<u64>().expect("--rounds N"))
            .or_else(|| env_num("TASKER_PARITY_ROUNDS"))
            .unwrap_or(if quick { 3 } else { 15 });
        let run_ms = env_num("TASKER_PARITY_RUN_MS").unwrap_or(if quick { 2 } else { 100 });
        let name = if quick {
            "rtrb-parity-quick.json"
        } else {
            "rtrb-parity.json"
        };
        let json = value("--json").map_or_else(
            || {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("target/bench")
                    .join(name)
            },
            PathBuf::from,
        );
        Self {
            quick,
            rounds: usize::try_from(rounds.max(1)).expect("rounds fit usize"),
            run_ms: run_ms.max(1),
            json,
        }
    }
}

/// The 1-minute load average (Linux), for the record.
fn load_1min() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `q`-quantile of sorted values (linear interpolation between closest ranks).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The distribution-free 95% confidence interval of the median of `sorted` (n values): the order statistics
/// `x_(k)` and `x_(n-k+1)` for the largest k with P(Binomial(n, 1/2) < k) <= 2.5%. None below 6 values.
fn median_ci95(sorted: &[f64]) -> Option<(f64, f64)> {
    let n = sorted.len();
    // P(B <= j) for B ~ Binomial(n, 1/2), by summing C(n, i) / 2^n.
    let mut cdf = 0.0;
    let mut coef = 1.0; // C(n, 0)
    let scale = 0.5f64.powi(i32::try_from(n).ok()?);
    let mut k = 0;
    for i in 0..n {
        cdf += coef * scale;
        if cdf > 0.025 {
            break;
        }
        k = i + 1; // P(B <= i) <= 2.5%: x_(i + 1) (1-based) is a valid lower bound
        coef = coef * (n - i) as f64 / (i + 1) as f64;
    }
    (k >= 1).then(|| (sorted[k - 1], sorted[n - k]))
}

/// One size's interleaved rounds.
struct Rounds {
    case: Case,
    messages: u64,
    ours_ns: Vec<f64>,
    rtrb_ns: Vec<f64>,
}

/// Runs one ring once and returns nanoseconds per message.
fn per_message(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn main() {
    let settings = Settings::from_args();
    pin_to(CONSUMER_CPU);
    let load_before = load_1min();
    let mut ours = Ours::new();
    let mut rtrb = Rtrb::new();
    let mut sinks: Vec<Sink> = Vec::new();
    let mut all: Vec<Rounds> = Vec::new();

    // Calibration, which is also each ring's warm-up on this size: the run length both rings then share. The
    // fastest of five probes per ring (noise only ever slows a probe down), and the faster ring sets the
    // count, so no run is much shorter than `run_ms` however noisy the probes were.
    let only_case = std::env::var("TASKER_PARITY_CASE").ok();
    for case in cases() {
        if only_case.as_ref().is_some_and(|c| !case.name.contains(c.as_str())) {
            continue;
        }
        let mut sink = Sink::new(&case.payload);
        let probe = (((64u64 << 20) / case.payload.len() as u64) / if settings.quick { 64 } else { 4 }).max(16);
        let mut fastest = f64::INFINITY;
        for _ in 0..5 {
            fastest = fastest.min(per_message(ours.round(&case.payload, probe, &mut sink), probe));
            fastest = fastest.min(per_message(rtrb.round(&case.payload, probe, &mut sink), probe));
        }
        let messages = ((settings.run_ms as f64 * 1e6 / fastest) as u64).max(16);
        sinks.push(sink);
        all.push(Rounds {
            case,
            messages,
            ours_ns: Vec::new(),
            rtrb_ns: Vec::new(),
        });
    }

    if let Ok(only) = std::env::var("TASKER_PARITY_ONLY") {
        for r in all.iter_mut().zip(&mut sinks) {
            let (r, sink) = r;
            let mut total = Duration::ZERO;
            for _ in 0..settings.rounds {
                total += match only.as_str() {
                    "ours" => ours.round(&r.case.payload, r.messages, sink),
                    "rtrb" => rtrb.round(&r.case.payload, r.messages, sink),
                    other => panic!("TASKER_PARITY_ONLY={other}: ours or rtrb"),
                };
            }
            let ns = per_message(total, r.messages * settings.rounds as u64);
            println!("{only} alone, {}: {ns:.1} ns per message", r.case.name);
        }
        return;
    }

    for round in 0..settings.rounds {
        for (r, sink) in all.iter_mut().zip(&mut sinks) {
            let payload: &Arc<[u8]> = &r.case.payload;
            let (o, t) = if round % 2 == 0 {
                let o = ours.round(payload, r.messages, sink);
                (o, rtrb.round(payload, r.messages, sink))
            } else {
                let t = rtrb.round(payload, r.messages, sink);
                (ours.round(payload, r.messages, sink), t)
            };
            r.ours_ns.push(per_message(o, r.messages));
            r.rtrb_ns.push(per_message(t, r.messages));
        }
    }
    let load_after = load_1min();

    let mode = if settings.quick {
        "smoke (sizes not meaningful)"
    } else {
        "full"
    };
    println!(
        "rtrb parity, {} interleaved rounds, {mode}; 1-min load {} -> {}",
        settings.rounds,
        load_before.map_or("?".into(), |l| format!("{l:.2}")),
        load_after.map_or("?".into(), |l| format!("{l:.2}")),
    );
    println!(
        "{:<18} {:>9} {:>11} {:>11} {:>8} {:>15} {:>15} {:>15}  verdict (goal >= 1.0)",
        "payload", "msgs/run", "ours ns", "rtrb ns", "ratio", "IQR", "min-max", "95% CI median"
    );
    let mut cases_json = Vec::new();
    for r in &all {
        let ratios: Vec<f64> = r.rtrb_ns.iter().zip(&r.ours_ns).map(|(t, o)| t / o).collect();
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let median = quantile(&sorted, 0.5);
        let (q1, q3) = (quantile(&sorted, 0.25), quantile(&sorted, 0.75));
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        let ci = median_ci95(&sorted);
        let verdict = match ci {
            Some((lo, _)) if lo >= 1.0 => "met",
            Some((_, hi)) if hi < 1.0 => "not met",
            _ => "undecided",
        };
        let med = |v: &[f64]| {
            let mut s = v.to_vec();
            s.sort_by(f64::total_cmp);
            quantile(&s, 0.5)
        };
        let (ours_med, rtrb_med) = (med(&r.ours_ns), med(&r.rtrb_ns));
        println!(
            "{:<18} {:>9} {:>11.1} {:>11.1} {:>7.2}x {:>15} {:>15} {:>15}  {verdict}",
            r.case.name,
            r.messages,
            ours_med,
            rtrb_med,
            median,
            format!("{q1:.2}-{q3:.2}"),
            format!("{min:.2}-{max:.2}"),
            ci.map_or("n/a".into(), |(lo, hi)| format!("{lo:.2}-{hi:.2}")),
        );
        cases_json.push(json!({
            "payload": r.case.name,
            "payload_bytes": r.case.payload.len(),
            "messages_per_run": r.messages,
            "ours_ns_per_message": r.ours_ns,
            "rtrb_ns_per_message": r.rtrb_ns,
            "ours_ns_median": ours_med,
            "rtrb_ns_median": rtrb_med,
            "ratios_rtrb_over_ours": ratios,
            "ratio": {
                "median": median, "q1": q1, "q3": q3, "min": min, "max": max,
                "ci95": ci.map(|(lo, hi)| [lo, hi]),
            },
            "goal": ">= 1.0",
            "verdict": verdict,
        }));
    }
    let summary = json!({
        "bench": "rtrb_parity",
        "mode": if settings.quick { "quick" } else { "full" },
        "rounds": settings.rounds,
        "run_ms": settings.run_ms,
        "order": "interleaved: ours first in even rounds, rtrb first in odd rounds",
        "ratio": "rtrb time / ours time per round (above 1: ours faster)",
        "load_1min_before": load_before,
        "load_1min_after": load_after,
        "cases": cases_json,
    });
    if let Some(dir) = settings.json.parent() {
        std::fs::create_dir_all(dir).expect("create the JSON's directory");
    }
    let text = serde_json::to_string_pretty(&summary).expect("serialise summary");
    std::fs::write(&settings.json, text + "\n").expect("write the JSON");
    println!("wrote {}", settings.json.display());
}
