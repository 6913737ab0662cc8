//! The public status (OPS-7): current state, open incidents, planned maintenance, and
//! availability over 30 and 90 days measured by Kura's own probes (the `status.probe` job,
//! once a minute across all nodes: database and storage answer) against the SLO, and the
//! year's planned downtime against its budget.

use crate::{Result, Services};
use kura_domain::Timestamp;
use kura_store::status;

#[derive(Debug, Clone)]
pub struct Availability {
    pub days: i64,
    pub samples: i64,
    /// Percent of probes that found the service up; `None` without samples.
    pub percent: Option<f64>,
    pub meets_slo: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct StatusReport {
    /// `operational`, `degraded` (an open incident) or `down` (the last probe failed).
    pub state: String,
    pub checked_at: Option<Timestamp>,
    pub slo_percent: f64,
    pub availability: Vec<Availability>,
    pub planned_downtime_hours_this_year: f64,
    pub planned_downtime_budget_hours: f64,
    /// Open incidents: (title ja, title en, severity, detected at).
    pub incidents: Vec<(String, String, String, Timestamp)>,
    /// Upcoming planned maintenance for every tenant: (title ja, title en, from, until).
    pub maintenance: Vec<(String, String, Timestamp, Timestamp)>,
}

impl Services {
    /// One probe: the database and the blob storage answer. Recorded once per run.
    pub async fn probe_status(&self) -> Result<bool> {
        let (db, storage) = self.readiness().await;
        let ok = db && storage;
        let detail = format!("database={} storage={}", u8::from(db), u8::from(storage));
        let now = self.now();
        let mut tx = self.store.system_tx().await?;
        status::record(&mut tx, now, ok, &detail).await?;
        status::prune(&mut tx, Timestamp(now.0 - 400 * 86_400_000)).await?;
        tx.commit().await?;
        Ok(ok)
    }

    pub async fn status_report(&self) -> Result<StatusReport> {
        let now = self.now();
        let mut tx = self.store.system_read().await?;
        let latest = status::latest(&mut tx).await?;
        let mut availability = Vec::new();
        for days in [30, 90] {
            let (n, good) = status::counts(&mut tx, Timestamp(now.0 - days * 86_400_000)).await?;
            let percent = (n > 0).then(|| good as f64 * 100.0 / n as f64);
            availability.push(Availability {
                days,
                samples: n,
                percent,
                meets_slo: percent.map(|p| p >= self.config.slo_percent),
            });
        }
        let notices = kura_store::notices::list(&mut tx, None).await?;
        drop(tx);
        let year = now.day_in_zone("Asia/Tokyo")[..4].to_string();
        let planned: Vec<&kura_store::notices::Notice> = notices
            .iter()
            .filter(|n| {
                n.kind == "planned_maintenance" && n.tenants.is_empty() && n.withdrawn_at.is_none()
            })
            .collect();
        let hours: f64 = planned
            .iter()
            .filter(|n| n.effective_at.day_in_zone("Asia/Tokyo").starts_with(&year))
            .map(|n| (n.show_until.0 - n.effective_at.0).max(0) as f64 / 3_600_000.0)
            .sum::<f64>()
            + 0.0; // (an empty float sum is -0.0)
        let incidents: Vec<_> = self
            .list_incidents()
            .await?
            .into_iter()
            .filter(|i| i.resolved_at.is_none() && i.notified_at.is_some())
            .map(|i| (i.title_ja, i.title_en, i.severity, i.detected_at))
            .collect();
        let maintenance = planned
            .iter()
            .filter(|n| n.show_until > now)
            .map(|n| {
                (
                    n.title_ja.clone(),
                    n.title_en.clone(),
                    n.effective_at,
                    n.show_until,
                )
            })
            .collect();
        let state = match &latest {
            Some((_, false, _)) => "down",
            _ if !incidents.is_empty() => "degraded",
            _ => "operational",
        };
        Ok(StatusReport {
            state: state.into(),
            checked_at: latest.map(|l| l.0),
            slo_percent: self.config.slo_percent,
            availability,
            planned_downtime_hours_this_year: hours,
            planned_downtime_budget_hours: self.config.planned_downtime_budget_hours,
            incidents,
            maintenance,
        })
    }
}
