//! Completion on SQLite's connection thread: per-row statements in one `BEGIN IMMEDIATE` transaction (see
//! `Store::complete_batch` for the contract).

use super::{add_counts, begin};
use crate::complete::{credit_ready_child, template_named, Checked, Followers};
use crate::error::CompleteError;
use crate::event::TaskCache;
use crate::sql::lite as q;
use crate::store::{ms, outcome, state, CompletionOutcome, CountDeltas, StoreOptions};
use crate::templates::Template;
use rusqlite::{Connection, OptionalExtension, Transaction};
use std::collections::{HashMap, HashSet};

/// Persists a checked batch at `now`; returns each item's outcome.
pub(crate) fn complete(
    conn: &mut Connection,
    checked: Checked<Vec<u8>>,
    now: i64,
    cache: &TaskCache,
    options: &StoreOptions,
) -> Result<Vec<CompletionOutcome>, CompleteError> {
    let Checked {
        mut outcomes,
        successes,
        failures,
    } = checked;
    let tx = begin(conn)?;
    let mut deltas = CountDeltas::default();
    if !successes.is_empty() {
        // Each success still held is completed (the UPDATE returns its task and index) and its result stored.
        let mut done = Vec::with_capacity(successes.len());
        let mut item_of = HashMap::with_capacity(successes.len());
        {
            let mut held = tx.prepare_cached(q::SUCCESS_HELD)?;
            let mut complete = tx.prepare_cached(q::COMPLETE_SUCCESS)?;
            let mut store_result = tx.prepare_cached(q::RESULTS_INSERT)?;
            for s in &successes {
                let found = held
                    .query_row((s.step, s.token), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .optional()?;
                let Some((task, idx)) = found else {
                    continue; // Refused: the claim no longer holds the step
                };
                let text = std::str::from_utf8(&s.json)
                    .map_err(|e| CompleteError::CorruptRow(format!("a result is not UTF-8: {e}")))?;
                complete.execute((now, s.step))?;
                store_result.execute((s.step, text))?;
                done.push((s.step, task, idx));
                item_of.insert(s.step, s.item);
                outcomes[s.item] = CompletionOutcome::Completed {
                    ready_children: 0,
                    task_complete: false,
                };
            }
        }
        deltas.moved(state::CLAIMED, state::COMPLETE, done.len() as i64);
        // Children: one pending parent fewer per parent completed here; the update says which became ready.
        let templates = templates(&tx, cache, done.iter().map(|(_, task, _)| *task))?;
        let followers = Followers::of(&done, &templates, |id| item_of[&id])?;
        let mut ready = 0;
        let mut pending = tx.prepare_cached(q::CHILDREN_PENDING)?;
        let mut update = tx.prepare_cached(q::CHILDREN_UPDATE)?;
        for (&child, &(n, item)) in &followers.children {
            let Some(before) = pending.query_row([child], |r| r.get::<_, i64>(0)).optional()? else {
                continue; // not pending (a concurrent retry_errors, a corrupt row): nothing to count down
            };
            let left = before.saturating_sub(n).max(0); // a corrupt count must not overflow
            update.execute((child, left, now))?;
            if left == 0 {
                ready += 1;
                credit_ready_child(&mut outcomes, item);
            }
        }
        deltas.moved(state::PENDING, state::READY, ready);
        // Tasks finished here: a one-sink task's sink completing finishes it; otherwise its other sinks are
        // read (the write lock held since `BEGIN IMMEDIATE` orders concurrent batches).
        let mut incomplete = HashSet::new();
        let others = followers.other_sinks();
        if !others.is_empty() {
            let mut state_of = tx.prepare_cached(q::STEP_STATE)?;
            for id in others {
                let s = state_of.query_row([id], |r| r.get::<_, i64>(0)).optional()?;
                if s != Some(state::COMPLETE) {
                    incomplete.insert(id);
                }
            }
        }
        followers.credit_task_ends(&mut outcomes, &incomplete);
    }
    if !failures.is_empty() {
        let mut held = tx.prepare_cached(q::FAILURE_HELD)?;
        let mut retry = tx.prepare_cached(q::FAIL_RETRY)?;
        let mut mark = tx.prepare_cached(q::MARK_ERROR)?;
        let mut upsert = tx.prepare_cached(q::ERROR_UPSERT)?;
        let mut history = tx.prepare_cached(q::ATTEMPT_INSERT)?;
        for f in &failures {
            let attempts = held
                .query_row((f.step, f.token), |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?))
                })
                .optional()?;
            let Some((attempts, max_attempts, claimed_at)) = attempts else {
                continue; // Refused
            };
            let text = String::from_utf8_lossy(&f.json);
            let ended = if f.retryable && attempts < max_attempts {
                let backoff = options.backoff(attempts);
                retry.execute((f.step, now + ms(backoff), now))?;
                deltas.moved(state::CLAIMED, state::READY, 1);
                outcomes[f.item] = CompletionOutcome::RetryScheduled { attempts, backoff };
                outcome::RETRY_SCHEDULED
            } else {
                mark.execute((now, f.step))?;
                deltas.moved(state::CLAIMED, state::ERROR, 1);
                outcomes[f.item] = CompletionOutcome::Failed { attempts };
                outcome::FAILED
            };
            upsert.execute((f.step, text.as_ref()))?;
            history.execute((f.step, attempts, claimed_at.unwrap_or(now), now, ended, text.as_ref()))?;
        }
    }
    add_counts(&tx, &deltas)?;
    tx.commit()?;
    Ok(outcomes)
}

/// The template of each task in `task_ids`: from the cache, the rest read inside `tx`.
fn templates(
    tx: &Transaction<'_>,
    cache: &TaskCache,
    task_ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, &'static Template>, CompleteError> {
    let mut out: HashMap<i64, &'static Template> = HashMap::new();
    for id in task_ids {
        if out.contains_key(&id) {
            continue;
        }
        let t = match cache.get(id) {
            Some(t) => t.template,
            None => {
                let name: Option<String> = tx
                    .prepare_cached(q::TASKS_BY_ID)?
                    .query_row([id], |r| r.get(3))
                    .optional()?;
                template_named(&name.ok_or_else(|| CompleteError::CorruptRow(format!("task {id} missing")))?)?
            }
        };
        out.insert(id, t);
    }
    Ok(out)
}
