//! Background work, in one model. A [`Job`] is a value — a name, a [`Schedule`] and a run
//! function — and [`job_list`] is every job this build knows:
//!
//! - `Cluster` jobs run once per due time across all nodes (OPS-9): every node polls, one
//!   claims the due time with a lease, the run is recorded (`kura jobs list`). Signed audit
//!   checkpoints (LOG-5), retention purges (LOG-4), usage roll-ups, the lifecycle, status
//!   probes, the blob sweep, the daily backup (OPS-1).
//! - `EachNode` jobs run on every node that has the work: mail delivery over SMTP and the
//!   re-encryption after a key rotation. Each item they touch is claimed or switched in its
//!   own transaction, so nodes never do an item twice.
//!
//! [`Background`] (in `workers`) runs them: a worker per each-node job and one for the
//! cluster jobs, each with a status and a cooperative stop (the round in hand finishes).

use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_crypto::sign;
use kura_domain::tenant::TenantStatus;
use kura_domain::{TenantId, Timestamp};
use kura_store::audit::{self, Checkpoint};
use kura_store::{jobs, tenants};
use std::future::Future;
use std::pin::Pin;

/// The `blobs.sweep` job removes only what is at least this old.
pub const SWEEP_MIN_AGE_SECS: i64 = 86_400;

/// A node keeps a job this long before another may take it over (a crashed node): twice
/// the job's interval, at least 10 s, at most 10 minutes.
fn lease_secs(every_secs: i64) -> i64 {
    every_secs.saturating_mul(2).clamp(10, 600)
}

/// What one round of a job returns: a line for the log (empty: there was nothing to do).
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>>;

/// A job's run function.
pub type JobFn = for<'a> fn(&'a Services) -> JobFuture<'a>;

/// When a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Once per due time across all nodes, every `every_secs`; first due at once.
    Cluster { every_secs: i64 },
    /// Once a day across all nodes, at the configured backup time (and brought back to it
    /// when the clock goes back).
    DailyAtBackupTime,
    /// On every node, every `every`; not recorded in the job table.
    EachNode { every: std::time::Duration },
}

/// A piece of background work.
#[derive(Clone, Copy)]
pub struct Job {
    pub name: &'static str,
    pub schedule: Schedule,
    pub run: JobFn,
}

impl Job {
    /// The interval of a job that runs across the cluster; `None` for each-node work.
    pub fn cluster_interval(&self) -> Option<i64> {
        match self.schedule {
            Schedule::Cluster { every_secs } => Some(every_secs),
            Schedule::DailyAtBackupTime => Some(86_400),
            Schedule::EachNode { .. } => None,
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .finish()
    }
}

/// Every job this build knows, as configured for `s`.
pub fn job_list(s: &Services) -> Vec<Job> {
    let cluster = |name, every_secs, run| Job {
        name,
        schedule: Schedule::Cluster { every_secs },
        run,
    };
    let mut list = vec![
        cluster(
            "audit.checkpoint",
            s.config.checkpoint_interval_secs,
            run_checkpoint,
        ),
        cluster("audit.publish", 86_400, run_publish),
        cluster("logs.purge", 3600, run_purge),
        cluster("usage.rollup", 3600, run_rollup),
        cluster("lifecycle.run", 3600, run_lifecycle),
        cluster("status.probe", 60, run_probe),
        cluster("blobs.sweep", 86_400, run_sweep),
    ];
    if s.backups.is_some() {
        list.push(Job {
            name: "backup.run",
            schedule: Schedule::DailyAtBackupTime,
            run: run_backup_job,
        });
    }
    if s.mailer.is_some() {
        list.push(Job {
            name: "mail.deliver",
            schedule: Schedule::EachNode {
                every: std::time::Duration::from_secs(1),
            },
            run: run_mail,
        });
    }
    if s.config.reencrypt_interval_secs > 0 {
        list.push(Job {
            name: "keys.reencrypt",
            schedule: Schedule::EachNode {
                every: std::time::Duration::from_secs(s.config.reencrypt_interval_secs),
            },
            run: run_reencrypt,
        });
    }
    list
}

fn run_checkpoint(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let n = s.checkpoint_all().await?;
        Ok(format!("{n} chains checkpointed"))
    })
}

fn run_publish(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let n = s.publish_checkpoints().await?;
        Ok(format!("{n} tenants mailed their newest signed checkpoint"))
    })
}

fn run_purge(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let (a, b) = s.purge_logs().await?;
        Ok(format!(
            "{a} audit entries and {b} access-log entries purged"
        ))
    })
}

fn run_rollup(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let n = s.rollup_usage().await?;
        Ok(format!("{n} tenant-days computed"))
    })
}

fn run_lifecycle(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let n = s.advance_lifecycles().await?;
        Ok(format!("{n} termination steps"))
    })
}

fn run_probe(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let ok = s.probe_status().await?;
        Ok(if ok { "up" } else { "down" }.into())
    })
}

fn run_sweep(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        // Orphans a crash left behind; a day old at least, so that no upload in flight can
        // be touched.
        let ctx = RequestCtx {
            request_id: Some("job:blobs.sweep".into()),
            ..RequestCtx::default()
        };
        let r = s.operator_sweep_blobs(SWEEP_MIN_AGE_SECS, &ctx).await?;
        Ok(format!(
            "{} orphaned blobs and {} temp files removed, {} kept",
            r.orphans_removed, r.temp_files_removed, r.kept
        ))
    })
}

fn run_backup_job(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let g = s
            .run_backup(&|line| tracing::info!(job = "backup.run", "{line}"))
            .await?;
        Ok(format!(
            "generation {}: {} tenants, {} blobs ({} copied), verification {}",
            g.id,
            g.tenants,
            g.blobs,
            g.blobs_copied,
            g.verify_status.as_deref().unwrap_or("-")
        ))
    })
}

/// Delivers up to 20 mails of the outbox over SMTP.
fn run_mail(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let Some(smtp) = s.mailer.as_deref() else {
            return Ok(String::new());
        };
        Ok(match s.deliver_mail(smtp, 20).await? {
            (0, 0) => String::new(),
            (sent, failed) => format!("{sent} mails sent, {failed} failed"),
        })
    })
}

/// Re-encrypts up to 50 blobs left under older data-key versions (after `kura keys
/// rotate`); each blob switch is guarded by its own transaction.
fn run_reencrypt(s: &Services) -> JobFuture<'_> {
    Box::pin(async move {
        let ctx = RequestCtx {
            ip: None,
            request_id: Some("background:reencrypt".into()),
            user_agent: None,
        };
        Ok(match s.reencrypt_step(50, &ctx).await? {
            0 => String::new(),
            n => format!("{n} blobs re-encrypted under the current data key"),
        })
    })
}

impl Services {
    /// Registers the jobs (first due now); updates intervals that changed.
    pub async fn ensure_jobs(&self) -> Result<()> {
        let mut tx = self.store.system_tx().await?;
        for job in job_list(self) {
            let Some(every) = job.cluster_interval() else {
                continue;
            };
            // The daily backup first runs at its time of day; the others at once.
            let first = if job.schedule == Schedule::DailyAtBackupTime {
                self.next_backup_time()
            } else {
                self.now()
            };
            jobs::ensure(&mut tx, job.name, every, first).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs every job that is due and not taken by another node; returns how many ran.
    /// Stops between jobs when `stop` turns true.
    pub async fn run_due_jobs(
        &self,
        node: &str,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<usize> {
        let mut ran = 0;
        for job in job_list(self) {
            let Some(every) = job.cluster_interval() else {
                continue;
            };
            let name = job.name;
            if *stop.borrow() {
                break;
            }
            let now = self.now();
            let mut tx = self.store.system_tx().await?;
            // The clock jumped backwards: a due time more than an interval ahead is brought
            // back (the daily backup to its next time of day), or the job would stall
            // until the clock caught up.
            let resume = if job.schedule == Schedule::DailyAtBackupTime {
                self.next_backup_time()
            } else {
                now
            };
            if jobs::reschedule_if_ahead(&mut tx, name, every, now, resume).await? {
                tracing::warn!(job = name, "the clock went back: job rescheduled");
            }
            let due = jobs::claim(&mut tx, name, node, now, lease_secs(every)).await?;
            tx.commit().await?;
            let Some(due) = due else {
                continue;
            };
            let outcome = (job.run)(self).await;
            let error = outcome.as_ref().err().map(|e| e.to_string());
            self.metrics.job_ran(name, error.is_none());
            match &outcome {
                Ok(detail) => tracing::info!(job = name, node, detail = %detail, "job done"),
                Err(e) => tracing::warn!(job = name, node, error = %e, "job failed"),
            }
            let mut tx = self.store.system_tx().await?;
            jobs::finish(
                &mut tx,
                name,
                node,
                due,
                every,
                self.now(),
                error.as_deref(),
            )
            .await?;
            tx.commit().await?;
            ran += 1;
        }
        Ok(ran)
    }

    /// The jobs and their last outcomes (operator).
    pub async fn list_jobs(&self) -> Result<Vec<jobs::Job>> {
        let mut tx = self.store.system_read().await?;
        Ok(jobs::list(&mut tx).await?)
    }

    /// The newest runs (operator; all jobs when `name` is `None`).
    pub async fn job_runs(&self, name: Option<&str>, limit: i64) -> Result<Vec<jobs::Run>> {
        let mut tx = self.store.system_read().await?;
        Ok(jobs::runs(&mut tx, name, limit).await?)
    }
}

mod checkpoints;
mod purge;
mod usage;
mod workers;
pub use workers::{Background, WorkerStatus};
