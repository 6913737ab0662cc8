-- Usage counters per tenant (OPS-4 source data). Keep in step with ../postgres/0005_usage.sql.
CREATE TABLE tenant_usage (
    tenant_id       TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    uploads         BIGINT NOT NULL DEFAULT 0,
    upload_bytes    BIGINT NOT NULL DEFAULT 0,
    downloads       BIGINT NOT NULL DEFAULT 0,
    download_bytes  BIGINT NOT NULL DEFAULT 0
);
