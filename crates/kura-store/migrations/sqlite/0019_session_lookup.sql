-- PostgreSQL gets a one-round-trip session lookup function in this version; SQLite runs
-- the same joined query directly (no round trips to save).
SELECT 1;
