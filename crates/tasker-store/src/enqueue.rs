//! Enqueue: tasks and their steps inserted in large set-based statements.

use crate::error::EnqueueError;
use crate::sql;
use crate::store::{now_ms, state, Backend, CountDeltas, Kind, Store};
use crate::templates::{template, Template};
use crate::token::MAX_STEP_ID;
use serde_json::Value;
use sqlx::postgres::PgPool;
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
            let (sep, parents, attempts) = (if i > 0 { "," } else { "" }, s.dependencies.len(), t.attempts_of(i));
            let _ = write!(shape, "{sep}[{i},{parents},{attempts}]");
        }
        shape.push(']');
        let mut all = Vec::with_capacity(count);
        let mut left = count;
        while left > 0 {
            let n = left.min(ENQUEUE_BATCH);
            left -= n;
            let now = now_ms();
            let tasks: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
            let pool = match &self.backend {
                Backend::Postgres(pool) => {
                    let batch = CopyBatch {
                        tasks: &tasks,
                        namespace,
                        context: &context,
                        now,
                        k,
                        roots,
                    };
                    self.enqueue_copy(pool, t, &batch).await?;
                    all.extend(tasks);
                    continue;
                }
                Backend::Sqlite(pool, _) => pool,
            };
            {
                let q = &sql::SQLITE;
                let mut tx = pool.begin_with(Kind::Sqlite.begin()).await?;
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
                    let _ = write!(
                        rows,
                        "{}[{id},\"{task}\",\"{}\",{first}]",
                        if i > 0 { "," } else { "" },
                        Uuid::now_v7()
                    );
                }
                rows.push(']');
                sqlx::query(sql::lite::ENQUEUE_TASKS)
                    .bind(rows)
                    .bind(namespace)
                    .bind(t.name)
                    .bind(t.version)
                    .bind(t.short_name)
                    .bind(&context)
                    .bind(k)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::lite::ENQUEUE_STEPS)
                    .bind(last_task + 1)
                    .bind(last_task + n as i64)
                    .bind(now)
                    .bind(&shape)
                    .execute(&mut *tx)
                    .await?;
                let mut deltas = CountDeltas::default();
                deltas.0[state::READY as usize] = n as i64 * roots;
                deltas.0[state::PENDING as usize] = n as i64 * (k - roots);
                add_counts!(tx, q, deltas);
                tx.commit().await?;
            }
            all.extend(tasks);
        }
        Ok(all)
    }

    /// PostgreSQL's enqueue of one batch: the rows streamed with `COPY ... FROM STDIN` (text format), the
    /// fastest way in; the ids allocated under the enqueue lock as on SQLite.
    async fn enqueue_copy(&self, pool: &PgPool, t: &'static Template, b: &CopyBatch<'_>) -> Result<(), EnqueueError> {
        let q = &sql::POSTGRES;
        let n = b.tasks.len() as i64;
        let mut tx = pool.begin().await?;
        sqlx::query(q.enqueue_lock).execute(&mut *tx).await?;
        let r = sqlx::query(q.enqueue_next_ids).fetch_one(&mut *tx).await?;
        let (last_task, last_step): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        if last_step + n * b.k > MAX_STEP_ID {
            return Err(EnqueueError::Full(MAX_STEP_ID));
        }
        let mut tasks = String::with_capacity(b.tasks.len() * (160 + b.context.len()));
        let mut steps = String::with_capacity(b.tasks.len() * t.steps.len() * 96);
        let (ns, ctx) = (copy_text(b.namespace), copy_text(b.context));
        for (i, task) in b.tasks.iter().enumerate() {
            let id = last_task + 1 + i as i64;
            let first = last_step + 1 + i as i64 * b.k;
            let _ = writeln!(
                tasks,
                "{id}\t{task}\t{ns}\t{}\t{}\t{}\t{ctx}\t{}\t{first}\t{}\t{}",
                t.name,
                t.version,
                t.short_name,
                Uuid::now_v7(),
                b.k,
                b.now
            );
            for (idx, step) in t.steps.iter().enumerate() {
                let parents = step.dependencies.len();
                let state = if parents == 0 { state::READY } else { state::PENDING };
                let _ = writeln!(
                    steps,
                    "{}\t{id}\t{idx}\t{state}\t{parents}\t0\t{}\t{}\t{}\t{}\t{}",
                    first + idx as i64,
                    t.attempts_of(idx),
                    b.now,
                    Uuid::new_v4(),
                    b.now,
                    b.now
                );
            }
        }
        let mut copy = (*tx).copy_in_raw(COPY_TASKS).await?;
        copy.send(tasks.into_bytes()).await?;
        copy.finish().await?;
        let mut copy = (*tx).copy_in_raw(COPY_STEPS).await?;
        copy.send(steps.into_bytes()).await?;
        copy.finish().await?;
        let mut deltas = CountDeltas::default();
        deltas.0[state::READY as usize] = n * b.roots;
        deltas.0[state::PENDING as usize] = n * (b.k - b.roots);
        add_counts!(tx, q, deltas);
        notify_ready!(tx);
        tx.commit().await?;
        Ok(())
    }
}

/// One enqueue batch's tasks and what their rows share.
struct CopyBatch<'a> {
    tasks: &'a [Uuid],
    namespace: &'a str,
    /// The context JSON text.
    context: &'a str,
    now: i64,
    /// Steps per task.
    k: i64,
    /// Root steps per task.
    roots: i64,
}

/// The columns `enqueue_copy` streams into `tasks`, in its rows' order.
const COPY_TASKS: &str = "COPY tasks (id, task_uuid, namespace, name, version, template, context, correlation_id, \
                          first_step, step_count, created_at) FROM STDIN";
/// The columns `enqueue_copy` streams into `steps`, in its rows' order.
const COPY_STEPS: &str = "COPY steps (id, task_id, idx, state, pending_parents, attempts, max_attempts, visible_at, \
                          step_uuid, created_at, updated_at) FROM STDIN";

/// `s` as a field of COPY's text format: backslash, tab, newline and carriage return escaped.
fn copy_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::copy_text;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        assert_eq!(copy_text(r#"{"a":"x\"y"}"#), r#"{"a":"x\\"y"}"#);
        assert_eq!(copy_text("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(copy_text("plain"), "plain");
    }
}
