-- Tenant termination (OPS-3, DATA-4, CRY-3). Keep in step with ../sqlite/0011_lifecycle.sql.
CREATE TABLE tenant_lifecycle (
    tenant_id      TEXT PRIMARY KEY,
    slug           TEXT NOT NULL,
    terminated_at  BIGINT NOT NULL,
    delete_after   BIGINT NOT NULL,
    shred_after    BIGINT NOT NULL,
    deleted_at     BIGINT,
    deletion       TEXT,
    shredded_at    BIGINT,
    certificate    TEXT,
    -- The contract admin's export link (hash), valid until delete_after.
    export_token_hash TEXT
);
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_lifecycle TO kura_app;
ALTER TABLE tenant_lifecycle ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_lifecycle FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON tenant_lifecycle
    USING (current_setting('kura.system', true) = 'on')
    WITH CHECK (current_setting('kura.system', true) = 'on');
