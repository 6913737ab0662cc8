-- Every node keeps the session lookups it answered in memory (PostgreSQL only); the
-- database itself says when one may have changed. Any committed change to a row the
-- lookup reads (a session other than its last use, a user, a grant, a role, a tenant) —
-- by any node, a job or by hand — sends the tenant's id on the channel `kura_auth`, and
-- every node drops what it holds of that tenant. PostgreSQL sends a notification when the
-- transaction commits, once per distinct payload.
CREATE FUNCTION kura_auth_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('kura_auth', COALESCE(NEW.id, OLD.id));
    ELSE
        PERFORM pg_notify('kura_auth', COALESCE(NEW.tenant_id, OLD.tenant_id));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER kura_auth_sessions AFTER UPDATE ON sessions FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_seen_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_seen_at'))
    EXECUTE FUNCTION kura_auth_changed();
CREATE TRIGGER kura_auth_sessions_gone AFTER DELETE ON sessions FOR EACH ROW
    EXECUTE FUNCTION kura_auth_changed();
CREATE TRIGGER kura_auth_users AFTER INSERT OR UPDATE OR DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION kura_auth_changed();
CREATE TRIGGER kura_auth_grants AFTER INSERT OR UPDATE OR DELETE ON grants FOR EACH ROW
    EXECUTE FUNCTION kura_auth_changed();
CREATE TRIGGER kura_auth_roles AFTER INSERT OR UPDATE OR DELETE ON roles FOR EACH ROW
    EXECUTE FUNCTION kura_auth_changed();
CREATE TRIGGER kura_auth_tenants AFTER INSERT OR UPDATE OR DELETE ON tenants FOR EACH ROW
    EXECUTE FUNCTION kura_auth_changed();
