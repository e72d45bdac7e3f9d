-- SQLite: BEGIN IMMEDIATE already serialises enqueuers.
SELECT 1
