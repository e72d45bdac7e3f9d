//! The step store alone, driven the way the worker drives it: claim batches of up to 256 steps, answer each
//! with the reference handler's result padded to the size of `fixtures/completion-success.json`, persist the
//! answers with `complete_batch`, with one claim and one completion in flight at once (the worker's claim
//! and write lanes) and the answers made between them: one such loop on SQLite (one writer at a time), two
//! at once on PostgreSQL (a pool of 2 connections). No ring, no JS. Each run starts from a fresh store,
//! enqueues its workload (all linear, or all diamond) untimed, and is timed from the first claim through the
//! last commit and a WAL checkpoint; `verify` then checks every task against the templates' reference math
//! (a run with a mismatch or a step left unfinished fails).
//!
//! Runs, side by side: SQLite (WAL, `synchronous=NORMAL`) and a throwaway PostgreSQL cluster (fsync on) with
//! `synchronous_commit=off` and `on`, each for the linear and the diamond workload.
//!
//! ```text
//! scripts/bench-store [STEPS]                      # full: 500 000 steps per run (prints a markdown table)
//! cargo test --release -p tasker-store --bench store_alone   # test mode: 4 000 steps per run, same checks
//! ```
//! `TASKER_STORE_BENCH_STEPS` overrides the steps per run, `TASKER_STORE_BENCH_BACKENDS=sqlite` leaves
//! PostgreSQL out; the table also goes to
//! `target/bench/store-alone.json`.
#![allow(missing_docs)]

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasker_store::templates::reference_result;
use tasker_store::test_support::PgCluster;
use tasker_store::{ClaimedStep, Store, StoreOptions};

const CLAIM_BATCH: usize = 256;
/// Concurrent claim/complete loops on PostgreSQL (a pool of as many connections). SQLite has one writer at a
/// time, so one loop, as one worker's store thread runs.
const PG_LOOPS: usize = 2;
const VISIBILITY: Duration = Duration::from_secs(120);
const SUCCESS_FIXTURE: &str = include_str!("../../../fixtures/completion-success.json");

struct Run {
    store: &'static str,
    durability: &'static str,
    template: &'static str,
    steps: u64,
    wall: Duration,
    claim: Duration,
    complete: Duration,
    enqueue: Duration,
}

/// Time spent in claims and completions, summed over the loops (nanoseconds).
#[derive(Default)]
struct Spent {
    claim_ns: AtomicU64,
    complete_ns: AtomicU64,
}

/// The result of a step of `name` for the event `c`, padded to the completion fixture's size. Every task has
/// the same context, so a step's result depends on its name only: the reference handler runs on the first
/// event of each name and later answers only change `step_uuid` (the harness stays cheap; its cost is not
/// the store's).
fn answer(template: &Value, cache: &mut HashMap<String, Value>, c: &ClaimedStep) -> Vec<u8> {
    let result = cache.entry(c.step_name.clone()).or_insert_with(|| {
        let reference = reference_result(&c.event_value()).expect("reference result");
        let mut r = template.clone();
        r["result"] = reference["result"].clone();
        r
    });
    result["step_uuid"] = Value::String(c.step_uuid.to_string());
    serde_json::to_vec(result).unwrap()
}

/// One worker's store thread, driven as `tasker-worker-core`'s store source drives it: a claim lane and a
/// write lane, each with at most one call in flight, and the handlers between them. A claim starts only once
/// the batch before it has gone on to the handlers (so claims run at most a batch or two ahead of the
/// completions, as the worker's unread limit keeps them); the handlers answer a batch while the store runs
/// the next claim and the last completion (in the worker they run on the JS thread, beside the store thread).
async fn drive(store: Store, spent: Arc<Spent>) -> u64 {
    let (batches, mut claimed_rx) = tokio::sync::mpsc::channel::<Vec<ClaimedStep>>(1);
    let (answered, mut answered_rx) = tokio::sync::mpsc::channel::<Vec<(tasker_store::Uuid, Vec<u8>)>>(1);
    let claims = tokio::spawn(claim_lane(store.clone(), Arc::clone(&spent), batches));
    let handlers = tokio::spawn(async move {
        let template: Value = serde_json::from_str(SUCCESS_FIXTURE).unwrap();
        let mut answers = HashMap::new();
        while let Some(claimed) = claimed_rx.recv().await {
            let items: Vec<_> = claimed
                .iter()
                .map(|c| (c.claim_token, answer(&template, &mut answers, c)))
                .collect();
            if answered.send(items).await.is_err() {
                return;
            }
        }
    });
    let mut done = 0;
    while let Some(items) = answered_rx.recv().await {
        let t = Instant::now();
        let outcomes = store.complete_batch(&items).await.expect("complete");
        spent
            .complete_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        for o in &outcomes {
            assert!(matches!(o, tasker_store::CompletionOutcome::Completed { .. }), "{o:?}");
        }
        done += items.len() as u64;
    }
    claims.await.expect("claim lane");
    handlers.await.expect("handlers");
    done
}

/// Claims batches for [`drive`]'s write lane until no step is unfinished.
async fn claim_lane(store: Store, spent: Arc<Spent>, batches: tokio::sync::mpsc::Sender<Vec<ClaimedStep>>) {
    let mut idle = 0u32;
    loop {
        // Room first: the handlers have taken the batch before this one.
        let Ok(room) = batches.reserve().await else {
            return;
        };
        let t = Instant::now();
        let claimed = store.claim(CLAIM_BATCH, VISIBILITY).await.expect("claim");
        spent
            .claim_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if claimed.is_empty() {
            drop(room);
            // The handlers, the write lane or the other loop may hold the parents of what is left; done when
            // nothing is unfinished.
            if store.step_counts().await.expect("counts").unfinished() == 0 {
                return;
            }
            idle += 1;
            assert!(idle < 20_000, "stuck");
            tokio::time::sleep(Duration::from_micros(200)).await;
            continue;
        }
        idle = 0;
        room.send(claimed);
    }
}

async fn run_one(
    url: &str,
    store_name: &'static str,
    durability: &'static str,
    template: &'static str,
    steps: u64,
) -> Run {
    let loops = if store_name == "postgres" { PG_LOOPS } else { 1 };
    let options = StoreOptions {
        max_connections: Some(loops as u32),
        ..StoreOptions::default()
    };
    let store = Store::connect_with(url, options).await.expect("connect");
    let tasks = (steps / 4) as usize;
    let t = Instant::now();
    store
        .enqueue("bench", template, tasks, br#"{"even_number": 6}"#)
        .await
        .expect("enqueue");
    let enqueue = t.elapsed();
    let spent = Arc::new(Spent::default());
    let started = Instant::now();
    let handles: Vec<_> = (0..loops)
        .map(|_| tokio::spawn(drive(store.clone(), Arc::clone(&spent))))
        .collect();
    let mut done = 0;
    for h in handles {
        done += h.await.unwrap();
    }
    store.checkpoint().await.expect("checkpoint");
    let wall = started.elapsed();
    assert_eq!(done, tasks as u64 * 4, "every step completed once");
    let report = store.verify().await.expect("verify");
    assert_eq!(
        (report.checked, report.mismatches),
        (tasks as u64, 0),
        "every task matches the reference math"
    );
    store.close().await;
    Run {
        store: store_name,
        durability,
        template,
        steps: done,
        wall,
        claim: Duration::from_nanos(spent.claim_ns.load(Ordering::Relaxed)),
        complete: Duration::from_nanos(spent.complete_ns.load(Ordering::Relaxed)),
        enqueue,
    }
}

async fn pg_database(cluster: &PgCluster, name: &str, synchronous_commit: &str) -> String {
    let admin = sqlx::PgPool::connect(&cluster.url).await.expect("admin connection");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE {name} SET synchronous_commit = {synchronous_commit}"
    ))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    let (server, _db) = cluster.url.rsplit_once('/').expect("a database in the URL");
    format!("{server}/{name}")
}

fn main() {
    // `cargo bench` and scripts/bench-store pass `--bench`; without it (cargo test --benches) a small run.
    let full = std::env::args().any(|a| a == "--bench");
    let steps: u64 = std::env::var("TASKER_STORE_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 500_000 } else { 4_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runs = runtime.block_on(async {
        let mut runs = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        for template in ["linear", "diamond"] {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join(format!("{template}.db")).display()
            );
            let r = run_one(&url, "sqlite", "synchronous=NORMAL", template, steps).await;
            eprintln!(
                "store-alone: sqlite {template}: {:.0} steps/s",
                r.steps as f64 / r.wall.as_secs_f64()
            );
            runs.push(r);
        }
        let postgres = std::env::var("TASKER_STORE_BENCH_BACKENDS").map_or(true, |b| b.contains("postgres"));
        match postgres.then(|| PgCluster::start_durable("store_alone")).flatten() {
            Some(cluster) => {
                let mut n = 0;
                for (durability, setting) in [("synchronous_commit=off", "off"), ("synchronous_commit=on", "on")] {
                    for template in ["linear", "diamond"] {
                        n += 1;
                        let url = pg_database(&cluster, &format!("run{n}"), setting).await;
                        let r = run_one(&url, "postgres", durability, template, steps).await;
                        eprintln!(
                            "store-alone: postgres {durability} {template}: {:.0} steps/s",
                            r.steps as f64 / r.wall.as_secs_f64()
                        );
                        runs.push(r);
                    }
                }
            }
            None if !postgres => eprintln!("store-alone: PostgreSQL left out (TASKER_STORE_BENCH_BACKENDS)"),
            None => eprintln!("\n!!! store-alone: the PostgreSQL rows are SKIPPED (no initdb/pg_ctl) !!!\n"),
        }
        runs
    });
    let mut table = String::from(
        "| store | durability | workload | steps | wall s | steps/s | claim us/step | complete us/step | enqueue steps/s |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut rows = Vec::new();
    for r in &runs {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / r.steps as f64;
        let rate = r.steps as f64 / r.wall.as_secs_f64();
        table.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.1} | {:.1} | {:.0} |\n",
            r.store,
            r.durability,
            r.template,
            r.steps,
            r.wall.as_secs_f64(),
            rate,
            per(r.claim),
            per(r.complete),
            r.steps as f64 / r.enqueue.as_secs_f64()
        ));
        rows.push(json!({
            "store": r.store, "durability": r.durability, "workload": r.template, "steps": r.steps,
            "wall_s": r.wall.as_secs_f64(), "steps_per_s": rate,
            "claim_us_per_step": per(r.claim), "complete_us_per_step": per(r.complete),
            "enqueue_steps_per_s": r.steps as f64 / r.enqueue.as_secs_f64(),
        }));
    }
    println!("\n{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    let _ = std::fs::create_dir_all(&out);
    let name = if full {
        "store-alone.json"
    } else {
        "store-alone-quick.json"
    };
    let _ = std::fs::write(
        out.join(name),
        serde_json::to_string_pretty(&json!({"schema": "tasker-store/store-alone/1", "runs": rows})).unwrap(),
    );
}
