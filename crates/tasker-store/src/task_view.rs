//! Reading tasks for clients: one task by UUID and pages of tasks (namespace and status filters), each with
//! its steps counted by state and a status derived from them (`task_page.sql` holds the rule).

use crate::error::ReadError;
use crate::event::iso8601;
use crate::sql;
use crate::store::Store;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use std::str::FromStr;
use uuid::Uuid;

/// A task's status, derived from its steps: `complete` (every step complete), `cancelled` (cancelled and not
/// complete), `error` (a step is in error), `in_progress` (a step was claimed at least once), else `pending`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// No step was claimed yet.
    Pending,
    /// A step was claimed; none is in error and not every one is complete.
    InProgress,
    /// Every step is complete.
    Complete,
    /// A step is in error (the task cannot complete until it is retried).
    Error,
    /// Cancelled: its pending and ready steps will never run.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in the order above.
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Pending,
        TaskStatus::InProgress,
        TaskStatus::Complete,
        TaskStatus::Error,
        TaskStatus::Cancelled,
    ];

    /// The status's name (`in_progress`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Complete => "complete",
            TaskStatus::Error => "error",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = TaskStatus::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown task status `{s}` (one of {})", names.join(", "))
        })
    }
}

/// A task's steps counted by state (`in_progress`: claimed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TaskStepCounts {
    /// Waiting for a parent.
    pub pending: u64,
    /// Claimable (or waiting out a retry backoff).
    pub ready: u64,
    /// Claimed by a worker.
    pub in_progress: u64,
    /// Complete.
    pub complete: u64,
    /// In error.
    pub error: u64,
    /// Cancelled.
    pub cancelled: u64,
}

/// A task as a client sees it (snake_case JSON, like tasker-core's REST API). Times are ISO 8601 (UTC).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskView {
    /// The task.
    pub task_uuid: Uuid,
    /// Task (template) name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Template version.
    pub version: String,
    /// Derived from its steps.
    pub status: TaskStatus,
    /// The context JSON it was created with.
    pub context: Value,
    /// Priority (higher first is the client's intent; the store claims by readiness time).
    pub priority: i64,
    /// Correlation id.
    pub correlation_id: String,
    /// The parent's correlation id, if the request named one.
    pub parent_correlation_id: Option<String>,
    /// Who asked (`create_task` only; null for tasks enqueued in bulk).
    pub initiator: Option<String>,
    /// The system that asked.
    pub source_system: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The request's tags (empty when none).
    pub tags: Vec<String>,
    /// The request's idempotency key.
    pub idempotency_key: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// When it was cancelled.
    pub cancelled_at: Option<String>,
    /// Its steps.
    pub step_count: u64,
    /// Its steps by state.
    pub step_counts: TaskStepCounts,
}

/// Which tasks [`Store::list_tasks`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFilter {
    /// Most tasks in the page (1..=[`MAX_PAGE`]; default 50).
    pub limit: u32,
    /// Tasks skipped before the page.
    pub offset: u64,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
}

/// Largest page [`Store::list_tasks`] returns.
pub const MAX_PAGE: u32 = 1000;

impl Default for TaskFilter {
    fn default() -> Self {
        Self {
            limit: 50,
            offset: 0,
            namespace: None,
            status: None,
        }
    }
}

/// A page of tasks, oldest first, and how many match the filter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskPage {
    /// The tasks.
    pub tasks: Vec<TaskView>,
    /// Tasks matching the filter in all.
    pub total_count: u64,
    /// The page size asked for.
    pub limit: u32,
    /// Tasks skipped before the page.
    pub offset: u64,
    /// More tasks match after this page.
    pub has_more: bool,
}

/// Where a task's rows are: its id, its steps' ids and its template's name.
#[derive(Clone, Debug)]
pub(crate) struct TaskPlace {
    pub id: i64,
    pub first_step: i64,
    pub step_count: i64,
    pub template: String,
}

impl TaskPlace {
    /// The id of its last step.
    pub fn last_step(&self) -> i64 {
        self.first_step + self.step_count - 1
    }
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn json_text(text: &str) -> Value {
    // Stored by the store as JSON; a corrupt one is shown as the text it is rather than failing the read.
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The view of one `task_page.sql` row (its columns after `total`, from index 1).
fn view_of<R: Row>(r: &R) -> Result<TaskView, ReadError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i: usize| r.try_get::<String, _>(i);
    let opt = |i: usize| r.try_get::<Option<String>, _>(i);
    let num = |i: usize| r.try_get::<i64, _>(i);
    let task_uuid = text(2)?;
    let tags: Vec<String> = match opt(15)? {
        Some(t) => {
            serde_json::from_str(&t).map_err(|e| ReadError::CorruptRow(format!("tags of `{task_uuid}`: {e}")))?
        }
        None => Vec::new(),
    };
    let status = text(25)?;
    Ok(TaskView {
        task_uuid: Uuid::parse_str(&task_uuid).map_err(|e| ReadError::CorruptRow(format!("task uuid: {e}")))?,
        namespace: text(3)?,
        name: text(4)?,
        version: text(5)?,
        status: status.parse().map_err(ReadError::CorruptRow)?,
        context: json_text(&text(7)?),
        correlation_id: text(8)?,
        priority: num(9)?,
        created_at: iso8601(num(10)?),
        step_count: count(num(11)?),
        initiator: opt(12)?,
        source_system: opt(13)?,
        reason: opt(14)?,
        tags,
        parent_correlation_id: opt(16)?,
        idempotency_key: opt(17)?,
        cancelled_at: r.try_get::<Option<i64>, _>(18)?.map(iso8601),
        step_counts: TaskStepCounts {
            pending: count(num(19)?),
            ready: count(num(20)?),
            in_progress: count(num(21)?),
            complete: count(num(22)?),
            error: count(num(23)?),
            cancelled: count(num(24)?),
        },
    })
}

impl Store {
    /// The task `task_uuid`, or `None` when the store has no such task.
    pub async fn get_task(&self, task_uuid: Uuid) -> Result<Option<TaskView>, ReadError> {
        let Some(place) = self.task_place(task_uuid).await? else {
            return Ok(None);
        };
        let page = self.task_page(&TaskFilter::default(), place.id, place.id).await?;
        Ok(page.tasks.into_iter().next())
    }

    /// A page of tasks in creation order, filtered by namespace and status, with the number of tasks that
    /// match. Counting the steps of every task in range, this reads all tasks and steps when a status filter
    /// is given (an operator's view, not a hot path). A `limit` of 0 or above [`MAX_PAGE`] is clamped.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<TaskPage, ReadError> {
        self.task_page(filter, 1, i64::MAX).await
    }

    async fn task_page(&self, filter: &TaskFilter, lowest: i64, highest: i64) -> Result<TaskPage, ReadError> {
        let limit = filter.limit.clamp(1, MAX_PAGE);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let status = filter.status.map(TaskStatus::as_str);
        let (total, tasks) = on_backend!(self, pool, kind => {
            let rows = sqlx::query(sql::of(kind).task_page)
                .bind(filter.namespace.as_deref())
                .bind(status)
                .bind(lowest)
                .bind(highest)
                .bind(i64::from(limit))
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total = match rows.first() {
                Some(r) => r.try_get::<i64, _>(0)?,
                None => 0,
            };
            let mut tasks = Vec::with_capacity(rows.len());
            for r in &rows {
                // An empty page is one row holding only the total.
                if r.try_get::<Option<i64>, _>(1)?.is_some() {
                    tasks.push(view_of(r)?);
                }
            }
            (total, tasks)
        });
        let total_count = count(total);
        Ok(TaskPage {
            has_more: filter.offset.saturating_add(tasks.len() as u64) < total_count,
            tasks,
            total_count,
            limit,
            offset: filter.offset,
        })
    }

    /// Where task `task_uuid`'s rows are, or `None`.
    pub(crate) async fn task_place(&self, task_uuid: Uuid) -> Result<Option<TaskPlace>, sqlx::Error> {
        on_backend!(self, pool, kind => {
            let row = sqlx::query(sql::of(kind).task_by_uuid)
                .bind(task_uuid.to_string())
                .fetch_optional(pool)
                .await?;
            row.map(|r| {
                Ok(TaskPlace { id: r.try_get(0)?, first_step: r.try_get(1)?, step_count: r.try_get(2)?, template: r.try_get(3)? })
            })
            .transpose()
        })
    }
}
