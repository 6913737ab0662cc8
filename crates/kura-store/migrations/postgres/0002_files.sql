-- Encrypted workspace (PostgreSQL). Keep in step with ../sqlite/0002_files.sql.
-- The key vault: each tenant's data keys, wrapped by the master key (hex), by version.
CREATE TABLE tenant_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    wrapped     TEXT NOT NULL,
    master_fp   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id      TEXT NOT NULL REFERENCES projects(id),
    name            TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    created_by      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (tenant_id, project_id, name)
);

CREATE TABLE file_versions (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    file_id      TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    blob_id      TEXT NOT NULL,
    key_version  BIGINT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (file_id, version)
);
CREATE INDEX file_versions_tenant ON file_versions(tenant_id, file_id);

DO $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_keys, files, file_versions TO kura_app');
END $$;
ALTER TABLE tenant_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_keys
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE files ENABLE ROW LEVEL SECURITY;
ALTER TABLE files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON files
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE file_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE file_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON file_versions
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
