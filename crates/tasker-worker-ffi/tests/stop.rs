//! `stop_worker` while the step store cannot be written (issue 20): another process holds SQLite's write
//! lock, so the store source's last flush waits on it. The stop used to close the source under the library's
//! global lock and block the caller (the JS thread) until the flush gave up, about 10 s later, losing the
//! results; now it returns after at most a second, the closing goes on in the background, and the result is
//! persisted as soon as the lock goes.

use tasker_test_support::ffi as support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{api, CompletionTemplate, EventIds, TempDir};

/// Set, to the database path, in the child that holds the lock.
const CHILD: &str = "TASKER_STOP_LOCK_DB";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The child's part (run only by the test below, in a process of its own: SQLite's POSIX locks never
/// conflict inside one process): takes the database's write lock, says so, and keeps it until stdin closes.
#[test]
#[ignore = "the lock-holding child of stop_returns_while_the_store_is_locked_and_the_flush_finishes_later"]
fn lock_holder_child() {
    let Some(db) = std::env::var_os(CHILD) else {
        return;
    };
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    println!("locked");
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    conn.execute_batch("COMMIT").unwrap();
}

#[test]
fn stop_returns_while_the_store_is_locked_and_the_flush_finishes_later() {
    let api = api();
    let dir = TempDir::new("stop-locked");
    let db = dir.0.join("steps.db");
    let url = format!("sqlite:{}", db.display());
    block_on(async {
        let store = tasker_store::Store::connect(&url).await.unwrap();
        store
            .enqueue("default", "linear", 1, br#"{"even_number": 2}"#)
            .await
            .unwrap();
        store.close().await;
    });
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ffi","log_level":"error","source":{{"kind":"store","database_url":{}}}}}"#,
        serde_json::to_string(&url).unwrap()
    ));
    assert_eq!(boot["status"], "started", "{boot}");
    let mut event = None;
    wait_until("the step's event", Duration::from_secs(30), || {
        event = api.poll();
        event.is_some()
    });
    let event = event.unwrap();
    let ids: EventIds<'_> = serde_json::from_str(&event).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    while !said.contains("locked") {
        said.clear();
        assert_ne!(
            out.read_line(&mut said).unwrap(),
            0,
            "the child ended without taking the lock"
        );
    }
    // Taken by the worker; the store can only write it once the child lets go.
    let result = CompletionTemplate::success().for_step(ids.step_uuid);
    assert_eq!(api.complete(ids.event_id, &result), 1);

    let stopped = api.stop();
    assert_eq!(stopped["status"], "stopped", "the documented result: {stopped}");
    // The lock is still held: the stop returned before the flush could happen, and says it goes on.
    let status = api.status();
    assert_eq!(status["running"], false, "{status}");
    assert_eq!(status["closing"], true, "{status}");
    assert!(api.running(), "the library's threads still run: it must stay loaded");

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    wait_until("the source to close", Duration::from_secs(60), || !api.running());
    assert!(api.status().get("closing").is_none());
    let counts = block_on(async {
        let store = tasker_store::Store::connect(&url).await.unwrap();
        let counts = store.step_counts().await.unwrap();
        store.close().await;
        counts
    });
    assert_eq!(
        (counts.complete, counts.claimed),
        (1, 0),
        "the result was persisted: {counts:?}"
    );
}
