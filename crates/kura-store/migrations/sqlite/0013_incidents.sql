-- Incident register (OPS-6). Keep in step with ../postgres/0013_incidents.sql.
CREATE TABLE incidents (
    id            TEXT PRIMARY KEY,
    title_ja      TEXT NOT NULL,
    title_en      TEXT NOT NULL,
    severity      TEXT NOT NULL,
    scope         TEXT NOT NULL,
    tenants       TEXT NOT NULL,
    detected_at   BIGINT NOT NULL,
    deadline_at   BIGINT NOT NULL,
    target        TEXT NOT NULL,
    notified_at   BIGINT,
    resolved_at   BIGINT,
    updates       TEXT NOT NULL
);
