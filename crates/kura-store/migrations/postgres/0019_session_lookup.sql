-- The session lookup of every request in one round trip (no BEGIN / set_config / ROLLBACK
-- around it): the function turns on kura.system for its own transaction only (is_local),
-- so the row-level-security policies let it read the one session row by its token hash and
-- the rows joined to it; nothing else can be read through it, and the setting ends with
-- the statement.
CREATE FUNCTION kura_session_lookup(p_hash TEXT)
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
    WHERE s.id = p_hash
    ORDER BY g.created_at, g.id;
END
$$;
