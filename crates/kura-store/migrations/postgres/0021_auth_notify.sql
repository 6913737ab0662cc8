-- SQLite gets `auth_version` and its triggers in this version (the in-place session
-- lookup cache checks it); PostgreSQL looks every session up in the database (no cache:
-- another node's change could not be seen at once), so there is nothing to add here.
SELECT 1;
