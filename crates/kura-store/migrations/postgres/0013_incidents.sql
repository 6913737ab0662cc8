-- Incident register (OPS-6). Keep in step with ../sqlite/0013_incidents.sql.
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
GRANT SELECT, INSERT, UPDATE, DELETE ON incidents TO kura_app;
ALTER TABLE incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE incidents FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON incidents
    USING (current_setting('kura.system', true) = 'on')
    WITH CHECK (current_setting('kura.system', true) = 'on');
