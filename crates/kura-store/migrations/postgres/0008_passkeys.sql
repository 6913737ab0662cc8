-- Passkeys and service accounts (PostgreSQL). Keep in step with ../sqlite/0008_passkeys.sql.
-- A WebAuthn credential (IAM-5): public key material and its signature counter.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    cred_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    data          TEXT NOT NULL,
    counter       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    UNIQUE (tenant_id, cred_id)
);
CREATE INDEX passkeys_user ON passkeys(tenant_id, user_id);
-- A registration or authentication under way: server-side state, single use, minutes.
CREATE TABLE webauthn_ceremonies (
    token_hash      TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    purpose         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    challenge_hash  TEXT,
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
-- 'person' or 'service' (a service account: no password, no log-in, API tokens only).
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person';
GRANT SELECT, INSERT, UPDATE, DELETE ON passkeys TO kura_app;
ALTER TABLE passkeys ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkeys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON passkeys
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
GRANT SELECT, INSERT, UPDATE, DELETE ON webauthn_ceremonies TO kura_app;
ALTER TABLE webauthn_ceremonies ENABLE ROW LEVEL SECURITY;
ALTER TABLE webauthn_ceremonies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webauthn_ceremonies
    USING (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on')
    WITH CHECK (tenant_id = current_setting('kura.tenant_id', true) OR current_setting('kura.system', true) = 'on');
