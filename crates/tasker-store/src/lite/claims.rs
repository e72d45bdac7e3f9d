//! Claims held, on SQLite's connection thread: extending, giving back, expiring those with no attempts left.

use super::claim::record_expired;
use super::{add_counts, begin, LiteError};
use crate::claims::expired_error;
use crate::sql::lite as q;
use crate::store::{state, CountDeltas};
use rusqlite::{Connection, Transaction};

/// Pushes the deadline of each `(step, token)` still held to `deadline`; returns how many were.
pub(crate) fn extend(conn: &mut Connection, pairs: &[(i64, i64)], deadline: i64) -> Result<u64, LiteError> {
    let tx = begin(conn)?;
    let mut n = 0;
    {
        let mut extend = tx.prepare_cached(q::EXTEND)?;
        for (step, token) in pairs {
            n += extend.execute((deadline, step, token))? as u64;
        }
    }
    tx.commit()?;
    Ok(n)
}

/// Gives back each `(step, token)` still held (ready at `now`, the attempt not counted); returns how many.
pub(crate) fn release(conn: &mut Connection, pairs: &[(i64, i64)], now: i64) -> Result<u64, LiteError> {
    let tx = begin(conn)?;
    let mut n = 0;
    {
        let mut release = tx.prepare_cached(q::RELEASE)?;
        for (step, token) in pairs {
            n += release.execute((now, step, token))? as u64;
        }
    }
    let mut deltas = CountDeltas::default();
    deltas.moved(state::CLAIMED, state::READY, n as i64);
    add_counts(&tx, &deltas)?;
    tx.commit()?;
    Ok(n)
}

/// Moves expired claims with no attempts left to `error` (at most 1000) inside `tx`; returns how many. The
/// caller adds them to its step-count deltas.
pub(crate) fn expire_exhausted(tx: &Transaction<'_>, now: i64) -> Result<i64, rusqlite::Error> {
    let expired: Vec<(i64, i64, i64, i64)> = tx
        .prepare_cached(q::EXPIRE_PICK)?
        .query_map([now], |r| {
            let deadline: i64 = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, Option<i64>>(2)?.unwrap_or(deadline),
                deadline,
            ))
        })?
        .collect::<Result<_, _>>()?;
    if expired.is_empty() {
        return Ok(0);
    }
    record_expired(tx, &expired)?;
    let err = expired_error();
    let mut mark = tx.prepare_cached(q::MARK_ERROR)?;
    let mut upsert = tx.prepare_cached(q::ERROR_UPSERT)?;
    for (id, ..) in &expired {
        mark.execute((now, id))?;
        upsert.execute((id, &err))?;
    }
    Ok(expired.len() as i64)
}
