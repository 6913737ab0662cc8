//! Failed-login counters (IAM-8), per account (`acct:<tenant slug>:<e-mail>`, whether or not
//! the account exists) and per client address (`ip:<address>`). System scope: they are
//! consulted before anyone is authenticated.

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::Timestamp;
use sqlx::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures since `window_start`.
    pub failures: i64,
    pub window_start: Timestamp,
    pub locked_until: Option<Timestamp>,
}

fn system(tx: &Tx) -> Result<()> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    Ok(())
}

pub async fn get(tx: &mut Tx, key: &str) -> Result<Option<Throttle>> {
    system(tx)?;
    let row = sqlx::query(
        "SELECT failures, window_start, locked_until FROM login_throttle WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| {
        Ok(Throttle {
            failures: r.try_get("failures")?,
            window_start: Timestamp(r.try_get("window_start")?),
            locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(Timestamp),
        })
    })
    .transpose()
}

/// Counts one failure (a window older than `window_ms` starts over) in one statement, so
/// concurrent failures are all counted; returns the new state.
pub async fn record_failure(
    tx: &mut Tx,
    key: &str,
    now: Timestamp,
    window_ms: i64,
) -> Result<Throttle> {
    system(tx)?;
    let r = sqlx::query(
        "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_start < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.window_start < $3 THEN $2 ELSE login_throttle.window_start END \
         RETURNING failures, window_start, locked_until",
    )
    .bind(key)
    .bind(now.0)
    .bind(now.0 - window_ms)
    .fetch_one(tx.conn())
    .await?;
    Ok(Throttle {
        failures: r.try_get("failures")?,
        window_start: Timestamp(r.try_get("window_start")?),
        locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(Timestamp),
    })
}

/// Locks the key until `until` and starts its count over.
pub async fn lock(tx: &mut Tx, key: &str, until: Timestamp) -> Result<()> {
    system(tx)?;
    sqlx::query("UPDATE login_throttle SET locked_until = $1, failures = 0, window_start = $1 WHERE key = $2")
        .bind(until.0)
        .bind(key)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Forgets a key (a successful login, a password reset).
pub async fn clear(tx: &mut Tx, key: &str) -> Result<()> {
    system(tx)?;
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(tx.conn())
        .await?;
    Ok(())
}
