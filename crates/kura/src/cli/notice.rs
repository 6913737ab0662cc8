//! `kura notice`: publish, withdraw and list service notices.

use super::*;

#[derive(Subcommand, Debug)]
pub enum NoticeCmd {
    /// Publish a notice: mailed to the tenants' contacts, shown in their console until past.
    Publish {
        /// spec_change (>= 7 days ahead), major_ui_change (>= 30 days), planned_maintenance
        /// (>= 5 Japanese business days), emergency (any time).
        #[arg(long)]
        kind: String,
        /// When it takes effect: RFC 3339, or a date/time in Asia/Tokyo.
        #[arg(long)]
        effective: String,
        /// Shown until (default: a day after it takes effect).
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        title_ja: String,
        #[arg(long)]
        title_en: String,
        #[arg(long, default_value = "")]
        body_ja: String,
        #[arg(long, default_value = "")]
        body_en: String,
        /// Only these tenants (repeat); every tenant when omitted.
        #[arg(long)]
        tenant: Vec<String>,
    },
    /// Every notice.
    List,
    /// Withdraw a notice that is not past yet: it leaves the consoles, no longer counts as
    /// planned downtime, and its tenants are mailed.
    Withdraw { id: String },
}

pub(super) async fn run(cfg: &Config, cmd: NoticeCmd) -> anyhow::Result<i32> {
    match cmd {
        NoticeCmd::Publish {
            kind,
            effective,
            until,
            title_ja,
            title_en,
            body_ja,
            body_en,
            tenant,
        } => {
            let s = services(cfg).await?;
            let when = |v: &str| {
                kura_domain::Timestamp::parse_in_zone(v, "Asia/Tokyo").ok_or_else(|| {
                    anyhow::anyhow!("{v:?}: use 2026-12-01T02:00 (Asia/Tokyo) or RFC 3339")
                })
            };
            let n = s
                .operator_publish_notice(
                    kura_services::notices::NewNotice {
                        kind,
                        title_ja,
                        title_en,
                        body_ja,
                        body_en,
                        effective_at: when(&effective)?,
                        show_until: until.as_deref().map(when).transpose()?,
                        tenants: tenant,
                    },
                    kura_services::Operator::Cli,
                    &ctx(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "notice {} published ({}), effective {}, shown until {}",
                n.id,
                n.kind,
                n.effective_at.to_rfc3339(),
                n.show_until.to_rfc3339()
            );
            Ok(0)
        }
        NoticeCmd::Withdraw { id } => {
            let s = services(cfg).await?;
            let n = s
                .operator_withdraw_notice(&id, kura_services::Operator::Cli, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("notice {} withdrawn: {} / {}", n.id, n.title_ja, n.title_en);
            Ok(0)
        }
        NoticeCmd::List => {
            let s = services(cfg).await?;
            for n in s.all_notices().await? {
                println!(
                    "{}  {:<20} effective {}  until {}  {} / {}  tenants: {}{}",
                    n.id,
                    n.kind,
                    n.effective_at.to_rfc3339(),
                    n.show_until.to_rfc3339(),
                    n.title_ja,
                    n.title_en,
                    if n.tenants.is_empty() {
                        "all".to_string()
                    } else {
                        n.tenants.len().to_string()
                    },
                    n.withdrawn_at
                        .map(|w| format!("  WITHDRAWN {}", w.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
            Ok(0)
        }
    }
}
