//! `kura mail`: read the embedded outbox.

use super::*;

#[derive(Subcommand, Debug)]
pub enum MailCmd {
    /// Show the newest mails in the outbox.
    Outbox {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

pub(super) async fn run(cfg: &Config, cmd: MailCmd) -> anyhow::Result<i32> {
    match cmd {
        MailCmd::Outbox { limit } => {
            let s = services(cfg).await?;
            let mails = s.mail_outbox(limit).await?;
            let mut tx = s.store.system_read().await?;
            if mails.is_empty() {
                println!("(the outbox is empty)");
            }
            for m in mails {
                let d = kura_store::outbox::delivery(&mut tx, &m.id).await?;
                let state = match (&d.sent_at, &d.last_error) {
                    (Some(at), _) => format!("sent over SMTP {}", at.to_rfc3339()),
                    (None, Some(e)) => format!("not sent after {} attempts: {e}", d.attempts),
                    (None, None) if cfg.smtp_url.is_some() => "queued for SMTP".to_string(),
                    (None, None) => "in the outbox (no smtp_url)".to_string(),
                };
                println!("--- {}  to: {}  [{state}]", m.created_at.to_rfc3339(), m.to);
                let body = if m.body.is_empty() {
                    "(body no longer kept: sent, or older than the longest link lifetime)"
                } else {
                    m.body.as_str()
                };
                println!("Subject: {}\n\n{body}", m.subject);
            }
            Ok(0)
        }
    }
}
