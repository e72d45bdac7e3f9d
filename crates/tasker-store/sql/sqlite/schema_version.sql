-- The newest schema migration applied.
SELECT MAX(version) FROM _sqlx_migrations
