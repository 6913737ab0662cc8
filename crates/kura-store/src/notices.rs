//! Service notices (OPS-5): published by the operator, for every tenant or some.

use crate::{Result, StoreError, Tx};
use kura_domain::{TenantId, Timestamp};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Notice {
    pub id: String,
    pub kind: String,
    pub title_ja: String,
    pub title_en: String,
    pub body_ja: String,
    pub body_en: String,
    pub published_at: Timestamp,
    pub effective_at: Timestamp,
    pub show_until: Timestamp,
    /// Tenant ids; empty: every tenant.
    pub tenants: Vec<String>,
    /// Withdrawn by the operator: no longer shown, and no planned downtime.
    pub withdrawn_at: Option<Timestamp>,
}

impl Notice {
    pub fn concerns(&self, tenant: &TenantId) -> bool {
        self.tenants.is_empty() || self.tenants.iter().any(|t| t == tenant.as_str())
    }
}

pub async fn insert(tx: &mut Tx, n: &Notice) -> Result<()> {
    tx.system_only()?;
    sqlx::query(
        "INSERT INTO notices (id, kind, title_ja, title_en, body_ja, body_en, published_at, effective_at, show_until, tenants) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&n.id)
    .bind(&n.kind)
    .bind(&n.title_ja)
    .bind(&n.title_en)
    .bind(&n.body_ja)
    .bind(&n.body_en)
    .bind(n.published_at.0)
    .bind(n.effective_at.0)
    .bind(n.show_until.0)
    .bind(serde_json::to_string(&n.tenants).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Notices still shown at `shown_after`, withdrawn ones left out; with `None`, every notice
/// ever published (withdrawn ones included). Newest first.
pub async fn list(tx: &mut Tx, shown_after: Option<Timestamp>) -> Result<Vec<Notice>> {
    tx.system_only()?;
    let live = if shown_after.is_some() {
        " AND withdrawn_at IS NULL"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT id, kind, title_ja, title_en, body_ja, body_en, published_at, effective_at, show_until, tenants, withdrawn_at FROM notices WHERE show_until > $1{live} ORDER BY published_at DESC, id",
    ))
    .bind(shown_after.map(|t| t.0).unwrap_or(i64::MIN))
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            let tenants: String = r.try_get("tenants")?;
            Ok(Notice {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                title_ja: r.try_get("title_ja")?,
                title_en: r.try_get("title_en")?,
                body_ja: r.try_get("body_ja")?,
                body_en: r.try_get("body_en")?,
                published_at: Timestamp(r.try_get("published_at")?),
                effective_at: Timestamp(r.try_get("effective_at")?),
                show_until: Timestamp(r.try_get("show_until")?),
                tenants: serde_json::from_str(&tenants)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                withdrawn_at: r.try_get::<Option<i64>, _>("withdrawn_at")?.map(Timestamp),
            })
        })
        .collect()
}

/// Marks a notice withdrawn; false if it was already (or does not exist).
pub async fn withdraw(tx: &mut Tx, id: &str, now: Timestamp) -> Result<bool> {
    tx.system_only()?;
    Ok(
        sqlx::query("UPDATE notices SET withdrawn_at = $1 WHERE id = $2 AND withdrawn_at IS NULL")
            .bind(now.0)
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected()
            == 1,
    )
}
