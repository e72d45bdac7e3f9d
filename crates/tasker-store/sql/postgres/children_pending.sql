-- Children still pending, with their pending parents, locked in id order (concurrent batches never
-- deadlock): one JSON array of [id, pending_parents]. $1 ids.
SELECT COALESCE(json_agg(json_build_array(id, pending_parents)), '[]')::text FROM (
    SELECT id, pending_parents FROM steps
    WHERE id IN (SELECT value::bigint FROM json_array_elements_text($1::json)) AND state = 0
    ORDER BY id FOR UPDATE) pending
