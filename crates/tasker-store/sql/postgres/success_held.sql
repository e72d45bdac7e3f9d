-- Which successes still hold their step (locked, in id order): one JSON array of [id, task_id, idx].
-- $1 [[id, token], ...].
SELECT COALESCE(json_agg(json_build_array(id, task_id, idx)), '[]')::text FROM (
    SELECT s.id, s.task_id, s.idx FROM steps s
    JOIN (SELECT (e->>0)::bigint AS id, (e->>1)::bigint AS tok FROM json_array_elements($1::json) e) v
      ON s.id = v.id AND s.claim_token = v.tok AND s.state = 2
    ORDER BY s.id FOR UPDATE OF s) held
