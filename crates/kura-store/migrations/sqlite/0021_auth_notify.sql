-- Session lookups are kept in memory (`session_cache`) and checked against a version that
-- every change to a row the lookup reads moves on — a session other than its last use, a
-- user, a grant, a role, a tenant — in the transaction that makes it, from this process
-- or any other (the CLI, sqlite3 by hand). A request reads the version first: one changed
-- since an entry was kept drops every entry. (PostgreSQL: notifications, same version.)
CREATE TABLE auth_version (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    v   INTEGER NOT NULL
);
INSERT INTO auth_version (id, v) VALUES (1, 0);

CREATE TRIGGER kura_auth_sessions AFTER UPDATE OF id, tenant_id, user_id, kind, csrf_token, ip, user_agent, created_at ON sessions
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_sessions_gone AFTER DELETE ON sessions
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;

CREATE TRIGGER kura_auth_users_ins AFTER INSERT ON users
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_users_upd AFTER UPDATE ON users
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_users_del AFTER DELETE ON users
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;

CREATE TRIGGER kura_auth_grants_ins AFTER INSERT ON grants
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_grants_upd AFTER UPDATE ON grants
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_grants_del AFTER DELETE ON grants
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;

CREATE TRIGGER kura_auth_roles_ins AFTER INSERT ON roles
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_roles_upd AFTER UPDATE ON roles
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_roles_del AFTER DELETE ON roles
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;

CREATE TRIGGER kura_auth_tenants_ins AFTER INSERT ON tenants
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_tenants_upd AFTER UPDATE ON tenants
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER kura_auth_tenants_del AFTER DELETE ON tenants
BEGIN UPDATE auth_version SET v = v + 1 WHERE id = 1; END;
