-- Which of these steps are not complete: rows (id). $1 ids (bigint[]).
SELECT id FROM steps WHERE id = ANY($1) AND state <> 3
