//! Mail texts in Japanese and English, by the recipient's locale, and delivery. Every mail
//! is first put in the outbox, in the transaction of the change that causes it; with
//! `smtp_url` set, each server delivers the outbox over SMTP ([`SmtpSender`], lettre with
//! rustls), claiming mails so that two nodes never send one twice; without it the outbox is
//! the delivery (`kura mail outbox`).

use crate::Result;
use kura_domain::{TenantId, Timestamp};
use kura_store::outbox::Mail;
use kura_store::Tx;

pub struct Invitation<'a> {
    pub locale: &'a str,
    pub tenant_name: &'a str,
    pub link: &'a str,
    pub expires: &'a str,
    pub role: &'a str,
}

pub fn invitation(i: &Invitation<'_>) -> (String, String) {
    if i.locale == "ja" {
        (
            format!("[Kura] {} への招待", i.tenant_name),
            format!(
                "{tenant} のワークスペース（Kura）に招待されました。役割: {role}\n\n\
                 次のリンクを開いてパスワードを設定してください（有効期限: {expires}）。\n\n{link}\n\n\
                 心当たりがない場合は、このメールを破棄してください。\n",
                tenant = i.tenant_name,
                role = i.role,
                expires = i.expires,
                link = i.link
            ),
        )
    } else {
        (
            format!("[Kura] Invitation to {}", i.tenant_name),
            format!(
                "You have been invited to the {tenant} workspace on Kura. Role: {role}\n\n\
                 Open this link to set your password (valid until {expires}):\n\n{link}\n\n\
                 If you did not expect this, ignore this message.\n",
                tenant = i.tenant_name,
                role = i.role,
                expires = i.expires,
                link = i.link
            ),
        )
    }
}

pub struct PasswordReset<'a> {
    pub locale: &'a str,
    pub tenant_name: &'a str,
    pub link: &'a str,
    pub expires: &'a str,
}

pub fn password_reset(r: &PasswordReset<'_>) -> (String, String) {
    if r.locale == "ja" {
        (
            format!("[Kura] {} のパスワード再設定", r.tenant_name),
            format!(
                "{tenant} のワークスペース（Kura）でパスワードの再設定が依頼されました。\n\n\
                 次のリンクを開いて新しいパスワードを設定してください（有効期限: {expires}、1回限り）。\n\n{link}\n\n\
                 再設定すると、ログイン中のすべてのセッションが終了します。\n\
                 心当たりがない場合は、このメールを破棄してください。パスワードは変わりません。\n",
                tenant = r.tenant_name,
                expires = r.expires,
                link = r.link
            ),
        )
    } else {
        (
            format!("[Kura] Reset your password for {}", r.tenant_name),
            format!(
                "A password reset was requested for your account in the {tenant} workspace on Kura.\n\n\
                 Open this link to choose a new password (valid until {expires}, once):\n\n{link}\n\n\
                 Resetting ends all your signed-in sessions.\n\
                 If you did not ask for this, ignore this message; your password stays the same.\n",
                tenant = r.tenant_name,
                expires = r.expires,
                link = r.link
            ),
        )
    }
}

/// The newest signed checkpoint of a tenant's audit chain, mailed to its contract admins so
/// that a copy lives outside Kura (LOG-5).
pub struct CheckpointMail<'a> {
    pub locale: &'a str,
    pub tenant_name: &'a str,
    pub seq: i64,
    pub when: &'a str,
    /// The checkpoint as JSON (to paste into `POST /api/v1/audit/verify`).
    pub json: &'a str,
}

pub fn checkpoint(c: &CheckpointMail<'_>) -> (String, String) {
    if c.locale == "ja" {
        (
            format!("[Kura] {} の監査ログ署名チェックポイント (#{})", c.tenant_name, c.seq),
            format!(
                "{tenant} の監査ログ（ハッシュチェーン）の最新の署名付きチェックポイントをお送りします。

                 記録番号: {seq}
署名日時: {when}

                 このメールは Kura の外に残る証跡です。保管してください。後日、監査ログが改ざん・切り詰め
                 されていないことを、次のチェックポイントで確かめられます:
                 POST /api/v1/audit/verify に {{\"checkpoint\": <下の JSON>}} を送る、
                 または運用者が kura audit verify --tenant <テナントID> --checkpoint <ファイル> を実行する。
                 検出できないのは、最後に配信したチェックポイントより後の記録の削除だけです（配信は毎日）。

{json}
",
                tenant = c.tenant_name,
                seq = c.seq,
                when = c.when,
                json = c.json
            ),
        )
    } else {
        (
            format!("[Kura] Signed audit checkpoint for {} (#{})", c.tenant_name, c.seq),
            format!(
                "The newest signed checkpoint of the {tenant} audit log (hash chain).

                 Entry: {seq}
Signed: {when}

                 This mail is evidence kept outside Kura: keep it. Later you can check that the audit
                 log was neither rewritten nor cut back with it: send {{\"checkpoint\": <the JSON below>}}
                 to POST /api/v1/audit/verify, or have the operator run
                 kura audit verify --tenant <tenant ID> --checkpoint <file>.
                 Only entries removed after the newest mailed checkpoint go unnoticed (mailed daily).

{json}
",
                tenant = c.tenant_name,
                seq = c.seq,
                when = c.when,
                json = c.json
            ),
        )
    }
}

/// How long the body of a mail without a link or code is kept in the outbox.
pub const KEEP_SECS: i64 = 30 * 86_400;

impl crate::Services {
    /// Puts a mail into the outbox within the caller's transaction (so it is sent only if
    /// the change that caused it commits). The body — links, codes — is sealed at rest:
    /// with the tenant's current data key when it has one (`k<version>:`), else with the
    /// deployment's outbox key derived from the master key (`s1:`); bound to the mail's id.
    /// `keep_until`: when the body goes (the link's or code's lifetime; [`KEEP_SECS`] for
    /// mail without one) — `kura mail outbox` then shows who got which subject when.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn enqueue_mail(
        &self,
        tx: &mut Tx,
        tenant: Option<&TenantId>,
        to: &str,
        subject: String,
        body: String,
        now: Timestamp,
        keep_until: Timestamp,
    ) -> Result<()> {
        let id = kura_domain::ids::new_id();
        let body = self.seal_mail(tx, tenant, &id, &body).await?;
        kura_store::outbox::insert(
            tx,
            &Mail {
                id,
                tenant_id: tenant.cloned(),
                to: to.to_string(),
                subject,
                body,
                created_at: now,
            },
            keep_until,
        )
        .await?;
        Ok(())
    }

    /// Mails a tenant's contract admins (people, not frozen), each in their language
    /// (`text(locale)` gives subject and body); returns how many were mailed.
    pub(crate) async fn mail_contract_admins(
        &self,
        tx: &mut Tx,
        tenant: &kura_store::tenants::Tenant,
        keep_until: Timestamp,
        text: impl Fn(&str) -> (String, String),
    ) -> Result<usize> {
        let mut n = 0;
        for u in kura_store::users::contract_admins(tx, &tenant.id).await? {
            if u.kind != kura_domain::user::UserKind::Person
                || u.status == kura_domain::user::UserStatus::Frozen
            {
                continue;
            }
            let locale = u
                .locale
                .clone()
                .unwrap_or_else(|| tenant.settings.default_locale.clone());
            let (subject, body) = text(&locale);
            let now = self.now();
            self.enqueue_mail(
                tx,
                Some(&tenant.id),
                &u.email,
                subject,
                body,
                now,
                keep_until,
            )
            .await?;
            n += 1;
        }
        Ok(n)
    }

    fn outbox_key(&self) -> kura_crypto::keys::SecretKey {
        self.keys.master.derive("kura-outbox-v1")
    }

    async fn seal_mail(
        &self,
        tx: &mut Tx,
        tenant: Option<&TenantId>,
        id: &str,
        body: &str,
    ) -> Result<String> {
        let purpose = format!("mail:{id}");
        let err = |e: kura_crypto::CryptoError| crate::ServiceError::internal(e.to_string());
        if let Some(t) = tenant {
            // The key is read in the caller's transaction; none is created here.
            if let Some(k) = kura_store::keys::current(tx, t).await? {
                if let Ok(key) = self.data_key(t, k.version).await {
                    let sealed = kura_crypto::field::seal(
                        &key,
                        t.as_str(),
                        &purpose,
                        k.version,
                        body.as_bytes(),
                    )
                    .map_err(err)?;
                    return Ok(format!("k{}:{}", k.version, hex::encode(sealed)));
                }
            }
        }
        let scope = tenant.map(|t| t.as_str()).unwrap_or("");
        let sealed =
            kura_crypto::field::seal(&self.outbox_key(), scope, &purpose, 0, body.as_bytes())
                .map_err(err)?;
        Ok(format!("s1:{}", hex::encode(sealed)))
    }

    /// The readable body of an outbox mail ("" once it was sent or purged).
    pub(crate) async fn open_mail(&self, m: &Mail) -> Result<String> {
        let purpose = format!("mail:{}", m.id);
        let bad =
            || crate::ServiceError::internal(format!("outbox mail {} cannot be opened", m.id));
        if m.body.is_empty() {
            return Ok(String::new());
        }
        let plain = if let Some(h) = m.body.strip_prefix("s1:") {
            let scope = m.tenant_id.as_ref().map(|t| t.as_str()).unwrap_or("");
            let sealed = hex::decode(h).map_err(|_| bad())?;
            kura_crypto::field::open(&self.outbox_key(), scope, &purpose, 0, &sealed)
                .map_err(|_| bad())?
        } else if let (Some(t), Some((v, h))) = (
            m.tenant_id.as_ref(),
            m.body.strip_prefix('k').and_then(|r| r.split_once(':')),
        ) {
            let version: i64 = v.parse().map_err(|_| bad())?;
            let key = self.data_key(t, version).await?;
            let sealed = hex::decode(h).map_err(|_| bad())?;
            kura_crypto::field::open(&key, t.as_str(), &purpose, version, &sealed)
                .map_err(|_| bad())?
        } else {
            // Written before bodies were sealed.
            return Ok(m.body.clone());
        };
        String::from_utf8(plain).map_err(|_| bad())
    }

    /// The newest outbox mails with their bodies opened (operator: `kura mail outbox`, the
    /// demo's `/outbox` page). A mail whose body cannot be opened shows a note instead.
    pub async fn mail_outbox(&self, limit: i64) -> Result<Vec<Mail>> {
        let mut tx = self.store.system_read().await?;
        let mut mails = kura_store::outbox::list(&mut tx, limit).await?;
        drop(tx);
        for m in &mut mails {
            m.body = match self.open_mail(m).await {
                Ok(b) => b,
                Err(e) => format!("({e})"),
            };
        }
        Ok(mails)
    }
}

/// Delivers mail over SMTP: `smtp://host:25` (plain, for a local relay),
/// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtps://user:pass@host:465`.
#[derive(Clone)]
pub struct SmtpSender {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl SmtpSender {
    pub fn new(url: &str, from: &str) -> std::result::Result<Self, String> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| format!("smtp_url: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .map_err(|e| format!("mail_from {from:?}: {e}"))?;
        Ok(Self { transport, from })
    }

    pub async fn send(&self, m: &Mail) -> std::result::Result<(), String> {
        use lettre::AsyncTransport;
        let to: lettre::message::Mailbox =
            m.to.parse()
                .map_err(|e| format!("recipient address: {e}"))?;
        let msg = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// A mail is tried this many times (a claim is an attempt), then left for the operator.
pub const MAX_ATTEMPTS: i64 = 10;

impl crate::Services {
    /// Sends up to `limit` outbox mails over SMTP. Returns (sent, failed). A failed mail
    /// waits a minute before it is tried again, up to [`MAX_ATTEMPTS`] times; its last
    /// error is kept for `kura mail outbox`.
    pub async fn deliver_mail(&self, smtp: &SmtpSender, limit: i64) -> Result<(usize, usize)> {
        let now = self.now();
        let mut tx = self.store.system_tx().await?;
        let batch = kura_store::outbox::claim_unsent(
            &mut tx,
            now,
            Timestamp(now.0 + 60_000),
            MAX_ATTEMPTS,
            limit,
        )
        .await?;
        tx.commit().await?;
        let (mut sent, mut failed) = (0, 0);
        for mut m in batch {
            let result = match self.open_mail(&m).await {
                Ok(body) => {
                    m.body = body;
                    smtp.send(&m).await
                }
                Err(e) => Err(e.to_string()),
            };
            let mut tx = self.store.system_tx().await?;
            match &result {
                Ok(()) => {
                    kura_store::outbox::mark_result(&mut tx, &m.id, self.now(), None).await?;
                    sent += 1;
                }
                Err(e) => {
                    // Retried after the claim's minute has passed.
                    tracing::warn!(mail = %m.id, error = %e, "mail delivery failed");
                    kura_store::outbox::mark_result(
                        &mut tx,
                        &m.id,
                        Timestamp(self.now().0 + 60_000),
                        Some(e),
                    )
                    .await?;
                    failed += 1;
                }
            }
            tx.commit().await?;
        }
        Ok((sent, failed))
    }
}
