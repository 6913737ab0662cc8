-- Listing and search that stay flat with a million files (PostgreSQL). Keep in step with
-- ../sqlite/0020_file_indexes.sql.
-- Keyset pages of live files, by name or by update time, in a project or tenant-wide.
CREATE INDEX files_live_project_name ON files(tenant_id, project_id, name, id) WHERE deleted_at IS NULL;
CREATE INDEX files_live_project_updated ON files(tenant_id, project_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX files_live_tenant_name ON files(tenant_id, name, id) WHERE deleted_at IS NULL;
CREATE INDEX files_live_tenant_updated ON files(tenant_id, updated_at, id) WHERE deleted_at IS NULL;
-- A project's trash (the console lists it on the project page).
CREATE INDEX files_trash ON files(tenant_id, project_id, name, id) WHERE deleted_at IS NOT NULL;
-- Name search without a full scan: a trigram (pg_trgm) GIN index on lower(name), which the
-- planner uses for `lower(name) LIKE '%…%'`. pg_trgm ships with PostgreSQL (contrib) and is
-- a trusted extension; where the migrating role may not create it, the index is left out
-- and name search scans the tenant's files as before (a notice says so).
DO $$
DECLARE
    ext_schema TEXT;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm not available (%); file name search will scan', SQLERRM;
    END;
    SELECT n.nspname INTO ext_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_trgm';
    IF ext_schema IS NOT NULL THEN
        EXECUTE format('CREATE INDEX files_name_trigrams ON files USING gin (lower(name) %I.gin_trgm_ops)', ext_schema);
    END IF;
END
$$;
