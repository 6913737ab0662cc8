-- Backup generations (OPS-1, OPS-2). Keep in step with ../postgres/0010_backups.sql.
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
