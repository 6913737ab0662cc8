//! Passkeys (IAM-5): WebAuthn credentials with their signature counters, and the server-side
//! state of ceremonies under way (so any node can finish what another started).

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// The credential id, base64url.
    pub cred_id: String,
    pub name: String,
    /// The credential as webauthn-rs serialises it (public key, counter, flags).
    pub data: String,
    pub counter: i64,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

const COLS: &str = "id, tenant_id, user_id, cred_id, name, data, counter, created_at, last_used_at";

fn from_row(r: &AnyRow) -> Result<PasskeyRow> {
    Ok(PasskeyRow {
        id: r.try_get("id")?,
        tenant_id: TenantId::from_string(r.try_get::<String, _>("tenant_id")?),
        user_id: UserId::from_string(r.try_get::<String, _>("user_id")?),
        cred_id: r.try_get("cred_id")?,
        name: r.try_get("name")?,
        data: r.try_get("data")?,
        counter: r.try_get("counter")?,
        created_at: Timestamp(r.try_get("created_at")?),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(Timestamp),
    })
}

/// Adds a passkey; false if this credential is already registered in the tenant.
pub async fn insert(tx: &mut Tx, p: &PasskeyRow) -> Result<bool> {
    tx.check(&p.tenant_id)?;
    let exists = sqlx::query("SELECT 1 AS x FROM passkeys WHERE tenant_id = $1 AND cred_id = $2")
        .bind(p.tenant_id.as_str())
        .bind(&p.cred_id)
        .fetch_optional(tx.conn())
        .await?;
    if exists.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO passkeys (id, tenant_id, user_id, cred_id, name, data, counter, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&p.id)
    .bind(p.tenant_id.as_str())
    .bind(p.user_id.as_str())
    .bind(&p.cred_id)
    .bind(&p.name)
    .bind(&p.data)
    .bind(p.counter)
    .bind(p.created_at.0)
    .execute(tx.conn())
    .await?;
    Ok(true)
}

pub async fn list_for_user(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<PasskeyRow>> {
    tx.check(tenant)?;
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM passkeys WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id"
    ))
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn count_for_user(tx: &mut Tx, tenant: &TenantId, user: &UserId) -> Result<i64> {
    tx.check(tenant)?;
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM passkeys WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .fetch_one(tx.conn())
            .await?
            .try_get("n")?,
    )
}

pub async fn find_by_cred(
    tx: &mut Tx,
    tenant: &TenantId,
    cred_id: &str,
) -> Result<Option<PasskeyRow>> {
    tx.check(tenant)?;
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM passkeys WHERE tenant_id = $1 AND cred_id = $2"
    ))
    .bind(tenant.as_str())
    .bind(cred_id)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Records a use: the new credential state and counter, only if the counter is still the
/// one that was read (two uses of one counter value cannot both succeed). False otherwise.
pub async fn record_use(
    tx: &mut Tx,
    p: &PasskeyRow,
    new_data: &str,
    new_counter: i64,
    now: Timestamp,
) -> Result<bool> {
    tx.check(&p.tenant_id)?;
    Ok(sqlx::query(
        "UPDATE passkeys SET data = $1, counter = $2, last_used_at = $3 WHERE tenant_id = $4 AND id = $5 AND counter = $6",
    )
    .bind(new_data)
    .bind(new_counter)
    .bind(now.0)
    .bind(p.tenant_id.as_str())
    .bind(&p.id)
    .bind(p.counter)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

pub async fn delete(tx: &mut Tx, tenant: &TenantId, user: &UserId, id: &str) -> Result<bool> {
    tx.check(tenant)?;
    Ok(
        sqlx::query("DELETE FROM passkeys WHERE tenant_id = $1 AND user_id = $2 AND id = $3")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected()
            == 1,
    )
}

/// A WebAuthn ceremony under way.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub tenant_id: TenantId,
    /// Known for registration and second-factor use; absent for a passwordless log-in.
    pub user_id: Option<UserId>,
    /// `register`, `login` or `mfa`.
    pub purpose: String,
    /// `console` or `api`: the session a log-in leads to.
    pub kind: String,
    /// For `mfa`: the log-in challenge (hash) the passkey completes.
    pub challenge_hash: Option<String>,
    /// webauthn-rs's state, JSON.
    pub state: String,
    pub expires_at: Timestamp,
}

pub async fn insert_ceremony(
    tx: &mut Tx,
    token_hash: &str,
    c: &Ceremony,
    now: Timestamp,
) -> Result<()> {
    tx.check(&c.tenant_id)?;
    // Expired ceremonies of this tenant go as new ones come.
    sqlx::query("DELETE FROM webauthn_ceremonies WHERE tenant_id = $1 AND expires_at < $2")
        .bind(c.tenant_id.as_str())
        .bind(now.0)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO webauthn_ceremonies (token_hash, tenant_id, user_id, purpose, kind, challenge_hash, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(token_hash)
    .bind(c.tenant_id.as_str())
    .bind(c.user_id.as_ref().map(|u| u.as_str().to_string()))
    .bind(&c.purpose)
    .bind(&c.kind)
    .bind(c.challenge_hash.clone())
    .bind(&c.state)
    .bind(now.0)
    .bind(c.expires_at.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A ceremony by its token hash (system scope: the token is the credential).
pub async fn find_ceremony(tx: &mut Tx, token_hash: &str) -> Result<Option<Ceremony>> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let row = sqlx::query(
        "SELECT tenant_id, user_id, purpose, kind, challenge_hash, state, expires_at FROM webauthn_ceremonies WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| {
        Ok(Ceremony {
            tenant_id: TenantId::from_string(r.try_get::<String, _>("tenant_id")?),
            user_id: r
                .try_get::<Option<String>, _>("user_id")?
                .map(UserId::from_string),
            purpose: r.try_get("purpose")?,
            kind: r.try_get("kind")?,
            challenge_hash: r.try_get("challenge_hash")?,
            state: r.try_get("state")?,
            expires_at: Timestamp(r.try_get("expires_at")?),
        })
    })
    .transpose()
}

/// Consumes a ceremony; false if another request already did (single use under a race).
pub async fn take_ceremony(tx: &mut Tx, tenant: &TenantId, token_hash: &str) -> Result<bool> {
    tx.check(tenant)?;
    Ok(
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE tenant_id = $1 AND token_hash = $2")
            .bind(tenant.as_str())
            .bind(token_hash)
            .execute(tx.conn())
            .await?
            .rows_affected()
            == 1,
    )
}
