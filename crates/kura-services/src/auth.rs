//! Authentication: password login, server-side sessions, logout, invitation acceptance
//! (IAM-3, IAM-8 first part).

use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_domain::tenant::TenantStatus;
use kura_domain::user::UserStatus;
use kura_domain::{Principal, TenantId, Timestamp};
use kura_store::sessions::Session;
use kura_store::tenants::Tenant;
use kura_store::users::User;
use kura_store::{invitations, sessions, tenants, users, SYSTEM_TENANT};

/// A session is written back as "seen" at most this often (saves a write per request; the
/// idle timeout is therefore exact to within this many seconds).
pub const TOUCH_INTERVAL_SECS: i64 = 60;

/// What a one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkPurpose {
    Invite,
    Reset,
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

/// A new session: the secret goes to the client once.
pub struct LoginResult {
    pub token: String,
    pub session: Session,
    pub user: User,
    pub tenant: Tenant,
    pub expires_at: Timestamp,
}

/// What a correct password leads to: a session, or (for a user with a second factor) a
/// challenge the second factor must answer before any session exists.
#[derive(Debug)]
pub enum LoginOutcome {
    Session(Box<LoginResult>),
    SecondFactor {
        challenge: String,
        /// What the user can answer with: `totp`, `recovery_code`, `passkey`.
        methods: Vec<&'static str>,
    },
}

impl std::fmt::Debug for LoginResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResult")
            .field("token", &"<redacted>")
            .field("user", &self.user.id)
            .finish()
    }
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

impl Services {
    /// Password login into a tenant. Unknown tenant, unknown user, wrong password, frozen or
    /// invited user all give the same error after the same Argon2 work.
    pub async fn login(
        &self,
        tenant_slug: &str,
        email: &str,
        password: &str,
        kind: SessionKind,
        ctx: &RequestCtx,
    ) -> Result<LoginOutcome> {
        let email = email.trim().to_lowercase();
        let slug = tenant_slug.trim().to_lowercase();
        let mut tx = self.store.system_read().await?;
        let tenant = tenants::find_by_slug(&mut tx, &slug).await?;
        let user = match &tenant {
            Some(t) => users::find_by_email(&mut tx, &t.id, &email).await?,
            None => None,
        };
        drop(tx);
        // Throttling keys name what was typed, whether or not it exists (IAM-8).
        let keys = throttle_keys(&slug, &email, ctx);
        self.refuse_if_locked(&keys, &slug, &email, tenant.as_ref(), user.as_ref(), ctx)
            .await?;
        // An allowlist for everyone is checked before the password: from elsewhere the
        // answer is the same whether the account exists and the password is right or not.
        if let Some(t) = tenant.as_ref().filter(|t| {
            t.settings.ip_allowlist_roles.is_empty()
                && !t
                    .settings
                    .ip_allowed(ctx.ip.as_deref().and_then(|i| i.parse().ok()), &[])
        }) {
            let mut ev = Event::new("auth.login").result("failure").details(
                serde_json::json!({ "email": email, "reason": "ip_not_allowed", "ip": ctx.ip }),
            );
            if let Some(u) = &user {
                ev = ev.target("user", &u.id);
            }
            self.audit_alone(&t.id, &Actor::Anonymous, ctx, ev).await?;
            return Err(ServiceError::Forbidden);
        }
        let phc = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| kura_crypto::password::dummy_hash().to_string());
        let password_ok = self.verify_password(password.to_string(), phc).await?;

        let (tenant, user) = match (tenant, user) {
            (Some(t), Some(u))
                if password_ok
                    && u.status == UserStatus::Active
                    && t.status == TenantStatus::Active =>
            {
                (t, u)
            }
            (Some(t), user) => {
                let reason = match &user {
                    None => "unknown_user",
                    Some(u) if u.status == UserStatus::Frozen => "frozen",
                    Some(u) if u.status == UserStatus::Invited => "not_activated",
                    Some(_) if t.status != TenantStatus::Active => "tenant_inactive",
                    Some(_) => "bad_password",
                };
                let mut ev = Event::new("auth.login")
                    .result("failure")
                    .details(serde_json::json!({ "email": email, "reason": reason }));
                if let Some(u) = &user {
                    ev = ev.target("user", &u.id);
                }
                self.audit_alone(&t.id, &Actor::Anonymous, ctx, ev).await?;
                self.login_failed(&keys, Some(&t.id), user.as_ref(), &email, ctx)
                    .await?;
                return Err(ServiceError::BadCredentials);
            }
            (None, _) => {
                self.audit_alone(
                    &TenantId::from_string(SYSTEM_TENANT),
                    &Actor::Anonymous,
                    ctx,
                    Event::new("auth.login").result("failure").details(
                        serde_json::json!({ "tenant": tenant_slug, "reason": "unknown_tenant" }),
                    ),
                )
                .await?;
                self.login_failed(&keys, None, None, &email, ctx).await?;
                return Err(ServiceError::BadCredentials);
            }
        };
        self.check_login_ip(&tenant, &user, ctx).await?;
        // A second factor, if the user has one, comes before any session.
        let methods = self.second_factors(&tenant.id, &user.id).await?;
        if !methods.is_empty() {
            let challenge = self.issue_challenge(&tenant.id, &user.id, kind).await?;
            return Ok(LoginOutcome::SecondFactor { challenge, methods });
        }
        let session = self.finish_login(tenant, user, kind, ctx).await?;
        Ok(LoginOutcome::Session(Box::new(session)))
    }

    /// The tenant's IP allowlist (IAM-7) applies before any session exists.
    pub(crate) async fn check_login_ip(
        &self,
        tenant: &Tenant,
        user: &User,
        ctx: &RequestCtx,
    ) -> Result<()> {
        if tenant.settings.ip_allowlist.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.tenant_read(&tenant.id).await?;
        let grants = kura_store::roles::grants_of_user(&mut tx, &tenant.id, &user.id).await?;
        drop(tx);
        let roles = builtin_role_names(&grants);
        let here = ctx.ip.as_deref().and_then(|i| i.parse().ok());
        if tenant.settings.ip_allowed(here, &roles) {
            return Ok(());
        }
        self.audit_alone(
            &tenant.id,
            &Actor::Anonymous,
            ctx,
            Event::new("auth.login")
                .result("failure")
                .target("user", &user.id)
                .details(serde_json::json!({ "reason": "ip_not_allowed", "ip": ctx.ip })),
        )
        .await?;
        Err(ServiceError::Forbidden)
    }

    /// All factors checked: forgets the account's failures (not the address's) and starts
    /// the session.
    pub(crate) async fn finish_login(
        &self,
        tenant: Tenant,
        user: User,
        kind: SessionKind,
        ctx: &RequestCtx,
    ) -> Result<LoginResult> {
        let mut tx = self.store.system_tx().await?;
        kura_store::throttle::clear(&mut tx, &account_key(&tenant.slug, &user.email)).await?;
        tx.commit().await?;
        self.start_session(tenant, user, kind, ctx, "auth.login")
            .await
    }

    /// Refuses (429, audited) while the account or the address is locked.
    async fn refuse_if_locked(
        &self,
        keys: &[String],
        slug: &str,
        email: &str,
        tenant: Option<&Tenant>,
        user: Option<&User>,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let now = self.now();
        let mut locked_for = 0i64;
        let mut tx = self.store.system_read().await?;
        for k in keys {
            if let Some(until) = kura_store::throttle::get(&mut tx, k)
                .await?
                .and_then(|t| t.locked_until)
                .filter(|u| *u > now)
            {
                locked_for = locked_for.max((until.0 - now.0 + 999) / 1000);
            }
        }
        drop(tx);
        if locked_for == 0 {
            return Ok(());
        }
        let chain = tenant
            .map(|t| t.id.clone())
            .unwrap_or_else(|| TenantId::from_string(SYSTEM_TENANT));
        let mut ev = Event::new("auth.login")
            .result("failure")
            .details(serde_json::json!({ "email": email, "tenant": slug, "reason": "locked" }));
        if let Some(u) = user {
            ev = ev.target("user", &u.id);
        }
        self.audit_alone(&chain, &Actor::Anonymous, ctx, ev).await?;
        Err(ServiceError::TooManyAttempts {
            retry_after_secs: locked_for,
        })
    }

    /// A log-in that names no account (a passkey): only the address's lock applies.
    pub(crate) async fn refuse_if_locked_keys(
        &self,
        keys: &[String],
        ctx: &RequestCtx,
    ) -> Result<()> {
        self.refuse_if_locked(keys, "", "", None, None, ctx).await
    }

    /// A refused passkey counts against the client address.
    pub(crate) async fn login_failed_keys(
        &self,
        keys: &[String],
        tenant: Option<&TenantId>,
        ctx: &RequestCtx,
    ) -> Result<()> {
        self.login_failed(keys, tenant, None, "", ctx).await
    }

    /// The second step of a log-in must not get around a lock.
    pub(crate) async fn check_not_locked(
        &self,
        tenant: &Tenant,
        email: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let keys = throttle_keys(&tenant.slug, email, ctx);
        self.refuse_if_locked(&keys, &tenant.slug, email, Some(tenant), None, ctx)
            .await
    }

    /// A wrong second factor counts like a wrong password.
    pub(crate) async fn second_factor_failed(
        &self,
        tenant: &Tenant,
        user: &User,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let keys = throttle_keys(&tenant.slug, &user.email, ctx);
        self.login_failed(&keys, Some(&tenant.id), Some(user), &user.email, ctx)
            .await
    }

    /// Counts a failed login against the account and the address; locks what went over
    /// its limit (audited as `auth.lockout`); then waits the growing delay before the
    /// answer. Known and unknown accounts go through exactly this.
    async fn login_failed(
        &self,
        keys: &[String],
        tenant: Option<&TenantId>,
        user: Option<&User>,
        email: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
        self.metrics.auth_failed();
        let policy = &self.config.login;
        let now = self.now();
        let window = policy.lock_secs * 1000;
        let mut tx = self.store.system_tx().await?;
        let mut worst = 0;
        let mut newly_locked = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let t = kura_store::throttle::record_failure(&mut tx, k, now, window).await?;
            let account = k.starts_with("acct:");
            let max = if account {
                policy.account_max_failures
            } else {
                policy.ip_max_failures
            };
            // The delay grows with the account's failures (the address's when no account
            // was named, as for a passkey).
            if i == 0 {
                worst = t.failures;
            }
            if t.failures >= max {
                kura_store::throttle::lock(&mut tx, k, Timestamp(now.0 + window)).await?;
                newly_locked.push(if account { "account" } else { "address" });
            }
        }
        tx.commit().await?;
        for what in newly_locked {
            let chain = tenant
                .cloned()
                .unwrap_or_else(|| TenantId::from_string(SYSTEM_TENANT));
            let mut ev = Event::new("auth.lockout").result("failure").details(
                serde_json::json!({ "locked": what, "email": email, "minutes": policy.lock_secs / 60 }),
            );
            if let Some(u) = user {
                ev = ev.target("user", &u.id);
            }
            self.audit_alone(&chain, &Actor::Anonymous, ctx, ev).await?;
        }
        let delay = policy.delay_ms(worst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        Ok(())
    }

    async fn start_session(
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
        let mut tx = self.store.system_lookup().await?;
        let Some((session, user, tenant, grants)) =
            sessions::find_with_owner(&mut tx, &hash).await?
        else {
            return Err(ServiceError::Unauthenticated);
        };
        drop(tx);
        let policy = &tenant.settings.session_policy;
        if user.status != UserStatus::Active
            || tenant.status != TenantStatus::Active
            || !policy.is_alive(session.created_at, session.last_seen_at, now)
        {
            let mut tx = self.store.tenant_tx(&tenant.id).await?;
            sessions::delete(&mut tx, &tenant.id, &session.id).await?;
            tx.commit().await?;
            return Err(ServiceError::Unauthenticated);
        }
        // Written at most once a minute — and at least twice per idle period, so that an
        // active session never times out (with a 60 s idle limit: every 30 s).
        let touch_every_ms = (TOUCH_INTERVAL_SECS * 1000).min(policy.idle_timeout_secs * 500);
        if now.0 - session.last_seen_at.0 >= touch_every_ms {
            let mut tx = self.store.tenant_tx(&tenant.id).await?;
            sessions::touch(&mut tx, &tenant.id, &session.id, now).await?;
            tx.commit().await?;
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

    /// Looks up an invitation link without using it (to show the set-password form).
    pub async fn invitation_info(&self, token: &str) -> Result<(Tenant, User)> {
        let (tenant, user) = self.one_time_link(token, "invite").await?;
        if user.status != UserStatus::Invited {
            return Err(ServiceError::NotFound);
        }
        Ok((tenant, user))
    }

    /// The tenant and user of an unused, unexpired one-time link of `purpose`.
    /// Redeems a one-time link — an invitation or a password reset, one mechanism: the link
    /// must be valid for `purpose`; the password must pass the tenant's policy (a refused
    /// one leaves the link usable); then, in the returned transaction, the link is used up
    /// (once, even under a race) and the password set. The caller adds what its purpose
    /// needs (activation, ending sessions, audit) and commits.
    async fn redeem_link(
        &self,
        token: &str,
        purpose: LinkPurpose,
        password: &str,
    ) -> Result<(Tenant, User, kura_store::Tx)> {
        let (tenant, user) = match purpose {
            LinkPurpose::Invite => self.invitation_info(token).await?,
            LinkPurpose::Reset => self.password_reset_info(token).await?,
        };
        tenant
            .settings
            .password_policy
            .check(
                password,
                &[&user.email, &user.display_name, &tenant.name, &tenant.slug],
            )
            .map_err(ServiceError::WeakPassword)?;
        let phc = self.hash_password(password.to_string()).await?;
        let now = self.now();
        let hash = kura_crypto::token::hash(token);
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        if !invitations::mark_used(&mut tx, &tenant.id, &hash, now).await? {
            return Err(ServiceError::NotFound);
        }
        users::set_password(&mut tx, &tenant.id, &user.id, &phc, now).await?;
        Ok((tenant, user, tx))
    }

    async fn one_time_link(&self, token: &str, purpose: &str) -> Result<(Tenant, User)> {
        let hash = kura_crypto::token::hash(token);
        let mut tx = self.store.system_read().await?;
        let inv = invitations::find(&mut tx, &hash)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if inv.used_at.is_some() || self.now() >= inv.expires_at || inv.purpose != purpose {
            return Err(ServiceError::NotFound);
        }
        let tenant = tenants::get(&mut tx, &inv.tenant_id).await?;
        let user = users::get(&mut tx, &inv.tenant_id, &inv.user_id).await?;
        Ok((tenant, user))
    }

    /// Accepts an invitation: checks the password against the tenant's policy, activates the
    /// user and logs them in. The link works once and not after it expires.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
        kind: SessionKind,
        ctx: &RequestCtx,
    ) -> Result<LoginResult> {
        let (tenant, user, mut tx) = self
            .redeem_link(token, LinkPurpose::Invite, password)
            .await?;
        let now = self.now();
        users::set_status(&mut tx, &tenant.id, &user.id, UserStatus::Active, now).await?;
        self.audit(
            &mut tx,
            &tenant.id,
            &Actor::Anonymous,
            ctx,
            Event::new("user.activate").target("user", &user.id),
        )
        .await?;
        tx.commit().await?;
        let user = User {
            status: UserStatus::Active,
            ..user
        };
        self.start_session(tenant, user, kind, ctx, "auth.login")
            .await
    }
}

impl Services {
    /// Asks for a password-reset link (IAM-4). The answer is the same whether or not the
    /// account exists (no enumeration); for an active user a one-time link valid for
    /// `password_reset_ttl_secs` is mailed in their language, replacing older ones. Audited
    /// either way.
    pub async fn request_password_reset(
        &self,
        tenant_slug: &str,
        email: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let email = email.trim().to_lowercase();
        // Throttled per account and per client address (and not at all from an address
        // locked out of log-in): the answer stays the same, only no mail goes out.
        let slug = tenant_slug.trim().to_lowercase();
        let mut throttled = false;
        if let Some(ip) = &ctx.ip {
            throttled |= self
                .rate_limit(
                    &format!("reset:ip:{ip}"),
                    RESETS_PER_CLIENT,
                    RESET_WINDOW_SECS,
                )
                .await
                .is_err();
            let mut tx = self.store.system_read().await?;
            throttled |= kura_store::throttle::get(&mut tx, &format!("ip:{ip}"))
                .await?
                .and_then(|t| t.locked_until)
                .is_some_and(|until| until > self.now());
        }
        throttled |= self
            .rate_limit(
                &format!("reset:acct:{slug}:{email}"),
                RESETS_PER_ACCOUNT,
                RESET_WINDOW_SECS,
            )
            .await
            .is_err();
        if throttled {
            return self
                .audit_alone(
                    &TenantId::from_string(SYSTEM_TENANT),
                    &Actor::Anonymous,
                    ctx,
                    Event::new("auth.password_reset.request")
                        .result("failure")
                        .details(serde_json::json!({ "tenant": tenant_slug, "email": email, "reason": "throttled" })),
                )
                .await;
        }
        let mut tx = self.store.system_read().await?;
        let tenant = tenants::find_by_slug(&mut tx, &slug).await?;
        let user = match &tenant {
            Some(t) => users::find_by_email(&mut tx, &t.id, &email).await?,
            None => None,
        };
        drop(tx);
        let Some(tenant) = tenant.filter(|t| t.status == TenantStatus::Active) else {
            return self
                .audit_alone(
                    &TenantId::from_string(SYSTEM_TENANT),
                    &Actor::Anonymous,
                    ctx,
                    Event::new("auth.password_reset.request")
                        .result("failure")
                        .details(serde_json::json!({ "tenant": tenant_slug, "reason": "unknown_tenant" })),
                )
                .await;
        };
        // Service accounts have no password and no mailbox.
        let Some(user) = user.filter(|u| {
            u.status == UserStatus::Active && u.kind == kura_domain::user::UserKind::Person
        }) else {
            return self
                .audit_alone(
                    &tenant.id,
                    &Actor::Anonymous,
                    ctx,
                    Event::new("auth.password_reset.request")
                        .result("failure")
                        .details(serde_json::json!({ "email": email, "reason": "no_active_user" })),
                )
                .await;
        };
        let now = self.now();
        let token =
            kura_crypto::token::generate("krs").map_err(|_| ServiceError::internal("rng"))?;
        let expires_at = now.plus_secs(self.config.password_reset_ttl_secs);
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        invitations::revoke_for_user(&mut tx, &tenant.id, &user.id, "reset", now).await?;
        invitations::insert(
            &mut tx,
            &invitations::Invitation {
                token_hash: token.hash.clone(),
                tenant_id: tenant.id.clone(),
                user_id: user.id.clone(),
                created_at: now,
                expires_at,
                used_at: None,
                purpose: "reset".into(),
            },
        )
        .await?;
        let link = format!(
            "{}/reset/{}",
            self.config.public_url.trim_end_matches('/'),
            token.secret
        );
        let locale = user
            .locale
            .clone()
            .unwrap_or_else(|| tenant.settings.default_locale.clone());
        let (subject, body) = crate::mail::password_reset(&crate::mail::PasswordReset {
            locale: &locale,
            tenant_name: &tenant.name,
            link: &link,
            expires: &expires_at.format_in_zone(&tenant.settings.time_zone),
        });
        self.enqueue_mail(
            &mut tx,
            Some(&tenant.id),
            &user.email,
            subject,
            body,
            now,
            expires_at,
        )
        .await?;
        self.audit(
            &mut tx,
            &tenant.id,
            &Actor::Anonymous,
            ctx,
            Event::new("auth.password_reset.request").target("user", &user.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant and user of a valid (unused, unexpired) reset link.
    pub async fn password_reset_info(&self, token: &str) -> Result<(Tenant, User)> {
        let (tenant, user) = self.one_time_link(token, "reset").await?;
        if user.status != UserStatus::Active || tenant.status != TenantStatus::Active {
            return Err(ServiceError::NotFound);
        }
        Ok((tenant, user))
    }

    /// Sets a new password with a reset link: the link works once and not after it
    /// expires; the password must pass the tenant's policy (a refused one leaves the link
    /// usable); every session of the user ends in the same transaction. Audited.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        password: &str,
        ctx: &RequestCtx,
    ) -> Result<Tenant> {
        let (tenant, user, mut tx) = self
            .redeem_link(token, LinkPurpose::Reset, password)
            .await?;
        let ended = kura_store::sessions::delete_for_user(&mut tx, &tenant.id, &user.id).await?;
        self.audit(
            &mut tx,
            &tenant.id,
            &Actor::Anonymous,
            ctx,
            Event::new("auth.password_reset")
                .target("user", &user.id)
                .details(serde_json::json!({ "sessions_ended": ended })),
        )
        .await?;
        tx.commit().await?;
        // A reset link lifts a lock on the account.
        let mut sys = self.store.system_tx().await?;
        kura_store::throttle::clear(&mut sys, &account_key(&tenant.slug, &user.email)).await?;
        sys.commit().await?;
        Ok(tenant)
    }
}

/// The throttling key of an account (tenant slug + e-mail as typed).
fn account_key(slug: &str, email: &str) -> String {
    format!("acct:{slug}:{email}")
}

/// The throttling keys of a login attempt: the account first, then the client address.
fn throttle_keys(slug: &str, email: &str, ctx: &RequestCtx) -> Vec<String> {
    let mut keys = vec![account_key(slug, email)];
    if let Some(ip) = &ctx.ip {
        keys.push(format!("ip:{ip}"));
    }
    keys
}

impl AuthContext {
    /// The built-in roles the user holds (any scope), for role-specific policies.
    pub fn builtin_roles(&self) -> Vec<&'static str> {
        builtin_role_names(&self.grants)
    }
}

/// The built-in role names among grants (any scope), each once.
pub(crate) fn builtin_role_names(grants: &[kura_store::roles::GrantRow]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = grants
        .iter()
        .filter_map(|g| match &g.role {
            kura_store::roles::RoleRef::Builtin { role } => Some(role.as_str()),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl Services {
    /// Records a request refused by the tenant's IP allowlist (IAM-7).
    pub async fn record_ip_denial(&self, auth: &AuthContext, ctx: &RequestCtx) {
        let ev = Event::new("access.denied")
            .result("denied")
            .target("user", &auth.user.id)
            .details(serde_json::json!({ "reason": "ip_not_allowed", "ip": ctx.ip }));
        if let Err(e) = self
            .audit_alone(&auth.tenant.id, &Actor::User(&auth.principal), ctx, ev)
            .await
        {
            tracing::error!(error = %e, "could not audit an IP denial");
        }
    }
}

/// One of the caller's sessions, as listed to them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionView {
    #[serde(flatten)]
    pub session: Session,
    /// The session this request came with.
    pub current: bool,
    /// When it ends unless used again (idle timeout) and at the latest (absolute).
    pub idle_expires_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Services {
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
        id: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
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

/// Password-reset mails per account, and reset requests per client address, per window.
const RESETS_PER_ACCOUNT: i64 = 3;
const RESETS_PER_CLIENT: i64 = 10;
const RESET_WINDOW_SECS: i64 = 15 * 60;

/// The areas API-token scopes name, each `:read` or `:write` (write includes read).
pub const TOKEN_AREAS: &[&str] = &["workspace", "files", "users", "roles", "logs", "tenant"];

/// The part of the API a route belongs to: its OpenAPI tag, and the scope area an API token
/// needs for it. Every route declares one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiArea {
    Health,
    Auth,
    Me,
    Workspace,
    Files,
    Users,
    Roles,
    Logs,
    Tenant,
}

impl ApiArea {
    /// The OpenAPI tag.
    pub fn tag(self) -> &'static str {
        match self {
            ApiArea::Health => "health",
            ApiArea::Auth => "auth",
            ApiArea::Me => "me",
            ApiArea::Workspace => "workspace",
            ApiArea::Files => "files",
            ApiArea::Users => "users",
            ApiArea::Roles => "roles",
            ApiArea::Logs => "logs",
            ApiArea::Tenant => "tenant",
        }
    }

    /// The scope area API tokens name for it (`<area>:read|write`); `None` where tokens
    /// have no scope (credentials, health).
    pub fn token_area(self) -> Option<&'static str> {
        match self {
            ApiArea::Workspace
            | ApiArea::Files
            | ApiArea::Users
            | ApiArea::Roles
            | ApiArea::Logs
            | ApiArea::Tenant => Some(self.tag()),
            ApiArea::Health | ApiArea::Auth | ApiArea::Me => None,
        }
    }

    /// Whether a token with `scopes` may make a request here (`read`: GET or HEAD). Tokens
    /// never reach credential management; of the caller's own account only `GET /me`.
    pub fn token_allows(self, scopes: &[String], read: bool) -> bool {
        match self.token_area() {
            Some(area) => {
                scopes.iter().any(|s| *s == format!("{area}:write"))
                    || (read && scopes.iter().any(|s| *s == format!("{area}:read")))
            }
            None => self == ApiArea::Me && read,
        }
    }
}

/// A new API token: the secret is shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewApiToken {
    pub token: String,
    #[serde(flatten)]
    pub info: kura_store::api_tokens::ApiToken,
}

impl Services {
    /// Creates a personal API token with scopes and an expiry (at most 365 days). Tokens
    /// act as their user, never beyond the user's own rights, and only within their scopes.
    /// Audited; the secret is returned once and stored as a hash.
    pub async fn create_api_token(
        &self,
        auth: &AuthContext,
        name: &str,
        scopes: Vec<String>,
        expires_in_days: i64,
        ctx: &RequestCtx,
    ) -> Result<NewApiToken> {
        if auth.token_scopes.is_some() {
            return Err(ServiceError::Forbidden);
        }
        let owner = auth.user.id.clone();
        self.issue_api_token(auth, &owner, name, scopes, expires_in_days, ctx)
            .await
    }

    /// Admin: issues an API token for a service account of the tenant (the token acts as
    /// the account, with the roles granted to it, within its scopes).
    pub async fn create_service_token(
        &self,
        auth: &AuthContext,
        account: &kura_domain::UserId,
        name: &str,
        scopes: Vec<String>,
        expires_in_days: i64,
        ctx: &RequestCtx,
    ) -> Result<NewApiToken> {
        let user = self.service_account(auth, account, true, ctx).await?;
        self.issue_api_token(auth, &user.id, name, scopes, expires_in_days, ctx)
            .await
    }

    /// A service account of the caller's tenant, for a token operation: unknown ids are
    /// "not found" before any permission check; people are not service accounts.
    async fn service_account(
        &self,
        auth: &AuthContext,
        account: &kura_domain::UserId,
        write: bool,
        ctx: &RequestCtx,
    ) -> Result<User> {
        let (user, _) = self.get_user(auth, account, ctx).await?;
        let t = &auth.tenant.id;
        let action = if write {
            kura_domain::Action::UserManage
        } else {
            kura_domain::Action::UserRead
        };
        self.require(
            &auth.principal,
            action,
            &kura_domain::Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        if auth.token_scopes.is_some() && write {
            // Tokens never mint tokens.
            return Err(ServiceError::Forbidden);
        }
        if user.kind != kura_domain::user::UserKind::Service {
            return Err(ServiceError::invalid(
                "user",
                "is not a service account (people create their own tokens)",
            ));
        }
        if write {
            // A token acts as the account: nobody mints one for an account that holds more
            // than they do.
            self.require_not_outranked(auth, &user.id, ctx).await?;
        }
        Ok(user)
    }

    pub async fn list_service_tokens(
        &self,
        auth: &AuthContext,
        account: &kura_domain::UserId,
        ctx: &RequestCtx,
    ) -> Result<Vec<kura_store::api_tokens::ApiToken>> {
        let user = self.service_account(auth, account, false, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::api_tokens::list_for_user(&mut tx, t, &user.id).await?)
    }

    pub async fn revoke_service_token(
        &self,
        auth: &AuthContext,
        account: &kura_domain::UserId,
        id: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let user = self.service_account(auth, account, true, ctx).await?;
        self.revoke_token_of(auth, &user.id, id, ctx).await
    }

    async fn issue_api_token(
        &self,
        auth: &AuthContext,
        owner: &kura_domain::UserId,
        name: &str,
        scopes: Vec<String>,
        expires_in_days: i64,
        ctx: &RequestCtx,
    ) -> Result<NewApiToken> {
        let name = kura_domain::validate_name("name", name)?;
        if scopes.is_empty() {
            return Err(ServiceError::invalid("scopes", "name at least one scope"));
        }
        for sc in &scopes {
            let ok = sc
                .split_once(':')
                .is_some_and(|(a, m)| TOKEN_AREAS.contains(&a) && (m == "read" || m == "write"));
            if !ok {
                return Err(ServiceError::invalid(
                    "scopes",
                    format!(
                        "unknown scope {sc:?}: use <area>:read or <area>:write, areas {}",
                        TOKEN_AREAS.join(", ")
                    ),
                ));
            }
        }
        if !(1..=365).contains(&expires_in_days) {
            return Err(ServiceError::invalid("expires_in_days", "must be 1 to 365"));
        }
        let now = self.now();
        let token =
            kura_crypto::token::generate("kat").map_err(|_| ServiceError::internal("rng"))?;
        let info = kura_store::api_tokens::ApiToken {
            id: kura_domain::ids::new_id(),
            tenant_id: auth.tenant.id.clone(),
            user_id: owner.clone(),
            name,
            scopes,
            created_at: now,
            expires_at: Some(now.plus_secs(expires_in_days * 86_400)),
            last_used_at: None,
            revoked_at: None,
        };
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        kura_store::api_tokens::insert(&mut tx, &info, &token.hash).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("token.create")
                .target("api_token", &info.id)
                .details(serde_json::json!({ "name": info.name, "owner": owner, "scopes": info.scopes, "expires_at": info.expires_at })),
        )
        .await?;
        tx.commit().await?;
        Ok(NewApiToken {
            token: token.secret,
            info,
        })
    }

    pub async fn list_api_tokens(
        &self,
        auth: &AuthContext,
    ) -> Result<Vec<kura_store::api_tokens::ApiToken>> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::api_tokens::list_for_user(&mut tx, t, &auth.user.id).await?)
    }

    pub async fn revoke_api_token(
        &self,
        auth: &AuthContext,
        id: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let owner = auth.user.id.clone();
        self.revoke_token_of(auth, &owner, id, ctx).await
    }

    async fn revoke_token_of(
        &self,
        auth: &AuthContext,
        owner: &kura_domain::UserId,
        id: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        if !kura_store::api_tokens::revoke(&mut tx, t, owner, id, self.now()).await? {
            return Err(ServiceError::NotFound);
        }
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("token.revoke").target("api_token", id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A personal API token: live (not revoked, not expired), its user active (a frozen
    /// user's tokens stop at once), its tenant active.
    async fn authenticate_api_token(&self, token: &str) -> Result<AuthContext> {
        let hash = kura_crypto::token::hash(token);
        let now = self.now();
        let mut tx = self.store.system_lookup().await?;
        let Some(tok) = kura_store::api_tokens::find_by_hash(&mut tx, &hash).await? else {
            return Err(ServiceError::Unauthenticated);
        };
        if tok.revoked_at.is_some() || tok.expires_at.is_some_and(|e| e <= now) {
            return Err(ServiceError::Unauthenticated);
        }
        let tenant = tenants::get(&mut tx, &tok.tenant_id).await?;
        let user = users::get(&mut tx, &tok.tenant_id, &tok.user_id).await?;
        drop(tx);
        if user.status != UserStatus::Active || tenant.status != TenantStatus::Active {
            return Err(ServiceError::Unauthenticated);
        }
        let mut tx = self.store.tenant_read(&tenant.id).await?;
        let grants = kura_store::roles::grants_of_user(&mut tx, &tenant.id, &user.id).await?;
        drop(tx);
        if tok
            .last_used_at
            .is_none_or(|l| now.0 - l.0 > TOUCH_INTERVAL_SECS * 1000)
        {
            let mut tx = self.store.tenant_tx(&tenant.id).await?;
            kura_store::api_tokens::touch(&mut tx, &tenant.id, &tok.id, now).await?;
            tx.commit().await?;
        }
        let must_enrol_mfa = false;
        Ok(AuthContext {
            token_scopes: Some(tok.scopes.clone()),
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
            session: Session {
                id: format!("token:{}", tok.id),
                tenant_id: tenant.id.clone(),
                user_id: user.id.clone(),
                kind: "token".into(),
                csrf_token: String::new(),
                ip: None,
                user_agent: None,
                created_at: tok.created_at,
                last_seen_at: now,
            },
            user,
            tenant,
        })
    }
}

#[cfg(test)]
mod area_tests {
    use super::ApiArea;

    #[test]
    fn areas_and_token_scopes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(ApiArea::Files.token_allows(&s(&["files:read"]), true));
        assert!(!ApiArea::Files.token_allows(&s(&["files:read"]), false));
        assert!(ApiArea::Files.token_allows(&s(&["files:write"]), false));
        assert!(!ApiArea::Workspace.token_allows(&s(&["files:write"]), true));
        // Credentials: never; the caller's own account: read only.
        assert!(!ApiArea::Auth.token_allows(&s(&["users:write"]), true));
        assert!(ApiArea::Me.token_allows(&s(&[]), true));
        assert!(!ApiArea::Me.token_allows(&s(&["users:write"]), false));
        // Every token area is one the scopes may name.
        for a in [
            ApiArea::Workspace,
            ApiArea::Files,
            ApiArea::Users,
            ApiArea::Roles,
            ApiArea::Logs,
            ApiArea::Tenant,
        ] {
            assert!(super::TOKEN_AREAS.contains(&a.token_area().unwrap()));
        }
    }
}
