//! Claiming on SQLite's connection thread: pick, mark, read the missing tasks, the parents' results and the
//! checkpoints, and commit, in one `BEGIN IMMEDIATE` transaction (see `Store::claim` for the contract). The
//! events are shaped by the caller, off this thread (it is the store's one writer: every microsecond it
//! spends outside SQLite holds back the next claim or completion); a step whose rows cannot make one goes to
//! `error` in a second transaction ([`fail_corrupt`]).

use super::{add_counts, begin, claims::expire_exhausted};
use crate::claim::{cached_tasks, corrupt_error, parent_ids, task_info, TaskFields, Tasks};
use crate::error::ClaimError;
use crate::event::{ClaimedRow, TaskCache};
use crate::sql::lite as q;
use crate::store::{outcome, state, CountDeltas};
use crate::stored_templates;
use crate::token;
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;
use std::fmt::Write as _;

/// What a committed claim read: its rows (claimed), their tasks, their parents' results and their
/// checkpoints, ready to be shaped into events (`crate::claim::shape`).
pub(crate) struct Picked {
    pub rows: Vec<ClaimedRow>,
    pub tasks: Tasks,
    pub results: HashMap<i64, String>,
    pub checkpoints: HashMap<i64, String>,
}

/// Claims up to `max` steps at `now` until `deadline`; when fewer were claimable, also moves expired claims
/// with no attempts left to `error`, in the same transaction.
pub(crate) fn claim(
    conn: &mut Connection,
    max: usize,
    now: i64,
    deadline: i64,
    cache: &TaskCache,
) -> Result<Picked, ClaimError> {
    let tx = begin(conn)?;
    let mut deltas = CountDeltas::default();
    // Picked rows first (the marks below change the index the pick walks), then each marked.
    let mut rows = Vec::with_capacity(max);
    let mut old_states = Vec::with_capacity(max);
    let mut expired = Vec::new();
    {
        let mut pick = tx.prepare_cached(q::CLAIM_PICK)?;
        let mut picked = pick.query((now, i64::try_from(max).unwrap_or(i64::MAX)))?;
        while let Some(r) = picked.next()? {
            let old_state = r.get::<_, i64>(1)?;
            old_states.push(old_state);
            if old_state == state::CLAIMED {
                // A claim whose deadline passed: its attempt goes into the history before the new one starts.
                let deadline: i64 = r.get(8)?;
                let claimed_at: Option<i64> = r.get(7)?;
                expired.push((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(4)?,
                    claimed_at.unwrap_or(deadline),
                    deadline,
                ));
            }
            rows.push(ClaimedRow {
                id: r.get(0)?,
                task_id: r.get(2)?,
                idx: r.get(3)?,
                attempts: r.get::<_, i64>(4)?.saturating_add(1),
                token: token::fresh(),
                step_uuid: r.get(5)?,
                created_at: r.get(6)?,
            });
        }
    }
    record_expired(&tx, &expired)?;
    {
        let mut mark = tx.prepare_cached(q::CLAIM_MARK)?;
        for (row, old) in rows.iter().zip(&old_states) {
            deltas.moved(*old, state::CLAIMED, 1);
            mark.execute((now, deadline, row.id, row.token))?;
        }
    }
    let (mut tasks, missing) = cached_tasks(cache, &rows);
    if !missing.is_empty() {
        let mut found = Vec::with_capacity(missing.len());
        {
            let mut read = tx.prepare_cached(q::TASKS_BY_ID)?;
            for id in missing {
                let row: Option<TaskFields> = read
                    .query_row([id], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ))
                    })
                    .optional()?;
                found.extend(row.map(|row| (id, row)));
            }
        }
        let unknown = stored_templates::missing(found.iter().map(|(_, r)| r.3.as_str()));
        stored_templates::register_lite(&tx, &unknown)?;
        for (id, row) in found {
            tasks.insert(id, task_info(cache, id, row));
        }
    }
    let mut results = HashMap::new();
    {
        let mut read = tx.prepare_cached(q::RESULTS_BY_ID)?;
        for parent in parent_ids(&rows, &tasks) {
            if let Some(text) = read.query_row([parent], |r| r.get::<_, String>(0)).optional()? {
                results.insert(parent, text);
            }
        }
    }
    let mut checkpoints = HashMap::new();
    if !rows.is_empty() {
        let mut ids = String::with_capacity(rows.len() * 8 + 2);
        for row in &rows {
            ids.push(if ids.is_empty() { '[' } else { ',' });
            // Writing into a String cannot fail.
            let _ = write!(ids, "{}", row.id);
        }
        ids.push(']');
        let mut read = tx.prepare_cached(q::CHECKPOINTS_OF)?;
        let mut found = read.query([ids])?;
        while let Some(r) = found.next()? {
            checkpoints.insert(r.get::<_, i64>(0)?, r.get::<_, String>(1)?);
        }
    }
    if rows.len() < max {
        let expired = expire_exhausted(&tx, now)?;
        deltas.moved(state::CLAIMED, state::ERROR, expired);
    }
    add_counts(&tx, &deltas)?;
    tx.commit()?;
    Ok(Picked {
        rows,
        tasks,
        results,
        checkpoints,
    })
}

/// Moves the claimed steps `corrupt` (`(id, token, why)`: their rows cannot make an event) to `error`, each
/// only while the claim that read it still holds it.
pub(crate) fn fail_corrupt(conn: &mut Connection, corrupt: &[(i64, i64, String)], now: i64) -> Result<(), ClaimError> {
    let tx = begin(conn)?;
    let mut deltas = CountDeltas::default();
    {
        let mut mark = tx.prepare_cached(q::CORRUPT_MARK)?;
        let mut upsert = tx.prepare_cached(q::ERROR_UPSERT)?;
        for (id, token, why) in corrupt {
            if mark.execute((now, id, token))? == 1 {
                upsert.execute((id, corrupt_error(why)))?;
                deltas.moved(state::CLAIMED, state::ERROR, 1);
            }
        }
    }
    add_counts(&tx, &deltas)?;
    tx.commit()?;
    Ok(())
}

/// Records expired claims `(step id, attempt, claimed at, deadline)` in the attempt history.
pub(crate) fn record_expired(tx: &Connection, expired: &[(i64, i64, i64, i64)]) -> Result<(), rusqlite::Error> {
    if expired.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(q::ATTEMPT_INSERT)?;
    for (id, attempt, claimed_at, deadline) in expired {
        insert.execute((id, attempt, claimed_at, deadline, outcome::CLAIM_EXPIRED, None::<&str>))?;
    }
    Ok(())
}
