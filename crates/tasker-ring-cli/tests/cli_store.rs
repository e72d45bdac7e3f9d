//! `tasker-ring store enqueue|status|retry|verify` against temp SQLite files: counts and the ready/pending
//! split of both templates, `--json`'s schema, retry of steps in error (made by claiming and failing steps
//! through the store API), verify of tasks run through the store API (one with a wrong final value), the
//! database URL's precedence (flag, `TASKER_DATABASE_URL`, `tasker.db` in the working
//! directory) and each error's one-line message and distinct exit code.

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tasker_store::templates::{self, reference_result};
use tasker_store::Store;

/// `tasker-ring ARGS...` run in `cwd` without `TASKER_DATABASE_URL` (tests set it explicitly).
fn cmd(cwd: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(env!("CARGO_BIN_EXE_tasker-ring"));
    c.args(args)
        .current_dir(cwd)
        .env_remove("TASKER_DATABASE_URL")
        .timeout(Duration::from_secs(60));
    c
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(mut c: assert_cmd::Command) -> Run {
    let out = c.output().expect("run tasker-ring");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs and requires exit 0; returns stdout.
fn ok(c: assert_cmd::Command) -> String {
    let r = run(c);
    assert_eq!(r.code, Some(0), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r.stdout
}

/// Runs and requires exit `code` with exactly one line on stderr and nothing on stdout; returns the line.
fn fails(c: assert_cmd::Command, code: i32) -> String {
    let r = run(c);
    assert_eq!(r.code, Some(code), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line on stderr: {:?}", r.stderr);
    assert!(r.stderr.starts_with("tasker-ring store: "), "{:?}", r.stderr);
    assert!(r.stdout.is_empty(), "{:?}", r.stdout);
    r.stderr
}

fn status_json(cwd: &Path, url: &str) -> Value {
    let out = ok(cmd(cwd, &["store", "status", "--database-url", url, "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["schema"], "tasker-ring/store-status/1", "{v:#}");
    v
}

fn n(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{ptr} missing in {v:#}"))
}

#[test]
fn enqueue_linear_and_diamond_then_status() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("store.db");
    let url = url.to_str().unwrap();
    let out = ok(cmd(
        dir.path(),
        &[
            "store",
            "enqueue",
            "--database-url",
            url,
            "--namespace",
            "ns",
            "--count",
            "50",
        ],
    ));
    assert!(
        out.starts_with("enqueued 50 linear tasks (200 steps, 50 ready) in namespace `ns`"),
        "{out}"
    );
    assert!(out.contains("tasks/s") && out.contains("steps/s"), "{out}");
    let out = ok(cmd(
        dir.path(),
        &[
            "store",
            "enqueue",
            "--database-url",
            url,
            "--namespace",
            "ns",
            "--count",
            "20",
            "--template",
            "diamond",
            "--context-bytes",
            "4096",
        ],
    ));
    assert!(
        out.starts_with("enqueued 20 diamond tasks (80 steps, 20 ready)"),
        "{out}"
    );

    let v = status_json(dir.path(), url);
    assert_eq!(v["backend"], "sqlite");
    assert_eq!(v["database"], url);
    assert_eq!(n(&v, "/tasks/total"), 70);
    assert_eq!(n(&v, "/tasks/complete"), 0);
    assert_eq!(n(&v, "/tasks/with_error"), 0);
    assert_eq!(n(&v, "/steps/total"), 50 * 4 + 20 * 4);
    // One root step per task in both templates is ready; the rest wait for their parents.
    assert_eq!(n(&v, "/steps/ready"), 70);
    assert_eq!(n(&v, "/steps/pending"), 50 * 3 + 20 * 3);
    for state in ["claimed", "claims_expired", "complete", "error", "cancelled"] {
        assert_eq!(n(&v, &format!("/steps/{state}")), 0, "{state}");
    }
    assert!(v["oldest_claim_age_ms"].is_null(), "{v:#}");

    let text = ok(cmd(dir.path(), &["store", "status", "--database-url", url]));
    assert!(text.contains("tasks    70 total, 0 complete"), "{text}");
    assert!(
        text.contains("steps    280 total: 210 pending, 70 ready, 0 claimed"),
        "{text}"
    );

    // The padded context reached the store at the requested size.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::connect(url).await.unwrap();
        let claimed = store.claim(100, Duration::from_secs(60)).await.unwrap();
        let diamond = claimed
            .iter()
            .find(|c| c.step_name == "diamond_start")
            .expect("a diamond root");
        let context = diamond.event_value()["task_sequence_step"]["task"]["context"].to_string();
        assert_eq!(context.len(), 4096, "{}", &context[..40]);
        store.close().await;
    });
    let v = status_json(dir.path(), url);
    assert_eq!(n(&v, "/steps/claimed"), 70);
    assert!(v["oldest_claim_age_ms"].is_u64(), "{v:#}");
}

#[test]
fn retry_puts_steps_in_error_back_to_ready() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("retry.db");
    let url = url.to_str().unwrap();
    let out = ok(cmd(dir.path(), &["store", "retry", "--database-url", url]));
    assert!(out.starts_with("retried 0 steps"), "{out}");

    ok(cmd(
        dir.path(),
        &["store", "enqueue", "--database-url", url, "--count", "5"],
    ));
    // Fail three root steps for good (not retryable).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::connect(url).await.unwrap();
        let claimed = store.claim(3, Duration::from_secs(60)).await.unwrap();
        assert_eq!(claimed.len(), 3);
        let failures: Vec<_> = claimed
            .iter()
            .map(|c| {
                let result = serde_json::json!({
                    "step_uuid": c.step_uuid.to_string(),
                    "success": false,
                    "status": "failed",
                    "error": { "message": "boom", "retryable": false }
                });
                (c.claim_token, result.to_string())
            })
            .collect();
        store.complete_batch(&failures).await.unwrap();
        store.close().await;
    });
    let v = status_json(dir.path(), url);
    assert_eq!(n(&v, "/steps/error"), 3, "{v:#}");
    assert_eq!(n(&v, "/tasks/with_error"), 3, "{v:#}");
    assert_eq!(n(&v, "/steps/ready"), 2, "{v:#}");

    let out = ok(cmd(dir.path(), &["store", "retry", "--database-url", url]));
    assert!(out.starts_with("retried 3 steps in error"), "{out}");
    let v = status_json(dir.path(), url);
    assert_eq!(n(&v, "/steps/error"), 0, "{v:#}");
    assert_eq!(n(&v, "/steps/ready"), 5, "{v:#}");
    let out = ok(cmd(dir.path(), &["store", "retry", "--database-url", url]));
    assert!(out.starts_with("retried 0 steps"), "{out}");
}

#[test]
fn verify_counts_finished_tasks_and_reports_wrong_results() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("verify.db");
    let url = url.to_str().unwrap();
    let verify_json = |code: i32| {
        let r = run(cmd(dir.path(), &["store", "verify", "--database-url", url, "--json"]));
        assert_eq!(r.code, Some(code), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
        assert_eq!(v["schema"], "tasker-ring/store-verify/1", "{v:#}");
        assert_eq!(v["backend"], "sqlite", "{v:#}");
        v
    };

    let out = ok(cmd(dir.path(), &["store", "verify", "--database-url", url]));
    assert_eq!(out, "verified 0 of 0 tasks: 0 mismatches\n");
    ok(cmd(
        dir.path(),
        &["store", "enqueue", "--database-url", url, "--count", "4"],
    ));
    ok(cmd(
        dir.path(),
        &[
            "store",
            "enqueue",
            "--database-url",
            url,
            "--count",
            "3",
            "--template",
            "diamond",
        ],
    ));
    // Nothing ran yet: every task is counted, none is checked.
    let v = verify_json(0);
    assert_eq!(
        (n(&v, "/tasks"), n(&v, "/checked"), n(&v, "/mismatches")),
        (7, 0, 0),
        "{v:#}"
    );
    assert_eq!(v["examples"], serde_json::json!([]), "{v:#}");

    // Run every task with the reference math, except one linear task whose final value is off by one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wrong = rt.block_on(async {
        let store = Store::connect(url).await.unwrap();
        let mut wrong = None;
        loop {
            let claimed = store.claim(64, Duration::from_secs(60)).await.unwrap();
            if claimed.is_empty() {
                break;
            }
            let items: Vec<_> = claimed
                .iter()
                .map(|c| {
                    let mut r = reference_result(&c.event_value()).unwrap();
                    if c.step_name == "linear_step_4" && wrong.is_none_or(|w| w == c.task_uuid) {
                        wrong = Some(c.task_uuid);
                        r["result"]["value"] = serde_json::json!(r["result"]["value"].as_i64().unwrap() + 1);
                    }
                    (c.claim_token, r.to_string())
                })
                .collect();
            store.complete_batch(&items).await.unwrap();
        }
        store.close().await;
        wrong.expect("a linear task finished")
    });
    let v = status_json(dir.path(), url);
    assert_eq!(n(&v, "/tasks/complete"), 7, "{v:#}");

    let expected = templates::template("linear").unwrap().expected_final(6).unwrap();
    let v = verify_json(7);
    assert_eq!(
        (n(&v, "/tasks"), n(&v, "/checked"), n(&v, "/mismatches")),
        (7, 7, 1),
        "{v:#}"
    );
    assert_eq!(
        v["examples"],
        serde_json::json!([{
            "task_uuid": wrong.to_string(),
            "template": "linear",
            "expected": expected,
            "got": expected + 1,
            "reason": null
        }]),
        "{v:#}"
    );
    let r = run(cmd(dir.path(), &["store", "verify", "--database-url", url]));
    assert_eq!(r.code, Some(7), "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "verified 7 of 7 tasks: 1 mismatch\n  {wrong} linear: expected {expected}, got {}\n",
            expected + 1
        )
    );
    assert_eq!(
        r.stderr,
        "tasker-ring store: 1 of 7 checked tasks do not match the templates' reference math\n"
    );
}

#[test]
fn database_url_from_flag_then_environment_then_tasker_db() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let env_db = dir.path().join("from-env.db");

    let mut c = cmd(&cwd, &["store", "enqueue", "--count", "3"]);
    c.env("TASKER_DATABASE_URL", &env_db);
    let out = ok(c);
    assert!(out.contains(&format!("into {} in", env_db.display())), "{out}");
    assert!(env_db.exists());
    assert!(!cwd.join("tasker.db").exists(), "the variable wins over the default");
    assert_eq!(n(&status_json(&cwd, env_db.to_str().unwrap()), "/tasks/total"), 3);

    // The flag wins over the variable.
    let flag_db = dir.path().join("from-flag.db");
    let mut c = cmd(
        &cwd,
        &[
            "store",
            "enqueue",
            "--count",
            "2",
            "--database-url",
            flag_db.to_str().unwrap(),
        ],
    );
    c.env("TASKER_DATABASE_URL", &env_db);
    ok(c);
    assert_eq!(n(&status_json(&cwd, flag_db.to_str().unwrap()), "/tasks/total"), 2);
    assert_eq!(n(&status_json(&cwd, env_db.to_str().unwrap()), "/tasks/total"), 3);

    // Neither (or an empty variable): tasker.db in the working directory, created on first use.
    let out = ok(cmd(&cwd, &["store", "enqueue", "--count", "4"]));
    assert!(out.contains("into tasker.db in"), "{out}");
    assert!(cwd.join("tasker.db").exists());
    let mut c = cmd(&cwd, &["store", "status", "--json"]);
    c.env("TASKER_DATABASE_URL", "");
    let v: Value = serde_json::from_str(&ok(c)).unwrap();
    assert_eq!(v["database"], "tasker.db");
    assert_eq!(n(&v, "/tasks/total"), 4);
}

#[test]
fn errors_are_one_line_with_distinct_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let line = fails(cmd(d, &["store", "status", "--database-url", "mysql://x"]), 3);
    assert!(
        line.contains("invalid store URL `mysql://x`: unsupported scheme `mysql`"),
        "{line}"
    );
    let mut c = cmd(d, &["store", "retry"]);
    c.env("TASKER_DATABASE_URL", "mysql://x");
    fails(c, 3);

    // Nothing listens on port 1: retried until --connect-timeout, password never printed.
    let line = fails(
        cmd(
            d,
            &[
                "store",
                "status",
                "--database-url",
                "postgres://u:secret@127.0.0.1:1/db",
                "--connect-timeout",
                "0.5",
            ],
        ),
        4,
    );
    assert!(
        line.contains("unreachable") && line.contains("u:***@127.0.0.1:1"),
        "{line}"
    );
    assert!(!line.contains("secret"), "{line}");
    let missing = d.join("no-such-dir/x.db");
    fails(
        cmd(
            d,
            &[
                "store",
                "enqueue",
                "--count",
                "1",
                "--database-url",
                missing.to_str().unwrap(),
                "--connect-timeout",
                "0.3",
            ],
        ),
        4,
    );

    let junk = d.join("junk.db");
    std::fs::write(
        &junk,
        b"this is not an SQLite database, just some text long enough to matter",
    )
    .unwrap();
    let line = fails(
        cmd(d, &["store", "status", "--database-url", junk.to_str().unwrap()]),
        5,
    );
    assert!(line.contains("not a database"), "{line}");

    // Unknown template: clap's usage error naming the known ones; nothing is created.
    let r = run(cmd(d, &["store", "enqueue", "--count", "1", "--template", "star"]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("invalid value 'star'") && r.stderr.contains("linear, diamond"),
        "{}",
        r.stderr
    );
    assert!(!d.join("tasker.db").exists());
    let r = run(cmd(d, &["store", "enqueue"]));
    assert_eq!(r.code, Some(2), "--count is required: {}", r.stderr);
    let r = run(cmd(d, &["store", "status", "--connect-timeout", "-1"]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);

    let help = ok(cmd(d, &["store", "--help"]));
    for code in [
        "3  invalid database URL",
        "4  database unreachable",
        "5  the server refused",
        "6  schema migration",
        "7  verify: results do not match the templates' reference math",
    ] {
        assert!(help.contains(code), "{code}: {help}");
    }
}
