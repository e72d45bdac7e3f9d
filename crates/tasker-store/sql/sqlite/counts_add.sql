-- Adds per-state deltas to one slot of the step counts. ?1 slot, ?2..?7 deltas of states 0..5 (positional
-- `?N`: sqlx and the embedded hot path both bind by number).
UPDATE step_counts SET n = n + CASE state WHEN 0 THEN ?2 WHEN 1 THEN ?3 WHEN 2 THEN ?4 WHEN 3 THEN ?5 WHEN 4 THEN ?6
                                          ELSE ?7 END
WHERE slot = ?1
