//! The embedded mail outbox: mail the operator reads with `kura mail outbox` when no SMTP
//! server is configured.

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Mail {
    pub id: String,
    pub tenant_id: Option<TenantId>,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
}

/// Stores a mail; its body is emptied after `keep_until` ([`purge_bodies`]).
pub async fn insert(tx: &mut Tx, m: &Mail, keep_until: Timestamp) -> Result<()> {
    if let Some(t) = &m.tenant_id {
        tx.check(t)?;
    }
    sqlx::query(
        "INSERT INTO mail_outbox (id, tenant_id, to_addr, subject, body, created_at, body_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&m.id)
    .bind(m.tenant_id.as_ref().map(|t| t.as_str().to_string()))
    .bind(&m.to)
    .bind(&m.subject)
    .bind(&m.body)
    .bind(m.created_at.0)
    .bind(keep_until.0)
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

/// Claims up to `limit` unsent mails for delivery by this node until `lease_until`, so that
/// two nodes never send the same mail at once. Each claim counts as an attempt.
pub async fn claim_unsent(
    tx: &mut Tx,
    now: Timestamp,
    lease_until: Timestamp,
    max_attempts: i64,
    limit: i64,
) -> Result<Vec<Mail>> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let rows = sqlx::query(
        "SELECT id, tenant_id, to_addr, subject, body, created_at FROM mail_outbox \
         WHERE sent_at IS NULL AND attempts < $1 AND (claimed_until IS NULL OR claimed_until < $2) \
         ORDER BY created_at, id LIMIT $3",
    )
    .bind(max_attempts)
    .bind(now.0)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let claimed = sqlx::query(
            "UPDATE mail_outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id = $2 AND sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < $3)",
        )
        .bind(lease_until.0)
        .bind(&id)
        .bind(now.0)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if claimed == 1 {
            out.push(Mail {
                id,
                tenant_id: r
                    .try_get::<Option<String>, _>("tenant_id")?
                    .map(TenantId::from_string),
                to: r.try_get("to_addr")?,
                subject: r.try_get("subject")?,
                body: r.try_get("body")?,
                created_at: Timestamp(r.try_get("created_at")?),
            });
        }
    }
    Ok(out)
}

/// Records the outcome of one delivery attempt.
pub async fn mark_result(tx: &mut Tx, id: &str, now: Timestamp, error: Option<&str>) -> Result<()> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let q = match error {
        // Sent: the body (links, codes) is no longer kept.
        None => sqlx::query(
            "UPDATE mail_outbox SET sent_at = $1, claimed_until = NULL, last_error = NULL, body = '' WHERE id = $2",
        )
        .bind(now.0)
        .bind(id),
        Some(e) => sqlx::query(
            "UPDATE mail_outbox SET claimed_until = $1, last_error = $2 WHERE id = $3",
        )
        .bind(now.0)
        .bind(e.chars().take(500).collect::<String>())
        .bind(id),
    };
    q.execute(tx.conn()).await?;
    Ok(())
}

/// Delivery state of a mail (for `kura mail outbox`).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub sent_at: Option<Timestamp>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

pub async fn delivery(tx: &mut Tx, id: &str) -> Result<Delivery> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let r = sqlx::query("SELECT sent_at, attempts, last_error FROM mail_outbox WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(Delivery {
        sent_at: r.try_get::<Option<i64>, _>("sent_at")?.map(Timestamp),
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
    })
}

/// Empties the bodies whose time is up (their links and codes have expired; a mail written
/// before this release: after 30 days): what stays is who was mailed what subject when.
pub async fn purge_bodies(tx: &mut Tx, now: Timestamp) -> Result<u64> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    Ok(
        sqlx::query("UPDATE mail_outbox SET body = '' WHERE body <> '' AND COALESCE(body_expires_at, created_at + 2592000000) < $1")
            .bind(now.0)
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}
