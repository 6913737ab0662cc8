-- Withdrawn notices (OPS-5). Keep in step with ../postgres/0017_notice_withdraw.sql.
ALTER TABLE notices ADD COLUMN withdrawn_at BIGINT;
