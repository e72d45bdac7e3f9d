-- A pending child loses ?2 pending parents (completed in this batch); with none left it is ready. ?1 id,
-- ?2 parents completed, ?3 now. Returns the new state (1 when it became ready), or no row when it was not
-- pending.
UPDATE steps SET pending_parents = pending_parents - ?2,
       state = CASE WHEN pending_parents = ?2 THEN 1 ELSE state END,
       visible_at = CASE WHEN pending_parents = ?2 THEN ?3 ELSE visible_at END, updated_at = ?3
WHERE id = ?1 AND state = 0
RETURNING state
