//! `kura incident`: the incident register.

use super::*;

#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// Register an incident (the notification deadline starts at detection).
    Open {
        #[arg(long)]
        title_ja: String,
        #[arg(long)]
        title_en: String,
        /// low, medium, high or critical.
        #[arg(long)]
        severity: String,
        #[arg(long, default_value = "")]
        scope: String,
        /// Affected tenants (repeat); every tenant when omitted.
        #[arg(long)]
        tenant: Vec<String>,
        /// Detected at (RFC 3339 or Asia/Tokyo date-time); default now.
        #[arg(long)]
        detected: Option<String>,
        /// Notification target: 1bd (one Japanese business day) or hours, e.g. 72h.
        #[arg(long)]
        target: Option<String>,
    },
    /// Notify the affected tenants (mail to their contacts; shown in their console).
    Notify { id: String },
    /// Add a status update: investigating, identified, monitoring, resolved.
    Update {
        id: String,
        #[arg(long)]
        status: String,
        #[arg(long, default_value = "")]
        text_ja: String,
        #[arg(long, default_value = "")]
        text_en: String,
    },
    /// The register, with detection-to-notification times against the target.
    List,
}

pub(super) async fn run(cfg: &Config, cmd: IncidentCmd) -> anyhow::Result<i32> {
    let s = services(cfg).await?;
    let show = |i: &kura_store::incidents::Incident| {
        let took = i
            .notified_at
            .map(|n| format!("{} min", (n.0 - i.detected_at.0) / 60_000))
            .unwrap_or_else(|| "not yet".into());
        println!(
            "{}  {:<8} {}  detected {}  notified {took} (deadline {}){}{}",
            i.id,
            i.severity,
            i.title_ja,
            i.detected_at.to_rfc3339(),
            i.deadline_at.to_rfc3339(),
            if i.overdue(s.now()) { "  OVERDUE" } else { "" },
            if i.resolved_at.is_some() {
                "  resolved"
            } else {
                ""
            }
        );
    };
    let err = |e: kura_services::ServiceError| anyhow::anyhow!("{e}");
    match cmd {
        IncidentCmd::Open {
            title_ja,
            title_en,
            severity,
            scope,
            tenant,
            detected,
            target,
        } => {
            let detected_at = match detected {
                Some(d) => Some(
                    kura_domain::Timestamp::parse_in_zone(&d, "Asia/Tokyo")
                        .ok_or_else(|| anyhow::anyhow!("--detected: a date-time"))?,
                ),
                None => None,
            };
            let i = s
                .operator_open_incident(
                    kura_services::incidents::NewIncident {
                        title_ja,
                        title_en,
                        severity,
                        scope,
                        tenants: tenant,
                        detected_at,
                        target,
                    },
                    kura_services::Operator::Cli,
                    &ctx(),
                )
                .await
                .map_err(err)?;
            show(&i);
        }
        IncidentCmd::Notify { id } => show(
            &s.operator_notify_incident(&id, kura_services::Operator::Cli, &ctx())
                .await
                .map_err(err)?,
        ),
        IncidentCmd::Update {
            id,
            status,
            text_ja,
            text_en,
        } => show(
            &s.operator_update_incident(
                &id,
                &status,
                &text_ja,
                &text_en,
                kura_services::Operator::Cli,
                &ctx(),
            )
            .await
            .map_err(err)?,
        ),
        IncidentCmd::List => {
            for i in s.list_incidents().await? {
                show(&i);
            }
        }
    }
    Ok(0)
}
