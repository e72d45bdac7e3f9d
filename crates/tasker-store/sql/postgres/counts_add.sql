-- Adds per-state deltas to one slot of the step counts. $1 slot, $2..$7 deltas of states 0..5.
UPDATE step_counts SET n = n + CASE state WHEN 0 THEN $2::bigint WHEN 1 THEN $3::bigint WHEN 2 THEN $4::bigint
                                          WHEN 3 THEN $5::bigint WHEN 4 THEN $6::bigint ELSE $7::bigint END
WHERE slot = $1::bigint
