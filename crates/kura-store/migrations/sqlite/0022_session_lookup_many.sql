-- PostgreSQL gets `kura_session_lookup_many` in this version (concurrent session lookups
-- in one statement); SQLite looks sessions up in place and has nothing to add.
SELECT 1;
