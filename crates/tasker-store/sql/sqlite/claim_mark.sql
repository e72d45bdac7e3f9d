-- Claims the picked steps: a fresh 62-bit token, the deadline, one more attempt. $1 now, $2 deadline, $3 ids.
UPDATE steps SET state = 2, claim_token = random() & 4611686018427387903, claimed_at = $1, visible_at = $2,
       attempts = attempts + 1, updated_at = $1
WHERE id IN (SELECT value FROM json_each($3))
