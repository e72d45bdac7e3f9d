-- A pending child now has ?2 pending parents; with none left it is ready at ?3. ?1 id.
UPDATE steps SET pending_parents = ?2, state = CASE WHEN ?2 = 0 THEN 1 ELSE 0 END,
       visible_at = CASE WHEN ?2 = 0 THEN ?3 ELSE visible_at END, updated_at = ?3
WHERE id = ?1
