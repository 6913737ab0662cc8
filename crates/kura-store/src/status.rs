//! Health-probe samples (OPS-7): one per probe run, across all nodes.

use crate::{Result, Tx};
use kura_domain::Timestamp;
use sqlx::Row;

pub async fn record(tx: &mut Tx, at: Timestamp, ok: bool, detail: &str) -> Result<()> {
    tx.system_only()?;
    sqlx::query("INSERT INTO status_samples (at, ok, detail) VALUES ($1, $2, $3) ON CONFLICT (at) DO NOTHING")
        .bind(at.0)
        .bind(i64::from(ok))
        .bind(detail)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// (samples, good samples) since `from`.
pub async fn counts(tx: &mut Tx, from: Timestamp) -> Result<(i64, i64)> {
    tx.system_only()?;
    let r = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(ok), 0) AS BIGINT) AS good FROM status_samples WHERE at >= $1",
    )
    .bind(from.0)
    .fetch_one(tx.conn())
    .await?;
    Ok((r.try_get("n")?, r.try_get("good")?))
}

/// The newest sample.
pub async fn latest(tx: &mut Tx) -> Result<Option<(Timestamp, bool, String)>> {
    tx.system_only()?;
    let r = sqlx::query("SELECT at, ok, detail FROM status_samples ORDER BY at DESC LIMIT 1")
        .fetch_optional(tx.conn())
        .await?;
    r.map(|r| {
        Ok((
            Timestamp(r.try_get("at")?),
            r.try_get::<i64, _>("ok")? == 1,
            r.try_get("detail")?,
        ))
    })
    .transpose()
}

/// Drops samples older than `before` (a year is kept).
pub async fn prune(tx: &mut Tx, before: Timestamp) -> Result<()> {
    tx.system_only()?;
    sqlx::query("DELETE FROM status_samples WHERE at < $1")
        .bind(before.0)
        .execute(tx.conn())
        .await?;
    Ok(())
}
