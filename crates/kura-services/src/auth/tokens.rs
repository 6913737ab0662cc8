//! API tokens: personal and service-account tokens, their scopes (typed areas), authentication
//! and revocation.

use super::*;

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
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub token: String,
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
    pub(crate) async fn service_account(
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

    pub(crate) async fn issue_api_token(
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
        id: &kura_domain::ApiTokenId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let id = id.as_str();
        let owner = auth.user.id.clone();
        self.revoke_token_of(auth, &owner, id, ctx).await
    }

    pub(crate) async fn revoke_token_of(
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
    pub(crate) async fn authenticate_api_token(&self, token: &str) -> Result<AuthContext> {
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
