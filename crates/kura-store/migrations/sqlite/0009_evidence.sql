-- Jobs, signed audit checkpoints, usage roll-ups (SQLite). Keep in step with ../postgres/0009_evidence.sql.
-- Scheduled jobs (OPS-9): one row per job; a node leases a due row with a conditional
-- UPDATE, and job_runs' primary key makes each due time run once across nodes.
CREATE TABLE jobs (
    name           TEXT PRIMARY KEY,
    every_secs     BIGINT NOT NULL,
    next_due       BIGINT NOT NULL,
    lease_owner    TEXT,
    lease_until    BIGINT,
    last_started   BIGINT,
    last_finished  BIGINT,
    last_status    TEXT,
    last_error     TEXT,
    last_node      TEXT,
    runs           BIGINT NOT NULL DEFAULT 0,
    failures       BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE job_runs (
    name         TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    node         TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    status       TEXT NOT NULL,
    error        TEXT,
    PRIMARY KEY (name, due_at)
);
-- Signed checkpoints of a tenant's audit chain (LOG-5): at intervals and at every purge.
CREATE TABLE audit_checkpoints (
    tenant_id  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq, kind)
);
-- Where the stored chain starts after a purge (0 and the genesis hash before any).
ALTER TABLE audit_heads ADD COLUMN base_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_heads ADD COLUMN base_hash TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';
-- Daily usage per tenant (OPS-4), kept when the logs it was counted from are purged.
CREATE TABLE usage_daily (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day             TEXT NOT NULL,
    logins          BIGINT NOT NULL,
    active_users    BIGINT NOT NULL,
    uploads         BIGINT NOT NULL,
    upload_bytes    BIGINT NOT NULL,
    downloads       BIGINT NOT NULL,
    download_bytes  BIGINT NOT NULL,
    folders         BIGINT NOT NULL,
    projects        BIGINT NOT NULL,
    files           BIGINT NOT NULL,
    bytes_stored    BIGINT NOT NULL,
    computed_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
