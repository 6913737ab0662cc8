//! Sessions: starting one, authenticating a bearer, idle and absolute expiry, listing and
//! ending them.

use super::*;

/// A session is written back as "seen" at most this often (saves a write per request; the
/// idle timeout is therefore exact to within this many seconds).
pub const TOUCH_INTERVAL_SECS: i64 = 60;

/// How often pending session uses are written.
const TOUCH_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Failed rounds in a row after which pending uses are dropped.
const TOUCH_FLUSH_TRIES: u32 = 30;

/// Sessions' uses not yet written: session id → (tenant, time of use).
#[derive(Default)]
pub struct PendingTouches {
    pending: std::collections::HashMap<String, (TenantId, Timestamp)>,
    /// A flusher task is running.
    flushing: bool,
}

/// Everything a request knows once its token checks out.
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// Set when the caller came with a personal API token: what it may do (`area:read`,
    /// `area:write`). `None` for sessions.
    pub token_scopes: Option<Vec<String>>,
    /// The tenant requires MFA and the user has not enrolled: only enrolment is allowed.
    pub must_enrol_mfa: bool,
    pub principal: Principal,
    /// The user's grants as stored (role names, scopes), for display.
    pub grants: Vec<kura_store::roles::GrantRow>,
    pub user: User,
    pub tenant: Tenant,
    pub session: Session,
}

/// `console` (cookie) or `api` (bearer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Console,
    Api,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Console => "console",
            SessionKind::Api => "api",
        }
    }
}

impl AuthContext {
    /// The built-in roles the user holds (any scope), for role-specific policies.
    pub fn builtin_roles(&self) -> Vec<&'static str> {
        builtin_role_names(&self.grants)
    }
}

/// One of the caller's sessions, as listed to them.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    /// The session this request came with.
    pub current: bool,
    /// When it ends unless used again (idle timeout) and at the latest (absolute).
    pub idle_expires_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Services {
    pub(crate) async fn start_session(
        &self,
        tenant: Tenant,
        user: User,
        kind: SessionKind,
        ctx: &RequestCtx,
        action: &'static str,
    ) -> Result<LoginResult> {
        let now = self.now();
        let token =
            kura_crypto::token::generate("kss").map_err(|_| ServiceError::internal("rng"))?;
        let csrf =
            kura_crypto::token::random_string().map_err(|_| ServiceError::internal("rng"))?;
        let session = Session {
            id: token.hash.clone(),
            tenant_id: tenant.id.clone(),
            user_id: user.id.clone(),
            kind: kind.as_str().to_string(),
            csrf_token: csrf,
            ip: ctx.ip.clone(),
            user_agent: ctx
                .user_agent
                .clone()
                .map(|s| s.chars().take(300).collect()),
            created_at: now,
            last_seen_at: now,
        };
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        sessions::insert(&mut tx, &session).await?;
        let principal = Principal {
            tenant_id: tenant.id.clone(),
            user_id: user.id.clone(),
            grants: vec![],
        };
        self.audit(
            &mut tx,
            &tenant.id,
            &Actor::User(&principal),
            ctx,
            Event::new(action)
                .target("user", &user.id)
                .details(serde_json::json!({ "session_kind": kind.as_str() })),
        )
        .await?;
        tx.commit().await?;
        let expires_at = now.plus_secs(tenant.settings.session_policy.absolute_lifetime_secs);
        Ok(LoginResult {
            token: token.secret,
            session,
            user,
            tenant,
            expires_at,
        })
    }

    /// Resolves a bearer/cookie token to an active user with their grants. Expired sessions,
    /// frozen or deleted users and inactive tenants get `Unauthenticated`.
    pub async fn authenticate(&self, token: &str) -> Result<AuthContext> {
        if token.starts_with("kat_") {
            return self.authenticate_api_token(token).await;
        }
        let hash = kura_crypto::token::hash(token);
        let now = self.now();
        let Some((session, user, tenant, grants)) = sessions::lookup(&self.store, &hash).await?
        else {
            return Err(ServiceError::Unauthenticated);
        };
        let policy = &tenant.settings.session_policy;
        // A use not yet written counts (it is written within a second or so).
        let mut session = session;
        if let Some(t) = self.pending_touch(&session.id) {
            session.last_seen_at = session.last_seen_at.max(t);
        }
        let active = user.status == UserStatus::Active && tenant.status == TenantStatus::Active;
        let mut alive = active && policy.is_alive(session.created_at, session.last_seen_at, now);
        if active && !alive {
            // Idle by this node's copy: a lookup kept in memory carries the last use as it
            // was read, and another node may have written a later one since (last uses do
            // not invalidate kept lookups). The database decides before the session ends.
            if let Some((fresh, ..)) = sessions::lookup_fresh(&self.store, &hash).await? {
                let last = fresh.last_seen_at.max(session.last_seen_at);
                if policy.is_alive(fresh.created_at, last, now) {
                    session.last_seen_at = last;
                    alive = true;
                }
            }
        }
        if !alive {
            let mut tx = self.store.tenant_tx(&tenant.id).await?;
            sessions::delete(&mut tx, &tenant.id, &session.id).await?;
            tx.commit().await?;
            return Err(ServiceError::Unauthenticated);
        }
        // Written at most once a minute — and at least twice per idle period, so that an
        // active session never times out (with a 60 s idle limit: every 30 s).
        let touch_every_ms = (TOUCH_INTERVAL_SECS * 1000).min(policy.idle_timeout_secs * 500);
        if now.0 - session.last_seen_at.0 >= touch_every_ms {
            self.queue_touch(&tenant.id, &session.id, now);
        }
        // The tenant requires a second factor and this user has none yet: the session may
        // only be used to enrol (checked by the HTTP layer for every route).
        let roles = builtin_role_names(&grants);
        let must_enrol_mfa = tenant.settings.mfa_required_for(&roles)
            && !self.has_second_factor(&tenant.id, &user.id).await?;
        Ok(AuthContext {
            token_scopes: None,
            must_enrol_mfa,
            principal: Principal {
                tenant_id: tenant.id.clone(),
                user_id: user.id.clone(),
                grants: grants
                    .iter()
                    .map(|g| g.effective(&tenant.settings))
                    .collect(),
            },
            grants,
            user,
            tenant,
            session,
        })
    }

    /// The not yet written last use of session `id`, if any.
    fn pending_touch(&self, id: &str) -> Option<Timestamp> {
        let t = self.touches.lock().ok()?;
        t.pending.get(id).map(|(_, at)| *at)
    }

    /// Records a session's use to be written with others (a request does not wait for
    /// it): a flusher task writes what is pending about once a second, one transaction per
    /// tenant, and keeps an entry until it is written (so this node's requests see it
    /// meanwhile, and a failed write is tried again).
    fn queue_touch(&self, tenant: &TenantId, id: &str, at: Timestamp) {
        let start = match self.touches.lock() {
            Ok(mut t) => {
                t.pending.insert(id.to_string(), (tenant.clone(), at));
                !std::mem::replace(&mut t.flushing, true)
            }
            Err(_) => false,
        };
        if start {
            let s = self.clone();
            tokio::spawn(async move {
                let mut failures = 0;
                loop {
                    tokio::time::sleep(TOUCH_FLUSH_EVERY).await;
                    let (done, failed) = s.flush_pending().await;
                    if done {
                        break;
                    }
                    failures = if failed { failures + 1 } else { 0 };
                    if failures >= TOUCH_FLUSH_TRIES {
                        // The database is gone (or the store closed): the uses are dropped
                        // — a session then looks idle since its last written use, which is
                        // at most one touch interval earlier.
                        s.drop_pending_touches();
                        break;
                    }
                }
            });
        }
    }

    /// Writes the pending session uses; true when nothing is left pending.
    pub async fn flush_touches(&self) -> bool {
        self.flush_pending().await.0
    }

    fn drop_pending_touches(&self) {
        if let Ok(mut t) = self.touches.lock() {
            tracing::warn!(
                sessions = t.pending.len(),
                "sessions' last use could not be written; dropped"
            );
            t.pending.clear();
            t.flushing = false;
        }
    }

    /// Writes the pending session uses: (nothing left pending — the flusher then stops,
    /// and the next use starts another; a write failed).
    async fn flush_pending(&self) -> (bool, bool) {
        let snapshot: Vec<(String, TenantId, Timestamp)> = match self.touches.lock() {
            Ok(t) => t
                .pending
                .iter()
                .map(|(id, (tenant, at))| (id.clone(), tenant.clone(), *at))
                .collect(),
            Err(_) => return (true, false),
        };
        let mut by_tenant: std::collections::BTreeMap<&TenantId, Vec<(&str, Timestamp)>> =
            Default::default();
        for (id, tenant, at) in &snapshot {
            by_tenant.entry(tenant).or_default().push((id, *at));
        }
        let mut written: Vec<(&str, Timestamp)> = Vec::new();
        let mut failed = false;
        for (tenant, list) in by_tenant {
            let result = sessions::touch_many(&self.store, tenant, &list).await;
            match result {
                Ok(()) => written.extend(list),
                Err(e) => {
                    failed = true;
                    tracing::warn!(error = %e, "writing sessions' last use failed; will retry");
                }
            }
        }
        match self.touches.lock() {
            Ok(mut t) => {
                for (id, at) in written {
                    if t.pending.get(id).is_some_and(|(_, p)| *p == at) {
                        t.pending.remove(id);
                    }
                }
                if t.pending.is_empty() {
                    t.flushing = false;
                    return (true, failed);
                }
                (false, failed)
            }
            Err(_) => (true, failed),
        }
    }

    /// Ends the current session.
    pub async fn logout(&self, auth: &AuthContext, ctx: &RequestCtx) -> Result<()> {
        let mut tx = self.store.tenant_tx(&auth.tenant.id).await?;
        sessions::delete(&mut tx, &auth.tenant.id, &auth.session.id).await?;
        self.audit(
            &mut tx,
            &auth.tenant.id,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("auth.logout").target("user", &auth.user.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The caller's live sessions (IAM-8): device (user agent), address, last use.
    pub async fn my_sessions(&self, auth: &AuthContext) -> Result<Vec<SessionView>> {
        let t = &auth.tenant.id;
        let policy = &auth.tenant.settings.session_policy;
        let now = self.now();
        let mut tx = self.store.tenant_read(t).await?;
        let list = kura_store::sessions::list_for_user(&mut tx, t, &auth.user.id).await?;
        Ok(list
            .into_iter()
            .map(|s| SessionView {
                current: s.id == auth.session.id,
                idle_expires_at: s.last_seen_at.plus_secs(policy.idle_timeout_secs),
                expires_at: s.created_at.plus_secs(policy.absolute_lifetime_secs),
                session: s,
            })
            .filter(|v| v.idle_expires_at > now && v.expires_at > now)
            .collect())
    }

    /// Ends one of the caller's own sessions (another device, or this one). Audited.
    pub async fn end_my_session(
        &self,
        auth: &AuthContext,
        id: &kura_domain::SessionId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let id = id.as_str();
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        if !kura_store::sessions::delete_of_user(&mut tx, t, &auth.user.id, id).await? {
            return Err(ServiceError::NotFound);
        }
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("session.end")
                .target("user", &auth.user.id)
                .details(serde_json::json!({ "session": id.chars().take(12).collect::<String>() })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Admin: ends every session of a user of the tenant (user management right). Audited.
    pub async fn end_user_sessions(
        &self,
        auth: &AuthContext,
        user: &kura_domain::UserId,
        ctx: &RequestCtx,
    ) -> Result<u64> {
        let t = &auth.tenant.id;
        // Another tenant's user is indistinguishable from one that does not exist.
        let mut tx = self.store.tenant_read(t).await?;
        match users::get(&mut tx, t, user).await {
            Ok(_) => drop(tx),
            Err(kura_store::StoreError::NotFound) => {
                drop(tx);
                return Err(self
                    .not_found(&auth.principal, "user", user.as_str(), ctx)
                    .await);
            }
            Err(e) => return Err(e.into()),
        }
        self.require(
            &auth.principal,
            kura_domain::Action::UserManage,
            &kura_domain::Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        // Not the sessions of someone who holds more (a contract admin, an uncapped admin).
        self.require_not_outranked(auth, user, ctx).await?;
        let mut tx = self.store.tenant_tx(t).await?;
        let ended = kura_store::sessions::delete_for_user(&mut tx, t, user).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("user.sessions.end")
                .target("user", user)
                .details(serde_json::json!({ "ended": ended })),
        )
        .await?;
        tx.commit().await?;
        Ok(ended)
    }
}
