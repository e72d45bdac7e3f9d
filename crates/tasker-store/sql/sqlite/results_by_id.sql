-- The stored result of a completed step (a claimed step's parent). ?1 step id.
SELECT results FROM step_results WHERE step_id = ?1
