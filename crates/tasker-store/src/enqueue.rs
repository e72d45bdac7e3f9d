//! Enqueue: tasks and their steps inserted in large set-based statements.

use crate::error::EnqueueError;
use crate::sql;
use crate::store::{now_ms, state, CountDeltas, Kind, Store, READY_CHANNEL};
use crate::templates::template;
use crate::token::MAX_STEP_ID;
use serde_json::Value;
use sqlx::Row;
use std::fmt::Write as _;
use uuid::Uuid;

/// Tasks per enqueue transaction (one tasks statement and one steps statement each).
const ENQUEUE_BATCH: usize = 5000;

impl Store {
    /// Inserts `count` tasks of `template` (`linear` / `diamond`) in `namespace`, each with the context
    /// `context_json` (a JSON object, e.g. `{"even_number": 6}`) and fresh v7 UUIDs, in transactions of
    /// 5000 tasks. A task's steps get the contiguous ids after the largest so far (enqueuers are serialised),
    /// in template order; root steps are `ready` at once, the others `pending`. Returns the task UUIDs in
    /// insertion order.
    pub async fn enqueue(
        &self,
        namespace: &str,
        template_name: &str,
        count: usize,
        context_json: &[u8],
    ) -> Result<Vec<Uuid>, EnqueueError> {
        let t = template(template_name).ok_or_else(|| EnqueueError::UnknownTemplate(template_name.into()))?;
        let context: Value =
            serde_json::from_slice(context_json).map_err(|e| EnqueueError::InvalidContext(e.to_string()))?;
        if !context.is_object() {
            return Err(EnqueueError::InvalidContext("not an object".into()));
        }
        let context = context.to_string();
        let k = t.steps.len() as i64;
        let roots = t.steps.iter().filter(|s| s.dependencies.is_empty()).count() as i64;
        let mut shape = String::from("[");
        for (i, s) in t.steps.iter().enumerate() {
            let _ = write!(shape, "{}[{i},{}]", if i > 0 { "," } else { "" }, s.dependencies.len());
        }
        shape.push(']');
        let mut all = Vec::with_capacity(count);
        let mut left = count;
        while left > 0 {
            let n = left.min(ENQUEUE_BATCH);
            left -= n;
            let now = now_ms();
            let tasks: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
            on_backend!(self, pool, kind => {
                let q = sql::of(kind);
                let mut tx = pool.begin_with(kind.begin()).await?;
                sqlx::query(q.enqueue_lock).execute(&mut *tx).await?;
                let r = sqlx::query(q.enqueue_next_ids).fetch_one(&mut *tx).await?;
                let (last_task, last_step): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                if last_step + n as i64 * k > MAX_STEP_ID {
                    return Err(EnqueueError::Full(MAX_STEP_ID));
                }
                let mut rows = String::with_capacity(n * 96);
                rows.push('[');
                for (i, task) in tasks.iter().enumerate() {
                    let id = last_task + 1 + i as i64;
                    let first = last_step + 1 + i as i64 * k;
                    let _ = write!(rows, "{}[{id},\"{task}\",\"{}\",{first}]", if i > 0 { "," } else { "" }, Uuid::now_v7());
                }
                rows.push(']');
                sqlx::query(q.enqueue_tasks)
                    .bind(rows).bind(namespace).bind(t.name).bind(t.version).bind(t.short_name).bind(&context)
                    .bind(k).bind(now)
                    .execute(&mut *tx).await?;
                sqlx::query(q.enqueue_steps)
                    .bind(last_task + 1).bind(last_task + n as i64).bind(t.max_attempts).bind(now).bind(&shape)
                    .execute(&mut *tx).await?;
                let mut deltas = CountDeltas::default();
                deltas.0[state::READY as usize] = n as i64 * roots;
                deltas.0[state::PENDING as usize] = n as i64 * (k - roots);
                add_counts!(tx, q, deltas);
                if kind == Kind::Postgres {
                    sqlx::query("SELECT pg_notify($1, '')").bind(READY_CHANNEL).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            });
            all.extend(tasks);
        }
        Ok(all)
    }
}
