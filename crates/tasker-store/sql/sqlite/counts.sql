-- Steps per state: the sums over slots.
SELECT state, SUM(n) FROM step_counts GROUP BY state
