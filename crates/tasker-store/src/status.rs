//! Counts for operators and progress lines, and putting steps in error back to work.

use crate::error::{RetryError, StatusError};
use crate::sql;
use crate::store::{now_ms, state, CountDeltas, Kind, Store, StoreStatus};
use sqlx::Row;
use std::time::Duration;

impl Store {
    /// Counts of steps by state only, from the step counts each transaction keeps (a sum over 16 slots per
    /// state, never a scan of the steps): cheap enough for a once-a-second progress line. The task counts and
    /// claim ages of the returned status are left at zero.
    pub async fn step_counts(&self) -> Result<StoreStatus, StatusError> {
        let mut s = StoreStatus::default();
        on_backend!(self, pool, kind => {
            for r in sqlx::query(sql::of(kind).counts).fetch_all(pool).await? {
                let code: i64 = r.try_get(0)?;
                let n: i64 = r.try_get(1)?;
                s.count_state(code, n.max(0) as u64);
            }
        });
        Ok(s)
    }

    /// Counts of tasks and steps by state, expired claims and the oldest claim's age (scans the tables: an
    /// operator's view, not a hot path).
    pub async fn status(&self) -> Result<StoreStatus, StatusError> {
        let now = now_ms();
        let mut s = self.step_counts().await?;
        on_backend!(self, pool, _kind => {
            let count = |sql: &'static str| sqlx::query(sql).bind(now).fetch_one(pool);
            s.tasks = count("SELECT COUNT(*) FROM tasks WHERE $1 = $1").await?.try_get::<i64, _>(0)? as u64;
            s.tasks_complete = count("SELECT COUNT(*) FROM tasks t WHERE $1 = $1 AND NOT EXISTS \
                (SELECT 1 FROM steps s WHERE s.id >= t.first_step AND s.id < t.first_step + t.step_count AND s.state <> 3)")
                .await?.try_get::<i64, _>(0)? as u64;
            s.tasks_error = count("SELECT COUNT(DISTINCT task_id) FROM steps WHERE state = 4 AND $1 = $1")
                .await?.try_get::<i64, _>(0)? as u64;
            s.claims_expired = count("SELECT COUNT(*) FROM steps WHERE state = 2 AND visible_at <= $1")
                .await?.try_get::<i64, _>(0)? as u64;
            let oldest: Option<i64> = count("SELECT MIN(claimed_at) FROM steps WHERE state = 2 AND $1 = $1")
                .await?.try_get(0)?;
            s.oldest_claim_age = oldest.map(|t| Duration::from_millis((now - t).max(0) as u64));
        });
        Ok(s)
    }

    /// Puts every step in `error` back to `ready` now, with `attempts` reset to 0 (a full `max_attempts`
    /// again); the last error is kept. Returns how many.
    pub async fn retry_errors(&self) -> Result<u64, RetryError> {
        let now = now_ms();
        Ok(on_backend!(self, pool, kind => {
            let q = sql::of(kind);
            let mut tx = pool.begin_with(kind.begin()).await?;
            let n = sqlx::query(q.retry_errors).bind(now).execute(&mut *tx).await?.rows_affected();
            if n > 0 {
                let mut deltas = CountDeltas::default();
                deltas.moved(state::ERROR, state::READY, n as i64);
                add_counts!(tx, q, deltas);
                if kind == Kind::Postgres {
                    notify_ready!(tx);
                }
            }
            tx.commit().await?;
            n
        }))
    }
}
