-- Steps per state: the sums over slots.
SELECT state::bigint, SUM(n)::bigint FROM step_counts GROUP BY state
