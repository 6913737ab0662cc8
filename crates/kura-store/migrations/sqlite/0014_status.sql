-- Health probes for the status page (OPS-7). Keep in step with ../postgres/0014_status.sql.
CREATE TABLE status_samples (
    at        BIGINT PRIMARY KEY,
    ok        BIGINT NOT NULL,
    detail    TEXT NOT NULL
);
