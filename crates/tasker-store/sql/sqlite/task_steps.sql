-- The steps of a task, in template order, with their stored result and last failure: rows (idx, step_uuid,
-- state, attempts, max_attempts, visible_at, claimed_at, created_at, updated_at, results, last_error).
-- $1 first step id, $2 last step id.
SELECT CAST(s.idx AS BIGINT), s.step_uuid, CAST(s.state AS BIGINT), CAST(s.attempts AS BIGINT),
       CAST(s.max_attempts AS BIGINT), s.visible_at, s.claimed_at, s.created_at, s.updated_at, r.results,
       e.last_error
FROM steps s LEFT JOIN step_results r ON r.step_id = s.id LEFT JOIN step_errors e ON e.step_id = s.id
WHERE s.id BETWEEN $1 AND $2 ORDER BY s.id
