//! Cancelling a task: its pending and ready steps become `cancelled` at once (never claimable, never made
//! ready by a parent's completion); its running steps finish and their results persist, but get no further
//! attempt (a retryable failure goes to error, an expired claim is not claimed again).

use crate::error::CancelError;
use crate::sql;
use crate::store::{now_ms, retry_conflicts, state, CountDeltas, Store};
use serde::Serialize;
use uuid::Uuid;

/// What [`Store::cancel_task`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The task is cancelled (again: a repeated cancellation cancels nothing more and keeps the first time).
    Cancelled {
        /// Pending and ready steps cancelled by this call.
        steps_cancelled: u64,
        /// Steps running now, left to finish.
        still_running: u64,
    },
    /// Every step is complete: nothing to cancel, nothing changed.
    AlreadyComplete,
    /// No such task.
    NotFound,
}

impl Store {
    /// Cancels task `task_uuid` (see the module docs). On PostgreSQL the task's steps are locked first, so a
    /// claim or a completion running at the same moment either finishes before (and its step is then
    /// running, or complete) or sees the cancelled states; a deadlock with a completion is retried.
    pub async fn cancel_task(&self, task_uuid: Uuid) -> Result<CancelOutcome, CancelError> {
        retry_conflicts(
            || self.cancel_once(task_uuid),
            |e| match e {
                CancelError::Database(d) => Some(d),
            },
        )
        .await
    }

    async fn cancel_once(&self, task_uuid: Uuid) -> Result<CancelOutcome, CancelError> {
        let now = now_ms();
        on_backend!(self, pool, kind => {
            let q = sql::of(kind);
            let mut tx = pool.begin_with(kind.begin()).await?;
            let place: Option<(i64, i64, i64, String)> =
                sqlx::query_as(q.task_by_uuid).bind(task_uuid.to_string()).fetch_optional(&mut *tx).await?;
            let Some((id, first, count, _)) = place else {
                return Ok(CancelOutcome::NotFound);
            };
            let last = first + count - 1;
            if let Some(lock) = q.steps_lock {
                sqlx::query(lock).bind(first).bind(last).execute(&mut *tx).await?;
            }
            let complete: i64 = sqlx::query_scalar(q.steps_complete).bind(first).bind(last).fetch_one(&mut *tx).await?;
            if complete == count {
                return Ok(CancelOutcome::AlreadyComplete);
            }
            let mut deltas = CountDeltas::default();
            let mut cancelled = 0;
            for from in [state::PENDING, state::READY] {
                let n = sqlx::query(q.cancel_steps)
                    .bind(first)
                    .bind(last)
                    .bind(now)
                    .bind(from)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                deltas.moved(from, state::CANCELLED, n as i64);
                cancelled += n;
            }
            let running = sqlx::query(q.cancel_running).bind(first).bind(last).execute(&mut *tx).await?.rows_affected();
            sqlx::query(q.request_cancel).bind(id).bind(now).execute(&mut *tx).await?;
            if !deltas.is_zero() {
                add_counts!(tx, q, deltas);
            }
            tx.commit().await?;
            Ok(CancelOutcome::Cancelled { steps_cancelled: cancelled, still_running: running })
        })
    }
}
