-- Usage counters per tenant (OPS-4 source data). Keep in step with ../sqlite/0005_usage.sql.
CREATE TABLE tenant_usage (
    tenant_id       TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    uploads         BIGINT NOT NULL DEFAULT 0,
    upload_bytes    BIGINT NOT NULL DEFAULT 0,
    downloads       BIGINT NOT NULL DEFAULT 0,
    download_bytes  BIGINT NOT NULL DEFAULT 0
);
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_usage TO kura_app;
ALTER TABLE tenant_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_usage
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
