//! `kura operator`: sign-in links for the operator console.

use super::*;

#[derive(Subcommand, Debug)]
pub enum OperatorCmd {
    /// Print a one-time link (valid 10 minutes) that opens an operator console session
    /// (8 hours at most, 30 idle minutes) under NAME, which the audit log records.
    LoginLink {
        #[arg(long)]
        name: String,
    },
    /// Operator console sessions and links, newest first.
    Sessions,
    /// End every operator console session and unused link.
    LogoutAll,
}

pub(super) async fn run(cfg: &Config, cmd: OperatorCmd) -> anyhow::Result<i32> {
    let s = services(cfg).await?;
    let err = |e: kura_services::ServiceError| anyhow::anyhow!("{e}");
    match cmd {
        OperatorCmd::LoginLink { name } => {
            let (link, expires) = s.operator_login_link(&name, &ctx()).await.map_err(err)?;
            println!(
                "{}/operator/login/{link}",
                s.config.public_url.trim_end_matches('/')
            );
            eprintln!(
                "one use, valid until {}; open it in a browser to sign in as operator {name:?}",
                expires.to_rfc3339()
            );
        }
        OperatorCmd::Sessions => {
            let now = s.now();
            for o in s.operator_sessions().await.map_err(err)? {
                let state = if o.ended_at.is_some() {
                    "ended"
                } else if o.started_at.is_none() {
                    if o.link_expires_at > now {
                        "link pending"
                    } else {
                        "link expired"
                    }
                } else if o.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{}  {:<20} {:<13} created {}  last seen {}",
                    o.id,
                    o.name,
                    state,
                    o.created_at.to_rfc3339(),
                    o.last_seen_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        OperatorCmd::LogoutAll => {
            let n = s.operator_end_sessions(&ctx()).await.map_err(err)?;
            println!("{n} operator session(s) and link(s) ended");
        }
    }
    Ok(0)
}
