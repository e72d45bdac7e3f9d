-- A step's state, or no row. ?1 id.
SELECT state FROM steps WHERE id = ?1
