-- A child's pending parents, or no row when it is not pending. ?1 id.
SELECT pending_parents FROM steps WHERE id = ?1 AND state = 0
