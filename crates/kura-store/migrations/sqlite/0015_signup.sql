-- Self-service sign-up (TEN-2). Keep in step with ../postgres/0015_signup.sql.
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
