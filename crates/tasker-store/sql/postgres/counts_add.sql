-- Adds per-state deltas to one slot of the step counts. $1 slot, $2..$6 deltas of states 0..4.
UPDATE step_counts SET n = n + CASE state WHEN 0 THEN $2::bigint WHEN 1 THEN $3::bigint WHEN 2 THEN $4::bigint
                                          WHEN 3 THEN $5::bigint ELSE $6::bigint END
WHERE slot = $1::bigint
