#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn
//! The JS consumer's hot path measured by criterion: ring vs per-poll FFI vs the floor, and tasker-core's module
//! shape (ours vs a reproduction of their napi-rs path), on Node, Bun and Deno.
//!
//! One long-lived child per runtime runs `ts-reader/bench/criterion-child.ts` against the cdylib cargo built
//! next to this binary (passed as `TASKER_LIBRARY_PATH`). Each `iter_custom` sends the child one request
//! (`{"case","path","iters"}`); the child runs `iters` iterations and answers with the nanoseconds it measured
//! itself with its runtime's high-resolution clock, so neither the pipe round trip nor the untimed waits and
//! completions count. Groups `js_node`, `js_bun`, `js_deno`; ids `<path>/<case>`:
//!
//! - `empty_poll` (ring, ffi): one `adapter.pollStepEvents()` with nothing to read; the child refuses to
//!   measure the ring if an empty poll makes any FFI call (counted over 10 000 polls at set-up).
//! - `one_event` (ring, ffi, floor, module, napi): one `pollStepEvents()` that returned a 2734-byte event,
//!   each call timed on its own, an untimed parse of the fixture between two calls (a handler's stand-in);
//!   floor: `JSON.parse(new TextDecoder().decode(bytes))` of the compacted fixture in JS memory. Criterion
//!   reports the mean of the calls, not hot-path.ts's median: the ffi poll's long tail counts here.
//!   - module: `createNapiModule().pollStepEvents()` of `@tasker-systems/worker/tasker-core` on the ring:
//!     the event in tasker-core's camelCase `NapiStepEvent`, made by `ts-reader/src/tasker-core/event-mapping.ts`.
//!   - napi: the same `NapiStepEvent` from `benches/napi-repro`, a minimal napi-rs addon reproducing
//!     tasker-core's own `poll_step_events` (a global mutex, a clone of the held Rust event, `#[napi(object)]`
//!     structs that napi-rs builds into the JS object property by property); no worker runs meanwhile.
//! - `completion` (ring, ffi): one `completeStepEvent(id, fixtures/completion-success.json)` for an id
//!   delivered just before, outside the timed region.
//! - `batch_1000` (ring, ffi, floor, module, napi): one iteration drains 1000 ready events in one loop;
//!   `Throughput::Elements(1000)`, so criterion's per-element figure is the cost per event.
//!
//! The worker produces concurrently from an unlimited synthetic source; the child waits (untimed) until enough
//! events are ready and completes every event it read outside the timed region.
//!
//! The napi addon is built first, every run (`cargo build --release --locked` in `benches/napi-repro`, a
//! workspace of its own with its own `target/`: about 40 s the first time, a no-op after); if that fails, or
//! with `TASKER_BENCH_NAPI=0`, the napi cases are skipped with a message on stderr, as they are on a runtime
//! whose child cannot load the addon (the child says so in its ready line).
//!
//! `cargo bench -p tasker-worker-ffi --bench js_consumer` (about 5-5.5 min for 3 runtimes x 14 benchmarks);
//! `TASKER_BENCH_RUNTIMES=node,bun` limits the runtimes. A missing runtime (or `ts-reader/node_modules`) is
//! skipped with a message on stderr. `cargo test --release -p tasker-worker-ffi --bench js_consumer` runs
//! every benchmark once with one iteration (criterion's test mode) and fails if a child reports an error.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

// `library_path()`: the cdylib cargo built next to this binary (`target/<profile>/deps/`), or
// `TASKER_LIBRARY_PATH`; the one the integration tests load.
use tasker_test_support::library_path::library_path;

/// The longest the bench waits for one answer of a child before failing (a hung child must not hang CI).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a child gets to stop its worker and exit after `quit`.
const QUIT_TIMEOUT: Duration = Duration::from_secs(20);

fn ts_reader_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ts-reader")
}

/// Builds `benches/napi-repro` (its own workspace and `target/`) and returns the addon's path; None, said
/// loudly on stderr, with `TASKER_BENCH_NAPI=0` or when the build fails.
fn napi_addon() -> Option<PathBuf> {
    let skip = |why: String| eprintln!("\n!!! js_consumer: SKIPPING the napi cases: {why} !!!\n");
    if std::env::var("TASKER_BENCH_NAPI").is_ok_and(|v| v == "0") {
        skip("TASKER_BENCH_NAPI=0".into());
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/napi-repro");
    let dir = dir.canonicalize().unwrap_or(dir);
    let target = dir.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "js_consumer: building the napi reproduction (cargo build --release in {})",
        dir.display()
    );
    let built = Command::new(cargo)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null())
        .status();
    match built {
        Ok(status) if status.success() => {}
        Ok(status) => {
            skip(format!("building {} failed ({status})", dir.display()));
            return None;
        }
        Err(e) => {
            skip(format!("cannot run cargo to build {}: {e}", dir.display()));
            return None;
        }
    }
    let addon = target.join("release").join(format!(
        "{}tasker_napi_repro{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    if !addon.is_file() {
        skip(format!("the build left no {}", addon.display()));
        return None;
    }
    Some(addon)
}

/// `path` as a `file://` URL (what `node --import` takes), bytes outside the URL-safe set percent-encoded.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => url.push(b as char),
            _ => url.push_str(&format!("%{b:02X}")),
        }
    }
    url
}

/// How to start one runtime on the child script (cwd: `ts-reader/`).
struct Runtime {
    name: &'static str,
    program: OsString,
    args: Vec<OsString>,
}

/// Whether `program --version` runs.
fn runs(program: &OsString) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The runtimes to bench (`TASKER_BENCH_RUNTIMES`, default all three), minus those that are missing: each
/// of those is named on stderr with how to install it.
fn runtimes() -> Vec<Runtime> {
    let wanted: Vec<String> = match std::env::var("TASKER_BENCH_RUNTIMES") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Err(_) => ["node", "bun", "deno"].map(String::from).to_vec(),
    };
    let ts = ts_reader_dir();
    let modules = ts.join("node_modules");
    let child_script = OsString::from("bench/criterion-child.ts");
    let mut out = Vec::new();
    for name in &wanted {
        let skip = |what: String| {
            eprintln!("js_consumer: skipping js_{name}: {what}; install it with `cd ts-reader && npm ci`");
        };
        if !modules.is_dir() {
            skip(format!("{} is missing", modules.display()));
            continue;
        }
        let runtime = match name.as_str() {
            "node" => {
                let loader = modules.join("tsx/dist/loader.mjs");
                if !loader.is_file() {
                    skip(format!("{} (tsx) is missing", loader.display()));
                    continue;
                }
                let node = OsString::from("node");
                if !runs(&node) {
                    eprintln!(
                        "js_consumer: skipping js_node: `node` is not on PATH; install Node.js 20+, then \
                         `cd ts-reader && npm ci`"
                    );
                    continue;
                }
                let loader = loader.canonicalize().expect("canonical path of tsx's loader");
                Runtime {
                    name: "node",
                    program: node,
                    args: vec!["--import".into(), file_url(&loader).into(), child_script.clone()],
                }
            }
            "bun" | "deno" => {
                let binary = modules.join(".bin").join(name);
                if !runs(&binary.clone().into_os_string()) {
                    skip(format!("{} is missing or does not run", binary.display()));
                    continue;
                }
                let mut args: Vec<OsString> = if name == "deno" {
                    vec!["run".into(), "-A".into()]
                } else {
                    Vec::new()
                };
                args.push(child_script.clone());
                Runtime {
                    name: if name == "bun" { "bun" } else { "deno" },
                    program: binary.into_os_string(),
                    args,
                }
            }
            other => panic!("TASKER_BENCH_RUNTIMES: unknown runtime `{other}` (node, bun, deno)"),
        };
        out.push(runtime);
    }
    out
}

/// A running child: requests go to its stdin; a thread forwards its stdout lines (it writes nothing else
/// there). Killed on drop unless `finish` shut it down cleanly, so a panicking bench leaves no process.
struct JsChild {
    runtime: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    done: bool,
    /// The ready line's `napi`: "loaded", or why the child could not load the napi addon.
    napi: String,
}

impl JsChild {
    /// Starts the child; `napi` is the addon it loads for the napi cases (`TASKER_NAPI_REPRO_PATH`).
    fn spawn(runtime: &Runtime, library: &Path, napi: Option<&Path>) -> JsChild {
        let mut command = Command::new(&runtime.program);
        if let Some(addon) = napi {
            command.env("TASKER_NAPI_REPRO_PATH", addon);
        }
        let mut child = command
            .args(&runtime.args)
            .current_dir(ts_reader_dir())
            .env("TASKER_LIBRARY_PATH", library)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("js_{}: cannot start {:?}: {e}", runtime.name, runtime.program));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut js = JsChild {
            runtime: runtime.name,
            child,
            stdin,
            lines,
            done: false,
            napi: String::new(),
        };
        let ready = js.answer("start-up");
        assert!(
            ready["ready"] == json!(true),
            "js_{}: expected the ready line, got {ready}",
            js.runtime
        );
        js.napi = ready["napi"]
            .as_str()
            .unwrap_or("no `napi` in the ready line")
            .to_string();
        js
    }

    fn send(&mut self, request: &Value) {
        let stdin = self.stdin.as_mut().expect("the child's stdin is open");
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("js_{}: writing to the child: {e}", self.runtime));
    }

    /// The next JSON line of the child; panics on a timeout, on its exit, or on an `error` answer.
    fn answer(&mut self, what: &str) -> Value {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("js_{}: no answer to {what} within {ANSWER_TIMEOUT:?}", self.runtime)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self
                        .child
                        .wait()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|e| e.to_string());
                    self.done = true;
                    panic!(
                        "js_{}: the child exited ({status}) before answering {what}",
                        self.runtime
                    )
                }
            };
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                eprintln!("js_{} child stdout (not protocol): {line}", self.runtime);
                continue;
            };
            if let Some(error) = value.get("error") {
                panic!("js_{}: the child reported an error for {what}: {error}", self.runtime);
            }
            return value;
        }
    }

    /// Runs `iters` iterations of `case` on `path` in the child; the time it measured.
    fn run(&mut self, case: &str, path: &str, iters: u64) -> Duration {
        self.send(&json!({ "case": case, "path": path, "iters": iters }));
        let what = format!("{path}/{case} x {iters}");
        let answer = self.answer(&what);
        let ns = answer["ns"]
            .as_f64()
            .unwrap_or_else(|| panic!("js_{}: no `ns` in the answer to {what}: {answer}", self.runtime));
        assert!(ns.is_finite() && ns >= 0.0, "js_{}: {what} took {ns} ns?", self.runtime);
        Duration::from_nanos(ns.round() as u64)
    }

    /// Asks the child to stop its worker (it checks that every event read was completed) and waits for it
    /// to exit 0.
    fn finish(mut self) {
        self.send(&json!({ "cmd": "quit" }));
        let bye = self.answer("quit");
        drop(self.stdin.take());
        let deadline = Instant::now() + QUIT_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => panic!(
                    "js_{}: the child did not exit within {QUIT_TIMEOUT:?} of quit",
                    self.runtime
                ),
                Err(e) => panic!("js_{}: waiting for the child: {e}", self.runtime),
            }
        };
        self.done = true;
        assert!(status.success(), "js_{}: the child exited with {status}", self.runtime);
        eprintln!("js_consumer: js_{} child stopped cleanly ({bye})", self.runtime);
    }
}

impl Drop for JsChild {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // A bench that panicked (or a child that never got its quit): no graceful stop, no wait on a child
        // that may be stuck; kill it and reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (path, case) in the order measured; `batch_1000` comes last because it sets the group's throughput.
const PER_OP: [(&str, &str); 9] = [
    ("ring", "empty_poll"),
    ("ffi", "empty_poll"),
    ("ring", "one_event"),
    ("ffi", "one_event"),
    ("floor", "one_event"),
    ("module", "one_event"),
    ("napi", "one_event"),
    ("ring", "completion"),
    ("ffi", "completion"),
];
const BATCH: [&str; 5] = ["ring", "ffi", "floor", "module", "napi"];

fn js_consumer(c: &mut Criterion) {
    let library = library_path();
    assert!(
        library.is_file(),
        "{} is missing: cargo builds it with this package's lib target (or set TASKER_LIBRARY_PATH)",
        library.display()
    );
    let runtimes = runtimes();
    let addon = if runtimes.is_empty() { None } else { napi_addon() };
    for runtime in runtimes {
        // Spawned by the first benchmark of the group that runs (none under a filter that excludes them all),
        // or right away when there is an addon: its ready line says whether it loaded it.
        let child: RefCell<Option<JsChild>> = RefCell::new(None);
        let napi = addon.as_deref().is_some_and(|addon| {
            let mut slot = child.borrow_mut();
            let js = slot.insert(JsChild::spawn(&runtime, &library, Some(addon)));
            if js.napi != "loaded" {
                eprintln!(
                    "\n!!! js_consumer: SKIPPING js_{}/napi: the child did not load the addon: {} !!!\n",
                    runtime.name, js.napi
                );
            }
            js.napi == "loaded"
        });
        let bench = |group: &mut BenchmarkGroup<'_, WallTime>, path: &'static str, case: &'static str| {
            if path == "napi" && !napi {
                return;
            }
            group.bench_function(BenchmarkId::new(path, case), |b| {
                b.iter_custom(|iters| {
                    let mut slot = child.borrow_mut();
                    slot.get_or_insert_with(|| JsChild::spawn(&runtime, &library, addon.as_deref()))
                        .run(case, path, iters)
                })
            });
        };
        let mut group = c.benchmark_group(format!("js_{}", runtime.name));
        for (path, case) in PER_OP {
            bench(&mut group, path, case);
        }
        // One iteration drains 1000 events (~10-100 ms): flat sampling keeps the sample count within the
        // measurement time instead of linear sampling's 1..n iterations per sample.
        group
            .sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(1000));
        for path in BATCH {
            bench(&mut group, path, "batch_1000");
        }
        group.finish();
        if let Some(js) = child.into_inner() {
            js.finish();
        }
    }
}

criterion_group! {
    name = benches;
    // About 7 s per benchmark (1.5 s warm-up, 5 s of samples, analysis), 42 benchmarks: 5-5.5 min in all.
    // The command line overrides these (`-- --warm-up-time 1 --measurement-time 2` for a short run).
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(1500))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    targets = js_consumer
}
criterion_main!(benches);
