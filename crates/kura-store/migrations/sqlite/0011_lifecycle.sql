-- Tenant termination (OPS-3, DATA-4, CRY-3). Keep in step with ../postgres/0011_lifecycle.sql.
CREATE TABLE tenant_lifecycle (
    tenant_id      TEXT PRIMARY KEY,
    slug           TEXT NOT NULL,
    terminated_at  BIGINT NOT NULL,
    delete_after   BIGINT NOT NULL,
    shred_after    BIGINT NOT NULL,
    deleted_at     BIGINT,
    deletion       TEXT,
    shredded_at    BIGINT,
    certificate    TEXT,
    -- The contract admin's export link (hash), valid until delete_after.
    export_token_hash TEXT
);
