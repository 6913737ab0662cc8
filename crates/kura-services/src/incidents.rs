//! The incident register (OPS-6): detected at, scope, affected tenants, severity, status
//! updates. Notifying mails the affected tenants' contacts and shows the incident in their
//! console; the time from detection to notification is measured against the target — one
//! Japanese business day by default, or hours (e.g. 72 h) — and overdue incidents are
//! counted in `/metrics`.

use crate::{Event, Operator, RequestCtx, Result, ServiceError, Services};
use kura_domain::Timestamp;
use kura_store::incidents::{self, Incident, Update};
use kura_store::tenants;

#[derive(Debug, Clone)]
pub struct NewIncident {
    pub title_ja: String,
    pub title_en: String,
    pub severity: String,
    pub scope: String,
    /// Tenant slugs; empty: every tenant.
    pub tenants: Vec<String>,
    /// Default: now.
    pub detected_at: Option<Timestamp>,
    /// `1bd` (default) or `<n>h`.
    pub target: Option<String>,
}

fn system_chain() -> kura_domain::TenantId {
    kura_domain::TenantId::from_string(kura_store::SYSTEM_TENANT)
}

impl Services {
    pub async fn operator_open_incident(
        &self,
        n: NewIncident,
        op: Operator<'_>,
        ctx: &RequestCtx,
    ) -> Result<Incident> {
        if !["low", "medium", "high", "critical"].contains(&n.severity.as_str()) {
            return Err(ServiceError::invalid(
                "severity",
                "low, medium, high or critical",
            ));
        }
        if n.title_ja.trim().is_empty() || n.title_en.trim().is_empty() {
            return Err(ServiceError::invalid(
                "title",
                "ja and en titles are required",
            ));
        }
        let detected = n.detected_at.unwrap_or_else(|| self.now());
        let target = n.target.unwrap_or_else(|| "1bd".into());
        let deadline = if target == "1bd" {
            kura_domain::calendar::next_business_day(detected, "Asia/Tokyo")
                .ok_or_else(|| ServiceError::internal("calendar"))?
        } else {
            let hours: i64 = target
                .strip_suffix('h')
                .and_then(|h| h.parse().ok())
                .filter(|h| *h > 0)
                .ok_or_else(|| ServiceError::invalid("target", "1bd or hours such as 72h"))?;
            detected.plus_secs(hours * 3600)
        };
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let mut ids = Vec::new();
        for slug in &n.tenants {
            let t = all
                .iter()
                .find(|t| &t.slug == slug)
                .ok_or_else(|| ServiceError::invalid("tenant", format!("no tenant {slug}")))?;
            ids.push(t.id.as_str().to_string());
        }
        let i = Incident {
            id: kura_domain::ids::new_id(),
            title_ja: n.title_ja,
            title_en: n.title_en,
            severity: n.severity,
            scope: n.scope,
            tenants: ids,
            detected_at: detected,
            deadline_at: deadline,
            target,
            notified_at: None,
            resolved_at: None,
            updates: Vec::new(),
        };
        let mut tx = self.store.system_tx().await?;
        incidents::save(&mut tx, &i).await?;
        self.audit(
            &mut tx,
            &system_chain(),
            &op.actor(),
            ctx,
            Event::new("incident.open")
                .details(serde_json::json!({ "incident": i.id, "severity": i.severity })),
        )
        .await?;
        tx.commit().await?;
        Ok(i)
    }

    /// One incident of the register.
    pub async fn incident(&self, id: &str) -> Result<Incident> {
        self.list_incidents()
            .await?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or(ServiceError::NotFound)
    }

    /// Mails the affected tenants' contacts (with the latest update) and records the time.
    pub async fn operator_notify_incident(
        &self,
        id: &str,
        op: Operator<'_>,
        ctx: &RequestCtx,
    ) -> Result<Incident> {
        let mut i = self.incident(id).await?;
        let now = self.now();
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let mut tx = self.store.system_tx().await?;
        let latest = i.updates.last().cloned();
        for t in all.iter().filter(|t| i.concerns(&t.id)) {
            let detected = i.detected_at.format_in_zone(&t.settings.time_zone);
            for to in crate::notices::recipients(&mut tx, &t.id).await? {
                let ja = t.settings.default_locale == "ja";
                let scope = scope_text(&i, ja);
                let severity = severity_text(&i.severity, ja);
                let (subject, body) = if ja {
                    (
                        format!("[Kura 障害のお知らせ] {}", i.title_ja),
                        format!(
                            "{} 様\n\n{}\n検知: {detected}\n影響範囲: {scope}\n重要度: {severity}\n{}",
                            t.name,
                            i.title_ja,
                            latest
                                .as_ref()
                                .map(|u| u.text_ja.clone())
                                .unwrap_or_default()
                        ),
                    )
                } else {
                    (
                        format!("[Kura incident] {}", i.title_en),
                        format!(
                            "To {}\n\n{}\nDetected: {detected}\nScope: {scope}\nSeverity: {severity}\n{}",
                            t.name,
                            i.title_en,
                            latest
                                .as_ref()
                                .map(|u| u.text_en.clone())
                                .unwrap_or_default()
                        ),
                    )
                };
                self.enqueue_mail(
                    &mut tx,
                    Some(&t.id),
                    &to,
                    subject,
                    body,
                    now,
                    now.plus_secs(crate::mail::KEEP_SECS),
                )
                .await?;
            }
        }
        if i.notified_at.is_none() {
            i.notified_at = Some(now);
        }
        incidents::save(&mut tx, &i).await?;
        self.audit(
            &mut tx,
            &system_chain(),
            &op.actor(),
            ctx,
            Event::new("incident.notify").details(serde_json::json!({
                "incident": i.id,
                "minutes_from_detection": (now.0 - i.detected_at.0) / 60_000,
                "overdue": i.overdue(now),
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(i)
    }

    /// Adds a status update (`investigating`, `identified`, `monitoring`, `resolved`).
    pub async fn operator_update_incident(
        &self,
        id: &str,
        status: &str,
        text_ja: &str,
        text_en: &str,
        op: Operator<'_>,
        ctx: &RequestCtx,
    ) -> Result<Incident> {
        if !["investigating", "identified", "monitoring", "resolved"].contains(&status) {
            return Err(ServiceError::invalid(
                "status",
                "investigating, identified, monitoring or resolved",
            ));
        }
        let mut i = self.incident(id).await?;
        let now = self.now();
        i.updates.push(Update {
            at: now,
            status: status.into(),
            text_ja: text_ja.into(),
            text_en: text_en.into(),
        });
        if status == "resolved" {
            i.resolved_at = Some(now);
        }
        let mut tx = self.store.system_tx().await?;
        incidents::save(&mut tx, &i).await?;
        self.audit(
            &mut tx,
            &system_chain(),
            &op.actor(),
            ctx,
            Event::new("incident.update")
                .details(serde_json::json!({ "incident": i.id, "status": status })),
        )
        .await?;
        tx.commit().await?;
        Ok(i)
    }

    pub async fn list_incidents(&self) -> Result<Vec<Incident>> {
        let mut tx = self.store.system_read().await?;
        Ok(incidents::list(&mut tx).await?)
    }

    /// Open, notified incidents a tenant should see.
    pub async fn current_incidents(&self, tenant: &kura_domain::TenantId) -> Result<Vec<Incident>> {
        let mut tx = self.store.system_read().await?;
        Ok(incidents::open(&mut tx)
            .await?
            .into_iter()
            .filter(|i| i.concerns(tenant) && i.notified_at.is_some() && i.resolved_at.is_none())
            .collect())
    }

    /// Incidents whose notification is late or missing past the deadline (metrics).
    pub async fn overdue_incidents(&self) -> Result<usize> {
        let now = self.now();
        let mut tx = self.store.system_read().await?;
        Ok(incidents::open(&mut tx)
            .await?
            .iter()
            .filter(|i| i.resolved_at.is_none() && i.overdue(now))
            .count())
    }
}

/// The severity as the mail's reader says it.
fn severity_text(severity: &str, ja: bool) -> &'static str {
    match (severity, ja) {
        ("low", true) => "低",
        ("medium", true) => "中",
        ("high", true) => "高",
        ("critical", true) => "緊急",
        ("low", false) => "low",
        ("medium", false) => "medium",
        ("high", false) => "high",
        ("critical", false) => "critical",
        (_, true) => "不明",
        (_, false) => "unknown",
    }
}

/// The scope as written by the operator, or — when none was given — who is affected.
fn scope_text(i: &Incident, ja: bool) -> String {
    if !i.scope.trim().is_empty() {
        return i.scope.clone();
    }
    match (i.tenants.is_empty(), ja) {
        (true, true) => "すべてのお客様".into(),
        (true, false) => "every customer".into(),
        (false, true) => "ご契約のテナント".into(),
        (false, false) => "your tenant".into(),
    }
}
