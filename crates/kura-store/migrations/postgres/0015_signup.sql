-- Self-service sign-up (TEN-2). Keep in step with ../sqlite/0015_signup.sql.
CREATE TABLE signups (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    locale      TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    expires_at  BIGINT NOT NULL,
    token_hash  TEXT,
    used_at     BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX signups_email ON signups(email);
GRANT SELECT, INSERT, UPDATE, DELETE ON signups TO kura_app;
ALTER TABLE signups ENABLE ROW LEVEL SECURITY;
ALTER TABLE signups FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON signups
    USING (current_setting('kura.system', true) = 'on')
    WITH CHECK (current_setting('kura.system', true) = 'on');
