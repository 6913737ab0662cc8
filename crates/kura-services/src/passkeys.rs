//! Passkeys (IAM-5) through webauthn-rs: registration, use as a second factor, and
//! passwordless log-in with a discoverable credential.
//!
//! Every ceremony's state lives in the database under a single-use token that expires in
//! minutes, so a ceremony started on one node can finish on another. A use is recorded with
//! a conditional update on the signature counter: a counter that does not grow is refused
//! (a cloned authenticator), and two uses of one value cannot both pass.

use crate::auth::{AuthContext, LoginResult, SessionKind};
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kura_domain::tenant::TenantStatus;
use kura_domain::user::UserStatus;
use kura_domain::{TenantId, Timestamp, UserId};
use kura_store::passkeys::{self as store, Ceremony, PasskeyRow};
use kura_store::{mfa, tenants, users};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

/// How long a browser has to answer a ceremony.
const CEREMONY_SECS: i64 = 5 * 60;

/// A ceremony started: its token (to send back with the answer) and the options for
/// `navigator.credentials.create()` / `.get()` (`{"publicKey": …}`).
#[derive(Debug, Clone)]
pub struct CeremonyStart {
    pub ceremony: String,
    pub options: serde_json::Value,
}

/// A registered passkey as its owner sees it.
#[derive(Debug, Clone)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl From<&PasskeyRow> for PasskeyView {
    fn from(p: &PasskeyRow) -> Self {
        PasskeyView {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// A passkey added; recovery codes when the user had none (shown once).
#[derive(Debug, Clone)]
pub struct PasskeyAdded {
    pub passkey: PasskeyView,
    pub recovery_codes: Option<Vec<String>>,
}

fn corrupt(_: serde_json::Error) -> ServiceError {
    ServiceError::internal("stored passkey state")
}

fn user_uuid(u: &UserId) -> Result<Uuid> {
    Uuid::parse_str(u.as_str()).map_err(|_| ServiceError::internal("user id is not a UUID"))
}

impl Services {
    /// The relying party: its id is the host of `public_url`, its origin that URL's origin.
    fn webauthn(&self) -> Result<Webauthn> {
        let url = Url::parse(&self.config.public_url)
            .map_err(|_| ServiceError::internal("public_url is not a URL"))?;
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|_| ServiceError::internal("public_url has no origin"))?;
        let rp_id = url
            .host_str()
            .ok_or_else(|| ServiceError::internal("public_url has no host"))?;
        WebauthnBuilder::new(rp_id, &origin)
            .and_then(|b| b.rp_name("Kura").build())
            .map_err(|e| ServiceError::internal(format!("WebAuthn configuration: {e}")))
    }

    async fn put_ceremony(&self, c: Ceremony) -> Result<String> {
        let token =
            kura_crypto::token::generate("kwa").map_err(|_| ServiceError::internal("rng"))?;
        let mut tx = self.store.tenant_tx(&c.tenant_id).await?;
        store::insert_ceremony(&mut tx, &token.hash, &c, self.now()).await?;
        tx.commit().await?;
        Ok(token.secret)
    }

    /// Takes a ceremony for `purpose`: found, not expired, and consumed by this call (a
    /// second answer to one ceremony finds nothing).
    async fn take_ceremony(&self, token: &str, purpose: &str) -> Result<Option<Ceremony>> {
        let hash = kura_crypto::token::hash(token);
        let mut tx = self.store.system_read().await?;
        let Some(c) = store::find_ceremony(&mut tx, &hash).await? else {
            return Ok(None);
        };
        drop(tx);
        let mut tx = self.store.tenant_tx(&c.tenant_id).await?;
        let taken = store::take_ceremony(&mut tx, &c.tenant_id, &hash).await?;
        tx.commit().await?;
        if !taken || c.purpose != purpose || self.now() >= c.expires_at {
            return Ok(None);
        }
        Ok(Some(c))
    }

    fn ceremony_expiry(&self) -> Timestamp {
        Timestamp(self.now().0 + CEREMONY_SECS * 1000)
    }

    pub async fn list_passkeys(&self, auth: &AuthContext) -> Result<Vec<PasskeyView>> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let rows = store::list_for_user(&mut tx, t, &auth.user.id).await?;
        Ok(rows.iter().map(PasskeyView::from).collect())
    }

    /// Starts registering a passkey for the caller. The authenticator is asked for a
    /// discoverable credential (so it can log in without a password) and user
    /// verification; the caller's existing passkeys are excluded.
    pub async fn start_passkey_registration(&self, auth: &AuthContext) -> Result<CeremonyStart> {
        let t = &auth.tenant.id;
        let u = &auth.user.id;
        let mut tx = self.store.tenant_read(t).await?;
        let existing = store::list_for_user(&mut tx, t, u).await?;
        drop(tx);
        let mut exclude = Vec::new();
        for row in &existing {
            let pk: Passkey = serde_json::from_str(&row.data).map_err(corrupt)?;
            exclude.push(pk.cred_id().clone());
        }
        let display = if auth.user.display_name.is_empty() {
            auth.user.email.as_str()
        } else {
            auth.user.display_name.as_str()
        };
        let (mut ccr, state) = self
            .webauthn()?
            .start_passkey_registration(user_uuid(u)?, &auth.user.email, display, Some(exclude))
            .map_err(|e| ServiceError::internal(format!("WebAuthn: {e}")))?;
        if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
            sel.resident_key = Some(ResidentKeyRequirement::Preferred);
        }
        let ceremony = self
            .put_ceremony(Ceremony {
                tenant_id: t.clone(),
                user_id: Some(u.clone()),
                purpose: "register".into(),
                kind: "console".into(),
                challenge_hash: None,
                state: serde_json::to_string(&state).map_err(corrupt)?,
                expires_at: self.ceremony_expiry(),
            })
            .await?;
        Ok(CeremonyStart {
            ceremony,
            options: serde_json::to_value(&ccr).map_err(corrupt)?,
        })
    }

    /// Finishes a registration with the browser's answer. The first second factor of a
    /// user comes with 10 recovery codes.
    pub async fn finish_passkey_registration(
        &self,
        auth: &AuthContext,
        ceremony: &str,
        name: &str,
        credential: serde_json::Value,
        ctx: &RequestCtx,
    ) -> Result<PasskeyAdded> {
        let t = &auth.tenant.id;
        let u = &auth.user.id;
        let name = name.trim();
        if name.chars().count() > 100 {
            return Err(ServiceError::invalid(
                "name",
                "is longer than 100 characters",
            ));
        }
        let name = if name.is_empty() { "Passkey" } else { name };
        let c = self
            .take_ceremony(ceremony, "register")
            .await?
            .filter(|c| &c.tenant_id == t && c.user_id.as_ref() == Some(u))
            .ok_or_else(|| {
                ServiceError::invalid("ceremony", "has expired or was already used; start again")
            })?;
        let state: PasskeyRegistration = serde_json::from_str(&c.state).map_err(corrupt)?;
        let reg: RegisterPublicKeyCredential = serde_json::from_value(credential)
            .map_err(|_| ServiceError::invalid("credential", "is not a WebAuthn registration"))?;
        let pk = self
            .webauthn()?
            .finish_passkey_registration(&reg, &state)
            .map_err(|e| ServiceError::invalid("credential", format!("was refused: {e}")))?;
        let row = PasskeyRow {
            id: kura_domain::ids::new_id(),
            tenant_id: t.clone(),
            user_id: u.clone(),
            cred_id: URL_SAFE_NO_PAD.encode(pk.cred_id().as_ref() as &[u8]),
            name: name.to_string(),
            data: serde_json::to_string(&pk).map_err(corrupt)?,
            counter: 0,
            created_at: self.now(),
            last_used_at: None,
        };
        let mut tx = self.store.tenant_tx(t).await?;
        if !store::insert(&mut tx, &row).await? {
            return Err(ServiceError::Conflict(
                "this passkey is already registered".into(),
            ));
        }
        let codes_left = mfa::recovery_codes_left(&mut tx, t, u).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("mfa.passkey.add")
                .target("user", u)
                .details(serde_json::json!({ "passkey": row.id, "name": row.name })),
        )
        .await?;
        tx.commit().await?;
        let recovery_codes = if codes_left == 0 {
            Some(
                self.new_recovery_codes(auth, ctx, "mfa.recovery_codes.new")
                    .await?,
            )
        } else {
            None
        };
        Ok(PasskeyAdded {
            passkey: PasskeyView::from(&row),
            recovery_codes,
        })
    }

    /// Removes one of the caller's passkeys, unless the tenant requires a second factor and
    /// it is the last one. Audited.
    pub async fn delete_passkey(
        &self,
        auth: &AuthContext,
        id: &kura_domain::PasskeyId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let id = id.as_str();
        let t = &auth.tenant.id;
        let u = &auth.user.id;
        let mut tx = self.store.tenant_tx(t).await?;
        let rows = store::list_for_user(&mut tx, t, u).await?;
        let Some(row) = rows.iter().find(|r| r.id == id) else {
            return Err(ServiceError::NotFound);
        };
        let totp = mfa::totp(&mut tx, t, u)
            .await?
            .is_some_and(|x| x.confirmed_at.is_some());
        if rows.len() == 1 && !totp && auth.tenant.settings.mfa_required_for(&auth.builtin_roles())
        {
            return Err(ServiceError::Conflict(
                "your organisation requires a second factor: add another before removing this one"
                    .into(),
            ));
        }
        store::delete(&mut tx, t, u, id).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("mfa.passkey.remove")
                .target("user", u)
                .details(serde_json::json!({ "passkey": row.id, "name": row.name })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks an assertion against a taken ceremony and records the use. `None` when the
    /// assertion is refused (bad signature, wrong origin or challenge, unknown credential,
    /// another user's credential, counter that did not grow).
    async fn verify_assertion(
        &self,
        c: &Ceremony,
        credential: serde_json::Value,
    ) -> Result<Option<PasskeyRow>> {
        let Ok(cred) = serde_json::from_value::<PublicKeyCredential>(credential) else {
            return Ok(None);
        };
        let t = &c.tenant_id;
        let wa = self.webauthn()?;
        let cred_id = URL_SAFE_NO_PAD.encode(&cred.raw_id);
        let mut tx = self.store.tenant_read(t).await?;
        let Some(row) = store::find_by_cred(&mut tx, t, &cred_id).await? else {
            return Ok(None);
        };
        drop(tx);
        let mut pk: Passkey = serde_json::from_str(&row.data).map_err(corrupt)?;
        let result = match c.purpose.as_str() {
            "mfa" => {
                if c.user_id.as_ref() != Some(&row.user_id) {
                    return Ok(None);
                }
                let state: PasskeyAuthentication =
                    serde_json::from_str(&c.state).map_err(corrupt)?;
                wa.finish_passkey_authentication(&cred, &state)
            }
            "login" => {
                // The authenticator names its user; it must be the credential's owner.
                match wa.identify_discoverable_authentication(&cred) {
                    Ok((uuid, _)) if uuid.to_string() == row.user_id.as_str() => {}
                    _ => return Ok(None),
                }
                let state: DiscoverableAuthentication =
                    serde_json::from_str(&c.state).map_err(corrupt)?;
                wa.finish_discoverable_authentication_v2(&cred, state, &pk)
            }
            _ => return Ok(None),
        };
        let Ok(result) = result else {
            return Ok(None);
        };
        let counter = i64::from(result.counter());
        if (counter > 0 || row.counter > 0) && counter <= row.counter {
            tracing::warn!(tenant = %t.as_str(), passkey = %row.id, "passkey counter did not grow: possible clone");
            return Ok(None);
        }
        pk.update_credential(&result);
        let data = serde_json::to_string(&pk).map_err(corrupt)?;
        let mut tx = self.store.tenant_tx(t).await?;
        let recorded = store::record_use(&mut tx, &row, &data, counter, self.now()).await?;
        tx.commit().await?;
        Ok(recorded.then_some(row))
    }

    /// Starts the passkey answer to a log-in challenge (after a right password).
    pub async fn start_passkey_mfa(&self, challenge: &str) -> Result<CeremonyStart> {
        let hash = kura_crypto::token::hash(challenge);
        let mut tx = self.store.system_read().await?;
        let c = mfa::find_challenge(&mut tx, &hash)
            .await?
            .ok_or(ServiceError::BadCredentials)?;
        drop(tx);
        if c.used_at.is_some() || self.now() >= c.expires_at {
            return Err(ServiceError::BadCredentials);
        }
        let mut tx = self.store.tenant_read(&c.tenant_id).await?;
        let rows = store::list_for_user(&mut tx, &c.tenant_id, &c.user_id).await?;
        drop(tx);
        if rows.is_empty() {
            return Err(ServiceError::invalid(
                "challenge",
                "this account has no passkey",
            ));
        }
        let mut keys = Vec::new();
        for row in &rows {
            keys.push(serde_json::from_str::<Passkey>(&row.data).map_err(corrupt)?);
        }
        let (rcr, state) = self
            .webauthn()?
            .start_passkey_authentication(&keys)
            .map_err(|e| ServiceError::internal(format!("WebAuthn: {e}")))?;
        let ceremony = self
            .put_ceremony(Ceremony {
                tenant_id: c.tenant_id.clone(),
                user_id: Some(c.user_id.clone()),
                purpose: "mfa".into(),
                kind: c.kind.clone(),
                challenge_hash: Some(hash),
                state: serde_json::to_string(&state).map_err(corrupt)?,
                expires_at: self.ceremony_expiry(),
            })
            .await?;
        Ok(CeremonyStart {
            ceremony,
            options: serde_json::to_value(&rcr).map_err(corrupt)?,
        })
    }

    /// A passkey as the answer to the log-in challenge `challenge_hash` of `user`.
    pub(crate) async fn check_passkey_factor(
        &self,
        challenge_hash: &str,
        tenant: &TenantId,
        user: &UserId,
        ceremony: &str,
        credential: serde_json::Value,
    ) -> Result<Option<PasskeyRow>> {
        let Some(c) = self.take_ceremony(ceremony, "mfa").await? else {
            return Ok(None);
        };
        if &c.tenant_id != tenant
            || c.user_id.as_ref() != Some(user)
            || c.challenge_hash.as_deref() != Some(challenge_hash)
        {
            return Ok(None);
        }
        self.verify_assertion(&c, credential).await
    }

    /// Starts a passwordless log-in into a tenant: the browser offers the passkeys it holds
    /// for this site. An unknown tenant gets options too (nothing is stored, so the answer
    /// fails like a wrong passkey): the answer does not tell which tenants exist.
    pub async fn start_passkey_login(
        &self,
        tenant_slug: &str,
        kind: SessionKind,
    ) -> Result<CeremonyStart> {
        let slug = tenant_slug.trim().to_lowercase();
        let mut tx = self.store.system_read().await?;
        let tenant = tenants::find_by_slug(&mut tx, &slug).await?;
        drop(tx);
        let (mut rcr, state) = self
            .webauthn()?
            .start_discoverable_authentication()
            .map_err(|e| ServiceError::internal(format!("WebAuthn: {e}")))?;
        // A modal prompt on a button press, not conditional (autofill) mediation.
        rcr.mediation = None;
        let ceremony = match tenant.filter(|t| t.status == TenantStatus::Active) {
            Some(t) => {
                self.put_ceremony(Ceremony {
                    tenant_id: t.id.clone(),
                    user_id: None,
                    purpose: "login".into(),
                    kind: kind.as_str().into(),
                    challenge_hash: None,
                    state: serde_json::to_string(&state).map_err(corrupt)?,
                    expires_at: self.ceremony_expiry(),
                })
                .await?
            }
            None => {
                kura_crypto::token::generate("kwa")
                    .map_err(|_| ServiceError::internal("rng"))?
                    .secret
            }
        };
        Ok(CeremonyStart {
            ceremony,
            options: serde_json::to_value(&rcr).map_err(corrupt)?,
        })
    }

    /// Finishes a passwordless log-in. A passkey verifies its user, so it is both factors;
    /// the tenant's IP allowlist still applies. A refused passkey counts against the
    /// client address like a wrong password.
    pub async fn complete_passkey_login(
        &self,
        ceremony: &str,
        credential: serde_json::Value,
        ctx: &RequestCtx,
    ) -> Result<LoginResult> {
        let ip_keys: Vec<String> = ctx.ip.iter().map(|ip| format!("ip:{ip}")).collect();
        self.refuse_if_locked_keys(&ip_keys, ctx).await?;
        let Some(c) = self.take_ceremony(ceremony, "login").await? else {
            self.login_failed_keys(&ip_keys, None, ctx).await?;
            return Err(ServiceError::BadCredentials);
        };
        let mut tx = self.store.system_read().await?;
        let tenant = tenants::get(&mut tx, &c.tenant_id).await?;
        drop(tx);
        let Some(row) = self.verify_assertion(&c, credential).await? else {
            self.audit_alone(
                &tenant.id,
                &Actor::Anonymous,
                ctx,
                Event::new("auth.login")
                    .result("failure")
                    .details(serde_json::json!({ "reason": "bad_passkey" })),
            )
            .await?;
            self.login_failed_keys(&ip_keys, Some(&tenant.id), ctx)
                .await?;
            return Err(ServiceError::BadCredentials);
        };
        let mut tx = self.store.tenant_read(&tenant.id).await?;
        let user = users::get(&mut tx, &tenant.id, &row.user_id).await?;
        drop(tx);
        if user.status != UserStatus::Active || tenant.status != TenantStatus::Active {
            self.audit_alone(
                &tenant.id,
                &Actor::Anonymous,
                ctx,
                Event::new("auth.login")
                    .result("failure")
                    .target("user", &user.id)
                    .details(serde_json::json!({ "reason": "not_active", "method": "passkey" })),
            )
            .await?;
            return Err(ServiceError::BadCredentials);
        }
        self.check_login_ip(&tenant, &user, ctx).await?;
        let kind = if c.kind == "console" {
            SessionKind::Console
        } else {
            SessionKind::Api
        };
        self.finish_login(tenant, user, kind, ctx).await
    }
}
