-- Service notices (OPS-5). Keep in step with ../postgres/0012_notices.sql.
CREATE TABLE notices (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    title_ja      TEXT NOT NULL,
    title_en      TEXT NOT NULL,
    body_ja       TEXT NOT NULL,
    body_en       TEXT NOT NULL,
    published_at  BIGINT NOT NULL,
    effective_at  BIGINT NOT NULL,
    show_until    BIGINT NOT NULL,
    tenants       TEXT NOT NULL
);
