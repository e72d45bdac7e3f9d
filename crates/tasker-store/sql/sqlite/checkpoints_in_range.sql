-- The last checkpoints of the steps with ids in ?1..=?2 (a claim batch's range; the caller keeps those of its
-- own steps). One statement per batch rather than a probe per step: the table holds only steps that yielded.
SELECT step_id, checkpoint FROM step_checkpoints WHERE step_id BETWEEN ?1 AND ?2
