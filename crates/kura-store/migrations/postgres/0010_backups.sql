-- Backup generations (OPS-1, OPS-2). Keep in step with ../sqlite/0010_backups.sql.
CREATE TABLE backup_generations (
    id             TEXT PRIMARY KEY,
    started_at     BIGINT NOT NULL,
    finished_at    BIGINT,
    status         TEXT NOT NULL,
    tenants        BIGINT NOT NULL DEFAULT 0,
    rows_saved     BIGINT NOT NULL DEFAULT 0,
    blobs          BIGINT NOT NULL DEFAULT 0,
    blobs_copied   BIGINT NOT NULL DEFAULT 0,
    bytes          BIGINT NOT NULL DEFAULT 0,
    verified_at    BIGINT,
    verify_status  TEXT,
    verify_detail  TEXT,
    error          TEXT,
    deleted_at     BIGINT
);
GRANT SELECT, INSERT, UPDATE, DELETE ON backup_generations TO kura_app;
ALTER TABLE backup_generations ENABLE ROW LEVEL SECURITY;
ALTER TABLE backup_generations FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON backup_generations
    USING (current_setting('kura.system', true) = 'on')
    WITH CHECK (current_setting('kura.system', true) = 'on');
