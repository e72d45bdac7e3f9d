//! Completion: a batch of results persisted in one transaction. The checks before any database work and the
//! children's arithmetic are shared; PostgreSQL's path (here) runs a few set-based statements for the
//! successes (the common case) and one pair per failure; SQLite's runs per-row statements on its connection
//! thread (`lite::complete`).

use crate::error::CompleteError;
use crate::sql::{self, pg};
use crate::store::{
    firsts, ms, now_ms, outcome, retry_conflicts, seconds, state, Backend, CompletionOutcome, CountDeltas, Kind, Store,
};
use crate::templates::{template, Template};
use crate::token;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// A success to persist: its item index, step, token and result bytes (valid JSON).
pub(crate) struct Success<J> {
    pub item: usize,
    pub step: i64,
    pub token: i64,
    pub json: J,
}

/// A failure to persist.
pub(crate) struct Failure<J> {
    pub item: usize,
    pub step: i64,
    pub token: i64,
    pub retryable: bool,
    pub json: J,
}

/// A batch checked before any database work: each item's outcome so far (`Refused` until persisted; `Invalid`
/// for a result that is not JSON or has no boolean `success`), and what is left to persist.
pub(crate) struct Checked<J> {
    pub outcomes: Vec<CompletionOutcome>,
    pub successes: Vec<Success<J>>,
    pub failures: Vec<Failure<J>>,
}

/// What the checks read of a result: its top-level `success` when it is a boolean, and its `error` as raw
/// text. Read without building the rest (the other fields are only checked to be JSON), so a success costs
/// no allocation here. A result that is JSON but not an object has no `success`; of a repeated key the last
/// counts (as `serde_json::Value` would read it).
struct ResultHead<'a> {
    success: Option<bool>,
    error: Option<&'a RawValue>,
}

impl ResultHead<'_> {
    const NONE: Self = Self {
        success: None,
        error: None,
    };

    /// `error.retryable` is `true` (a failure is retried only when it says so).
    fn retryable(&self) -> bool {
        let error = self.error.and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
        error.is_some_and(|e| e["retryable"].as_bool() == Some(true))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ResultHead<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The keys the checks read; every other key is skipped.
        enum Key {
            Success,
            Error,
            Other,
        }
        impl<'de> Deserialize<'de> for Key {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct KeyVisitor;
                impl Visitor<'_> for KeyVisitor {
                    type Value = Key;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                        Ok(match key {
                            "success" => Key::Success,
                            "error" => Key::Error,
                            _ => Key::Other,
                        })
                    }
                }
                d.deserialize_identifier(KeyVisitor)
            }
        }
        struct HeadVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for HeadVisitor<'a> {
            type Value = ResultHead<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut head = ResultHead {
                    success: None,
                    error: None,
                };
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Success => {
                            head.success = match map.next_value::<&RawValue>()?.get() {
                                "true" => Some(true),
                                "false" => Some(false),
                                _ => None,
                            }
                        }
                        Key::Error => head.error = Some(map.next_value()?),
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(head)
            }
            // Any other JSON value is a result without `success` (refused as such, not as "not JSON").
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ResultHead::NONE)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ResultHead::NONE)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ResultHead::NONE)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ResultHead::NONE)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ResultHead::NONE)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ResultHead::NONE)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ResultHead::NONE)
            }
        }
        d.deserialize_any(HeadVisitor(std::marker::PhantomData))
    }
}

impl<'a> Checked<&'a [u8]> {
    /// Checks `items`. An id this store never made, and every item after the first of a step, stay
    /// `Refused`.
    pub fn new<B: AsRef<[u8]>>(items: &'a [(Uuid, B)]) -> Self {
        let mut outcomes = vec![CompletionOutcome::Refused; items.len()];
        let mut successes = Vec::with_capacity(items.len());
        let mut failures = Vec::new();
        let mut seen = HashSet::with_capacity(items.len());
        for (item, (id, bytes)) in items.iter().enumerate() {
            let json = bytes.as_ref();
            let head: ResultHead<'_> = match serde_json::from_slice(json) {
                Ok(head) => head,
                Err(e) => {
                    outcomes[item] = CompletionOutcome::Invalid(format!("result is not JSON: {e}"));
                    continue;
                }
            };
            let Some(success) = head.success else {
                outcomes[item] = CompletionOutcome::Invalid("result has no boolean `success`".into());
                continue;
            };
            let Some((step, token)) = token::decode(*id) else {
                continue; // not an event id of this store: Refused
            };
            if !seen.insert(step) {
                continue; // the step's first item counts
            }
            if success {
                successes.push(Success {
                    item,
                    step,
                    token,
                    json,
                });
            } else {
                let retryable = head.retryable();
                failures.push(Failure {
                    item,
                    step,
                    token,
                    retryable,
                    json,
                });
            }
        }
        Self {
            outcomes,
            successes,
            failures,
        }
    }

    /// The same batch owning its result bytes (for SQLite's connection thread).
    pub fn owned(self) -> Checked<Vec<u8>> {
        Checked {
            outcomes: self.outcomes,
            successes: (self.successes.into_iter())
                .map(|s| Success {
                    item: s.item,
                    step: s.step,
                    token: s.token,
                    json: s.json.to_vec(),
                })
                .collect(),
            failures: (self.failures.into_iter())
                .map(|f| Failure {
                    item: f.item,
                    step: f.step,
                    token: f.token,
                    retryable: f.retryable,
                    json: f.json.to_vec(),
                })
                .collect(),
        }
    }
}

/// What the completed steps `done` (`(id, task_id, idx)`) lead to.
pub(crate) struct Followers {
    /// Child id -> (its parents completed here, the item of the last of them, which gets the credit for making
    /// it ready).
    pub children: BTreeMap<i64, (i64, usize)>,
    /// The tasks a sink step (one no step depends on) of which completed here, by task id.
    pub ends: BTreeMap<i64, TaskEnd>,
}

/// A task whose sink step completed in this batch. It is complete when its other sinks are too: every other
/// step is an ancestor of a sink, and a step completes only after its parents.
pub(crate) struct TaskEnd {
    /// The item credited with finishing the task (the last of its sinks completed here).
    pub item: usize,
    /// Its sinks not completed here (ids), read inside the transaction; none for a one-sink template.
    pub other_sinks: Vec<i64>,
}

impl Followers {
    /// Children and task ends of `done`.
    pub fn of(
        done: &[(i64, i64, i64)],
        templates: &HashMap<i64, &'static Template>,
        item_of: impl Fn(i64) -> usize,
    ) -> Result<Self, CompleteError> {
        let mut children: BTreeMap<i64, (i64, usize)> = BTreeMap::new();
        // Task id -> (its first step id, its template, the sinks completed here, the last one's item).
        let mut sinks: BTreeMap<i64, (i64, &'static Template, Vec<i64>, usize)> = BTreeMap::new();
        for (id, task, idx) in done {
            let t = *templates
                .get(task)
                .ok_or_else(|| CompleteError::CorruptRow(format!("task {task} missing")))?;
            let first = id - idx;
            let mut sink = true;
            for c in t.child_indices(*idx as usize) {
                sink = false;
                let e = children.entry(first + c as i64).or_insert((0, 0));
                e.0 += 1;
                e.1 = item_of(*id);
            }
            if sink {
                let e = sinks.entry(*task).or_insert((first, t, Vec::new(), 0));
                e.2.push(*id);
                e.3 = item_of(*id);
            }
        }
        let ends = (sinks.into_iter())
            .map(|(task, (first, t, here, item))| {
                let other_sinks = (t.sink_indices())
                    .map(|i| first + i as i64)
                    .filter(|id| !here.contains(id))
                    .collect();
                (task, TaskEnd { item, other_sinks })
            })
            .collect();
        Ok(Self { children, ends })
    }

    /// The ids of the other sinks to read (those of every task end that has some).
    pub fn other_sinks(&self) -> Vec<i64> {
        self.ends.values().flat_map(|e| e.other_sinks.iter().copied()).collect()
    }

    /// Marks the completion that finished each task whose other sinks are all complete (`incomplete` holds
    /// those that are not).
    pub fn credit_task_ends(&self, outcomes: &mut [CompletionOutcome], incomplete: &HashSet<i64>) {
        for end in self.ends.values() {
            if end.other_sinks.iter().any(|id| incomplete.contains(id)) {
                continue;
            }
            if let CompletionOutcome::Completed { task_complete, .. } = &mut outcomes[end.item] {
                *task_complete = true;
            }
        }
    }
}

/// Credits `item` (a `Completed` outcome) with one child made ready.
pub(crate) fn credit_ready_child(outcomes: &mut [CompletionOutcome], item: usize) {
    if let CompletionOutcome::Completed { ready_children, .. } = &mut outcomes[item] {
        *ready_children += 1;
    }
}

impl Store {
    /// Persists completions `(event id, StepExecutionResult JSON)` in one transaction and reports each item's
    /// outcome in input order. An event id whose claim no longer holds its step is
    /// [`CompletionOutcome::Refused`] (the newer claim wins); so is an id given twice (the first counts) and
    /// an id this store never made. Success: `complete`, results stored, children whose parents are all
    /// complete become `ready`. Failure with `error.retryable == true` and attempts left: `ready` after
    /// [`Store::backoff`]; otherwise `error`. The result JSON is stored as given. The success that completes a
    /// task's last step says so (`task_complete`): a sink step's completion reads the task's other sinks in
    /// the same transaction (none for one-sink templates such as `linear` and `diamond`). On PostgreSQL the children
    /// are locked in id order (no deadlock between concurrent batches), and a batch that still hits a
    /// deadlock or serialization failure is retried up to 3 times.
    pub async fn complete_batch<B: AsRef<[u8]>>(
        &self,
        items: &[(Uuid, B)],
    ) -> Result<Vec<CompletionOutcome>, CompleteError> {
        retry_conflicts(
            || self.complete_once(items),
            |e| match e {
                CompleteError::Database(d) => Some(d),
                _ => None,
            },
        )
        .await
    }

    async fn complete_once<B: AsRef<[u8]>>(
        &self,
        items: &[(Uuid, B)],
    ) -> Result<Vec<CompletionOutcome>, CompleteError> {
        let checked = Checked::new(items);
        if checked.successes.is_empty() && checked.failures.is_empty() {
            return Ok(checked.outcomes);
        }
        let now = now_ms();
        let pool = match &self.backend {
            Backend::Sqlite(_, lite) => {
                let checked = checked.owned();
                let tasks = Arc::clone(&self.tasks);
                let options = self.options().clone();
                return lite
                    .run(move |c| crate::lite::complete::complete(c, checked, now, &tasks, &options))
                    .await;
            }
            Backend::Postgres(pool) => pool,
        };
        let Checked {
            mut outcomes,
            successes,
            failures,
        } = checked;
        let mut tx = pool.begin().await?;
        let mut deltas = CountDeltas::default();
        let mut children_ready = 0;
        if !successes.is_empty() {
            let by_step: HashMap<i64, &Success<&[u8]>> = successes.iter().map(|s| (s.step, s)).collect();
            let steps: Vec<i64> = successes.iter().map(|s| s.step).collect();
            let tokens: Vec<i64> = successes.iter().map(|s| s.token).collect();
            let done: Vec<(i64, i64, i64)> = sqlx::query_as(pg::SUCCESS_HELD)
                .bind(&steps)
                .bind(&tokens)
                .fetch_all(&mut *tx)
                .await?;
            if !done.is_empty() {
                let ids: Vec<i64> = done.iter().map(|(id, _, _)| *id).collect();
                sqlx::query(pg::COMPLETE_SUCCESS)
                    .bind(now)
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
                deltas.moved(state::CLAIMED, state::COMPLETE, done.len() as i64);
                let results = (ids.iter())
                    .map(|id| std::str::from_utf8(by_step[id].json))
                    .collect::<Result<Vec<&str>, _>>()
                    .map_err(|e| CompleteError::CorruptRow(format!("a result is not UTF-8: {e}")))?;
                sqlx::query(pg::RESULTS_INSERT)
                    .bind(&ids)
                    .bind(&results)
                    .execute(&mut *tx)
                    .await?;
            }
            // Children: one pending parent fewer per parent completed here.
            let templates = self
                .templates_pg(&mut tx, done.iter().map(|(_, task, _)| *task))
                .await?;
            let followers = Followers::of(&done, &templates, |id| by_step[&id].item)?;
            let children = &followers.children;
            for (id, _, _) in &done {
                outcomes[by_step[id].item] = CompletionOutcome::Completed {
                    ready_children: 0,
                    task_complete: false,
                };
            }
            if !children.is_empty() {
                let child_ids: Vec<i64> = children.keys().copied().collect();
                let pending: Vec<(i64, i64)> = sqlx::query_as(pg::CHILDREN_PENDING)
                    .bind(&child_ids)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut updates = Vec::with_capacity(pending.len());
                for (child, parents_pending) in pending {
                    let (n, item) = children[&child];
                    updates.push((child, n));
                    if parents_pending == n {
                        children_ready += 1;
                        credit_ready_child(&mut outcomes, item);
                    }
                }
                if !updates.is_empty() {
                    sqlx::query(pg::CHILDREN_UPDATE)
                        .bind(now)
                        .bind(firsts(&updates))
                        .bind(seconds(&updates))
                        .execute(&mut *tx)
                        .await?;
                }
                deltas.moved(state::PENDING, state::READY, children_ready);
            }
            // Tasks finished here: a one-sink task's sink completing finishes it; a task with other sinks is
            // locked (concurrent batches finishing its last sinks serialise) and those sinks read.
            let others = followers.other_sinks();
            let incomplete: HashSet<i64> = if others.is_empty() {
                HashSet::new()
            } else {
                let tasks: Vec<i64> = (followers.ends.iter())
                    .filter(|(_, e)| !e.other_sinks.is_empty())
                    .map(|(task, _)| *task)
                    .collect();
                sqlx::query(pg::TASKS_LOCK).bind(&tasks).execute(&mut *tx).await?;
                let rows: Vec<(i64,)> = sqlx::query_as(pg::STEPS_INCOMPLETE)
                    .bind(&others)
                    .fetch_all(&mut *tx)
                    .await?;
                rows.into_iter().map(|(id,)| id).collect()
            };
            followers.credit_task_ends(&mut outcomes, &incomplete);
        }
        for f in &failures {
            let held = sqlx::query(pg::FAILURE_HELD)
                .bind(f.step)
                .bind(f.token)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(r) = held else {
                continue; // Refused
            };
            let (attempts, max_attempts, claimed_at): (i64, i64, Option<i64>) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            let text = String::from_utf8_lossy(f.json);
            let ended = if f.retryable && attempts < max_attempts {
                let backoff = self.backoff(attempts);
                sqlx::query(pg::FAIL_RETRY)
                    .bind(f.step)
                    .bind(now + ms(backoff))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                deltas.moved(state::CLAIMED, state::READY, 1);
                outcomes[f.item] = CompletionOutcome::RetryScheduled { attempts, backoff };
                outcome::RETRY_SCHEDULED
            } else {
                sqlx::query(pg::MARK_ERROR)
                    .bind(now)
                    .bind(f.step)
                    .execute(&mut *tx)
                    .await?;
                deltas.moved(state::CLAIMED, state::ERROR, 1);
                outcomes[f.item] = CompletionOutcome::Failed { attempts };
                outcome::FAILED
            };
            sqlx::query(pg::ERROR_UPSERT)
                .bind(f.step)
                .bind(text.as_ref())
                .execute(&mut *tx)
                .await?;
            let attempt = [(f.step, attempts, claimed_at.unwrap_or(now), now)];
            crate::claim::record_attempts_pg(&mut tx, &attempt, ended, &[Some(text.as_ref())]).await?;
        }
        if !deltas.is_zero() {
            add_counts!(tx, sql::of(Kind::Postgres), deltas);
        }
        if children_ready > 0 {
            notify_ready!(tx);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The template of each task in `task_ids`: from the task cache, the rest read in one query inside `tx`.
    async fn templates_pg(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        task_ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, &'static Template>, CompleteError> {
        let mut out: HashMap<i64, &'static Template> = HashMap::new();
        let mut missing = Vec::new();
        for id in task_ids {
            if out.contains_key(&id) {
                continue;
            }
            match self.tasks.get(id) {
                Some(t) => {
                    out.insert(id, t.template);
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            let rows: Vec<crate::claim::TaskRow> = sqlx::query_as(pg::TASKS_BY_ID)
                .bind(&missing)
                .fetch_all(&mut **tx)
                .await?;
            for (id, _, _, _, name, ..) in rows {
                out.insert(id, template_named(&name)?);
            }
        }
        Ok(out)
    }
}

/// The template called `name`, or a corrupt-row error.
pub(crate) fn template_named(name: &str) -> Result<&'static Template, CompleteError> {
    template(name).ok_or_else(|| CompleteError::CorruptRow(format!("template `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::ResultHead;

    fn head(json: &str) -> Result<(Option<bool>, bool), serde_json::Error> {
        serde_json::from_str::<ResultHead<'_>>(json).map(|h| (h.success, h.retryable()))
    }

    #[test]
    fn reads_success_and_retryable_and_skips_the_rest() {
        let ok = r#"{"step_uuid":"x","success":true,"result":{"success":false,"error":{"retryable":true}}}"#;
        assert_eq!(head(ok).unwrap(), (Some(true), false));
        let failed = r#"{"success":false,"error":{"message":"boom","retryable":true}}"#;
        assert_eq!(head(failed).unwrap(), (Some(false), true));
        let fatal = r#"{"success":false,"error":{"retryable":false}}"#;
        assert_eq!(head(fatal).unwrap(), (Some(false), false));
        assert_eq!(
            head(r#"{"success":false,"error":"text"}"#).unwrap(),
            (Some(false), false)
        );
    }

    #[test]
    fn a_missing_or_non_boolean_success_is_none() {
        for json in [
            r#"{"result":1}"#,
            r#"{"success":"true"}"#,
            r#"{"success":null}"#,
            "[true]",
            "true",
            "3",
            r#""s""#,
            "null",
        ] {
            assert_eq!(head(json).unwrap().0, None, "{json}");
        }
    }

    #[test]
    fn the_last_of_a_repeated_key_counts_as_serde_json_value_reads_it() {
        let json = r#"{"success":false,"success":true}"#;
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(head(json).unwrap().0, value["success"].as_bool());
    }

    #[test]
    fn text_that_is_not_json_is_an_error() {
        for json in [r#"{"success":true"#, r#"{"success":true,"result":}"#, "", "{} x"] {
            assert!(head(json).is_err(), "{json}");
        }
    }
}
