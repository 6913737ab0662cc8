//! Second factors (IAM-5): TOTP enrolment with a QR code, single-use codes, recovery
//! codes, the second step of a log-in, and the tenant's MFA requirement.

use crate::auth::{AuthContext, LoginResult, SessionKind};
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_crypto::totp;
use kura_domain::{Timestamp, UserId};
use kura_store::{mfa, tenants, users};

/// What a user scans to enrol.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Whether the user has a second factor, and recovery codes left.
#[derive(Debug, Clone)]
pub struct MfaStatus {
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: i64,
    pub recovery_codes_left: i64,
    /// The tenant requires a second factor.
    pub required: bool,
}

/// The answer to a log-in challenge.
pub enum SecondFactor<'a> {
    /// A TOTP code or a recovery code.
    Code(&'a str),
    /// A passkey assertion for a ceremony started with the challenge.
    Passkey {
        ceremony: &'a str,
        credential: serde_json::Value,
    },
}

/// How long a right password waits for its second factor.
const CHALLENGE_SECS: i64 = 5 * 60;

fn purpose(user: &UserId) -> String {
    format!("totp:{}", user.as_str())
}

fn qr_svg(text: &str) -> Result<String> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium)
        .map_err(|_| ServiceError::internal("QR code"))?;
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"220\" height=\"220\" shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Services {
    pub async fn mfa_status(&self, auth: &AuthContext) -> Result<MfaStatus> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let totp = mfa::totp(&mut tx, t, &auth.user.id)
            .await?
            .is_some_and(|x| x.confirmed_at.is_some());
        let left = mfa::recovery_codes_left(&mut tx, t, &auth.user.id).await?;
        let passkeys = kura_store::passkeys::count_for_user(&mut tx, t, &auth.user.id).await?;
        Ok(MfaStatus {
            totp,
            passkeys,
            recovery_codes_left: left,
            required: auth.tenant.settings.mfa_required_for(&auth.builtin_roles()),
        })
    }

    /// Starts TOTP enrolment: a new secret, sealed with the tenant's key, not active until
    /// a code from it is confirmed. Refused while a confirmed one exists (turn it off first).
    pub async fn start_totp(&self, auth: &AuthContext, ctx: &RequestCtx) -> Result<TotpEnrolment> {
        let t = &auth.tenant.id;
        let u = &auth.user.id;
        let mut tx = self.store.tenant_read(t).await?;
        if mfa::totp(&mut tx, t, u)
            .await?
            .is_some_and(|x| x.confirmed_at.is_some())
        {
            return Err(ServiceError::Conflict(
                "an authenticator app is already set up; turn it off first".into(),
            ));
        }
        drop(tx);
        let secret = totp::new_secret().map_err(|_| ServiceError::internal("rng"))?;
        let sealed = self.seal_field(t, &purpose(u), &secret).await?;
        let mut tx = self.store.tenant_tx(t).await?;
        mfa::put_pending_totp(&mut tx, t, u, &sealed, self.now()).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("mfa.totp.enrol").target("user", u),
        )
        .await?;
        tx.commit().await?;
        let uri = totp::otpauth_uri(
            &format!("Kura ({})", auth.tenant.name),
            &auth.user.email,
            &secret,
        );
        Ok(TotpEnrolment {
            secret: totp::base32_encode(&secret),
            qr_svg: qr_svg(&uri)?,
            otpauth_uri: uri,
        })
    }

    /// Checks a TOTP code for a user and marks its step used (a code works once).
    async fn check_totp(
        &self,
        tenant: &kura_domain::TenantId,
        user: &UserId,
        code: &str,
        must_be_confirmed: bool,
    ) -> Result<bool> {
        let mut tx = self.store.tenant_read(tenant).await?;
        let Some(rec) = mfa::totp(&mut tx, tenant, user).await? else {
            return Ok(false);
        };
        drop(tx);
        if must_be_confirmed && rec.confirmed_at.is_none() {
            return Ok(false);
        }
        let secret = self
            .open_field(tenant, &purpose(user), &rec.secret_sealed)
            .await?;
        let now_secs = self.now().0 / 1000;
        let Some(step) = totp::verify(
            &secret,
            code,
            now_secs,
            rec.last_step.map(|s| s.max(0) as u64),
        ) else {
            return Ok(false);
        };
        let mut tx = self.store.tenant_tx(tenant).await?;
        let fresh = mfa::use_step(&mut tx, tenant, user, step as i64, self.now()).await?;
        tx.commit().await?;
        Ok(fresh)
    }

    /// Confirms enrolment with a code from the app; returns 10 recovery codes, shown once
    /// (stored hashed).
    pub async fn confirm_totp(
        &self,
        auth: &AuthContext,
        code: &str,
        ctx: &RequestCtx,
    ) -> Result<Vec<String>> {
        let t = &auth.tenant.id;
        let u = &auth.user.id;
        if !self.check_totp(t, u, code, false).await? {
            return Err(ServiceError::invalid(
                "code",
                "is not the current code of this secret",
            ));
        }
        let codes = self
            .new_recovery_codes(auth, ctx, "mfa.totp.enable")
            .await?;
        Ok(codes)
    }

    /// New recovery codes (the old ones stop working). Audited as `action`.
    pub async fn new_recovery_codes(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
        action: &'static str,
    ) -> Result<Vec<String>> {
        let t = &auth.tenant.id;
        let u = &auth.user.id;
        let mut codes = Vec::new();
        for _ in 0..10 {
            let raw =
                kura_crypto::random_bytes::<8>().map_err(|_| ServiceError::internal("rng"))?;
            let s = totp::base32_encode(&raw).to_ascii_lowercase();
            codes.push(format!("{}-{}", &s[..5], &s[5..10]));
        }
        let hashes: Vec<String> = codes.iter().map(|c| self.recovery_digest(c)).collect();
        let mut tx = self.store.tenant_tx(t).await?;
        mfa::set_recovery_codes(&mut tx, t, u, &hashes).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new(action).target("user", u),
        )
        .await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// Turns TOTP off (needs a current code or a recovery code), unless the tenant
    /// requires a second factor. Audited.
    pub async fn disable_totp(
        &self,
        auth: &AuthContext,
        code: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let u = &auth.user.id;
        if auth.tenant.settings.mfa_required_for(&auth.builtin_roles())
            && !self.second_factors(t, u).await?.contains(&"passkey")
        {
            return Err(ServiceError::Conflict(
                "your organisation requires a second factor".into(),
            ));
        }
        if !self.check_second_factor(t, u, code).await? {
            return Err(ServiceError::invalid("code", "is not a valid code"));
        }
        let mut tx = self.store.tenant_tx(t).await?;
        mfa::delete_totp(&mut tx, t, u).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("mfa.totp.disable").target("user", u),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A TOTP code or an unused recovery code.
    async fn check_second_factor(
        &self,
        t: &kura_domain::TenantId,
        u: &UserId,
        code: &str,
    ) -> Result<bool> {
        let digits = code.trim();
        if digits.len() == totp::DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()) {
            return self.check_totp(t, u, digits, true).await;
        }
        let mut tx = self.store.tenant_tx(t).await?;
        let mut ok =
            mfa::use_recovery_code(&mut tx, t, u, &self.recovery_digest(code), self.now()).await?;
        if !ok {
            // Codes issued before they were keyed: a plain SHA-256.
            let legacy = kura_crypto::token::hash(&normalize_recovery(code));
            ok = mfa::use_recovery_code(&mut tx, t, u, &legacy, self.now()).await?;
        }
        tx.commit().await?;
        Ok(ok)
    }

    /// The stored form of a recovery code: keyed with a key derived from the master key, so
    /// that the database alone does not allow guessing codes offline.
    fn recovery_digest(&self, code: &str) -> String {
        self.keys
            .master
            .derive("kura-recovery-code-v1")
            .mac_hex(normalize_recovery(code).as_bytes())
    }

    /// The second factors a user can answer a log-in challenge with (empty: none).
    pub async fn second_factors(
        &self,
        t: &kura_domain::TenantId,
        u: &UserId,
    ) -> Result<Vec<&'static str>> {
        let mut tx = self.store.tenant_read(t).await?;
        let mut methods = Vec::new();
        if mfa::totp(&mut tx, t, u)
            .await?
            .is_some_and(|x| x.confirmed_at.is_some())
        {
            methods.push("totp");
        }
        if kura_store::passkeys::count_for_user(&mut tx, t, u).await? > 0 {
            methods.push("passkey");
        }
        if !methods.is_empty() && mfa::recovery_codes_left(&mut tx, t, u).await? > 0 {
            methods.push("recovery_code");
        }
        Ok(methods)
    }

    /// Whether a user has a confirmed second factor.
    pub async fn has_second_factor(&self, t: &kura_domain::TenantId, u: &UserId) -> Result<bool> {
        Ok(!self.second_factors(t, u).await?.is_empty())
    }

    /// After a right password: a single-use challenge, valid for minutes, that the second
    /// factor turns into a session.
    pub(crate) async fn issue_challenge(
        &self,
        tenant: &kura_domain::TenantId,
        user: &UserId,
        kind: SessionKind,
    ) -> Result<String> {
        let token =
            kura_crypto::token::generate("kmf").map_err(|_| ServiceError::internal("rng"))?;
        let now = self.now();
        let mut tx = self.store.tenant_tx(tenant).await?;
        mfa::insert_challenge(
            &mut tx,
            &token.hash,
            &mfa::Challenge {
                tenant_id: tenant.clone(),
                user_id: user.clone(),
                kind: kind.as_str().to_string(),
                expires_at: Timestamp(now.0 + CHALLENGE_SECS * 1000),
                used_at: None,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(token.secret)
    }

    /// The second step of a log-in: the challenge from the first and a TOTP code, a
    /// recovery code or a passkey. A wrong answer counts as a failed log-in (throttled and
    /// locked like a password).
    pub async fn complete_mfa_login(
        &self,
        challenge: &str,
        factor: SecondFactor<'_>,
        ctx: &RequestCtx,
    ) -> Result<LoginResult> {
        let hash = kura_crypto::token::hash(challenge);
        let mut tx = self.store.system_read().await?;
        let c = mfa::find_challenge(&mut tx, &hash)
            .await?
            .ok_or(ServiceError::BadCredentials)?;
        if c.used_at.is_some() || self.now() >= c.expires_at {
            return Err(ServiceError::BadCredentials);
        }
        let tenant = tenants::get(&mut tx, &c.tenant_id).await?;
        let user = users::get(&mut tx, &c.tenant_id, &c.user_id).await?;
        drop(tx);
        self.check_not_locked(&tenant, &user.email, ctx).await?;
        let ok = match factor {
            SecondFactor::Code(code) => {
                self.check_second_factor(&tenant.id, &user.id, code).await?
            }
            SecondFactor::Passkey {
                ceremony,
                credential,
            } => self
                .check_passkey_factor(&hash, &tenant.id, &user.id, ceremony, credential)
                .await?
                .is_some(),
        };
        if !ok {
            self.audit_alone(
                &tenant.id,
                &Actor::Anonymous,
                ctx,
                Event::new("auth.login")
                    .result("failure")
                    .target("user", &user.id)
                    .details(serde_json::json!({ "reason": "bad_second_factor" })),
            )
            .await?;
            self.second_factor_failed(&tenant, &user, ctx).await?;
            return Err(ServiceError::BadCredentials);
        }
        let mut tx = self.store.tenant_tx(&tenant.id).await?;
        if !mfa::use_challenge(&mut tx, &tenant.id, &hash, self.now()).await? {
            return Err(ServiceError::BadCredentials);
        }
        tx.commit().await?;
        let kind = if c.kind == "console" {
            SessionKind::Console
        } else {
            SessionKind::Api
        };
        self.finish_login(tenant, user, kind, ctx).await
    }
}
