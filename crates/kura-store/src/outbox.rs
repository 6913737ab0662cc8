//! The embedded mail outbox: mail the operator reads with `kura mail outbox` when no SMTP
//! server is configured.

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, Serialize)]
pub struct Mail {
    pub id: String,
    pub tenant_id: Option<TenantId>,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
}

pub async fn insert(tx: &mut Tx, m: &Mail) -> Result<()> {
    if let Some(t) = &m.tenant_id {
        tx.check(t)?;
    }
    sqlx::query(
        "INSERT INTO mail_outbox (id, tenant_id, to_addr, subject, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&m.id)
    .bind(m.tenant_id.as_ref().map(|t| t.as_str().to_string()))
    .bind(&m.to)
    .bind(&m.subject)
    .bind(&m.body)
    .bind(m.created_at.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The newest mails first (operator only).
pub async fn list(tx: &mut Tx, limit: i64) -> Result<Vec<Mail>> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let rows = sqlx::query(
        "SELECT id, tenant_id, to_addr, subject, body, created_at FROM mail_outbox ORDER BY created_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Mail {
                id: r.try_get("id")?,
                tenant_id: r
                    .try_get::<Option<String>, _>("tenant_id")?
                    .map(TenantId::from_string),
                to: r.try_get("to_addr")?,
                subject: r.try_get("subject")?,
                body: r.try_get("body")?,
                created_at: Timestamp(r.try_get("created_at")?),
            })
        })
        .collect()
}
