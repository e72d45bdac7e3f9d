-- Adds per-state deltas to one slot of the step counts. ?1 slot, ?2..?6 deltas of states 0..4 (positional
-- `?N`: sqlx and the embedded hot path both bind by number).
UPDATE step_counts SET n = n + CASE state WHEN 0 THEN ?2 WHEN 1 THEN ?3 WHEN 2 THEN ?4 WHEN 3 THEN ?5 ELSE ?6 END
WHERE slot = ?1
