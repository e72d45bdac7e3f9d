-- Children still pending, with their pending parents, locked in id order (concurrent batches never
-- deadlock): rows (id, pending_parents). $1 ids (bigint[]).
SELECT id, pending_parents::bigint FROM steps WHERE id = ANY($1) AND state = 0 ORDER BY id FOR UPDATE
