//! The store's health for clients: reachable, which backend, the schema version, and counts read from the
//! per-state step counts (never a scan).

use crate::error::ReadError;
use crate::sql;
use crate::store::Store;
use crate::task_view::TaskStepCounts;
use serde::Serialize;
use sqlx::Row;

/// What [`Store::health`] found (it answered, so the store is reachable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The newest schema migration applied.
    pub schema_version: i64,
    /// Tasks (the largest task id: ids are allocated contiguously).
    pub tasks: u64,
    /// Steps by state.
    pub steps: TaskStepCounts,
}

impl Store {
    /// Reads the schema version and the counts (two cheap statements and the step counts).
    pub async fn health(&self) -> Result<StoreHealth, ReadError> {
        let s = self.step_counts().await.map_err(|e| match e {
            crate::error::StatusError::Database(e) => ReadError::Database(e),
        })?;
        let (schema_version, tasks) = on_backend!(self, pool, kind => {
            let q = sql::of(kind);
            let version: Option<i64> = sqlx::query_scalar(q.schema_version).fetch_one(pool).await?;
            let ids = sqlx::query(q.enqueue_next_ids).fetch_one(pool).await?;
            (version.unwrap_or(0), ids.try_get::<i64, _>(0)?)
        });
        Ok(StoreHealth {
            backend: if self.is_postgres() { "postgres" } else { "sqlite" },
            schema_version,
            tasks: u64::try_from(tasks).unwrap_or(0),
            steps: TaskStepCounts {
                pending: s.pending,
                ready: s.ready,
                in_progress: s.claimed,
                complete: s.complete,
                error: s.error,
                cancelled: s.cancelled,
            },
        })
    }
}
