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

/// Puts a mail into the outbox within the caller's transaction (so it is sent only if the
/// change that caused it commits).
pub async fn enqueue(
    tx: &mut Tx,
    tenant: Option<&TenantId>,
    to: &str,
    subject: String,
    body: String,
    now: Timestamp,
) -> Result<()> {
    kura_store::outbox::insert(
        tx,
        &Mail {
            id: kura_domain::ids::new_id(),
            tenant_id: tenant.cloned(),
            to: to.to_string(),
            subject,
            body,
            created_at: now,
        },
    )
    .await?;
    Ok(())
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
        for m in batch {
            let result = smtp.send(&m).await;
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
