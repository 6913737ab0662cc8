-- Concurrent session lookups in one statement (the store's `session_batch`): the sessions
-- whose token hashes are in `p_hashes` (space-separated hex digests; the `Any` driver binds
-- no arrays) with their users, tenants and grants, one row per grant as in
-- `kura_session_lookup` (migration 19), whose rules it keeps: kura.system is on for this
-- statement's transaction only (is_local), the row-level-security policies still decide,
-- and nothing but the sessions with these hashes and their owners can be read through it.
CREATE FUNCTION kura_session_lookup_many(p_hashes TEXT)
RETURNS TABLE (
    id TEXT, tenant_id TEXT, user_id TEXT, kind TEXT, csrf_token TEXT, ip TEXT,
    user_agent TEXT, created_at BIGINT, last_seen_at BIGINT,
    u_id TEXT, u_tenant_id TEXT, u_email TEXT, u_display_name TEXT, u_locale TEXT,
    u_status TEXT, u_kind TEXT, u_password_hash TEXT, u_created_at BIGINT,
    t_id TEXT, t_slug TEXT, t_name TEXT, t_status TEXT, t_settings TEXT, t_created_at BIGINT,
    g_id TEXT, g_user_id TEXT, g_builtin TEXT, g_role_id TEXT, g_scope_kind TEXT,
    g_scope_id TEXT, g_created_at BIGINT, g_max_label TEXT, g_role_name TEXT,
    g_role_actions TEXT
)
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('kura.system', 'on', true);
    RETURN QUERY
    SELECT s.id, s.tenant_id, s.user_id, s.kind, s.csrf_token, s.ip, s.user_agent,
           s.created_at, s.last_seen_at,
           u.id, u.tenant_id, u.email, u.display_name, u.locale, u.status, u.kind,
           u.password_hash, u.created_at,
           t.id, t.slug, t.name, t.status, t.settings, t.created_at,
           g.id, g.user_id, g.builtin, g.role_id, g.scope_kind, g.scope_id, g.created_at,
           g.max_label, r.name, r.actions
    FROM sessions s
    JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id
    JOIN tenants t ON t.id = s.tenant_id
    LEFT JOIN grants g ON g.user_id = u.id AND g.tenant_id = u.tenant_id
    LEFT JOIN roles r ON r.id = g.role_id AND r.tenant_id = g.tenant_id
    WHERE s.id = ANY (string_to_array(p_hashes, ' '))
    ORDER BY s.id, g.created_at, g.id;
END
$$;

-- The one-at-a-time `kura_session_lookup` (migration 19) is no longer called by this
-- version; it stays for nodes of the previous version while several nodes are upgraded one
-- after another (their lookups read the database every time, so they need no version).

-- Session lookups are kept in memory on every node (the store's `session_cache`) and
-- checked against a version that every transaction changing a row a lookup reads — a
-- session other than its last use, a user, a grant, a role, a tenant — moves on, whoever
-- makes it (a node, the CLI, psql by hand). Each batch of lookups reads the version in a
-- statement that starts after every lookup in it was queued: a version other than the one
-- the node's entries were read at drops them all, so a committed change is in force for
-- the first request after its commit, on every node.
--
-- The version moves at commit (deferred constraint triggers), once per transaction (the
-- transaction-local setting kura.auth_bumped): its row lock is taken last and held only
-- while the transaction commits, so it orders no other locks (no deadlock) and makes
-- concurrent changes wait for one another only for that moment.
CREATE TABLE auth_version (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    v   BIGINT NOT NULL
);
INSERT INTO auth_version (id, v) VALUES (1, 0);
GRANT SELECT, UPDATE ON auth_version TO kura_app;

CREATE FUNCTION kura_auth_bump() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF current_setting('kura.auth_bumped', true) IS DISTINCT FROM 'on' THEN
        -- In the changed table's schema: a change made by hand with another search_path
        -- (psql) moves the version too.
        EXECUTE format('UPDATE %I.auth_version SET v = v + 1 WHERE id = 1', TG_TABLE_SCHEMA);
        PERFORM set_config('kura.auth_bumped', 'on', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER kura_auth_sessions
    AFTER UPDATE OF id, tenant_id, user_id, kind, csrf_token, ip, user_agent, created_at OR DELETE
    ON sessions DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kura_auth_bump();
CREATE CONSTRAINT TRIGGER kura_auth_users AFTER INSERT OR UPDATE OR DELETE
    ON users DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kura_auth_bump();
CREATE CONSTRAINT TRIGGER kura_auth_grants AFTER INSERT OR UPDATE OR DELETE
    ON grants DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kura_auth_bump();
CREATE CONSTRAINT TRIGGER kura_auth_roles AFTER INSERT OR UPDATE OR DELETE
    ON roles DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kura_auth_bump();
CREATE CONSTRAINT TRIGGER kura_auth_tenants AFTER INSERT OR UPDATE OR DELETE
    ON tenants DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kura_auth_bump();
