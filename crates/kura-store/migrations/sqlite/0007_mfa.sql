-- Second factors (SQLite). Keep in step with ../postgres/0007_mfa.sql.
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
