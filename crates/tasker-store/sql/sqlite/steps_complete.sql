-- How many of a task's steps are complete. $1 first step id, $2 last step id.
SELECT CAST(COALESCE(SUM(CASE WHEN state = 3 THEN 1 ELSE 0 END), 0) AS BIGINT) FROM steps WHERE id BETWEEN $1 AND $2
