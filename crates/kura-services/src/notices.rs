//! Service notices (OPS-5): the operator publishes a notice of a kind with its effective
//! time; Kura refuses one whose lead time breaks the rule (see
//! [`kura_domain::notice::check_lead_time`]). A notice is mailed to every targeted
//! tenant's contract admins and contacts in the same transaction, and shown in their console until it is past.

use crate::{Event, Operator, RequestCtx, Result, ServiceError, Services};
use kura_domain::notice::{check_lead_time, NoticeKind};
use kura_domain::Timestamp;
use kura_store::notices::{self, Notice};
use kura_store::tenants;

/// What the operator publishes.
#[derive(Debug, Clone)]
pub struct NewNotice {
    pub kind: String,
    pub title_ja: String,
    pub title_en: String,
    pub body_ja: String,
    pub body_en: String,
    pub effective_at: Timestamp,
    /// Shown until (default: a day after it takes effect).
    pub show_until: Option<Timestamp>,
    /// Tenant slugs; empty: every tenant.
    pub tenants: Vec<String>,
}

/// Who receives a tenant's service notices and incident notifications (TEN-5): its
/// contract admins (people, not frozen) and its registered contacts, each address once.
pub(crate) async fn recipients(
    tx: &mut kura_store::Tx,
    tenant: &kura_domain::TenantId,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = kura_store::users::contract_admins(tx, tenant)
        .await?
        .into_iter()
        .filter(|u| {
            u.kind == kura_domain::user::UserKind::Person
                && u.status != kura_domain::user::UserStatus::Frozen
        })
        .map(|u| u.email)
        .collect();
    for c in tenants::list_contacts(tx, tenant).await? {
        out.push(c.email);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| seen.insert(e.to_lowercase()));
    Ok(out)
}

/// Mails a notice (or its withdrawal) to the contract admins and contacts of the tenants
/// it is for. A terminated tenant's contract is over: service notices no longer concern
/// it (incident notifications still do, during its export window). Returns the count.
async fn mail_notice(
    services: &Services,
    tx: &mut kura_store::Tx,
    notice: &Notice,
    all: &[kura_store::tenants::Tenant],
    withdrawn: bool,
    now: Timestamp,
) -> Result<usize> {
    let mut mailed = 0;
    for t in all.iter().filter(|t| {
        notice.concerns(&t.id) && t.status != kura_domain::tenant::TenantStatus::Terminated
    }) {
        let when = notice.effective_at.format_in_zone(&t.settings.time_zone);
        let ja = t.settings.default_locale == "ja";
        let (subject, body) = match (ja, withdrawn) {
            (true, false) => (
                format!("[Kura お知らせ] {}", notice.title_ja),
                format!(
                    "{} 様\n\n{}\n\n実施日時: {when}\n\n{}",
                    t.name, notice.title_ja, notice.body_ja
                ),
            ),
            (true, true) => (
                format!("[Kura お知らせ] 取り消し: {}", notice.title_ja),
                format!(
                    "{} 様\n\n先にお知らせした「{}」({when})は取り消しになりました。",
                    t.name, notice.title_ja
                ),
            ),
            (false, false) => (
                format!("[Kura notice] {}", notice.title_en),
                format!(
                    "To {}\n\n{}\n\nEffective: {when}\n\n{}",
                    t.name, notice.title_en, notice.body_en
                ),
            ),
            (false, true) => (
                format!("[Kura notice] Withdrawn: {}", notice.title_en),
                format!(
                    "To {}\n\nThe notice \"{}\" ({when}) has been withdrawn.",
                    t.name, notice.title_en
                ),
            ),
        };
        for to in recipients(tx, &t.id).await? {
            services
                .enqueue_mail(
                    tx,
                    Some(&t.id),
                    &to,
                    subject.clone(),
                    body.clone(),
                    now,
                    now.plus_secs(crate::mail::KEEP_SECS),
                )
                .await?;
            mailed += 1;
        }
    }
    Ok(mailed)
}

impl Services {
    pub async fn operator_publish_notice(
        &self,
        n: NewNotice,
        op: Operator<'_>,
        ctx: &RequestCtx,
    ) -> Result<Notice> {
        let kind = NoticeKind::parse(&n.kind).ok_or_else(|| {
            ServiceError::invalid(
                "kind",
                "spec_change, major_ui_change, planned_maintenance or emergency",
            )
        })?;
        let now = self.now();
        check_lead_time(kind, now, n.effective_at)
            .map_err(|e| ServiceError::invalid("effective_at", e))?;
        for (field, v) in [("title_ja", &n.title_ja), ("title_en", &n.title_en)] {
            if v.trim().is_empty() {
                return Err(ServiceError::invalid(field, "is required"));
            }
        }
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let mut targets = Vec::new();
        for slug in &n.tenants {
            let t = all
                .iter()
                .find(|t| &t.slug == slug)
                .ok_or_else(|| ServiceError::invalid("tenant", format!("no tenant {slug}")))?;
            targets.push(t.clone());
        }
        let notice = Notice {
            id: kura_domain::ids::new_id(),
            kind: kind.as_str().into(),
            title_ja: n.title_ja.trim().into(),
            title_en: n.title_en.trim().into(),
            body_ja: n.body_ja,
            body_en: n.body_en,
            published_at: now,
            effective_at: n.effective_at,
            show_until: n
                .show_until
                .unwrap_or_else(|| n.effective_at.plus_secs(86_400))
                .max(Timestamp(now.0 + 60_000)),
            tenants: targets.iter().map(|t| t.id.as_str().to_string()).collect(),
            withdrawn_at: None,
        };
        let mut tx = self.store.system_tx().await?;
        notices::insert(&mut tx, &notice).await?;
        let mailed = mail_notice(self, &mut tx, &notice, &all, false, now).await?;
        self.audit(
            &mut tx,
            &kura_domain::TenantId::from_string(kura_store::SYSTEM_TENANT),
            &op.actor(),
            ctx,
            Event::new("notice.publish").details(serde_json::json!({
                "notice": notice.id, "kind": notice.kind, "effective_at": notice.effective_at.to_rfc3339(),
                "tenants": notice.tenants.len(), "mailed": mailed,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(notice)
    }

    /// Withdraws a notice that is not past yet (a cancelled maintenance, say): it leaves
    /// the consoles, no longer counts as planned downtime, and the tenants it was mailed
    /// to are told.
    pub async fn operator_withdraw_notice(
        &self,
        id: &str,
        op: Operator<'_>,
        ctx: &RequestCtx,
    ) -> Result<Notice> {
        let now = self.now();
        let mut tx = self.store.system_read().await?;
        let notice = notices::list(&mut tx, None)
            .await?
            .into_iter()
            .find(|n| n.id == id)
            .ok_or(ServiceError::NotFound)?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        if notice.withdrawn_at.is_some() {
            return Err(ServiceError::invalid("notice", "was already withdrawn"));
        }
        if notice.show_until <= now {
            return Err(ServiceError::invalid("notice", "is already past"));
        }
        let mut tx = self.store.system_tx().await?;
        if !notices::withdraw(&mut tx, id, now).await? {
            return Err(ServiceError::invalid("notice", "was already withdrawn"));
        }
        let mailed = mail_notice(self, &mut tx, &notice, &all, true, now).await?;
        self.audit(
            &mut tx,
            &kura_domain::TenantId::from_string(kura_store::SYSTEM_TENANT),
            &op.actor(),
            ctx,
            Event::new("notice.withdraw")
                .details(serde_json::json!({ "notice": notice.id, "mailed": mailed })),
        )
        .await?;
        tx.commit().await?;
        Ok(Notice {
            withdrawn_at: Some(now),
            ..notice
        })
    }

    /// Notices shown to a tenant now.
    pub async fn current_notices(&self, tenant: &kura_domain::TenantId) -> Result<Vec<Notice>> {
        let mut tx = self.store.system_read().await?;
        Ok(notices::list(&mut tx, Some(self.now()))
            .await?
            .into_iter()
            .filter(|n| n.concerns(tenant))
            .collect())
    }

    /// Every notice (operator).
    pub async fn all_notices(&self) -> Result<Vec<Notice>> {
        let mut tx = self.store.system_read().await?;
        Ok(notices::list(&mut tx, None).await?)
    }
}
