//! Claiming: ready steps (and expired claims with attempts left) become claimed, and their events are built.

use crate::error::ClaimError;
use crate::event::{self, ClaimedRow, Shaping, TaskCache, TaskInfo};
use crate::sql::{self, pg};
use crate::store::{ms, now_ms, outcome, state, Backend, ClaimedStep, CountDeltas, Kind, Store};
use crate::stored_templates;
use crate::token;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A `tasks` row as `tasks_by_id` returns it.
pub(crate) type TaskRow = (i64, String, String, String, String, String, String, i64, i64);

/// The tasks of a claim batch by id: the cached task, or why its row cannot make events.
pub(crate) type Tasks = HashMap<i64, Result<Arc<TaskInfo>, String>>;

impl Store {
    /// Claims up to `max` claimable steps (ready and due, or claimed with an expired deadline and attempts
    /// left), oldest deadline first: each gets state `claimed`, a fresh random token (its event id carries
    /// the step id and the token), `visible_at = now + visibility` and `attempts + 1`. PostgreSQL locks with
    /// `FOR UPDATE SKIP LOCKED`, so concurrent claimers (any process) never get the same step; SQLite claims
    /// in one `BEGIN IMMEDIATE` transaction.
    ///
    /// The claim and the reads of tasks, parents' results and checkpoints are one transaction: an error
    /// anywhere rolls it all back (no step is left claimed by nobody with an attempt used). A step whose own
    /// rows cannot make an event goes to `error` (`error_type: corrupt_step`), so it never blocks the steps
    /// behind it: in the same transaction on PostgreSQL; on SQLite, whose events are built after the commit
    /// (off its one writer's thread; building cannot fail as a whole), in a second transaction before this
    /// call returns. Should that one fail, the claimed events are still returned and the corrupt step comes
    /// back after its deadline, going to `error` when its attempts run out. When fewer than `max` are found,
    /// expired claims with no attempts left are moved to `error`.
    pub async fn claim(&self, max: usize, visibility: Duration) -> Result<Vec<ClaimedStep>, ClaimError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let deadline = now + ms(visibility);
        let pool = match &self.backend {
            Backend::Sqlite(_, lite) => {
                let tasks = Arc::clone(&self.tasks);
                let picked = lite
                    .run(move |conn| crate::lite::claim::claim(conn, max, now, deadline, &tasks))
                    .await?;
                // Shaped here, off the connection thread (see `lite::claim`).
                let (out, corrupt) = shape(picked.rows, &picked.tasks, &picked.results, &picked.checkpoints, now);
                if !corrupt.is_empty() {
                    // The claimed events go back to the caller even when this fails: an error here must not
                    // strand a committed claim. A corrupt step left claimed comes back after its deadline and
                    // goes to error when its attempts run out.
                    let failed = lite
                        .run(move |conn| crate::lite::claim::fail_corrupt(conn, &corrupt, now))
                        .await;
                    if let Err(error) = failed {
                        tracing::warn!(%error, "moving corrupt claimed steps to error failed; retried after their deadline");
                    }
                }
                return Ok(out);
            }
            Backend::Postgres(pool) => pool,
        };
        let claimed = {
            let mut tx = pool.begin().await?;
            let picked: Vec<(i64, i64, i64, Option<i64>, i64)> = sqlx::query_as(pg::CLAIM_PICK)
                .bind(now)
                .bind(max as i64)
                .fetch_all(&mut *tx)
                .await?;
            let mut deltas = CountDeltas::default();
            let mut rows = Vec::with_capacity(picked.len());
            if !picked.is_empty() {
                let mut expired = Vec::new();
                for (id, old, attempts, claimed_at, deadline) in &picked {
                    deltas.moved(*old, state::CLAIMED, 1);
                    if *old == state::CLAIMED {
                        expired.push((*id, *attempts, claimed_at.unwrap_or(*deadline), *deadline));
                    }
                }
                record_attempts_pg(&mut tx, &expired, outcome::CLAIM_EXPIRED, &[]).await?;
                let ids: Vec<i64> = picked.iter().map(|p| p.0).collect();
                let marked: Vec<(i64, i64, i64, i64, i64, String, i64)> = sqlx::query_as(pg::CLAIM_MARK)
                    .bind(now)
                    .bind(deadline)
                    .bind(&ids)
                    .fetch_all(&mut *tx)
                    .await?;
                for (id, task_id, idx, attempts, token, step_uuid, created_at) in marked {
                    rows.push(ClaimedRow {
                        id,
                        task_id,
                        idx,
                        attempts,
                        token,
                        step_uuid,
                        created_at,
                    });
                }
                // Oldest deadline first, as picked.
                let order: HashMap<i64, usize> = picked.iter().enumerate().map(|(i, p)| (p.0, i)).collect();
                rows.sort_by_key(|r| order.get(&r.id).copied().unwrap_or(usize::MAX));
            }
            // Tasks: from the cache, the rest in one query.
            let (mut tasks, missing) = cached_tasks(&self.tasks, &rows);
            if !missing.is_empty() {
                let found: Vec<TaskRow> = sqlx::query_as(pg::TASKS_BY_ID)
                    .bind(&missing)
                    .fetch_all(&mut *tx)
                    .await?;
                let unknown = stored_templates::missing(found.iter().map(|r| r.4.as_str()));
                stored_templates::register_pg(&mut tx, &unknown).await?;
                for (id, task_uuid, namespace, version, template, context, correlation_id, priority, created_at) in
                    found
                {
                    let row = (
                        task_uuid,
                        namespace,
                        version,
                        template,
                        context,
                        correlation_id,
                        priority,
                        created_at,
                    );
                    tasks.insert(id, task_info(&self.tasks, id, row));
                }
            }
            // Parents' results, all in one query.
            let parents = parent_ids(&rows, &tasks);
            let results: HashMap<i64, String> = if parents.is_empty() {
                HashMap::new()
            } else {
                let parents: Vec<i64> = parents.into_iter().collect();
                let found: Vec<(i64, String)> = sqlx::query_as(pg::RESULTS_BY_ID)
                    .bind(&parents)
                    .fetch_all(&mut *tx)
                    .await?;
                found.into_iter().collect()
            };
            let claimed_ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let checkpoints: HashMap<i64, String> = if claimed_ids.is_empty() {
                HashMap::new()
            } else {
                let found: Vec<(i64, String)> = sqlx::query_as(pg::CHECKPOINTS_BY_ID)
                    .bind(&claimed_ids)
                    .fetch_all(&mut *tx)
                    .await?;
                found.into_iter().collect()
            };
            let (out, corrupt) = shape(rows, &tasks, &results, &checkpoints, now);
            for (id, _token, why) in &corrupt {
                sqlx::query(pg::MARK_ERROR)
                    .bind(now)
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(pg::ERROR_UPSERT)
                    .bind(*id)
                    .bind(corrupt_error(why))
                    .execute(&mut *tx)
                    .await?;
                deltas.moved(state::CLAIMED, state::ERROR, 1);
            }
            if !deltas.is_zero() {
                add_counts!(tx, sql::of(Kind::Postgres), deltas);
            }
            tx.commit().await?;
            out
        };
        if claimed.len() < max {
            self.expire_exhausted(pool, now).await?;
        }
        Ok(claimed)
    }
}

/// The task of each row from the cache; the ids missing from it (each also entered as an error, replaced
/// when its row is found).
pub(crate) fn cached_tasks(cache: &TaskCache, rows: &[ClaimedRow]) -> (Tasks, Vec<i64>) {
    let mut tasks = Tasks::new();
    let mut missing = Vec::new();
    for row in rows {
        if tasks.contains_key(&row.task_id) {
            continue;
        }
        match cache.get(row.task_id) {
            Some(t) => {
                tasks.insert(row.task_id, Ok(t));
            }
            None => {
                missing.push(row.task_id);
                tasks.insert(row.task_id, Err(format!("task {} missing", row.task_id)));
            }
        }
    }
    (tasks, missing)
}

/// A task's `tasks` row (without its id) as `tasks_by_id` reads it.
pub(crate) type TaskFields = (String, String, String, String, String, String, i64, i64);

/// The cached form of task `id`'s row, cached when it is sound; `Err` says what is corrupt.
pub(crate) fn task_info(cache: &TaskCache, id: i64, row: TaskFields) -> Result<Arc<TaskInfo>, String> {
    let (task_uuid, namespace, version, template, context, correlation_id, priority, created_at) = row;
    let info = TaskInfo::from_row(
        task_uuid,
        namespace,
        version,
        &template,
        &context,
        correlation_id,
        priority,
        created_at,
    )
    .map(Arc::new);
    if let Ok(t) = &info {
        cache.insert(id, Arc::clone(t));
    }
    info
}

/// Ids of the parents of every row whose task is known (their results go into the events).
pub(crate) fn parent_ids(rows: &[ClaimedRow], tasks: &Tasks) -> HashSet<i64> {
    let mut parents = HashSet::new();
    for row in rows {
        if let Some(Ok(t)) = tasks.get(&row.task_id) {
            let first = row.id - row.idx;
            parents.extend(
                t.template
                    .parent_indices(row.idx.max(0) as usize)
                    .map(|p| first + p as i64),
            );
        }
    }
    parents
}

/// The events of `rows`, in order, and the rows that cannot make one (step id, claim token, why).
pub(crate) fn shape(
    rows: Vec<ClaimedRow>,
    tasks: &Tasks,
    results: &HashMap<i64, String>,
    checkpoints: &HashMap<i64, String>,
    now: i64,
) -> (Vec<ClaimedStep>, Vec<(i64, i64, String)>) {
    let mut out = Vec::with_capacity(rows.len());
    let mut corrupt = Vec::new();
    // The events are JSON by construction; the stored results they embed are checked here, once each.
    let not_json = |texts: &HashMap<i64, String>| -> HashSet<i64> {
        (texts.iter())
            .filter(|(_, text)| serde_json::from_str::<serde::de::IgnoredAny>(text).is_err())
            .map(|(id, _)| *id)
            .collect()
    };
    let (corrupt_results, corrupt_checkpoints) = (not_json(results), not_json(checkpoints));
    let now_iso = event::iso8601(now);
    for row in rows {
        let built = match tasks.get(&row.task_id) {
            Some(Ok(task)) => {
                let event_id = token::event_id(row.id, row.token);
                event::build(
                    &row,
                    &Shaping {
                        task,
                        results,
                        corrupt_results: &corrupt_results,
                        checkpoints,
                        corrupt_checkpoints: &corrupt_checkpoints,
                        event_id,
                        now_iso: &now_iso,
                    },
                )
                .and_then(|event| claimed_step(&row, task, event_id, event))
            }
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("task {} missing", row.task_id)),
        };
        match built {
            Ok(step) => out.push(step),
            Err(why) => corrupt.push((row.id, row.token, why)),
        }
    }
    (out, corrupt)
}

/// The last error stored for a step whose rows cannot make an event.
pub(crate) fn corrupt_error(why: &str) -> String {
    json!({
        "success": false,
        "status": "error",
        "error": {
            "message": format!("the step's rows cannot make a step event: {why}"),
            "error_type": "corrupt_step",
            "retryable": false
        }
    })
    .to_string()
}

/// Records attempts `(step id, attempt, claimed at, ended at)` with `outcome` in the history (PostgreSQL), with
/// each one's result JSON from `results` (pairwise; empty for none).
pub(crate) async fn record_attempts_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    attempts: &[(i64, i64, i64, i64)],
    outcome: i64,
    results: &[Option<&str>],
) -> Result<(), sqlx::Error> {
    if attempts.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&(i64, i64, i64, i64)) -> i64| attempts.iter().map(f).collect::<Vec<i64>>();
    let results: Vec<Option<&str>> = (0..attempts.len()).map(|i| results.get(i).copied().flatten()).collect();
    sqlx::query(pg::ATTEMPT_INSERT)
        .bind(column(|a| a.0))
        .bind(column(|a| a.1))
        .bind(column(|a| a.2))
        .bind(column(|a| a.3))
        .bind(vec![outcome; attempts.len()])
        .bind(results)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The public form of a claimed row whose event was built.
fn claimed_step(row: &ClaimedRow, task: &TaskInfo, event_id: Uuid, event: Box<str>) -> Result<ClaimedStep, String> {
    let parse = |s: &str| Uuid::parse_str(s).map_err(|e| format!("uuid `{s}`: {e}"));
    Ok(ClaimedStep {
        claim_token: event_id,
        step_uuid: parse(&row.step_uuid)?,
        task_uuid: parse(&task.task_uuid)?,
        step_name: task.template.steps[row.idx as usize].name.to_string(),
        namespace: Arc::clone(&task.namespace),
        correlation_id: Arc::clone(&task.correlation_id),
        attempts: row.attempts,
        event,
    })
}
