//! Mail texts in Japanese and English, by the recipient's locale. Delivery in this version
//! is the embedded outbox (`kura mail outbox`); SMTP comes with the account-security work.

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
