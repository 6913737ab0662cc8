//! Notices, incidents, readiness, the public status, the signing key.

use super::*;

/// A service notice (OPS-5).
#[derive(Serialize, JsonSchema)]
pub struct Notice {
    pub id: String,
    /// `spec_change`, `major_ui_change`, `planned_maintenance` or `emergency`.
    pub kind: String,
    pub title_ja: String,
    pub title_en: String,
    pub body_ja: String,
    pub body_en: String,
    pub published_at: Timestamp,
    pub effective_at: Timestamp,
    pub show_until: Timestamp,
    /// Tenant ids; empty: every tenant.
    pub tenants: Vec<String>,
    pub withdrawn_at: Option<Timestamp>,
}

impl From<kura_store::notices::Notice> for Notice {
    fn from(n: kura_store::notices::Notice) -> Self {
        Notice {
            id: n.id,
            kind: n.kind,
            title_ja: n.title_ja,
            title_en: n.title_en,
            body_ja: n.body_ja,
            body_en: n.body_en,
            published_at: n.published_at,
            effective_at: n.effective_at,
            show_until: n.show_until,
            tenants: n.tenants,
            withdrawn_at: n.withdrawn_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct IncidentUpdate {
    pub at: Timestamp,
    pub status: String,
    pub text_ja: String,
    pub text_en: String,
}

/// An incident (OPS-6).
#[derive(Serialize, JsonSchema)]
pub struct Incident {
    pub id: String,
    pub title_ja: String,
    pub title_en: String,
    /// `low`, `medium`, `high`, `critical`.
    pub severity: String,
    pub scope: String,
    /// Affected tenant ids; empty: every tenant.
    pub tenants: Vec<String>,
    pub detected_at: Timestamp,
    /// When the affected tenants must have been notified.
    pub deadline_at: Timestamp,
    /// `1bd` (one Japanese business day) or `<n>h`.
    pub target: String,
    pub notified_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub updates: Vec<IncidentUpdate>,
}

impl From<kura_store::incidents::Incident> for Incident {
    fn from(i: kura_store::incidents::Incident) -> Self {
        Incident {
            id: i.id,
            title_ja: i.title_ja,
            title_en: i.title_en,
            severity: i.severity,
            scope: i.scope,
            tenants: i.tenants,
            detected_at: i.detected_at,
            deadline_at: i.deadline_at,
            target: i.target,
            notified_at: i.notified_at,
            resolved_at: i.resolved_at,
            updates: i
                .updates
                .into_iter()
                .map(|u| IncidentUpdate {
                    at: u.at,
                    status: u.status,
                    text_ja: u.text_ja,
                    text_en: u.text_en,
                })
                .collect(),
        }
    }
}

/// Readiness: the database and the blob storage answer.
#[derive(Serialize, JsonSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    /// `ok` or `unreachable`.
    pub storage: String,
}

#[derive(Serialize, JsonSchema)]
pub struct Availability {
    pub days: i64,
    pub samples: i64,
    /// Percent of probes that found the service up; null without samples.
    pub percent: Option<f64>,
    pub meets_slo: Option<bool>,
}

/// The public status (OPS-7).
#[derive(Serialize, JsonSchema)]
pub struct StatusReport {
    /// `operational`, `degraded` (an open incident) or `down` (the last probe failed).
    pub state: String,
    pub checked_at: Option<Timestamp>,
    pub slo_percent: f64,
    pub availability: Vec<Availability>,
    pub planned_downtime_hours_this_year: f64,
    pub planned_downtime_budget_hours: f64,
    /// Open incidents: [title ja, title en, severity, detected at].
    pub incidents: Vec<(String, String, String, Timestamp)>,
    /// Upcoming planned maintenance for every tenant: [title ja, title en, from, until].
    pub maintenance: Vec<(String, String, Timestamp, Timestamp)>,
}

impl From<kura_services::status::StatusReport> for StatusReport {
    fn from(r: kura_services::status::StatusReport) -> Self {
        StatusReport {
            state: r.state,
            checked_at: r.checked_at,
            slo_percent: r.slo_percent,
            availability: r
                .availability
                .into_iter()
                .map(|a| Availability {
                    days: a.days,
                    samples: a.samples,
                    percent: a.percent,
                    meets_slo: a.meets_slo,
                })
                .collect(),
            planned_downtime_hours_this_year: r.planned_downtime_hours_this_year,
            planned_downtime_budget_hours: r.planned_downtime_budget_hours,
            incidents: r.incidents,
            maintenance: r.maintenance,
        }
    }
}

/// The deployment's audit signing key.
#[derive(Serialize, JsonSchema)]
pub struct AuditKey {
    /// Always `Ed25519`.
    pub alg: String,
    pub key_id: String,
    /// Hex.
    pub public_key: String,
}

/// This OpenAPI document.
#[derive(Serialize, JsonSchema)]
#[schemars(transparent)]
pub struct OpenApiDocument(pub Map<String, Value>);
