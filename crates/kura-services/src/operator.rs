//! The operator console's sign-in. An operator with the CLI (and so with the deployment's
//! configuration and database) runs `kura operator login-link --name NAME`: a one-time link
//! valid for ten minutes. Opening it and confirming starts an operator session — 8 hours at
//! most, ended after 30 idle minutes — with its own cookie and CSRF token. Operator sessions
//! manage notices and incidents; they reach no tenant's data (IAM-10). Every step is in the
//! system audit chain under the session's name.

use crate::{Actor, Event, Operator, RequestCtx, Result, ServiceError, Services};
use kura_domain::Timestamp;
use kura_store::operator as store;

pub const LINK_SECS: i64 = 10 * 60;
pub const SESSION_SECS: i64 = 8 * 3600;
pub const IDLE_SECS: i64 = 30 * 60;

/// A live operator console session.
#[derive(Debug, Clone)]
pub struct OperatorAuth {
    pub session_id: String,
    pub name: String,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

impl OperatorAuth {
    pub fn operator(&self) -> Operator<'_> {
        Operator::Console(&self.name)
    }
}

/// A tenant in the operator console.
#[derive(Debug, Clone)]
pub struct TenantLine {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub status: &'static str,
}

fn system_chain() -> kura_domain::TenantId {
    kura_domain::TenantId::from_string(kura_store::SYSTEM_TENANT)
}

/// A console name: 1–64 letters, digits, `.`, `_`, `-` or `@`.
fn valid_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(ServiceError::invalid(
            "name",
            "1–64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    Ok(name)
}

impl Services {
    /// A one-time console login link for `name` (CLI). Returns the secret and its expiry.
    pub async fn operator_login_link(
        &self,
        name: &str,
        ctx: &RequestCtx,
    ) -> Result<(String, Timestamp)> {
        let name = valid_name(name)?;
        let link =
            kura_crypto::token::generate("kol").map_err(|_| ServiceError::internal("rng"))?;
        let now = self.now();
        let expires = now.plus_secs(LINK_SECS);
        let id = kura_domain::ids::new_id();
        let mut tx = self.store.system_tx().await?;
        store::insert_link(&mut tx, &id, name, &link.hash, expires, now).await?;
        self.audit(
            &mut tx,
            &system_chain(),
            &Actor::Operator,
            ctx,
            Event::new("operator.login_link")
                .target("operator_session", &id)
                .details(serde_json::json!({ "name": name, "expires_at": expires.to_rfc3339() })),
        )
        .await?;
        tx.commit().await?;
        Ok((link.secret, expires))
    }

    /// Can this link still be redeemed? (the confirmation page)
    pub async fn operator_link_pending(&self, link: &str) -> Result<bool> {
        let mut tx = self.store.system_read().await?;
        Ok(store::link_pending(&mut tx, &kura_crypto::token::hash(link), self.now()).await?)
    }

    /// Redeems a login link once; returns the session and its token (for the cookie).
    pub async fn operator_redeem_link(
        &self,
        link: &str,
        ctx: &RequestCtx,
    ) -> Result<(OperatorAuth, String)> {
        let token =
            kura_crypto::token::generate("kos").map_err(|_| ServiceError::internal("rng"))?;
        let csrf =
            kura_crypto::token::random_string().map_err(|_| ServiceError::internal("rng"))?;
        let now = self.now();
        let mut tx = self.store.system_tx().await?;
        let Some(s) = store::redeem(
            &mut tx,
            &kura_crypto::token::hash(link),
            &token.hash,
            &csrf,
            now.plus_secs(SESSION_SECS),
            now,
        )
        .await?
        else {
            drop(tx);
            // A used, expired or unknown link: recorded, and the same answer for all three.
            let mut tx = self.store.system_tx().await?;
            self.audit(
                &mut tx,
                &system_chain(),
                &Actor::Anonymous,
                ctx,
                Event::new("operator.login").result("failure"),
            )
            .await?;
            tx.commit().await?;
            return Err(ServiceError::Unauthenticated);
        };
        self.audit(
            &mut tx,
            &system_chain(),
            &Actor::OperatorConsole(&s.name),
            ctx,
            Event::new("operator.login").target("operator_session", &s.id),
        )
        .await?;
        tx.commit().await?;
        Ok((
            OperatorAuth {
                session_id: s.id,
                name: s.name,
                csrf_token: csrf,
                expires_at: s.expires_at.unwrap_or(now),
            },
            token.secret,
        ))
    }

    /// The operator session behind a cookie: live, not idle for too long.
    pub async fn operator_authenticate(&self, token: &str) -> Result<OperatorAuth> {
        if !token.starts_with("kos_") {
            return Err(ServiceError::Unauthenticated);
        }
        let now = self.now();
        let mut tx = self.store.system_tx().await?;
        let s = store::by_token(&mut tx, &kura_crypto::token::hash(token), now)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let seen = s.last_seen_at.or(s.started_at).unwrap_or(s.created_at);
        if now.0 - seen.0 > IDLE_SECS * 1000 {
            store::end(&mut tx, Some(&s.id), now).await?;
            tx.commit().await?;
            return Err(ServiceError::Unauthenticated);
        }
        if now.0 - seen.0 > 60_000 {
            store::touch(&mut tx, &s.id, now).await?;
        }
        tx.commit().await?;
        Ok(OperatorAuth {
            session_id: s.id,
            name: s.name,
            csrf_token: s.csrf_token.unwrap_or_default(),
            expires_at: s.expires_at.unwrap_or(now),
        })
    }

    pub async fn operator_logout(&self, auth: &OperatorAuth, ctx: &RequestCtx) -> Result<()> {
        let mut tx = self.store.system_tx().await?;
        store::end(&mut tx, Some(&auth.session_id), self.now()).await?;
        self.audit(
            &mut tx,
            &system_chain(),
            &Actor::OperatorConsole(&auth.name),
            ctx,
            Event::new("operator.logout").target("operator_session", &auth.session_id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends every operator console session and unused link (CLI). Returns how many.
    pub async fn operator_end_sessions(&self, ctx: &RequestCtx) -> Result<u64> {
        let mut tx = self.store.system_tx().await?;
        let n = store::end(&mut tx, None, self.now()).await?;
        self.audit(
            &mut tx,
            &system_chain(),
            &Actor::Operator,
            ctx,
            Event::new("operator.sessions_end").details(serde_json::json!({ "ended": n })),
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Console sessions and links, newest first (CLI).
    pub async fn operator_sessions(&self) -> Result<Vec<store::OperatorSession>> {
        let mut tx = self.store.system_read().await?;
        Ok(store::list(&mut tx, 50).await?)
    }

    /// Tenants as the operator console sees them (to target notices and incidents): id,
    /// slug, name, status — no tenant data (IAM-10).
    pub async fn operator_tenant_lines(&self) -> Result<Vec<TenantLine>> {
        let mut tx = self.store.system_read().await?;
        Ok(kura_store::tenants::list_all(&mut tx)
            .await?
            .into_iter()
            .map(|t| TenantLine {
                id: t.id.as_str().to_string(),
                slug: t.slug,
                name: t.name,
                status: t.status.as_str(),
            })
            .collect())
    }

    /// How many contact addresses an incident notification goes to.
    pub async fn operator_incident_recipients(
        &self,
        i: &kura_store::incidents::Incident,
    ) -> Result<usize> {
        let mut tx = self.store.system_read().await?;
        let mut n = 0;
        for t in kura_store::tenants::list_all(&mut tx).await? {
            if i.concerns(&t.id) {
                n += crate::notices::recipients(&mut tx, &t.id).await?.len();
            }
        }
        Ok(n)
    }
}
