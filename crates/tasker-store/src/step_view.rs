//! Reading a task's steps for clients: each with its name, handler and dependencies (from its template),
//! state, attempts, stored result and last failure.

use crate::error::ReadError;
use crate::event::iso8601;
use crate::sql;
use crate::store::{now_ms, state, Store};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

/// A step's state as a client sees it (`in_progress`: claimed by a worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// A parent is not complete.
    Pending,
    /// Claimable, or waiting out a retry backoff (`next_attempt_at`).
    Ready,
    /// Claimed by a worker.
    InProgress,
    /// Succeeded; `results` holds its result.
    Complete,
    /// Failed for good; `last_error` holds the failure.
    Error,
    /// Its task was cancelled before it ran.
    Cancelled,
}

impl StepState {
    fn of(code: i64) -> Result<Self, ReadError> {
        Ok(match code {
            state::PENDING => Self::Pending,
            state::READY => Self::Ready,
            state::CLAIMED => Self::InProgress,
            state::COMPLETE => Self::Complete,
            state::ERROR => Self::Error,
            state::CANCELLED => Self::Cancelled,
            other => return Err(ReadError::CorruptRow(format!("step state {other}"))),
        })
    }
}

/// A step as a client sees it. Times are ISO 8601 (UTC).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepView {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Step name (the template's).
    pub name: String,
    /// Its handler's callable.
    pub handler: String,
    /// Names of the steps it depends on.
    pub dependencies: Vec<String>,
    /// State.
    pub state: StepState,
    /// Attempts started (a checkpoint yield or a released claim does not count).
    pub attempts: i64,
    /// Attempts it gets.
    pub max_attempts: i64,
    /// The success's `StepExecutionResult` JSON (complete steps).
    pub results: Option<Value>,
    /// The last failure's `StepExecutionResult` JSON.
    pub last_error: Option<Value>,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When its latest attempt was claimed.
    pub last_attempted_at: Option<String>,
    /// When it completed.
    pub completed_at: Option<String>,
    /// When a ready step waiting out a retry backoff becomes claimable.
    pub next_attempt_at: Option<String>,
}

fn json_text(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

impl Store {
    /// The steps of task `task_uuid` in template order, or `None` when there is no such task.
    pub async fn task_steps(&self, task_uuid: Uuid) -> Result<Option<Vec<StepView>>, ReadError> {
        let Some(place) = self.task_place(task_uuid).await? else {
            return Ok(None);
        };
        let t = (self.resolve_template(&place.template).await?)
            .ok_or_else(|| ReadError::CorruptRow(format!("template `{}` is not known", place.template)))?;
        let now = now_ms();
        let mut out = Vec::with_capacity(place.step_count.max(0) as usize);
        on_backend!(self, pool, kind => {
            let rows = sqlx::query(sql::of(kind).task_steps)
                .bind(place.first_step)
                .bind(place.last_step())
                .fetch_all(pool)
                .await?;
            for r in rows {
                let idx: i64 = r.try_get(0)?;
                let step = usize::try_from(idx).ok().and_then(|i| t.steps.get(i));
                let step = step.ok_or_else(|| ReadError::CorruptRow(format!("step index {idx} outside its template")))?;
                let step_uuid: String = r.try_get(1)?;
                let code: i64 = r.try_get(2)?;
                let (visible_at, claimed_at): (i64, Option<i64>) = (r.try_get(5)?, r.try_get(6)?);
                let updated_at: i64 = r.try_get(8)?;
                out.push(StepView {
                    step_uuid: Uuid::parse_str(&step_uuid).map_err(|e| ReadError::CorruptRow(format!("step uuid: {e}")))?,
                    task_uuid,
                    name: step.name.to_string(),
                    handler: step.handler.to_string(),
                    dependencies: step.dependencies.iter().map(|d| d.to_string()).collect(),
                    state: StepState::of(code)?,
                    attempts: r.try_get(3)?,
                    max_attempts: r.try_get(4)?,
                    results: r.try_get::<Option<String>, _>(9)?.map(json_text),
                    last_error: r.try_get::<Option<String>, _>(10)?.map(json_text),
                    created_at: iso8601(r.try_get(7)?),
                    updated_at: iso8601(updated_at),
                    last_attempted_at: claimed_at.map(iso8601),
                    completed_at: (code == state::COMPLETE).then(|| iso8601(updated_at)),
                    next_attempt_at: (code == state::READY && visible_at > now).then(|| iso8601(visible_at)),
                });
            }
        });
        Ok(Some(out))
    }

    /// Step `step_uuid` of task `task_uuid`, or `None` when the task has no such step.
    pub async fn get_step(&self, task_uuid: Uuid, step_uuid: Uuid) -> Result<Option<StepView>, ReadError> {
        Ok(self
            .task_steps(task_uuid)
            .await?
            .and_then(|steps| steps.into_iter().find(|s| s.step_uuid == step_uuid)))
    }
}
