//! Completion: a batch of results persisted in one transaction, with a few set-based statements for the
//! successes (the common case) and one pair of statements per failure.

use crate::error::CompleteError;
use crate::sql;
use crate::store::{
    ids_json, json_rows, ms, now_ms, pairs_json, state, CompletionOutcome, CountDeltas, Kind, Store, READY_CHANNEL,
};
use crate::templates::{template, Template};
use crate::token;
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// A success to persist: its item index, step, token and result bytes (valid JSON).
struct Success<'a> {
    item: usize,
    step: i64,
    token: i64,
    json: &'a [u8],
}

/// A failure to persist.
struct Failure<'a> {
    item: usize,
    step: i64,
    token: i64,
    retryable: bool,
    json: &'a [u8],
}

/// The template of each task in `$task_ids`: from the task cache, the rest read in one query inside the
/// transaction `$tx`.
macro_rules! templates_of {
    ($store:expr, $tx:ident, $q:expr, $task_ids:expr) => {{
        let mut out: HashMap<i64, &'static Template> = HashMap::new();
        let mut missing = Vec::new();
        for id in $task_ids {
            if out.contains_key(&id) {
                continue;
            }
            match $store.tasks.get(id) {
                Some(t) => {
                    out.insert(id, t.template);
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            let rows: Vec<crate::claim::TaskRow> = json_rows(
                sqlx::query($q.tasks_by_id)
                    .bind(ids_json(missing))
                    .fetch_one(&mut *$tx)
                    .await?,
            )?;
            for (id, _, _, _, name, ..) in rows {
                let t = template(&name).ok_or_else(|| CompleteError::CorruptRow(format!("template `{name}`")))?;
                out.insert(id, t);
            }
        }
        out
    }};
}

impl Store {
    /// Persists completions `(event id, StepExecutionResult JSON)` in one transaction and reports each item's
    /// outcome in input order. An event id whose claim no longer holds its step is
    /// [`CompletionOutcome::Refused`] (the newer claim wins); so is an id given twice (the first counts) and
    /// an id this store never made. Success: `complete`, results stored, children whose parents are all
    /// complete become `ready`. Failure with `error.retryable == true` and attempts left: `ready` after
    /// [`Store::backoff`]; otherwise `error`. The result JSON is stored as given. On PostgreSQL the children
    /// are locked in id order (no deadlock between concurrent batches), and a batch that still hits a
    /// deadlock or serialization failure is retried up to 3 times.
    pub async fn complete_batch<B: AsRef<[u8]>>(
        &self,
        items: &[(Uuid, B)],
    ) -> Result<Vec<CompletionOutcome>, CompleteError> {
        let mut tries = 0;
        loop {
            match self.complete_once(items).await {
                Err(CompleteError::Database(sqlx::Error::Database(d)))
                    if tries < 3 && matches!(d.code().as_deref(), Some("40P01") | Some("40001")) =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    async fn complete_once<B: AsRef<[u8]>>(
        &self,
        items: &[(Uuid, B)],
    ) -> Result<Vec<CompletionOutcome>, CompleteError> {
        let mut outcomes = vec![CompletionOutcome::Refused; items.len()];
        let mut successes = Vec::with_capacity(items.len());
        let mut failures = Vec::new();
        let mut seen = HashSet::with_capacity(items.len());
        for (item, (id, bytes)) in items.iter().enumerate() {
            let json = bytes.as_ref();
            let v: Value = match serde_json::from_slice(json) {
                Ok(v) => v,
                Err(e) => {
                    outcomes[item] = CompletionOutcome::Invalid(format!("result is not JSON: {e}"));
                    continue;
                }
            };
            let Some(success) = v.get("success").and_then(Value::as_bool) else {
                outcomes[item] = CompletionOutcome::Invalid("result has no boolean `success`".into());
                continue;
            };
            let Some((step, token)) = token::decode(*id) else {
                continue; // not an event id of this store: Refused
            };
            if !seen.insert(step) {
                continue; // the step's first item counts
            }
            if success {
                successes.push(Success {
                    item,
                    step,
                    token,
                    json,
                });
            } else {
                let retryable = v["error"]["retryable"].as_bool() == Some(true);
                failures.push(Failure {
                    item,
                    step,
                    token,
                    retryable,
                    json,
                });
            }
        }
        if successes.is_empty() && failures.is_empty() {
            return Ok(outcomes);
        }
        let now = now_ms();
        on_backend!(self, pool, kind => {
            let q = sql::of(kind);
            let mut tx = pool.begin_with(kind.begin()).await?;
            let mut deltas = CountDeltas::default();
            let mut children_ready = 0;
            if !successes.is_empty() {
                let by_step: HashMap<i64, &Success> = successes.iter().map(|s| (s.step, s)).collect();
                let done: Vec<(i64, i64, i64)> = json_rows(
                    sqlx::query(q.success_held)
                        .bind(pairs_json(successes.iter().map(|s| (s.step, s.token))))
                        .fetch_one(&mut *tx)
                        .await?,
                )?;
                if !done.is_empty() {
                    sqlx::query(q.complete_success)
                        .bind(now)
                        .bind(ids_json(done.iter().map(|(id, _, _)| *id)))
                        .execute(&mut *tx)
                        .await?;
                    deltas.moved(state::CLAIMED, state::COMPLETE, done.len() as i64);
                    let mut results = Vec::with_capacity(done.iter().map(|(id, _, _)| by_step[id].json.len() + 24).sum());
                    results.push(b'[');
                    for (n, (id, _, _)) in done.iter().enumerate() {
                        if n > 0 {
                            results.push(b',');
                        }
                        results.push(b'[');
                        results.extend_from_slice(id.to_string().as_bytes());
                        results.push(b',');
                        results.extend_from_slice(by_step[id].json);
                        results.push(b']');
                    }
                    results.push(b']');
                    let results = String::from_utf8(results)
                        .map_err(|e| CompleteError::CorruptRow(format!("a result is not UTF-8: {e}")))?;
                    sqlx::query(q.results_insert).bind(results).execute(&mut *tx).await?;
                }
                // Children: one pending parent fewer per parent completed here; the last parent completed in
                // this batch gets the credit for the children it made ready.
                let templates = templates_of!(self, tx, q, done.iter().map(|(_, task, _)| *task));
                let mut children: BTreeMap<i64, (i64, usize)> = BTreeMap::new(); // child -> (parents done, item)
                for (id, task, idx) in &done {
                    let t = templates.get(task).ok_or_else(|| CompleteError::CorruptRow(format!("task {task} missing")))?;
                    let first = id - idx;
                    for c in t.child_indices(*idx as usize) {
                        let e = children.entry(first + c as i64).or_insert((0, 0));
                        e.0 += 1;
                        e.1 = by_step[id].item;
                    }
                    outcomes[by_step[id].item] = CompletionOutcome::Completed { ready_children: 0 };
                }
                if !children.is_empty() {
                    let pending: Vec<(i64, i64)> = json_rows(
                        sqlx::query(q.children_pending).bind(ids_json(children.keys().copied())).fetch_one(&mut *tx).await?,
                    )?;
                    let mut updates = Vec::with_capacity(pending.len());
                    for (child, parents_pending) in pending {
                        let (n, item) = children[&child];
                        updates.push((child, n));
                        if parents_pending == n {
                            children_ready += 1;
                            if let CompletionOutcome::Completed { ready_children } = &mut outcomes[item] {
                                *ready_children += 1;
                            }
                        }
                    }
                    if !updates.is_empty() {
                        sqlx::query(q.children_update).bind(now).bind(pairs_json(updates)).execute(&mut *tx).await?;
                    }
                    deltas.moved(state::PENDING, state::READY, children_ready);
                }
            }
            for f in &failures {
                let held = sqlx::query(q.failure_held).bind(f.step).bind(f.token).fetch_optional(&mut *tx).await?;
                let Some(r) = held else {
                    continue; // Refused
                };
                let (attempts, max_attempts): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                let text = String::from_utf8_lossy(f.json);
                if f.retryable && attempts < max_attempts {
                    let backoff = self.backoff(attempts);
                    sqlx::query(q.fail_retry).bind(f.step).bind(now + ms(backoff)).bind(now).execute(&mut *tx).await?;
                    deltas.moved(state::CLAIMED, state::READY, 1);
                    outcomes[f.item] = CompletionOutcome::RetryScheduled { attempts, backoff };
                } else {
                    sqlx::query(q.mark_error).bind(now).bind(f.step).execute(&mut *tx).await?;
                    deltas.moved(state::CLAIMED, state::ERROR, 1);
                    outcomes[f.item] = CompletionOutcome::Failed { attempts };
                }
                sqlx::query(q.error_upsert).bind(f.step).bind(text.as_ref()).execute(&mut *tx).await?;
            }
            if !deltas.is_zero() {
                add_counts!(tx, q, deltas);
            }
            if children_ready > 0 && kind == Kind::Postgres {
                sqlx::query("SELECT pg_notify($1, '')").bind(READY_CHANNEL).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(outcomes)
    }
}
