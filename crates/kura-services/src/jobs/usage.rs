//! Daily usage roll-ups and the usage report (the dashboard's figures).

use super::*;

impl Services {
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
    pub(crate) async fn count_day(
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
}
