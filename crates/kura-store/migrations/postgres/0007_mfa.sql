-- Second factors (PostgreSQL). Keep in step with ../sqlite/0007_mfa.sql.
CREATE TABLE user_totp (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed  TEXT NOT NULL,
    confirmed_at   BIGINT,
    last_step      BIGINT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE TABLE recovery_codes (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (tenant_id, user_id, code_hash)
);
-- A password that was right, waiting for its second factor (single use, minutes).
CREATE TABLE login_challenges (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
GRANT SELECT, INSERT, UPDATE, DELETE ON user_totp TO kura_app;
ALTER TABLE user_totp ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_totp FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_totp
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
GRANT SELECT, INSERT, UPDATE, DELETE ON recovery_codes TO kura_app;
ALTER TABLE recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON recovery_codes
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
GRANT SELECT, INSERT, UPDATE, DELETE ON login_challenges TO kura_app;
ALTER TABLE login_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON login_challenges
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
-- Personal API tokens (IAM-9): hashed, scoped, expiring, revocable.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(tenant_id, user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON api_tokens TO kura_app;
ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_tokens
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
