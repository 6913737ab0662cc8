-- PostgreSQL nodes cache session lookups and are told of changes by triggers in this
-- version; SQLite reads the session in place on every request (one node, nothing cached).
SELECT 1;
