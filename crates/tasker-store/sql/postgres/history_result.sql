-- A completed step's result JSON. $1 step id.
SELECT results FROM step_results WHERE step_id = $1
