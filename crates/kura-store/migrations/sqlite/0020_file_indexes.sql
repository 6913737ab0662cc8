-- Listing and search that stay flat with a million files (SQLite). Keep in step with
-- ../postgres/0020_file_indexes.sql.
-- Keyset pages of live files, by name or by update time, in a project or tenant-wide.
CREATE INDEX files_live_project_name ON files(tenant_id, project_id, name, id) WHERE deleted_at IS NULL;
CREATE INDEX files_live_project_updated ON files(tenant_id, project_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX files_live_tenant_name ON files(tenant_id, name, id) WHERE deleted_at IS NULL;
CREATE INDEX files_live_tenant_updated ON files(tenant_id, updated_at, id) WHERE deleted_at IS NULL;
-- A project's trash (the console lists it on the project page).
CREATE INDEX files_trash ON files(tenant_id, project_id, name, id) WHERE deleted_at IS NOT NULL;
-- Name search without a full scan: a trigram index of every file name (FTS5), kept in step
-- with `files` by triggers. A search of three or more characters narrows the candidates
-- through it; the LIKE filter on lower(name) still decides, so results are unchanged.
CREATE VIRTUAL TABLE files_name_trigrams USING fts5(name, tokenize = 'trigram', detail = 'none');
INSERT INTO files_name_trigrams(rowid, name) SELECT rowid, name FROM files;
CREATE TRIGGER files_name_trigrams_insert AFTER INSERT ON files BEGIN
    INSERT INTO files_name_trigrams(rowid, name) VALUES (new.rowid, new.name);
END;
CREATE TRIGGER files_name_trigrams_rename AFTER UPDATE OF name ON files BEGIN
    DELETE FROM files_name_trigrams WHERE rowid = old.rowid;
    INSERT INTO files_name_trigrams(rowid, name) VALUES (new.rowid, new.name);
END;
CREATE TRIGGER files_name_trigrams_delete AFTER DELETE ON files BEGIN
    DELETE FROM files_name_trigrams WHERE rowid = old.rowid;
END;
