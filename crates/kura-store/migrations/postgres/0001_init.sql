-- Kura schema v1 (PostgreSQL). Ids are TEXT (UUIDv7), times BIGINT milliseconds since the epoch
-- UTC, JSON as TEXT. Keep in step with ../sqlite/0001_init.sql.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE tenant_contacts (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX tenant_contacts_tenant ON tenant_contacts(tenant_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    locale        TEXT,
    status        TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (tenant_id, email)
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    actions     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    builtin     TEXT,
    role_id     TEXT REFERENCES roles(id) ON DELETE CASCADE,
    scope_kind  TEXT NOT NULL,
    scope_id    TEXT,
    created_at  BIGINT NOT NULL,
    CHECK ((builtin IS NULL) <> (role_id IS NULL))
);
CREATE INDEX grants_user ON grants(tenant_id, user_id);

CREATE TABLE folders (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    parent_id   TEXT REFERENCES folders(id),
    name        TEXT NOT NULL,
    created_by  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX folders_tenant ON folders(tenant_id, parent_id);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    folder_id   TEXT NOT NULL REFERENCES folders(id),
    name        TEXT NOT NULL,
    created_by  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX projects_tenant ON projects(tenant_id, folder_id);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    csrf_token    TEXT NOT NULL,
    ip            TEXT,
    user_agent    TEXT,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(tenant_id, user_id);

CREATE TABLE invitations (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE audit_heads (
    tenant_id   TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE TABLE audit_events (
    tenant_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_kind TEXT,
    target_id   TEXT,
    result      TEXT NOT NULL,
    ip          TEXT,
    request_id  TEXT,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_at ON audit_events(tenant_id, at);

CREATE TABLE access_log (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   TEXT,
    user_id     TEXT,
    at          BIGINT NOT NULL,
    ip          TEXT,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      BIGINT NOT NULL,
    latency_us  BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    request_id  TEXT
);
CREATE INDEX access_log_tenant_at ON access_log(tenant_id, at);

CREATE TABLE mail_outbox (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT,
    to_addr     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Row-level security (TEN-3, second line of defence). Every transaction Kura opens sets
-- kura.tenant_id (or kura.system = 'on' for operator and cross-tenant work such as the
-- session lookup and the job runner) and switches to the kura_app role, which is not a
-- superuser and so is bound by these policies.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kura_app') THEN
        CREATE ROLE kura_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO kura_app', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO kura_app', current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO kura_app', current_schema());
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT kura_app TO %I', current_user);
    END IF;
END $$;
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE tenant_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_contacts
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON roles
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON grants
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE folders ENABLE ROW LEVEL SECURITY;
ALTER TABLE folders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON folders
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON projects
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sessions
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE access_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON access_log
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
ALTER TABLE mail_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE mail_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mail_outbox
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
