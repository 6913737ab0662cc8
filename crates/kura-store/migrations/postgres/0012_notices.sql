-- Service notices (OPS-5). Keep in step with ../sqlite/0012_notices.sql.
CREATE TABLE notices (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    title_ja      TEXT NOT NULL,
    title_en      TEXT NOT NULL,
    body_ja       TEXT NOT NULL,
    body_en       TEXT NOT NULL,
    published_at  BIGINT NOT NULL,
    effective_at  BIGINT NOT NULL,
    show_until    BIGINT NOT NULL,
    tenants       TEXT NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON notices TO kura_app;
ALTER TABLE notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE notices FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON notices
    USING (current_setting('kura.system', true) = 'on')
    WITH CHECK (current_setting('kura.system', true) = 'on');
