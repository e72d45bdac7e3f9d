//! Connecting to a store: parsing its URL (SQLite file or PostgreSQL), retrying transient failures with
//! backoff within the connect timeout, and running the backend's migrations.

use crate::error::ConnectError;
use crate::lite::Lite;
use crate::migrations;
use crate::store::{Backend, Store, StoreOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The URL with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!("{}://{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]);
            }
        }
    }
    url.to_string()
}

enum Target {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

fn parse_url(url: &str) -> Result<Target, ConnectError> {
    let invalid = |reason: String| ConnectError::InvalidUrl {
        url: redact(url),
        reason,
    };
    if url.trim().is_empty() {
        return Err(invalid("empty".into()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return PgConnectOptions::from_str(url)
            .map(Target::Postgres)
            .map_err(|e| invalid(e.to_string()));
    }
    let sqlite = if url.starts_with("sqlite:") {
        let opts = SqliteConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
        if url.contains("mode=") {
            opts
        } else {
            opts.create_if_missing(true)
        }
    } else if let Some(i) = url.find("://") {
        return Err(invalid(format!(
            "unsupported scheme `{}` (use sqlite://path?mode=rwc, a file path, or postgres://)",
            &url[..i]
        )));
    } else {
        SqliteConnectOptions::new().filename(url).create_if_missing(true)
    };
    Ok(Target::Sqlite(
        sqlite
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // Statement journals (multi-row UPDATEs inside a transaction) in memory, not temp files.
            .pragma("temp_store", "memory")
            // 32 MiB of page cache per connection (the default is 2 MiB): claims and completions touch the
            // steps, their index and the results of recent tasks, which outgrow 2 MiB within a few 10 000 steps.
            .pragma("cache_size", "-32768")
            .foreign_keys(true),
    ))
}

/// Runs SQLite's migrations inside one `BEGIN IMMEDIATE` transaction. sqlx's migrator locks only on
/// PostgreSQL and MySQL (its SQLite `lock` is a no-op), so two processes opening a fresh file at once would
/// both create the tables and one would fail ("table tasks already exists"). Holding the write lock from
/// the start, the second opener waits (busy timeout) and then finds the migrations applied; each
/// migration's own transaction becomes a savepoint inside this one.
async fn migrate_sqlite(pool: &sqlx::SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    migrations::SQLITE.migrator().await?.run(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether a connect error is worth retrying (network, I/O, pool timeout) rather than a refusal.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        // SQLite reports "unable to open database file" (14) as a database error, and "database is locked"
        // (5, 6, with extended codes such as BUSY_RECOVERY) when another process is setting up the file
        // (switching it to WAL, recovering its WAL) at the moment we open it, which the busy timeout does
        // not always cover. The primary code is the low byte of the extended one.
        // Only SQLite's codes: PostgreSQL's SQLSTATEs are digits too (42501 would read as 5).
        sqlx::Error::Database(d) if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => matches!(
            d.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff),
            Some(5 | 6 | 14)
        ),
        _ => false,
    }
}

impl Store {
    /// Connects with [`StoreOptions::default`] (10 s connect timeout).
    pub async fn connect(url: &str) -> Result<Store, ConnectError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Connects to `url` (`sqlite://path?mode=rwc`, `sqlite:path`, a bare file path, created when missing,
    /// or `postgres://...`), retrying transient failures with backoff (50 ms doubling to 1 s) for at most
    /// `options.connect_timeout`, then runs the backend's migrations.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, ConnectError> {
        let target = parse_url(url)?;
        let started = Instant::now();
        let deadline = started + options.connect_timeout;
        let mut backoff = Duration::from_millis(50);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            // One probe connection per attempt (a pool would retry by itself until its acquire timeout and
            // hide the attempts), then a lazy pool that the migrations open for real.
            let attempt = match &target {
                Target::Sqlite(o) => {
                    match tokio::time::timeout(remaining, sqlx::SqliteConnection::connect_with(o)).await {
                        Ok(Ok(c)) => {
                            let _ = c.close().await;
                            Ok(Backend::Sqlite(
                                SqlitePoolOptions::new()
                                    .max_connections(options.max_connections.unwrap_or(4))
                                    .acquire_timeout(options.connect_timeout.max(Duration::from_secs(5)))
                                    .connect_lazy_with(o.clone()),
                                // Opened below, once the migrations have made the file's schema.
                                Arc::new(Lite::unopened()),
                            ))
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(sqlx::Error::PoolTimedOut),
                    }
                }
                Target::Postgres(o) => match tokio::time::timeout(remaining, sqlx::PgConnection::connect_with(o)).await
                {
                    Ok(Ok(c)) => {
                        let _ = c.close().await;
                        Ok(Backend::Postgres(
                            PgPoolOptions::new()
                                .max_connections(options.max_connections.unwrap_or(8))
                                .acquire_timeout(options.connect_timeout.max(Duration::from_secs(5)))
                                .connect_lazy_with(o.clone()),
                        ))
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(sqlx::Error::PoolTimedOut),
                },
            };
            match attempt {
                Ok(backend) => {
                    match &backend {
                        Backend::Sqlite(p, lite) => {
                            migrate_sqlite(p).await?;
                            let Target::Sqlite(o) = &target else {
                                unreachable!("an SQLite backend has SQLite options")
                            };
                            lite.open(o.get_filename()).map_err(|source| ConnectError::Open {
                                url: redact(url),
                                source,
                            })?;
                        }
                        Backend::Postgres(p) => migrations::POSTGRES.migrator().await?.run(p).await?,
                    }
                    return Ok(Store {
                        backend,
                        options,
                        tasks: Arc::default(),
                    });
                }
                Err(e) if !transient(&e) => {
                    return Err(ConnectError::Rejected {
                        url: redact(url),
                        source: e,
                    })
                }
                Err(e) => {
                    if Instant::now() + backoff >= deadline {
                        return Err(ConnectError::Unreachable {
                            url: redact(url),
                            attempts,
                            elapsed: started.elapsed(),
                            source: e,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}
