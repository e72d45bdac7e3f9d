-- The largest task and step ids so far.
SELECT (SELECT COALESCE(MAX(id), 0) FROM tasks), (SELECT COALESCE(MAX(id), 0) FROM steps)
