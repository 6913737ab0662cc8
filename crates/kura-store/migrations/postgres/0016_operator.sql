-- Operator console sessions (OPS-5, OPS-6). Keep in step with ../sqlite/0016_operator.sql.
-- `kura operator login-link` creates a row with a one-time link; redeeming the link sets
-- the session token. Only hashes are stored.
CREATE TABLE operator_sessions (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    link_hash       TEXT NOT NULL UNIQUE,
    link_expires_at BIGINT NOT NULL,
    token_hash      TEXT UNIQUE,
    csrf_token      TEXT,
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    last_seen_at    BIGINT,
    expires_at      BIGINT,
    ended_at        BIGINT
);
GRANT SELECT, INSERT, UPDATE, DELETE ON operator_sessions TO kura_app;
ALTER TABLE operator_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE operator_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON operator_sessions
    USING (current_setting('kura.system', true) = 'on')
    WITH CHECK (current_setting('kura.system', true) = 'on');
