//! Scheduled jobs (OPS-9): leases in the `jobs` table and one `job_runs` row per due time.
//!
//! A node claims a due job with a conditional UPDATE (due, and no live lease): on both
//! SQLite and PostgreSQL only one UPDATE can match. The run is then recorded under the
//! primary key (job, due time), so even a node whose lease expired mid-run cannot run the
//! same due time twice.

use crate::{Result, Tx};
use kura_domain::Timestamp;
use sqlx::Row;

/// A job's schedule and last outcome.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub every_secs: i64,
    pub next_due: Timestamp,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_started: Option<Timestamp>,
    pub last_finished: Option<Timestamp>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub last_node: Option<String>,
    pub runs: i64,
    pub failures: i64,
}

/// Registers a job (first due at `first_due`), or updates its interval if it changed.
pub async fn ensure(tx: &mut Tx, name: &str, every_secs: i64, first_due: Timestamp) -> Result<()> {
    tx.system_only()?;
    sqlx::query(
        "INSERT INTO jobs (name, every_secs, next_due) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET every_secs = excluded.every_secs",
    )
    .bind(name)
    .bind(every_secs)
    .bind(first_due.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn list(tx: &mut Tx) -> Result<Vec<Job>> {
    tx.system_only()?;
    let rows = sqlx::query(
        "SELECT name, every_secs, next_due, lease_owner, lease_until, last_started, last_finished, last_status, last_error, last_node, runs, failures FROM jobs ORDER BY name",
    )
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Job {
                name: r.try_get("name")?,
                every_secs: r.try_get("every_secs")?,
                next_due: Timestamp(r.try_get("next_due")?),
                lease_owner: r.try_get("lease_owner")?,
                lease_until: crate::opt_ts(r, "lease_until")?,
                last_started: crate::opt_ts(r, "last_started")?,
                last_finished: crate::opt_ts(r, "last_finished")?,
                last_status: r.try_get("last_status")?,
                last_error: r.try_get("last_error")?,
                last_node: r.try_get("last_node")?,
                runs: r.try_get("runs")?,
                failures: r.try_get("failures")?,
            })
        })
        .collect()
}

/// Moves `name`'s next due time to `to` when it lies further ahead of `now` than one
/// interval plus a margin (another interval, at least a minute) — which only a clock that
/// jumped backwards produces (due times only ever move forward), not the few seconds two
/// nodes' clocks differ by — and it is not leased. Returns whether it moved.
pub async fn reschedule_if_ahead(
    tx: &mut Tx,
    name: &str,
    every_secs: i64,
    now: Timestamp,
    to: Timestamp,
) -> Result<bool> {
    tx.system_only()?;
    Ok(sqlx::query(
        "UPDATE jobs SET next_due = $1 WHERE name = $2 AND next_due > $3 AND (lease_until IS NULL OR lease_until < $4)",
    )
    .bind(to.0)
    .bind(name)
    .bind(now.0 + (every_secs.max(1) + every_secs.max(60)) * 1000)
    .bind(now.0)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// Claims `name` for `node` if it is due and not leased; returns the due time being run.
pub async fn claim(
    tx: &mut Tx,
    name: &str,
    node: &str,
    now: Timestamp,
    lease_secs: i64,
) -> Result<Option<Timestamp>> {
    tx.system_only()?;
    let Some(row) = sqlx::query("SELECT next_due FROM jobs WHERE name = $1")
        .bind(name)
        .fetch_optional(tx.conn())
        .await?
    else {
        return Ok(None);
    };
    let due: i64 = row.try_get("next_due")?;
    if due > now.0 {
        return Ok(None);
    }
    let claimed = sqlx::query(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2, last_started = $3 WHERE name = $4 AND next_due = $5 AND (lease_until IS NULL OR lease_until < $3)",
    )
    .bind(node)
    .bind(now.0 + lease_secs * 1000)
    .bind(now.0)
    .bind(name)
    .bind(due)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return Ok(None);
    }
    // The run's own row: a second run of this due time (after an expired lease) fails here.
    let fresh = sqlx::query(
        "INSERT INTO job_runs (name, due_at, node, started_at, status) VALUES ($1, $2, $3, $4, 'running') ON CONFLICT (name, due_at) DO NOTHING",
    )
    .bind(name)
    .bind(due)
    .bind(node)
    .bind(now.0)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    Ok(fresh.then_some(Timestamp(due)))
}

/// Records the outcome of a run and schedules the next due time (missed intervals are not
/// run again: the next due time is the first one after `now`). Releases the lease.
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    tx: &mut Tx,
    name: &str,
    node: &str,
    due: Timestamp,
    every_secs: i64,
    now: Timestamp,
    error: Option<&str>,
) -> Result<()> {
    tx.system_only()?;
    let step = every_secs.max(1) * 1000;
    let mut next = due.0 + step;
    if next <= now.0 {
        next += ((now.0 - next) / step + 1) * step;
    }
    let status = if error.is_some() { "failed" } else { "ok" };
    sqlx::query(
        "UPDATE job_runs SET finished_at = $1, status = $2, error = $3 WHERE name = $4 AND due_at = $5",
    )
    .bind(now.0)
    .bind(status)
    .bind(error.map(str::to_string))
    .bind(name)
    .bind(due.0)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE jobs SET next_due = $1, lease_owner = NULL, lease_until = NULL, last_finished = $2, last_status = $3, last_error = $4, last_node = $5, runs = runs + 1, failures = failures + $6 WHERE name = $7 AND next_due = $8",
    )
    .bind(next)
    .bind(now.0)
    .bind(status)
    .bind(error.map(str::to_string))
    .bind(node)
    .bind(i64::from(error.is_some()))
    .bind(name)
    .bind(due.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One recorded run.
#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    pub due_at: Timestamp,
    pub node: String,
    pub status: String,
    pub error: Option<String>,
}

/// The newest runs of `name` (all jobs when `None`), newest first.
pub async fn runs(tx: &mut Tx, name: Option<&str>, limit: i64) -> Result<Vec<Run>> {
    tx.system_only()?;
    let rows = sqlx::query(
        "SELECT name, due_at, node, status, error FROM job_runs WHERE ($1 = '' OR name = $1) ORDER BY due_at DESC, name LIMIT $2",
    )
    .bind(name.unwrap_or(""))
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Run {
                name: r.try_get("name")?,
                due_at: Timestamp(r.try_get("due_at")?),
                node: r.try_get("node")?,
                status: r.try_get("status")?,
                error: r.try_get("error")?,
            })
        })
        .collect()
}
