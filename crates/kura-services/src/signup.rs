//! Self-service sign-up (TEN-2), when `signup_enabled`: an e-mail address → a 6-digit
//! code by mail (15 minutes, 5 attempts) → a single-use sign-up token → tenant ID, names
//! and a password → the tenant is provisioned with the address as its contract admin, who
//! is logged in, and a welcome mail gives the account details. The first step answers the
//! same for every address.

use crate::auth::{LoginResult, SessionKind};
use crate::tenants::NewTenant;
use crate::{RequestCtx, Result, ServiceError, Services};
use kura_domain::{validate_email, Timestamp};
use kura_store::signup::{self, Signup};

const CODE_SECS: i64 = 15 * 60;
/// Wrong codes per address per hour — across codes: asking for a new code does not give
/// more tries.
const MAX_ATTEMPTS: i64 = 5;
const ATTEMPT_WINDOW_SECS: i64 = 3600;
/// Codes mailed per address per hour, and sign-up requests per client address per hour.
const CODES_PER_ADDRESS: i64 = 3;
const REQUESTS_PER_CLIENT: i64 = 10;

/// What finishes a sign-up.
#[derive(Debug, Clone)]
pub struct SignupDetails {
    pub tenant_slug: String,
    pub tenant_name: String,
    pub display_name: String,
    pub password: String,
}

impl Services {
    fn signup_on(&self) -> Result<()> {
        if self.config.signup_enabled {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// Mails a verification code to the address — at most three an hour per address and
    /// ten sign-up requests an hour per client address (429 beyond), so nobody can
    /// mail-bomb an address or keep drawing fresh codes to guess.
    pub async fn start_signup(&self, email: &str, locale: &str, ctx: &RequestCtx) -> Result<()> {
        self.signup_on()?;
        let email = validate_email(email)?;
        if let Some(ip) = &ctx.ip {
            self.rate_limit(&format!("signup:ip:{ip}"), REQUESTS_PER_CLIENT, 3600)
                .await?;
        }
        self.rate_limit(&format!("signup:addr:{email}"), CODES_PER_ADDRESS, 3600)
            .await?;
        let locale = if locale == "en" { "en" } else { "ja" };
        let digits = kura_crypto::random_bytes::<4>().map_err(|_| ServiceError::internal("rng"))?;
        let code = format!("{:06}", u32::from_be_bytes(digits) % 1_000_000);
        let now = self.now();
        let s = Signup {
            id: kura_domain::ids::new_id(),
            email: email.clone(),
            locale: locale.into(),
            code_hash: self.code_digest(&email, &code),
            attempts: 0,
            expires_at: Timestamp(now.0 + CODE_SECS * 1000),
            token_hash: None,
            used_at: None,
        };
        let (subject, body) = if locale == "ja" {
            (
                "[Kura] 確認コード".to_string(),
                format!("Kura のお申し込みの確認コードです: {code}\n\n15 分間有効です。お心当たりのない場合はこのメールを無視してください。"),
            )
        } else {
            (
                "[Kura] Your verification code".to_string(),
                format!("Your Kura sign-up code is {code}\n\nIt is valid for 15 minutes. If you did not ask for it, ignore this mail."),
            )
        };
        let mut tx = self.store.system_tx().await?;
        signup::insert(&mut tx, &s, now).await?;
        self.enqueue_mail(
            &mut tx,
            None,
            &email,
            subject,
            body,
            now,
            now.plus_secs(15 * 60),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks the code; returns the single-use sign-up token. Five wrong codes for an
    /// address within an hour — whichever codes they were for — end it for that hour. The
    /// answer says what happened: wrong, expired, or tried too often.
    pub async fn verify_signup(&self, email: &str, code: &str) -> Result<String> {
        self.signup_on()?;
        let wrong = || ServiceError::Rejected {
            code: "code_wrong",
            message: "the code is wrong",
        };
        let email = validate_email(email).map_err(|_| wrong())?;
        let failures = format!("signup:fail:{email}");
        if self
            .rate_exceeded(&failures, MAX_ATTEMPTS, ATTEMPT_WINDOW_SECS)
            .await?
        {
            return Err(ServiceError::Rejected {
                code: "code_exhausted",
                message: "too many wrong codes for this address; ask for a new code in an hour",
            });
        }
        let mut tx = self.store.system_tx().await?;
        let Some(s) = signup::latest_for(&mut tx, &email).await? else {
            return Err(wrong());
        };
        if s.used_at.is_some() {
            return Err(ServiceError::Rejected {
                code: "code_used",
                message: "this code was used already; ask for a new one",
            });
        }
        if self.now() >= s.expires_at {
            return Err(ServiceError::Rejected {
                code: "code_expired",
                message: "the code has expired; ask for a new one",
            });
        }
        let good = kura_crypto::ct_eq(
            self.code_digest(&email, code.trim()).as_bytes(),
            s.code_hash.as_bytes(),
        );
        if !good {
            signup::count_attempt(&mut tx, &s.id).await?;
            tx.commit().await?;
            // Counted per address, across codes.
            let _ = self
                .rate_limit(&failures, MAX_ATTEMPTS, ATTEMPT_WINDOW_SECS)
                .await;
            return Err(wrong());
        }
        let token =
            kura_crypto::token::generate("ksu").map_err(|_| ServiceError::internal("rng"))?;
        signup::set_token(&mut tx, &s.id, &token.hash).await?;
        tx.commit().await?;
        Ok(token.secret)
    }

    /// Provisions the tenant and logs its contract admin in; a welcome mail follows.
    pub async fn complete_signup(
        &self,
        token: &str,
        d: SignupDetails,
        kind: SessionKind,
        ctx: &RequestCtx,
    ) -> Result<LoginResult> {
        self.signup_on()?;
        let mut tx = self.store.system_read().await?;
        let used = || ServiceError::Rejected {
            code: "signup_used",
            message: "this sign-up was completed or has expired; start again",
        };
        let s = signup::by_token(&mut tx, &kura_crypto::token::hash(token))
            .await?
            .ok_or_else(used)?;
        drop(tx);
        if s.used_at.is_some() || self.now().0 >= s.expires_at.0 + CODE_SECS * 1000 {
            return Err(used());
        }
        // The password is checked before anything is created.
        kura_domain::tenant::TenantSettings::default()
            .password_policy
            .check(
                &d.password,
                &[&s.email, &d.display_name, &d.tenant_name, &d.tenant_slug],
            )
            .map_err(ServiceError::WeakPassword)?;
        let mut tx = self.store.system_tx().await?;
        if !signup::mark_used(&mut tx, &s.id, self.now()).await? {
            return Err(used());
        }
        tx.commit().await?;
        let created = match self
            .create_tenant_as(
                NewTenant {
                    slug: d.tenant_slug,
                    name: d.tenant_name,
                    admin_email: s.email.clone(),
                    admin_name: d.display_name,
                    locale: s.locale.clone(),
                    time_zone: None,
                },
                &crate::Actor::Anonymous,
                false,
                ctx,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                // A taken tenant ID or a bad name loses nothing: the token works again.
                let mut tx = self.store.system_tx().await?;
                signup::unmark_used(&mut tx, &s.id).await?;
                tx.commit().await?;
                return Err(e);
            }
        };
        let invite = created
            .invitation_link
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let login = self
            .accept_invitation(&invite, &d.password, kind, ctx)
            .await?;
        let url = format!(
            "{}/login?tenant={}",
            self.config.public_url.trim_end_matches('/'),
            created.tenant.slug
        );
        let (subject, body) = if s.locale == "ja" {
            (
                format!("[Kura] {} へようこそ", created.tenant.name),
                format!("お申し込みありがとうございます。\n\nテナント ID: {}\nメールアドレス: {}\nログイン: {url}\n\nあなたは契約管理者です。", created.tenant.slug, s.email),
            )
        } else {
            (
                format!("[Kura] Welcome to {}", created.tenant.name),
                format!("Thank you for signing up.\n\nTenant ID: {}\nE-mail: {}\nLog in: {url}\n\nYou are the contract admin.", created.tenant.slug, s.email),
            )
        };
        let mut tx = self.store.tenant_tx(&created.tenant.id).await?;
        self.enqueue_mail(
            &mut tx,
            Some(&created.tenant.id),
            &s.email,
            subject,
            body,
            self.now(),
            self.now().plus_secs(crate::mail::KEEP_SECS),
        )
        .await?;
        tx.commit().await?;
        Ok(login)
    }
}

impl Services {
    /// The stored form of a sign-up code: keyed with a key derived from the master key, so
    /// that reading the database does not give the code away (a plain hash of 6 digits
    /// takes a million guesses to reverse).
    fn code_digest(&self, email: &str, code: &str) -> String {
        self.keys
            .master
            .derive("kura-signup-code-v1")
            .mac_hex(format!("{email}:{code}").as_bytes())
    }
}
