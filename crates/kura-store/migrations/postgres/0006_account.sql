-- Account security (PostgreSQL). Keep in step with ../sqlite/0006_account.sql.
-- Mail delivery state: the outbox is also the SMTP queue.
ALTER TABLE mail_outbox ADD COLUMN sent_at BIGINT;
ALTER TABLE mail_outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mail_outbox ADD COLUMN claimed_until BIGINT;
ALTER TABLE mail_outbox ADD COLUMN last_error TEXT;
CREATE INDEX mail_outbox_unsent ON mail_outbox(created_at) WHERE sent_at IS NULL;
-- One-time links: invitations and password resets.
ALTER TABLE invitations ADD COLUMN purpose TEXT NOT NULL DEFAULT 'invite';
-- Failed-login throttling, per account and per client address (system scope).
CREATE TABLE login_throttle (
    key               TEXT PRIMARY KEY,
    failures          BIGINT NOT NULL,
    window_start      BIGINT NOT NULL,
    locked_until      BIGINT
);
GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle TO kura_app;
ALTER TABLE login_throttle ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_throttle FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON login_throttle
    USING (current_setting('kura.system', true) = 'on')
    WITH CHECK (current_setting('kura.system', true) = 'on');
