//! The incident register (OPS-6).

use crate::{Result, StoreError, Tx};
use kura_domain::{TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::Row;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Update {
    pub at: Timestamp,
    pub status: String,
    pub text_ja: String,
    pub text_en: String,
}

#[derive(Debug, Clone)]
pub struct Incident {
    pub id: String,
    pub title_ja: String,
    pub title_en: String,
    /// `low`, `medium`, `high`, `critical`.
    pub severity: String,
    pub scope: String,
    /// Affected tenant ids; empty: every tenant.
    pub tenants: Vec<String>,
    pub detected_at: Timestamp,
    /// When the affected tenants must have been notified.
    pub deadline_at: Timestamp,
    /// `1bd` (one Japanese business day) or `<n>h`.
    pub target: String,
    pub notified_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub updates: Vec<Update>,
}

impl Incident {
    pub fn concerns(&self, tenant: &TenantId) -> bool {
        self.tenants.is_empty() || self.tenants.iter().any(|t| t == tenant.as_str())
    }
    /// Not notified by the deadline (still, or late).
    pub fn overdue(&self, now: Timestamp) -> bool {
        match self.notified_at {
            Some(n) => n > self.deadline_at,
            None => now > self.deadline_at,
        }
    }
}

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub async fn save(tx: &mut Tx, i: &Incident) -> Result<()> {
    tx.system_only()?;
    sqlx::query("DELETE FROM incidents WHERE id = $1")
        .bind(&i.id)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO incidents (id, title_ja, title_en, severity, scope, tenants, detected_at, deadline_at, target, notified_at, resolved_at, updates) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&i.id)
    .bind(&i.title_ja)
    .bind(&i.title_en)
    .bind(&i.severity)
    .bind(&i.scope)
    .bind(json(&i.tenants)?)
    .bind(i.detected_at.0)
    .bind(i.deadline_at.0)
    .bind(&i.target)
    .bind(i.notified_at.map(|t| t.0))
    .bind(i.resolved_at.map(|t| t.0))
    .bind(json(&i.updates)?)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn list(tx: &mut Tx) -> Result<Vec<Incident>> {
    query(tx, false).await
}

/// Only open incidents (for the console banner and the status page, on every request).
pub async fn open(tx: &mut Tx) -> Result<Vec<Incident>> {
    query(tx, true).await
}

async fn query(tx: &mut Tx, open_only: bool) -> Result<Vec<Incident>> {
    tx.system_only()?;
    let filter = if open_only {
        "WHERE resolved_at IS NULL "
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT id, title_ja, title_en, severity, scope, tenants, detected_at, deadline_at, target, notified_at, resolved_at, updates FROM incidents {filter}ORDER BY detected_at DESC, id"
    ))
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            let parse = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
            Ok(Incident {
                id: r.try_get("id")?,
                title_ja: r.try_get("title_ja")?,
                title_en: r.try_get("title_en")?,
                severity: r.try_get("severity")?,
                scope: r.try_get("scope")?,
                tenants: serde_json::from_str(&parse("tenants")?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                detected_at: Timestamp(r.try_get("detected_at")?),
                deadline_at: Timestamp(r.try_get("deadline_at")?),
                target: r.try_get("target")?,
                notified_at: r.try_get::<Option<i64>, _>("notified_at")?.map(Timestamp),
                resolved_at: r.try_get::<Option<i64>, _>("resolved_at")?.map(Timestamp),
                updates: serde_json::from_str(&parse("updates")?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            })
        })
        .collect()
}
