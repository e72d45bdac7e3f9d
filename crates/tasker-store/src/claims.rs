//! Claims held: extending their deadline, giving them back, expiring those with no attempts left, listing.

use crate::error::{ExtendError, ReleaseError, StatusError};
use crate::sql::{self, pg};
use crate::store::{firsts, ms, now_ms, outcome, seconds, state, Backend, CountDeltas, HeldClaim, Kind, Store};
use crate::token;
use serde_json::json;
use sqlx::Row;
use std::time::Duration;
use uuid::Uuid;

/// The last error of a step whose claim expired with no attempts left.
pub(crate) fn expired_error() -> String {
    json!({
        "success": false,
        "status": "error",
        "error": { "message": "claim expired with no attempts left", "error_type": "visibility_timeout", "retryable": false }
    })
    .to_string()
}

/// `(step id, token)` of each event id this store made; others are dropped (they hold nothing here).
fn decoded(tokens: &[Uuid]) -> Vec<(i64, i64)> {
    tokens.iter().filter_map(|t| token::decode(*t)).collect()
}

impl Store {
    /// Pushes the deadline of each claim in `tokens` that is still held to `now + visibility`; returns how
    /// many were (a token missing from the count lost its claim: it was re-claimed or completed).
    pub async fn extend(&self, tokens: &[Uuid], visibility: Duration) -> Result<u64, ExtendError> {
        let pairs = decoded(tokens);
        if pairs.is_empty() {
            return Ok(0);
        }
        let deadline = now_ms() + ms(visibility);
        match &self.backend {
            Backend::Sqlite(_, lite) => Ok(lite
                .run(move |c| crate::lite::claims::extend(c, &pairs, deadline))
                .await?),
            Backend::Postgres(pool) => Ok(sqlx::query(pg::EXTEND)
                .bind(deadline)
                .bind(firsts(&pairs))
                .bind(seconds(&pairs))
                .execute(pool)
                .await?
                .rows_affected()),
        }
    }

    /// Gives claims back without using an attempt: each step in `tokens` still held by its token becomes
    /// `ready` now with `attempts - 1` (a worker stopping with events its handlers never read). Returns how
    /// many were released (a missing one was already completed, or re-claimed after its deadline).
    pub async fn release(&self, tokens: &[Uuid]) -> Result<u64, ReleaseError> {
        let pairs = decoded(tokens);
        if pairs.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let pool = match &self.backend {
            Backend::Sqlite(_, lite) => {
                return Ok(lite.run(move |c| crate::lite::claims::release(c, &pairs, now)).await?)
            }
            Backend::Postgres(pool) => pool,
        };
        let mut tx = pool.begin().await?;
        let n = sqlx::query(pg::RELEASE)
            .bind(now)
            .bind(firsts(&pairs))
            .bind(seconds(&pairs))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            let mut deltas = CountDeltas::default();
            deltas.moved(state::CLAIMED, state::READY, n as i64);
            add_counts!(tx, sql::of(Kind::Postgres), deltas);
            notify_ready!(tx);
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Moves expired claims with no attempts left to `error` (at most 1000 per call). PostgreSQL's; SQLite's
    /// runs inside its claim transaction (`lite::claims::expire_exhausted`).
    pub(crate) async fn expire_exhausted(&self, pool: &sqlx::PgPool, now: i64) -> Result<u64, sqlx::Error> {
        let mut tx = pool.begin().await?;
        let expired: Vec<(i64, i64, Option<i64>, i64)> =
            sqlx::query_as(pg::EXPIRE_PICK).bind(now).fetch_all(&mut *tx).await?;
        if expired.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let n = expired.len() as i64;
        let ids: Vec<i64> = expired.iter().map(|e| e.0).collect();
        let history: Vec<_> = (expired.iter())
            .map(|&(id, attempt, at, deadline)| (id, attempt, at.unwrap_or(deadline), deadline))
            .collect();
        crate::claim::record_attempts_pg(&mut tx, &history, outcome::CLAIM_EXPIRED, &[]).await?;
        sqlx::query(pg::ERRORS_MARK_MANY)
            .bind(now)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        sqlx::query(pg::ERRORS_UPSERT_MANY)
            .bind(&ids)
            .bind(expired_error())
            .execute(&mut *tx)
            .await?;
        let mut deltas = CountDeltas::default();
        deltas.moved(state::CLAIMED, state::ERROR, n);
        add_counts!(tx, sql::of(Kind::Postgres), deltas);
        tx.commit().await?;
        Ok(n as u64)
    }

    /// Claims currently held (`claimed` steps, expired ones included), oldest first, at most `limit`: the
    /// operator's answer to "what is in flight", and the tests' handle on a dead worker's claims.
    pub async fn held_claims(&self, limit: usize) -> Result<Vec<HeldClaim>, StatusError> {
        let now = now_ms();
        let mut out = Vec::new();
        on_backend!(self, pool, kind => {
            let rows = sqlx::query(sql::of(kind).held_claims)
                .bind(limit.min(i64::MAX as usize) as i64)
                .fetch_all(pool)
                .await?;
            for r in rows {
                let id: i64 = r.try_get(0)?;
                let token: i64 = r.try_get(1)?;
                let step: String = r.try_get(2)?;
                let deadline: i64 = r.try_get(4)?;
                out.push(HeldClaim {
                    claim_token: token::event_id(id, token),
                    step_uuid: Uuid::parse_str(&step).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    attempts: r.try_get(3)?,
                    expired: deadline <= now,
                });
            }
        });
        Ok(out)
    }
}
