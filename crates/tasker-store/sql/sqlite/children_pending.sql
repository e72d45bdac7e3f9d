-- Children still pending, with their pending parents: one JSON array of [id, pending_parents]. $1 ids.
SELECT json_group_array(json_array(id, pending_parents)) FROM steps
WHERE id IN (SELECT value FROM json_each($1)) AND state = 0
