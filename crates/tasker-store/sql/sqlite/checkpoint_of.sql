-- A step's last checkpoint (JSON text), or no row. ?1 step id.
SELECT checkpoint FROM step_checkpoints WHERE step_id = ?1
