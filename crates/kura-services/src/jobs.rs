//! Scheduled jobs (OPS-9): every node polls; a job runs once per due time across nodes
//! (leases and run records in the store). The jobs: signed audit checkpoints (LOG-5) and
//! retention purges of both logs (LOG-4).

use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_crypto::sign;
use kura_domain::tenant::TenantStatus;
use kura_domain::{TenantId, Timestamp};
use kura_store::audit::{self, Checkpoint};
use kura_store::{jobs, tenants};

/// The `blobs.sweep` job removes only what is at least this old.
pub const SWEEP_MIN_AGE_SECS: i64 = 86_400;

/// A node keeps a job this long before another may take it over (a crashed node): twice
/// the job's interval, at least 10 s, at most 10 minutes.
fn lease_secs(every_secs: i64) -> i64 {
    every_secs.saturating_mul(2).clamp(10, 600)
}

/// The jobs this build knows, with their intervals.
pub fn schedule(s: &Services) -> Vec<(&'static str, i64)> {
    let mut jobs = vec![
        ("audit.checkpoint", s.config.checkpoint_interval_secs),
        ("audit.publish", 86_400),
        ("logs.purge", 3600),
        ("usage.rollup", 3600),
        ("lifecycle.run", 3600),
        ("status.probe", 60),
        ("blobs.sweep", 86_400),
    ];
    if s.backups.is_some() {
        jobs.push(("backup.run", 86_400));
    }
    jobs
}

impl Services {
    /// Registers the jobs (first due now); updates intervals that changed.
    pub async fn ensure_jobs(&self) -> Result<()> {
        let mut tx = self.store.system_tx().await?;
        for (name, every) in schedule(self) {
            // The daily backup first runs at its time of day; the others at once.
            let first = if name == "backup.run" {
                self.next_backup_time()
            } else {
                self.now()
            };
            jobs::ensure(&mut tx, name, every, first).await?;
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
        for (name, every) in schedule(self) {
            if *stop.borrow() {
                break;
            }
            let now = self.now();
            let mut tx = self.store.system_tx().await?;
            // The clock jumped backwards: a due time more than an interval ahead is brought
            // back (the daily backup to its next time of day), or the job would stall
            // until the clock caught up.
            let resume = if name == "backup.run" {
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
            let outcome = self.run_job(name).await;
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

    async fn run_job(&self, name: &str) -> Result<String> {
        match name {
            "audit.checkpoint" => {
                let n = self.checkpoint_all().await?;
                Ok(format!("{n} chains checkpointed"))
            }
            "logs.purge" => {
                let (a, b) = self.purge_logs().await?;
                Ok(format!(
                    "{a} audit entries and {b} access-log entries purged"
                ))
            }
            "backup.run" => {
                let g = self
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
            }
            "status.probe" => {
                let ok = self.probe_status().await?;
                Ok(if ok { "up" } else { "down" }.into())
            }
            "lifecycle.run" => {
                let n = self.advance_lifecycles().await?;
                Ok(format!("{n} termination steps"))
            }
            "blobs.sweep" => {
                // Orphans a crash left behind; a day old at least, so that no upload in
                // flight can be touched.
                let ctx = RequestCtx {
                    request_id: Some("job:blobs.sweep".into()),
                    ..RequestCtx::default()
                };
                let r = self.operator_sweep_blobs(SWEEP_MIN_AGE_SECS, &ctx).await?;
                Ok(format!(
                    "{} orphaned blobs and {} temp files removed, {} kept",
                    r.orphans_removed, r.temp_files_removed, r.kept
                ))
            }
            "audit.publish" => {
                let n = self.publish_checkpoints().await?;
                Ok(format!("{n} tenants mailed their newest signed checkpoint"))
            }
            "usage.rollup" => {
                let n = self.rollup_usage().await?;
                Ok(format!("{n} tenant-days computed"))
            }
            other => Err(ServiceError::internal(format!("unknown job {other}"))),
        }
    }

    /// A signed checkpoint of `tenant`'s chain at (`seq`, `hash`).
    pub fn sign_checkpoint(&self, tenant: &str, seq: i64, hash: &str, kind: &str) -> Checkpoint {
        let at = self.now().0;
        Checkpoint {
            tenant_id: tenant.to_string(),
            seq,
            hash: hash.to_string(),
            at,
            kind: kind.to_string(),
            key_id: self.signing.key_id(),
            signature: self
                .signing
                .sign(&sign::checkpoint_message(tenant, seq, hash, at)),
        }
    }

    /// Checks a checkpoint's signature against this deployment's key.
    pub fn checkpoint_is_genuine(&self, c: &Checkpoint) -> bool {
        sign::verify(
            &self.signing.public_key_hex(),
            &sign::checkpoint_message(&c.tenant_id, c.seq, &c.hash, c.at),
            &c.signature,
        )
    }

    /// Checkpoints every chain whose head moved since its last checkpoint — but signs only
    /// what verifies: the part of the chain since the previous genuine checkpoint (or the
    /// stored base) must hash and link up to the head. A chain that does not is left
    /// unsigned, recorded in the system audit chain (`audit.checkpoint.refused`), and the
    /// job run fails naming it, so the forgery is reported instead of being vouched for.
    pub async fn checkpoint_all(&self) -> Result<usize> {
        let mut tx = self.store.system_read().await?;
        let chains = audit::chain_tenants(&mut tx).await?;
        drop(tx);
        let mut n = 0;
        let mut refused: Vec<(TenantId, kura_crypto::ChainError)> = Vec::new();
        for t in chains {
            let mut tx = self.store.system_tx().await?;
            let head = audit::head(&mut tx, &t).await?;
            let last = audit::latest_checkpoint(&mut tx, &t, None).await?;
            if last.as_ref().is_some_and(|c| c.seq >= head.seq) {
                if let Some(c) = last.filter(|c| c.seq > head.seq) {
                    refused.push((
                        t.clone(),
                        kura_crypto::ChainError::BehindCheckpoint {
                            head_seq: head.seq,
                            checkpoint_seq: c.seq,
                        },
                    ));
                }
                continue;
            }
            if head.seq == 0 {
                continue;
            }
            // Verify from the newest point already vouched for.
            let from = match last.filter(|c| c.seq >= head.base_seq) {
                Some(c) if self.checkpoint_is_genuine(&c) && c.tenant_id == t.as_str() => {
                    Ok((c.seq, c.hash))
                }
                Some(c) => Err(kura_crypto::ChainError::CheckpointSignature { seq: c.seq }),
                None if self.base_is_genuine(&t).await? => Ok((head.base_seq, head.base_hash)),
                None => Err(kura_crypto::ChainError::Base { seq: head.base_seq }),
            };
            let verified = match from {
                Ok((seq, hash)) => audit::verify_since(&mut tx, &t, seq, &hash).await?,
                Err(e) => Err(e),
            };
            match verified {
                Ok((seq, hash)) => {
                    let cp = self.sign_checkpoint(t.as_str(), seq, &hash, "interval");
                    if audit::insert_checkpoint(&mut tx, &cp).await? {
                        n += 1;
                    }
                    tx.commit().await?;
                }
                Err(e) => refused.push((t.clone(), e)),
            }
        }
        if refused.is_empty() {
            return Ok(n);
        }
        for (t, e) in &refused {
            tracing::error!(tenant = %t.as_str(), error = %e, "audit chain does not verify; no checkpoint signed");
        }
        self.audit_alone(
            &TenantId::from_string(kura_store::SYSTEM_TENANT),
            &Actor::System("audit.checkpoint"),
            &RequestCtx::default(),
            Event::new("audit.checkpoint.refused")
                .result("failure")
                .details(serde_json::json!({
                    "chains": refused
                        .iter()
                        .map(|(t, e)| serde_json::json!({ "tenant_id": t.as_str(), "error": e.to_string() }))
                        .collect::<Vec<_>>(),
                })),
        )
        .await?;
        Err(ServiceError::internal(format!(
            "{} audit chain(s) do not verify, not checkpointed: {}",
            refused.len(),
            refused
                .iter()
                .map(|(t, e)| format!("{}: {e}", t.as_str()))
                .collect::<Vec<_>>()
                .join("; ")
        )))
    }

    /// Mails each active tenant's contract admins the newest signed checkpoint of its audit
    /// chain when there is a newer one than last mailed (LOG-5): a copy outside the database,
    /// so that deleting checkpoints together with entries is detectable too. Returns how
    /// many tenants were mailed.
    pub async fn publish_checkpoints(&self) -> Result<usize> {
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let mut mailed = 0;
        for t in all.iter().filter(|t| t.status != TenantStatus::Terminated) {
            let mut tx = self.store.tenant_tx(&t.id).await?;
            let Some(cp) = audit::latest_checkpoint(&mut tx, &t.id, Some("interval")).await? else {
                continue;
            };
            if cp.seq <= audit::published_seq(&mut tx, &t.id).await? {
                continue;
            }
            if !self.checkpoint_is_genuine(&cp) {
                tracing::error!(tenant = %t.slug, seq = cp.seq, "newest checkpoint is not genuine; not published");
                continue;
            }
            let json = serde_json::to_string_pretty(&cp)
                .map_err(|e| ServiceError::internal(e.to_string()))?;
            let when = Timestamp(cp.at).format_in_zone(&t.settings.time_zone);
            self.mail_contract_admins(
                &mut tx,
                t,
                self.now().plus_secs(crate::mail::KEEP_SECS),
                |locale| {
                    crate::mail::checkpoint(&crate::mail::CheckpointMail {
                        locale,
                        tenant_name: &t.name,
                        seq: cp.seq,
                        when: &when,
                        json: &json,
                    })
                },
            )
            .await?;
            audit::set_published_seq(&mut tx, &t.id, cp.seq).await?;
            tx.commit().await?;
            mailed += 1;
        }
        Ok(mailed)
    }

    /// Applies every tenant's retention (LOG-4): audit entries older than
    /// `audit_retention_days` go after a signed `purge` checkpoint of the last one removed
    /// (the rest of the chain still verifies from it); access-log rows older than
    /// `access_log_retention_days` go. Audited per tenant when something was removed.
    pub async fn purge_logs(&self) -> Result<(i64, i64)> {
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let now = self.now();
        let (mut audit_total, mut access_total) = (0, 0);
        // A terminated tenant's data (logs included) goes whole at its deletion; nothing
        // more is written for it.
        for t in all
            .into_iter()
            .filter(|t| t.status != TenantStatus::Terminated)
        {
            let audit_cutoff = now.0 - t.settings.audit_retention_days * 86_400_000;
            let access_cutoff = now.0 - t.settings.access_log_retention_days * 86_400_000;
            let mut tx = self.store.tenant_tx(&t.id).await?;
            let removed = audit::purge_before(&mut tx, &t.id, audit_cutoff, |tenant, seq, hash| {
                self.sign_checkpoint(tenant, seq, hash, "purge")
            })
            .await?;
            let access =
                kura_store::access_log::purge_before(&mut tx, &t.id, access_cutoff).await?;
            if removed > 0 || access > 0 {
                self.audit(
                    &mut tx,
                    &t.id,
                    &Actor::System("logs.purge"),
                    &RequestCtx::default(),
                    Event::new("log.purge").details(serde_json::json!({
                        "audit_entries": removed,
                        "access_entries": access,
                        "audit_before": Timestamp(audit_cutoff).to_rfc3339(),
                        "access_before": Timestamp(access_cutoff).to_rfc3339(),
                    })),
                )
                .await?;
            }
            tx.commit().await?;
            audit_total += removed;
            access_total += access;
        }
        // Mail bodies whose links and codes have expired are emptied (LOG-4 is about logs;
        // this is about not keeping secrets longer than they work).
        let mut tx = self.store.system_tx().await?;
        kura_store::outbox::purge_bodies(&mut tx, now).await?;
        tx.commit().await?;
        Ok((audit_total, access_total))
    }

    /// Daily usage (OPS-4): today's and yesterday's figures per tenant, in the tenant's
    /// zone, from the audit and access logs (logins, active users, uploads, downloads)
    /// and the live stock (folders, projects, files, bytes). Older days are never
    /// recomputed, so they stay right after the logs are purged.
    pub async fn rollup_usage(&self) -> Result<usize> {
        use kura_store::usage;
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let now = self.now();
        let mut n = 0;
        for t in all
            .into_iter()
            .filter(|t| t.status != TenantStatus::Terminated)
        {
            let zone = t.settings.time_zone.clone();
            let today = now.day_in_zone(&zone);
            let yesterday = Timestamp(now.0 - 86_400_000).day_in_zone(&zone);
            for day in [yesterday, today.clone()] {
                let Some((start, end)) = Timestamp::day_bounds(&day, &zone) else {
                    continue;
                };
                let mut d = self.count_day(&t.id, start.0, end.0).await?;
                d.day = day.clone();
                let mut tx = self.store.tenant_tx(&t.id).await?;
                d.active_users = usage::active_users(&mut tx, &t.id, start.0, end.0).await?;
                let kept = usage::daily_range(&mut tx, &t.id, &day, &day).await?;
                match kept.first() {
                    // A finished day keeps the stock it was last computed with.
                    Some(k) if day != today => {
                        d.folders = k.folders;
                        d.projects = k.projects;
                        d.files = k.files;
                        d.bytes_stored = k.bytes_stored;
                    }
                    _ => {
                        let (folders, projects, files) = usage::stock(&mut tx, &t.id).await?;
                        d.folders = folders;
                        d.projects = projects;
                        d.files = files;
                        d.bytes_stored = usage::bytes_stored(&mut tx, &t.id).await?;
                    }
                }
                usage::put_daily(&mut tx, &t.id, &d, now.0).await?;
                tx.commit().await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Logins, uploads and downloads recorded in `[from, to)`.
    async fn count_day(
        &self,
        t: &TenantId,
        from: i64,
        to: i64,
    ) -> Result<kura_store::usage::Daily> {
        use kura_store::audit::{query, Cursor, Filter};
        let mut d = kura_store::usage::Daily::default();
        for action in ["auth.login", "file."] {
            let f = Filter {
                from: Some(from),
                to: Some(to),
                action: Some(action.into()),
                result: Some("success".into()),
                ..Filter::default()
            };
            let mut after = 0;
            loop {
                let mut tx = self.store.tenant_read(t).await?;
                let page = query(&mut tx, t, &f, Cursor::After(after), 2000).await?;
                drop(tx);
                for e in &page {
                    let size = e.record.details["size"].as_i64().unwrap_or(0);
                    match e.record.action.as_str() {
                        "auth.login" => d.logins += 1,
                        "file.upload" => {
                            d.uploads += 1;
                            d.upload_bytes += size;
                        }
                        "file.download" => {
                            d.downloads += 1;
                            d.download_bytes += size;
                        }
                        _ => {}
                    }
                }
                match page.last() {
                    Some(e) if page.len() == 2000 => after = e.record.seq,
                    _ => break,
                }
            }
        }
        Ok(d)
    }

    /// Tenant admin: daily figures for `from..=to` (`YYYY-MM-DD`), or summed by month
    /// (counts added up; the stock as of the month's last day).
    pub async fn usage_report(
        &self,
        auth: &crate::auth::AuthContext,
        from: &str,
        to: &str,
        monthly: bool,
        ctx: &RequestCtx,
    ) -> Result<Vec<kura_store::usage::Daily>> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            kura_domain::Action::AuditRead,
            &kura_domain::Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        for (field, v) in [("from", from), ("to", to)] {
            if Timestamp::day_bounds(v, "UTC").is_none() {
                return Err(ServiceError::invalid(field, "must be a date, YYYY-MM-DD"));
            }
        }
        let mut tx = self.store.tenant_read(t).await?;
        let days = kura_store::usage::daily_range(&mut tx, t, from, to).await?;
        if !monthly {
            return Ok(days);
        }
        let mut months: Vec<kura_store::usage::Daily> = Vec::new();
        for d in days {
            let month = d.day[..7].to_string();
            match months.last_mut() {
                Some(m) if m.day == month => {
                    m.logins += d.logins;
                    m.active_users = m.active_users.max(d.active_users);
                    m.uploads += d.uploads;
                    m.upload_bytes += d.upload_bytes;
                    m.downloads += d.downloads;
                    m.download_bytes += d.download_bytes;
                    m.folders = d.folders;
                    m.projects = d.projects;
                    m.files = d.files;
                    m.bytes_stored = d.bytes_stored;
                }
                _ => months.push(kura_store::usage::Daily { day: month, ..d }),
            }
        }
        Ok(months)
    }

    /// Plaintext bytes stored by every tenant (metrics).
    pub async fn stored_bytes_total(&self) -> Result<i64> {
        let mut tx = self.store.system_read().await?;
        Ok(kura_store::usage::bytes_stored_total(&mut tx).await?)
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

    /// The tenant chains' purge base must be a genuine purge checkpoint.
    pub(crate) async fn base_is_genuine(&self, t: &TenantId) -> Result<bool> {
        let mut tx = self.store.system_read().await?;
        let head = audit::head(&mut tx, t).await?;
        if head.base_seq == 0 {
            return Ok(head.base_hash == kura_crypto::GENESIS_HASH);
        }
        let cps = audit::checkpoints_between(&mut tx, t, head.base_seq, head.base_seq).await?;
        Ok(cps.iter().any(|c| {
            c.kind == "purge" && c.hash == head.base_hash && self.checkpoint_is_genuine(c)
        }))
    }
}
