-- A step's checkpoint. ?1 step id, ?2 checkpoint JSON, ?3 now.
INSERT INTO step_checkpoints (step_id, checkpoint, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (step_id) DO UPDATE SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at
