-- Fixes from the outside audit (issue 12). Keep in step with ../postgres/0018_audit_fixes.sql.
-- The newest signed checkpoint mailed to a tenant's contract admins (LOG-5): the
-- publication job mails again only when the chain has a newer one.
ALTER TABLE audit_heads ADD COLUMN published_seq BIGINT NOT NULL DEFAULT 0;
-- Outbox bodies are sealed and emptied once their links and codes have expired.
ALTER TABLE mail_outbox ADD COLUMN body_expires_at BIGINT;
