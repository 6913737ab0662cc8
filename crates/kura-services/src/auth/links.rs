//! One-time links: invitations and password resets share one mechanism (issue, look up, redeem
//! once).

use super::*;

/// What a one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkPurpose {
    Invite,
    Reset,
}

impl LinkPurpose {
    /// The purpose as stored with the link.
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Invite => "invite",
            LinkPurpose::Reset => "reset",
        }
    }

    /// The token's prefix (tells a leaked secret's kind at a glance) and the console path
    /// the link opens.
    fn token_prefix_and_path(self) -> (&'static str, &'static str) {
        match self {
            LinkPurpose::Invite => ("kin", "invite"),
            LinkPurpose::Reset => ("krs", "reset"),
        }
    }
}

/// A freshly issued one-time link: the URL (with the secret, for the mail only) and when it
/// stops working.
pub(crate) struct IssuedLink {
    pub url: String,
    pub expires_at: Timestamp,
}

/// Password-reset mails per account, and reset requests per client address, per window.
const RESETS_PER_ACCOUNT: i64 = 3;

const RESETS_PER_CLIENT: i64 = 10;

const RESET_WINDOW_SECS: i64 = 15 * 60;

impl Services {
    /// Looks up an invitation link without using it (to show the set-password form).
    pub async fn invitation_info(&self, token: &str) -> Result<(Tenant, User)> {
        let (tenant, user) = self.one_time_link(token, LinkPurpose::Invite).await?;
        if user.status != UserStatus::Invited {
            return Err(ServiceError::NotFound);
        }
        Ok((tenant, user))
    }

    /// Issues a one-time link of `purpose` for `user` in `tx`, replacing the user's unused
    /// links of the same purpose. Only the token's hash is stored.
    pub(crate) async fn issue_link(
        &self,
        tx: &mut kura_store::Tx,
        tenant: &Tenant,
        user: &User,
        purpose: LinkPurpose,
    ) -> Result<IssuedLink> {
        let now = self.now();
        let (prefix, path) = purpose.token_prefix_and_path();
        let token =
            kura_crypto::token::generate(prefix).map_err(|_| ServiceError::internal("rng"))?;
        let ttl = match purpose {
            LinkPurpose::Invite => self.config.invitation_ttl_secs,
            LinkPurpose::Reset => self.config.password_reset_ttl_secs,
        };
        let expires_at = now.plus_secs(ttl);
        invitations::revoke_for_user(tx, &tenant.id, &user.id, purpose.as_str(), now).await?;
        invitations::insert(
            tx,
            &invitations::Invitation {
                token_hash: token.hash.clone(),
                tenant_id: tenant.id.clone(),
                user_id: user.id.clone(),
                created_at: now,
                expires_at,
                used_at: None,
                purpose: purpose.as_str().into(),
            },
        )
        .await?;
        let url = format!(
            "{}/{path}/{}",
            self.config.public_url.trim_end_matches('/'),
            token.secret
        );
        Ok(IssuedLink { url, expires_at })
    }

    /// Redeems a one-time link — an invitation or a password reset, one mechanism: the link
    /// must be valid for `purpose`; the password must pass the tenant's policy (a refused
    /// one leaves the link usable); then, in the returned transaction, the link is used up
    /// (once, even under a race) and the password set. The caller adds what its purpose
    /// needs (activation, ending sessions, audit) and commits.
    pub(crate) async fn redeem_link(
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

    /// The tenant and user of an unused, unexpired one-time link of `purpose`.
    pub(crate) async fn one_time_link(
        &self,
        token: &str,
        purpose: LinkPurpose,
    ) -> Result<(Tenant, User)> {
        let hash = kura_crypto::token::hash(token);
        let mut tx = self.store.system_read().await?;
        let inv = invitations::find(&mut tx, &hash)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if inv.used_at.is_some() || self.now() >= inv.expires_at || inv.purpose != purpose.as_str()
        {
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
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        let IssuedLink {
            url: link,
            expires_at,
        } = self
            .issue_link(&mut tx, &tenant, &user, LinkPurpose::Reset)
            .await?;
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
        let (tenant, user) = self.one_time_link(token, LinkPurpose::Reset).await?;
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
