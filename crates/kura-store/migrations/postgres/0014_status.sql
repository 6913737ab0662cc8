-- Health probes for the status page (OPS-7). Keep in step with ../sqlite/0014_status.sql.
CREATE TABLE status_samples (
    at        BIGINT PRIMARY KEY,
    ok        BIGINT NOT NULL,
    detail    TEXT NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON status_samples TO kura_app;
ALTER TABLE status_samples ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_samples FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON status_samples
    USING (current_setting('kura.system', true) = 'on')
    WITH CHECK (current_setting('kura.system', true) = 'on');
