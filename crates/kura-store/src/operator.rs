//! Operator console sessions. The CLI creates a one-time login link (only its hash is
//! kept); redeeming it once, before it expires, starts a session whose token hash, CSRF
//! token and lifetimes are on the same row. Operator sessions are separate from tenant
//! sessions: nothing here reaches a tenant's data (IAM-10).

use crate::{Result, Tx};
use kura_domain::Timestamp;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct OperatorSession {
    pub id: String,
    pub name: String,
    pub link_expires_at: Timestamp,
    pub csrf_token: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub last_seen_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

const COLS: &str = "id, name, link_expires_at, csrf_token, created_at, started_at, last_seen_at, expires_at, ended_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<OperatorSession> {
    Ok(OperatorSession {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        link_expires_at: Timestamp(r.try_get("link_expires_at")?),
        csrf_token: r.try_get("csrf_token")?,
        created_at: Timestamp(r.try_get("created_at")?),
        started_at: crate::opt_ts(r, "started_at")?,
        last_seen_at: crate::opt_ts(r, "last_seen_at")?,
        expires_at: crate::opt_ts(r, "expires_at")?,
        ended_at: crate::opt_ts(r, "ended_at")?,
    })
}

/// A new, not yet redeemed login link.
pub async fn insert_link(
    tx: &mut Tx,
    id: &str,
    name: &str,
    link_hash: &str,
    link_expires_at: Timestamp,
    now: Timestamp,
) -> Result<()> {
    tx.system_only()?;
    sqlx::query(
        "INSERT INTO operator_sessions (id, name, link_hash, link_expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(name)
    .bind(link_hash)
    .bind(link_expires_at.0)
    .bind(now.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Redeems a login link: only an unused, unexpired one, and only once (a conditional
/// UPDATE, so two nodes cannot both redeem it). Returns the session.
pub async fn redeem(
    tx: &mut Tx,
    link_hash: &str,
    token_hash: &str,
    csrf_token: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<Option<OperatorSession>> {
    tx.system_only()?;
    let done = sqlx::query(
        "UPDATE operator_sessions SET token_hash = $1, csrf_token = $2, started_at = $3, last_seen_at = $3, expires_at = $4 \
         WHERE link_hash = $5 AND token_hash IS NULL AND ended_at IS NULL AND link_expires_at > $3",
    )
    .bind(token_hash)
    .bind(csrf_token)
    .bind(now.0)
    .bind(expires_at.0)
    .bind(link_hash)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if done != 1 {
        return Ok(None);
    }
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM operator_sessions WHERE link_hash = $1"
    ))
    .bind(link_hash)
    .fetch_one(tx.conn())
    .await?;
    from_row(&r).map(Some)
}

/// Is there a link with this hash that could still be redeemed?
pub async fn link_pending(tx: &mut Tx, link_hash: &str, now: Timestamp) -> Result<bool> {
    tx.system_only()?;
    Ok(sqlx::query(
        "SELECT id FROM operator_sessions WHERE link_hash = $1 AND token_hash IS NULL AND ended_at IS NULL AND link_expires_at > $2",
    )
    .bind(link_hash)
    .bind(now.0)
    .fetch_optional(tx.conn())
    .await?
    .is_some())
}

/// The live session with this token hash (not ended, not past its lifetime).
pub async fn by_token(
    tx: &mut Tx,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<OperatorSession>> {
    tx.system_only()?;
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM operator_sessions WHERE token_hash = $1 AND ended_at IS NULL AND expires_at > $2"
    ))
    .bind(token_hash)
    .bind(now.0)
    .fetch_optional(tx.conn())
    .await?;
    r.as_ref().map(from_row).transpose()
}

pub async fn touch(tx: &mut Tx, id: &str, now: Timestamp) -> Result<()> {
    tx.system_only()?;
    sqlx::query("UPDATE operator_sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(now.0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Ends a session (log-out), or every one (`id` = None), including unredeemed links.
pub async fn end(tx: &mut Tx, id: Option<&str>, now: Timestamp) -> Result<u64> {
    tx.system_only()?;
    let q = match id {
        Some(_) => "UPDATE operator_sessions SET ended_at = $1 WHERE ended_at IS NULL AND id = $2",
        None => "UPDATE operator_sessions SET ended_at = $1 WHERE ended_at IS NULL",
    };
    let mut q = sqlx::query(q).bind(now.0);
    if let Some(id) = id {
        q = q.bind(id);
    }
    Ok(q.execute(tx.conn()).await?.rows_affected())
}

/// Sessions and links, newest first.
pub async fn list(tx: &mut Tx, limit: i64) -> Result<Vec<OperatorSession>> {
    tx.system_only()?;
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM operator_sessions ORDER BY created_at DESC, id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(from_row).collect()
}
