-- Serialises enqueuers: task and step ids are allocated as contiguous blocks above the current maxima.
SELECT pg_advisory_xact_lock(7431001)
