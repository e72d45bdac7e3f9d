//! A step's attempt history and checkpoints: yielding a checkpoint (the step runs again from it, the attempt
//! not counted) and reading the history (every attempt with its times and outcome). Off the hot path: a
//! first-try success writes no history row (see the schema's `step_attempts`).

use crate::error::{CompleteError, StatusError};
use crate::lite::{add_counts, begin};
use crate::sql::{self, lite, pg};
use crate::store::{now_ms, outcome, state, Backend, CountDeltas, Kind, Store};
use crate::token;
use rusqlite::OptionalExtension;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

/// What became of [`Store::checkpoint_yield`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum YieldOutcome {
    /// Persisted: the step is ready again at once, its attempt not counted, and its next event carries the
    /// checkpoint as `workflow_step.checkpoint`.
    Yielded,
    /// The token does not hold the step any more (completed, or re-claimed after its deadline): nothing
    /// changed.
    Refused,
    /// The checkpoint is not a JSON object: nothing changed.
    Invalid(String),
}

/// How one attempt of a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Still claimed (its handler may be running).
    Running,
    /// Completed successfully (the result is the step's).
    Succeeded,
    /// Failed, retried after a backoff.
    RetryScheduled,
    /// Failed for good (not retryable, or no attempts left).
    Failed,
    /// The claim's deadline passed without a result.
    ClaimExpired,
    /// The handler yielded a checkpoint; the step ran again from it.
    CheckpointYielded,
}

/// One attempt of a step, from [`Store::step_history`]. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The attempt number (a checkpoint yield does not use one, so the next attempt repeats its number).
    pub attempt: i64,
    /// When it was claimed.
    pub claimed_at_ms: i64,
    /// When it ended (`None` while running).
    pub ended_at_ms: Option<i64>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The StepExecutionResult JSON it ended with (failures and the final success).
    pub result: Option<String>,
}

impl AttemptOutcome {
    /// The outcome's name (`retry_scheduled`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::RetryScheduled => "retry_scheduled",
            Self::Failed => "failed",
            Self::ClaimExpired => "claim_expired",
            Self::CheckpointYielded => "checkpoint_yielded",
        }
    }
}

impl AttemptRecord {
    /// The record as a client sees it: `{attempt, outcome, claimed_at, ended_at, claimed_at_ms, ended_at_ms,
    /// result}` (times ISO 8601 and Unix milliseconds; `result` the parsed JSON, or its text if corrupt).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "attempt": self.attempt,
            "outcome": self.outcome.as_str(),
            "claimed_at": crate::event::iso8601(self.claimed_at_ms),
            "ended_at": self.ended_at_ms.map(crate::event::iso8601),
            "claimed_at_ms": self.claimed_at_ms,
            "ended_at_ms": self.ended_at_ms,
            "result": self.result.as_deref().map(|r| serde_json::from_str::<Value>(r).unwrap_or_else(|_| Value::String(r.into()))),
        })
    }
}

impl Store {
    /// Persists `checkpoint` (a JSON object: tasker-core's cursor, items processed, accumulated results) for
    /// the step the claim `event_id` holds, records the attempt as yielded, and makes the step ready again at
    /// once without counting the attempt; the step's next event carries the checkpoint.
    pub async fn checkpoint_yield(&self, event_id: Uuid, checkpoint: &[u8]) -> Result<YieldOutcome, CompleteError> {
        let text = match serde_json::from_slice::<Value>(checkpoint) {
            Ok(v) if v.is_object() => String::from_utf8_lossy(checkpoint).into_owned(),
            Ok(_) => return Ok(YieldOutcome::Invalid("the checkpoint is not a JSON object".into())),
            Err(e) => return Ok(YieldOutcome::Invalid(format!("the checkpoint is not JSON: {e}"))),
        };
        let Some((step, tok)) = token::decode(event_id) else {
            return Ok(YieldOutcome::Refused);
        };
        let now = now_ms();
        let mut deltas = CountDeltas::default();
        deltas.moved(state::CLAIMED, state::READY, 1);
        match &self.backend {
            Backend::Sqlite(_, lite_conn) => {
                lite_conn
                    .run(move |conn| {
                        let tx = begin(conn)?;
                        let held = (tx.prepare_cached(lite::CHECKPOINT_HELD)?)
                            .query_row((step, tok), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)))
                            .optional()?;
                        let Some((attempt, claimed_at)) = held else {
                            return Ok(YieldOutcome::Refused);
                        };
                        tx.prepare_cached(lite::CHECKPOINT_UPSERT)?
                            .execute((step, &text, now))?;
                        let row = (step, attempt, claimed_at.unwrap_or(now), now);
                        (tx.prepare_cached(lite::ATTEMPT_INSERT)?).execute((
                            row.0,
                            row.1,
                            row.2,
                            row.3,
                            outcome::CHECKPOINT_YIELDED,
                            None::<&str>,
                        ))?;
                        tx.prepare_cached(lite::RELEASE)?.execute((now, step, tok))?;
                        add_counts(&tx, &deltas)?;
                        tx.commit()?;
                        Ok(YieldOutcome::Yielded)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let held: Option<(i64, Option<i64>)> = sqlx::query_as(pg::CHECKPOINT_HELD)
                    .bind(step)
                    .bind(tok)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((attempt, claimed_at)) = held else {
                    return Ok(YieldOutcome::Refused);
                };
                sqlx::query(pg::CHECKPOINT_UPSERT)
                    .bind(step)
                    .bind(&text)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let row = [(step, attempt, claimed_at.unwrap_or(now), now)];
                crate::claim::record_attempts_pg(&mut tx, &row, outcome::CHECKPOINT_YIELDED, &[]).await?;
                sqlx::query(pg::RELEASE)
                    .bind(now)
                    .bind(vec![step])
                    .bind(vec![tok])
                    .execute(&mut *tx)
                    .await?;
                add_counts!(tx, sql::of(Kind::Postgres), deltas);
                notify_ready!(tx);
                tx.commit().await?;
                Ok(YieldOutcome::Yielded)
            }
        }
    }

    /// Every attempt of step `step_uuid` of task `task_uuid`, oldest first (the recorded ones, then the
    /// current: running, or succeeded with its result); `None` when the task has no such step.
    pub async fn step_history(
        &self,
        task_uuid: Uuid,
        step_uuid: Uuid,
    ) -> Result<Option<Vec<AttemptRecord>>, StatusError> {
        on_backend!(self, pool, kind => {
            let q = sql::of(kind);
            let mut conn = pool.acquire().await?;
            let step = sqlx::query(q.history_step)
                .bind(task_uuid.to_string())
                .bind(step_uuid.to_string())
                .fetch_optional(&mut *conn)
                .await?;
            let Some(step) = step else {
                return Ok(None);
            };
            let (id, step_state, attempts): (i64, i64, i64) = (step.try_get(0)?, step.try_get(1)?, step.try_get(2)?);
            let (claimed_at, updated_at): (Option<i64>, i64) = (step.try_get(3)?, step.try_get(4)?);
            let mut out = Vec::new();
            for r in sqlx::query(q.history_attempts).bind(id).fetch_all(&mut *conn).await? {
                out.push(AttemptRecord {
                    attempt: r.try_get(0)?,
                    claimed_at_ms: r.try_get(1)?,
                    ended_at_ms: Some(r.try_get(2)?),
                    outcome: match r.try_get::<i64, _>(3)? {
                        outcome::RETRY_SCHEDULED => AttemptOutcome::RetryScheduled,
                        outcome::FAILED => AttemptOutcome::Failed,
                        outcome::CLAIM_EXPIRED => AttemptOutcome::ClaimExpired,
                        _ => AttemptOutcome::CheckpointYielded,
                    },
                    result: r.try_get(4)?,
                });
            }
            let claimed_at = claimed_at.unwrap_or(updated_at);
            if step_state == state::CLAIMED {
                out.push(AttemptRecord { attempt: attempts, claimed_at_ms: claimed_at, ended_at_ms: None, outcome: AttemptOutcome::Running, result: None });
            } else if step_state == state::COMPLETE {
                let result: Option<String> = sqlx::query_scalar(q.history_result).bind(id).fetch_optional(&mut *conn).await?;
                out.push(AttemptRecord { attempt: attempts, claimed_at_ms: claimed_at, ended_at_ms: Some(updated_at), outcome: AttemptOutcome::Succeeded, result });
            }
            Ok(Some(out))
        })
    }
}
