//! Password log-in: one answer for every failure, the throttle (account and address locks), the
//! IP allowlist, and the outcome (a session or a second-factor challenge).

use super::*;

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

/// The throttling key of an account (tenant slug + e-mail as typed).
pub(crate) fn account_key(slug: &str, email: &str) -> String {
    format!("acct:{slug}:{email}")
}

/// The throttling keys of a login attempt: the account first, then the client address.
pub(crate) fn throttle_keys(slug: &str, email: &str, ctx: &RequestCtx) -> Vec<String> {
    let mut keys = vec![account_key(slug, email)];
    if let Some(ip) = &ctx.ip {
        keys.push(format!("ip:{ip}"));
    }
    keys
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
    pub(crate) async fn refuse_if_locked(
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
    pub(crate) async fn login_failed(
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
