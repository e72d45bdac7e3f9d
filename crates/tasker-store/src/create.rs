//! Creating one task from a client's request: the template found (built-in, registered, or stored by another
//! process), the task, its steps and the request's own fields inserted in one transaction; an idempotency key
//! returns the task created with it before.

use crate::error::{CreateTaskError, ReadError};
use crate::registry::{self, key_of};
use crate::sql;
use crate::store::{now_ms, state, CountDeltas, Kind, Store};
use crate::task_view::TaskView;
use crate::templates::{Template, BUILT_IN};
use crate::token::MAX_STEP_ID;
use serde::Deserialize;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

/// A client's request for one task (tasker-core's `TaskRequest`, snake_case). Unknown fields are refused.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// Template (task) name: a built-in one (`linear_workflow` / `linear`, `diamond_workflow` / `diamond`,
    /// any namespace) or a registered one.
    pub name: String,
    /// Namespace (a registered template's own).
    pub namespace: String,
    /// Template version.
    pub version: String,
    /// The task context: a JSON object (absent or null: `{}`).
    #[serde(default)]
    pub context: Value,
    /// Who asks.
    pub initiator: String,
    /// The system that asks.
    pub source_system: String,
    /// Why.
    pub reason: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Priority, a 32-bit integer (default 0).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Correlation id (default: a fresh UUID).
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The parent workflow's correlation id.
    #[serde(default)]
    pub parent_correlation_id: Option<String>,
    /// A repeated request with the same key returns the task the first one created.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl From<ReadError> for CreateTaskError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Database(e) => Self::Database(e),
            ReadError::CorruptRow(why) => Self::CorruptRow(why),
        }
    }
}

/// The request's checked values.
struct Checked {
    context: String,
    priority: i64,
    correlation_id: String,
    tags: String,
}

fn check(req: &NewTask) -> Result<Checked, CreateTaskError> {
    let invalid = |why: String| CreateTaskError::InvalidRequest(why);
    let context = match &req.context {
        Value::Null => "{}".to_string(),
        c @ Value::Object(_) => c.to_string(),
        other => return Err(invalid(format!("context must be a JSON object, not {other}"))),
    };
    let priority = req.priority.unwrap_or(0);
    if i32::try_from(priority).is_err() {
        return Err(invalid(format!("priority {priority} is not a 32-bit integer")));
    }
    for (field, value) in [
        ("name", &req.name),
        ("namespace", &req.namespace),
        ("version", &req.version),
        ("initiator", &req.initiator),
        ("source_system", &req.source_system),
        ("reason", &req.reason),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(format!("{field} is empty")));
        }
    }
    if req.idempotency_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        return Err(invalid("idempotency_key is empty (omit it for none)".into()));
    }
    let correlation_id = match &req.correlation_id {
        Some(c) if c.trim().is_empty() => {
            return Err(invalid("correlation_id is empty (omit it for a fresh one)".into()))
        }
        Some(c) => c.clone(),
        None => Uuid::now_v7().to_string(),
    };
    Ok(Checked {
        context,
        priority,
        correlation_id,
        tags: serde_json::to_string(&req.tags).unwrap_or_else(|_| "[]".into()),
    })
}

impl Store {
    /// Creates a task of the template `req.name` / `req.version` (a built-in one in any namespace, or one
    /// registered in `req.namespace`, in this process or stored by another) and returns it. Its root steps are
    /// ready at once. With an `idempotency_key` already used, nothing is created and the task of the first
    /// request is returned.
    pub async fn create_task(&self, req: &NewTask) -> Result<TaskView, CreateTaskError> {
        let checked = check(req)?;
        let t = self.find_template(req).await?;
        let definition = (!t.is_built_in())
            .then(|| registry::definition_json(t.short_name))
            .flatten();
        let now = now_ms();
        let task_uuid = Uuid::now_v7();
        let k = t.steps.len() as i64;
        let uuid = on_backend!(self, pool, kind => {
            let q = sql::of(kind);
            let mut tx = pool.begin_with(kind.begin()).await?;
            // Serialises creators (ids are allocated as contiguous blocks), so an idempotency key is checked
            // and taken by one request at a time.
            sqlx::query(q.enqueue_lock).execute(&mut *tx).await?;
            if let Some(key) = &req.idempotency_key {
                let found: Option<String> = sqlx::query_scalar(q.request_by_key).bind(key).fetch_optional(&mut *tx).await?;
                if let Some(found) = found {
                    tx.rollback().await?;
                    let uuid = Uuid::parse_str(&found).map_err(|e| CreateTaskError::CorruptRow(format!("task uuid: {e}")))?;
                    return self.get_task(uuid).await?.ok_or_else(|| CreateTaskError::CorruptRow("the idempotent task vanished".into()));
                }
            }
            if let Some(definition) = &definition {
                sqlx::query(q.template_insert).bind(t.short_name).bind(definition).execute(&mut *tx).await?;
                let stored: String = sqlx::query_scalar(q.template_definition).bind(t.short_name).fetch_one(&mut *tx).await?;
                if !registry::same_definition(t.short_name, &stored) {
                    return Err(CreateTaskError::TemplateConflict(t.short_name.to_string()));
                }
            }
            let r = sqlx::query(q.enqueue_next_ids).fetch_one(&mut *tx).await?;
            let (last_task, last_step): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            if last_step + k > MAX_STEP_ID {
                return Err(CreateTaskError::Full(MAX_STEP_ID));
            }
            let (id, first) = (last_task + 1, last_step + 1);
            sqlx::query(q.task_insert)
                .bind(id)
                .bind(task_uuid.to_string())
                .bind(&req.namespace)
                .bind(t.name)
                .bind(t.version)
                .bind(t.short_name)
                .bind(&checked.context)
                .bind(&checked.correlation_id)
                .bind(checked.priority)
                .bind(first)
                .bind(k)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let mut deltas = CountDeltas::default();
            for (idx, step) in t.steps.iter().enumerate() {
                let parents = step.dependencies.len() as i64;
                let step_state = if parents == 0 { state::READY } else { state::PENDING };
                deltas.0[step_state as usize] += 1;
                sqlx::query(q.step_insert)
                    .bind(first + idx as i64)
                    .bind(id)
                    .bind(idx as i64)
                    .bind(step_state)
                    .bind(parents)
                    .bind(t.attempts_of(idx))
                    .bind(now)
                    .bind(Uuid::now_v7().to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(q.request_insert)
                .bind(id)
                .bind(&req.initiator)
                .bind(&req.source_system)
                .bind(&req.reason)
                .bind(&checked.tags)
                .bind(req.parent_correlation_id.as_deref())
                .bind(req.idempotency_key.as_deref())
                .execute(&mut *tx)
                .await?;
            add_counts!(tx, q, deltas);
            if kind == Kind::Postgres {
                notify_ready!(tx);
            }
            tx.commit().await?;
            task_uuid
        });
        self.get_task(uuid)
            .await?
            .ok_or_else(|| CreateTaskError::CorruptRow("the task created is not found".into()))
    }

    /// The template a request names: a built-in one by name (any namespace) and version, else the registered
    /// `namespace/name@version`, in this process or stored by another one.
    async fn find_template(&self, req: &NewTask) -> Result<&'static Template, CreateTaskError> {
        let built_in = BUILT_IN
            .into_iter()
            .find(|t| (t.name == req.name || t.short_name == req.name) && t.version == req.version);
        if let Some(t) = built_in {
            return Ok(t);
        }
        let key = key_of(&req.namespace, &req.name, &req.version);
        if let Some(t) = self.resolve_template(&key).await? {
            return Ok(t);
        }
        Err(CreateTaskError::UnknownTemplate {
            name: req.name.clone(),
            namespace: req.namespace.clone(),
            version: req.version.clone(),
            known: (registry::known().into_iter())
                .map(|(ns, name, version)| match ns.as_str() {
                    "*" => format!("{name} {version} (any namespace)"),
                    _ => format!("{ns}/{name} {version}"),
                })
                .collect(),
        })
    }
}
