//! Self-service sign-up requests (TEN-2): an e-mail address, a hashed code with an expiry
//! and an attempt count, and — once verified — a hashed token to finish with.

use crate::{Result, Tx};
use kura_domain::Timestamp;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Signup {
    pub id: String,
    pub email: String,
    pub locale: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at: Timestamp,
    pub token_hash: Option<String>,
    pub used_at: Option<Timestamp>,
}

pub async fn insert(tx: &mut Tx, s: &Signup, now: Timestamp) -> Result<()> {
    tx.system_only()?;
    sqlx::query(
        "INSERT INTO signups (id, email, locale, code_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.id)
    .bind(&s.email)
    .bind(&s.locale)
    .bind(&s.code_hash)
    .bind(s.expires_at.0)
    .bind(now.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Signup> {
    Ok(Signup {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        locale: r.try_get("locale")?,
        code_hash: r.try_get("code_hash")?,
        attempts: r.try_get("attempts")?,
        expires_at: Timestamp(r.try_get("expires_at")?),
        token_hash: r.try_get("token_hash")?,
        used_at: r.try_get::<Option<i64>, _>("used_at")?.map(Timestamp),
    })
}

const COLS: &str = "id, email, locale, code_hash, attempts, expires_at, token_hash, used_at";

/// The newest request for an address.
pub async fn latest_for(tx: &mut Tx, email: &str) -> Result<Option<Signup>> {
    tx.system_only()?;
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM signups WHERE email = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(email)
    .fetch_optional(tx.conn())
    .await?;
    r.as_ref().map(from_row).transpose()
}

pub async fn by_token(tx: &mut Tx, token_hash: &str) -> Result<Option<Signup>> {
    tx.system_only()?;
    let r = sqlx::query(&format!("SELECT {COLS} FROM signups WHERE token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(tx.conn())
        .await?;
    r.as_ref().map(from_row).transpose()
}

pub async fn count_attempt(tx: &mut Tx, id: &str) -> Result<()> {
    tx.system_only()?;
    sqlx::query("UPDATE signups SET attempts = attempts + 1 WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn set_token(tx: &mut Tx, id: &str, token_hash: &str) -> Result<()> {
    tx.system_only()?;
    sqlx::query("UPDATE signups SET token_hash = $1 WHERE id = $2")
        .bind(token_hash)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Marks a request used; false if it already was.
pub async fn mark_used(tx: &mut Tx, id: &str, now: Timestamp) -> Result<bool> {
    tx.system_only()?;
    Ok(
        sqlx::query("UPDATE signups SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now.0)
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected()
            == 1,
    )
}

/// Makes a request usable again (provisioning failed after it was marked used).
pub async fn unmark_used(tx: &mut Tx, id: &str) -> Result<()> {
    tx.system_only()?;
    sqlx::query("UPDATE signups SET used_at = NULL WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
