//! The operator's command line: the argument tree here, one module per command.

use crate::config::Config;
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use kura_domain::authz::Scope;
use kura_services::tenants::NewTenant;
use kura_services::users::{NewUser, UserChange};
use kura_services::{RequestCtx, Services};
use std::path::PathBuf;
use std::sync::Arc;

mod audit;
mod backup;
mod blobs;
mod certificate;
mod incident;
mod jobs;
mod keys;
mod mail;
mod notice;
mod operator;
mod serve;
mod tenant;
mod user;
pub use audit::AuditCmd;
pub use backup::BackupCmd;
pub use blobs::BlobsCmd;
pub use certificate::CertificateCmd;
pub use incident::IncidentCmd;
pub use jobs::JobsCmd;
pub use keys::KeysCmd;
pub use mail::MailCmd;
pub use notice::NoticeCmd;
pub use operator::OperatorCmd;
pub use serve::ServeArgs;
pub use tenant::TenantCmd;
pub use user::UserCmd;

#[derive(Parser, Debug)]
#[command(
    name = "kura",
    version,
    about = "Kura (蔵): multi-tenant secure workspace server"
)]
pub struct Cli {
    /// Configuration file (default: ./kura.toml if present).
    #[arg(long, global = true, env = "KURA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the config; `bench` does not take it: it works in a temporary directory of its own).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the API and console.
    Serve(ServeArgs),
    /// Serve with a demo tenant (SQLite in ./kura-demo unless --data-dir is given).
    Demo(ServeArgs),
    /// Bring the database schema up to date.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage users of a tenant.
    #[command(subcommand)]
    User(UserCmd),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The embedded mail outbox.
    #[command(subcommand)]
    Mail(MailCmd),
    /// Blob storage maintenance.
    #[command(subcommand)]
    Blobs(BlobsCmd),
    /// Tenant data keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Scheduled jobs (each runs once per due time across all nodes).
    #[command(subcommand)]
    Jobs(JobsCmd),
    /// Deletion certificates.
    #[command(subcommand)]
    Certificate(CertificateCmd),
    /// Service notices to tenants (lead times enforced).
    #[command(subcommand)]
    Notice(NoticeCmd),
    /// The incident register.
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// The operator console (notices and incidents in the browser).
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Backup generations (daily by the job runner; here by hand).
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Measure request and audit throughput (prints ratios against a baseline).
    Bench(crate::bench::BenchArgs),
}

pub(super) fn ctx() -> RequestCtx {
    RequestCtx {
        ip: None,
        request_id: Some(kura_domain::ids::new_id()),
        user_agent: Some(format!("kura-cli/{}", env!("CARGO_PKG_VERSION"))),
    }
}

pub(super) async fn services(cfg: &Config) -> anyhow::Result<Services> {
    let store = crate::open_existing_store(cfg).await?;
    let port = cfg
        .listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    crate::services(cfg, store, Arc::new(kura_domain::SystemClock), port)
}

/// Runs a command; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    if matches!(cli.command, Command::Bench(_)) && cli.data_dir.is_some() {
        // Never a directory the operator names: the bench removes its directory at the end.
        anyhow::bail!(
            "kura bench works in a temporary directory of its own and removes it at the end; it does not take --data-dir"
        );
    }
    let mut cfg = Config::load(cli.config.as_deref())?;
    let is_demo = matches!(cli.command, Command::Demo(_));
    match (&cli.data_dir, is_demo) {
        (Some(d), _) => cfg.data_dir = d.clone(),
        (None, true) if cfg.database_url.is_none() && std::env::var("KURA_DATA_DIR").is_err() => {
            cfg.data_dir = PathBuf::from("./kura-demo")
        }
        _ => {}
    }
    if is_demo {
        // The demo has no SMTP server: its mail is read on a page.
        cfg.mail_outbox_page = true;
    }
    // Only these commands may start a deployment (a database, key files); every other one
    // refuses to run where there is none, instead of quietly creating an empty one.
    cfg.may_create = matches!(
        cli.command,
        Command::Serve(_) | Command::Demo(_) | Command::Migrate | Command::Bench(_)
    );
    match cli.command {
        Command::Serve(a) | Command::Demo(a) => serve::serve(cfg, a, is_demo).await,
        Command::Migrate => serve::migrate(&cfg).await,
        Command::Tenant(c) => tenant::run(&cfg, c).await,
        Command::User(c) => user::run(&cfg, c).await,
        Command::Audit(c) => audit::run(&cfg, c).await,
        Command::Jobs(c) => jobs::run(&cfg, c).await,
        Command::Notice(c) => notice::run(&cfg, c).await,
        Command::Incident(c) => incident::run(&cfg, c).await,
        Command::Operator(c) => operator::run(&cfg, c).await,
        Command::Certificate(c) => certificate::run(c).await,
        Command::Backup(c) => backup::run(&cfg, c).await,
        Command::Mail(c) => mail::run(&cfg, c).await,
        Command::Blobs(c) => blobs::run(&cfg, c).await,
        Command::Keys(c) => keys::run(&cfg, c).await,
        Command::Bench(args) => crate::bench::run(&cfg, args).await.map(|_| 0),
    }
}

/// A public key given as hex, a file holding hex, or the well-known JSON document.
pub(super) fn public_key_arg(arg: &str) -> anyhow::Result<String> {
    let text = if std::path::Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
    } else {
        arg.to_string()
    };
    let text = text.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(k) = v["public_key"].as_str() {
            return Ok(k.to_string());
        }
    }
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(text.to_string());
    }
    anyhow::bail!("--public-key: expected 64 hex characters, a file with them, or the JSON from /.well-known/kura-audit-key")
}
