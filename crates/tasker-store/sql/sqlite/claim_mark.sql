-- Claims one picked step: its fresh 62-bit token, the deadline, one more attempt. ?1 now, ?2 deadline, ?3 id,
-- ?4 token. (No RETURNING: SQLite collects returned rows in a temporary table, which costs more than the
-- claim itself.)
UPDATE steps SET state = 2, claim_token = ?4, claimed_at = ?1, visible_at = ?2, attempts = attempts + 1,
       updated_at = ?1
WHERE id = ?3
