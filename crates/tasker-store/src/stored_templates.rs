//! Registered templates kept in the store (`task_templates`): a process that meets a task of a registered
//! template it has not read itself (created by another process) registers it from the definition stored
//! beside the task. Only on a miss: a template known to the process is never read from the store.

use crate::registry;
use crate::sql;
use crate::store::Store;
use crate::templates::{template, Template};

/// The template called `name`, registering it from `stored` (its definition JSON as the store keeps it)
/// when the process does not know it yet; None when neither knows it, or the stored text is not a
/// template.
pub(crate) fn from_stored(name: &str, stored: Option<&str>) -> Option<&'static Template> {
    template(name).or_else(|| {
        let stored = stored?;
        // A stored text that does not register (not a template, or another definition already holds the
        // key in this process) leaves the template unknown: its steps then fail as corrupt, saying so.
        let t = registry::register_text(stored, false, "stored in the step store").ok()?;
        (t.short_name == name).then_some(t)
    })
}

/// The names among `names` that may be registered templates this process does not know yet.
pub(crate) fn missing<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = names
        .filter(|n| registry::is_key(n) && template(n).is_none())
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Registers the stored definitions of `names` (SQLite's claim connection).
pub(crate) fn register_lite(tx: &rusqlite::Connection, names: &[String]) -> Result<(), rusqlite::Error> {
    use rusqlite::OptionalExtension;
    for name in names {
        let stored: Option<String> = (tx.prepare_cached(sql::SQLITE.template_definition)?)
            .query_row([name], |r| r.get(0))
            .optional()?;
        from_stored(name, stored.as_deref());
    }
    Ok(())
}

/// Registers the stored definitions of `names` (PostgreSQL, inside the claim's transaction).
pub(crate) async fn register_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    names: &[String],
) -> Result<(), sqlx::Error> {
    for name in names {
        let stored: Option<String> = sqlx::query_scalar(sql::POSTGRES.template_definition)
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
        from_stored(name, stored.as_deref());
    }
    Ok(())
}

impl Store {
    /// The template called `name`: known to the process, or registered from the store's copy.
    pub(crate) async fn resolve_template(&self, name: &str) -> Result<Option<&'static Template>, sqlx::Error> {
        if let Some(t) = template(name) {
            return Ok(Some(t));
        }
        if !registry::is_key(name) {
            return Ok(None);
        }
        let stored: Option<String> = on_backend!(self, pool, kind => {
            sqlx::query_scalar(sql::of(kind).template_definition).bind(name).fetch_optional(pool).await?
        });
        Ok(from_stored(name, stored.as_deref()))
    }
}
