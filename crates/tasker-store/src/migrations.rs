//! The schema migrations of each backend, embedded in the binary (`include_str!`), so the worker library
//! carries its schema and sqlx's proc-macro crate (and the second, host-side build of sqlx and SQLite it
//! needs) stays out of the build.

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

/// One backend's migrations: `(version, description, sql)`, in version order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embedded(&'static [(i64, &'static str, &'static str)]);

/// SQLite's migrations (`migrations/sqlite`).
pub(crate) const SQLITE: Embedded = Embedded(&[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        "integer keys",
        include_str!("../migrations/sqlite/0002_integer_keys.sql"),
    ),
    (
        3,
        "attempts and checkpoints",
        include_str!("../migrations/sqlite/0003_attempts_checkpoints.sql"),
    ),
    (
        4,
        "task requests and cancellation",
        include_str!("../migrations/sqlite/0004_task_requests.sql"),
    ),
]);
/// PostgreSQL's migrations (`migrations/postgres`).
pub(crate) const POSTGRES: Embedded = Embedded(&[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        "integer keys",
        include_str!("../migrations/postgres/0002_integer_keys.sql"),
    ),
    (
        3,
        "attempts and checkpoints",
        include_str!("../migrations/postgres/0003_attempts_checkpoints.sql"),
    ),
    (
        4,
        "task requests and cancellation",
        include_str!("../migrations/postgres/0004_task_requests.sql"),
    ),
]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

impl Embedded {
    /// The migrator over these migrations.
    pub(crate) async fn migrator(self) -> Result<Migrator, sqlx::migrate::MigrateError> {
        Migrator::new(self).await
    }
}
