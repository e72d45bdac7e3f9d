//! End to end: the main job (`ts-reader/examples/main-job.ts`: TS `TaskerWorker` with the example
//! handlers, `libtasker_worker`, the ring, the step store) run as real processes on Node, Bun and Deno,
//! over SQLite and a throwaway PostgreSQL cluster; and the tasker-core module's client tests on PostgreSQL.
//!
//! These need Node.js and `ts-reader/node_modules` (Bun and Deno come from there) and the release build
//! of `libtasker_worker`, which `scripts/ts-test` sets up; `scripts/test` runs them right after it with
//! `cargo test --release --workspace --test e2e -- --ignored`.

use tasker_store::test_support as pg;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tasker_store::{CompletionOutcome, Store};

const NEEDS: &str = "needs node and ts-reader/node_modules: run by scripts/test after scripts/ts-test";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests-integration/ is in the repository")
        .to_path_buf()
}

/// The `tasker-ring` binary of the same build (`target/<profile>/tasker-ring`, beside `deps/` where this
/// test runs); `scripts/test` builds the whole workspace first. `TASKER_RING_BIN` overrides it.
fn tasker_ring_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TASKER_RING_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/")
        .join("tasker-ring");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --release --workspace` first",
        bin.display()
    );
    bin
}

/// The main job on `runtime` (`node`, `bun`, `deno`), in `cwd`, with `args`.
fn job(runtime: &str, cwd: &Path, args: &[&str]) -> Command {
    let root = repo();
    let lib = root.join("target/release/libtasker_worker.so");
    assert!(
        lib.exists(),
        "{} missing: run scripts/ts-test (it builds it)",
        lib.display()
    );
    let modules = root.join("ts-reader/node_modules");
    assert!(
        modules.join(".bin/tsx").exists(),
        "{} missing: run scripts/ts-test (npm ci)",
        modules.display()
    );
    let script = root.join("ts-reader/examples/main-job.ts");
    let mut c = match runtime {
        "node" => {
            let mut c = Command::new("node");
            c.arg("--import")
                .arg(format!("file://{}", modules.join("tsx/dist/loader.mjs").display()));
            c
        }
        "bun" => Command::new(modules.join(".bin/bun")),
        "deno" => {
            let mut c = Command::new(modules.join(".bin/deno"));
            c.args(["run", "-A"]);
            c
        }
        other => panic!("unknown runtime {other}"),
    };
    c.arg(script)
        .args(args)
        .current_dir(cwd)
        .env("TASKER_LIBRARY_PATH", lib)
        .env("TASKER_RING_BIN", tasker_ring_bin())
        .env_remove("TASKER_DATABASE_URL")
        .stdin(Stdio::null());
    c
}

/// Runs to the end (bounded), returning the output; stderr is echoed for the test log.
fn run(mut c: Command, limit: Duration) -> Output {
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_output(child, limit)
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "main job still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The `--json` summary (the last stdout line).
fn summary(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary; stdout {text:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {line}"))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn status(url: &str) -> tasker_store::StoreStatus {
    block_on(async {
        let s = Store::connect(url).await.unwrap();
        let st = s.status().await.unwrap();
        s.close().await;
        st
    })
}

fn assert_finished_and_verified(s: &Value, steps: u64) {
    assert_eq!(s["interrupted"], false, "{s}");
    assert_eq!(s["store"]["complete"], steps, "{s}");
    assert_eq!(s["store"]["error"], 0, "{s}");
    assert_eq!(s["verify"]["mismatches"], 0, "{s}");
    assert_eq!(
        s["verify"]["checked"],
        steps / 4,
        "every task's final value checked: {s}"
    );
}

#[test]
#[ignore = "needs node and ts-reader/node_modules: run by scripts/test after scripts/ts-test"]
fn embedded_sqlite_default_on_node_bun_and_deno() {
    let _ = NEEDS;
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for runtime in ["node", "bun", "deno"] {
        let out = run(
            job(runtime, dir.path(), &["--steps", "2000", "--json"]),
            Duration::from_secs(300),
        );
        assert_eq!(out.status.code(), Some(0), "{runtime}");
        total += 2000;
        let s = summary(&out);
        assert_eq!(s["workers"][0]["runtime"], runtime);
        assert_eq!(s["workers"][0]["backend"], "sqlite");
        assert_eq!(s["workers"][0]["refused"], 0);
        assert_eq!(
            s["workers"][0]["completed"], 2000,
            "{runtime}: this run did the new workload"
        );
        assert_finished_and_verified(&s, total);
        assert!(
            dir.path().join("tasker.db").exists(),
            "the default store is ./tasker.db"
        );
    }
}

#[test]
#[ignore = "needs node and ts-reader/node_modules: run by scripts/test after scripts/ts-test"]
fn ctrl_c_stops_gracefully_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("tasker.db").display().to_string();
    let child = job("node", dir.path(), &["--steps", "20000", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    while !dir.path().join("tasker.db").exists() || status(&url).complete < 1000 {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(ok.success());
    let out = wait_output(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(130), "stopped before the end");
    let s = summary(&out);
    assert_eq!(s["interrupted"], true);
    let after = status(&url);
    assert!(after.complete >= 1000 && after.complete < 20_000, "{after:?}");
    assert_eq!(after.claimed, 0, "every claim persisted or given back: {after:?}");
    assert_eq!(after.error, 0);
    let out = run(job("node", dir.path(), &["--json"]), Duration::from_secs(300));
    assert_eq!(out.status.code(), Some(0));
    let s = summary(&out);
    assert_finished_and_verified(&s, 20_000);
    assert!(
        s["workers"][0]["completed"].as_u64().unwrap() <= 20_000 - after.complete,
        "the rerun did only what was left: {s}"
    );
}

#[test]
#[ignore = "needs node and ts-reader/node_modules: run by scripts/test after scripts/ts-test"]
fn several_workers_share_one_postgresql_store() {
    let Some(cluster) = pg::PgCluster::start("several_workers_share_one_postgresql_store") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        job(
            "node",
            dir.path(),
            &[
                "--database-url",
                &cluster.url,
                "--workers",
                "3",
                "--steps",
                "12000",
                "--json",
            ],
        ),
        Duration::from_secs(400),
    );
    assert_eq!(out.status.code(), Some(0));
    let s = summary(&out);
    assert_finished_and_verified(&s, 12_000);
    let workers = s["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 3);
    let field = |k: &str| workers.iter().map(|w| w[k].as_u64().unwrap()).sum::<u64>();
    // Each step completed exactly once across the workers: no claim was shared, none refused, none lost.
    assert_eq!(
        (field("completed"), field("refused"), field("retried")),
        (12_000, 0, 0),
        "{s}"
    );
    assert!(workers.iter().all(|w| w["backend"] == "postgres"));
    assert!(
        !dir.path().join("tasker.db").exists(),
        "no SQLite file when a URL is given"
    );
}

#[test]
#[ignore = "needs node and ts-reader/node_modules: run by scripts/test after scripts/ts-test"]
fn killed_worker_claims_come_back_and_its_late_completions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("tasker.db").display().to_string();
    kill_and_resume(dir.path(), &url, kill_steps());
}

#[test]
#[ignore = "needs node and ts-reader/node_modules: run by scripts/test after scripts/ts-test"]
fn killed_worker_on_postgresql_loses_nothing_and_completes_nothing_twice() {
    let Some(cluster) = pg::PgCluster::start("killed_worker_on_postgresql") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    kill_and_resume(dir.path(), &cluster.url, kill_steps());
}

/// Steps of the kill tests: `E2E_KILL_STEPS` (default 4000; the long form runs 100 000).
fn kill_steps() -> u64 {
    std::env::var("E2E_KILL_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

/// SIGKILLs a worker process (Node) part-way through `steps` steps on the store at `url`, then reruns: every
/// step completes, each exactly once (the rerun refuses none, the dead worker's claims come back after their
/// deadline and their late completions are refused), every result checks out against the reference math.
fn kill_and_resume(dir: &Path, url: &str, steps: u64) {
    block_on(async {
        let s = Store::connect(url).await.unwrap();
        s.enqueue("default", "linear", (steps / 4) as usize, br#"{"even_number": 6}"#)
            .await
            .unwrap();
        s.close().await;
    });
    let fast = [
        "--completion-timeout-ms",
        "1500",
        "--visibility-margin-ms",
        "500",
        "--json",
    ];
    // Handlers that take 20 ms each. The victim holds the claims of those running and queued, but it claims in
    // rounds (up to what its ring and in-flight table hold) and same-length handlers finish a round together,
    // so for a moment between persisting one round and claiming the next it can hold none. The store is
    // polled through one open connection and the kill is sent right after a read that saw claims held; if
    // the kill still landed in such a gap (the dead worker held nothing, which proves nothing about claims),
    // another victim is started and killed later in the run.
    let mut args = vec!["--child", "--database-url", url, "--handler-delay-ms", "20"];
    args.extend(fast);
    let (at_kill, dead) = block_on(async {
        let store = Store::connect(url).await.unwrap();
        let start = Instant::now();
        let mut kill_at = (steps * 3 / 40).max(100);
        for attempt in 1..=5 {
            let mut victim = job("node", dir, &args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            loop {
                let st = store.status().await.unwrap();
                if st.complete >= kill_at && st.claimed > 0 {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(600), "no progress: {st:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            victim.kill().unwrap(); // SIGKILL
            victim.wait().unwrap();
            let at_kill = store.status().await.unwrap();
            let held = store.held_claims(1_000_000).await.unwrap();
            if !held.is_empty() {
                store.close().await;
                return (at_kill, held);
            }
            println!(
                "kill -9 attempt {attempt} landed between claim rounds (no claims held); killing a new worker later"
            );
            kill_at = at_kill.complete + (steps / 20).max(50);
            assert!(kill_at < steps, "no kill landed while claims were held: {at_kill:?}");
        }
        panic!("five kills in a row landed while the worker held no claims");
    });
    let mut args = vec!["--database-url", url];
    args.extend(fast);
    let out = run(job("node", dir, &args), Duration::from_secs(1800));
    assert_eq!(out.status.code(), Some(0));
    let s = summary(&out);
    assert_finished_and_verified(&s, steps);
    let rerun = &s["workers"][0];
    assert_eq!(rerun["refused"], 0, "the rerun's completions were all accepted: {s}");
    assert_eq!(
        rerun["completed"].as_u64().unwrap(),
        steps - at_kill.complete,
        "the rerun completed exactly what was left, each step once: {s}"
    );
    let late: Vec<_> = dead
        .iter()
        .map(|c| {
            (
                c.claim_token,
                format!(r#"{{"step_uuid":"{}","success":true}}"#, c.step_uuid),
            )
        })
        .collect();
    let outcomes = block_on(async { Store::connect(url).await.unwrap().complete_batch(&late).await.unwrap() });
    assert!(
        outcomes.iter().all(|o| *o == CompletionOutcome::Refused),
        "late completions of the dead claims are refused: {outcomes:?}"
    );
    assert_eq!(status(url).complete, steps);
    println!(
        "kill -9 at {} of {steps} steps complete ({} claims held by the dead worker): {steps} complete after \
         the rerun, none twice",
        at_kill.complete,
        dead.len()
    );
}

#[test]
#[ignore = "needs node and ts-reader/node_modules: run by scripts/test after scripts/ts-test"]
fn bad_input_fails_clearly_and_a_missing_handler_fails_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let out = run(
        job("node", dir.path(), &["--database-url", "mysql://localhost/tasker"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid"), "{}", stderr(&out));
    let started = Instant::now();
    let out = run(
        job(
            "node",
            dir.path(),
            &["--database-url", "postgres://tasker:secret@127.0.0.1:1/tasker"],
        ),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("secret"), "password redacted");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "retried with backoff before giving up"
    );
    let out = run(job("node", dir.path(), &["--steps", "0"]), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "bad usage");
    assert!(stderr(&out).contains("--steps must be a positive integer"));
    let bad_template = Command::new(tasker_ring_bin())
        .args(["store", "enqueue", "--count", "1", "--template", "hexagon"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(bad_template.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_template.stderr).contains("hexagon"));
    // No handler for the diamond's last step: those steps fail (not retried, no hang), the rest complete.
    let out = run(
        job(
            "node",
            dir.path(),
            &[
                "--steps",
                "400",
                "--without-handler",
                "DiamondWorkflow.StepHandlers.DiamondEndHandler",
                "--json",
            ],
        ),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(3), "finished with steps in error");
    let s = summary(&out);
    assert_eq!(
        (s["store"]["error"].as_u64(), s["store"]["complete"].as_u64()),
        (Some(50), Some(350)),
        "{s}"
    );
    assert_eq!(s["verify"]["mismatches"], 0);
    assert_eq!(s["verify"]["checked"], 50, "the 50 linear tasks");
}

/// The test runner of `runtime` on one file of `ts-reader/tests/`, only the tests whose name (or whose
/// `describe`'s) contains `filter`.
fn ts_tests(runtime: &str, file: &str, filter: &str) -> Command {
    let root = repo();
    let modules = root.join("ts-reader/node_modules");
    let mut c = match runtime {
        "node" => {
            let mut c = Command::new("node");
            c.arg("--import")
                .arg(format!("file://{}", modules.join("tsx/dist/loader.mjs").display()))
                .arg("--test")
                .arg(format!("--test-name-pattern={filter}"))
                .arg(file);
            c
        }
        "bun" => {
            let mut c = Command::new(modules.join(".bin/bun"));
            c.args(["test", "--timeout", "300000", file, "-t", filter]);
            c
        }
        "deno" => {
            let mut c = Command::new(modules.join(".bin/deno"));
            c.args(["test", "--allow-all", "--no-check", "--filter", filter, file]);
            c
        }
        other => panic!("unknown runtime {other}"),
    };
    c.current_dir(root.join("ts-reader"))
        .env("TASKER_LIBRARY_PATH", root.join("target/release/libtasker_worker.so"))
        .env("TASKER_RING_BIN", tasker_ring_bin())
        .env_remove("TASKER_DATABASE_URL")
        .stdin(Stdio::null());
    c
}

/// tasker-core's client calls through `@tasker-systems/worker/tasker-core` on PostgreSQL (the same tests run
/// on SQLite in `scripts/ts-test`): create, get, list, run, steps, audit history, cancel, health, templates
/// from a file, on Node, Bun and Deno, each on a throwaway cluster of its own (the tests count tasks).
#[test]
#[ignore = "needs node and ts-reader/node_modules: run by scripts/test after scripts/ts-test"]
fn tasker_core_client_calls_on_postgresql_on_node_bun_and_deno() {
    for runtime in ["node", "bun", "deno"] {
        let Some(cluster) = pg::PgCluster::start(&format!("tasker_core_client_calls_{runtime}")) else {
            return;
        };
        let mut c = ts_tests(runtime, "tests/tasker-core-module.test.ts", "client calls and log");
        c.env("TASKER_TEST_CLIENT_DATABASE_URL", &cluster.url);
        let out = run(c, Duration::from_secs(300));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{runtime}: {stdout}");
        // The filter selected the client tests (a runner that matched nothing would pass too).
        assert!(
            stdout.contains("audit history") || String::from_utf8_lossy(&out.stderr).contains("audit history"),
            "{runtime} ran no client test: {stdout}"
        );
    }
}
