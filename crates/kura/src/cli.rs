//! The operator's command line.

use crate::config::Config;
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use kura_domain::authz::Scope;
use kura_services::tenants::NewTenant;
use kura_services::users::{NewUser, UserChange};
use kura_services::{RequestCtx, Services};
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Data directory (overrides the config).
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

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on (overrides the config).
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant and invite its contract admin.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, default_value = "")]
        admin_name: String,
        /// ja or en.
        #[arg(long, default_value = "ja")]
        locale: String,
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show { slug: String },
    /// Terminate a tenant's contract: locked at once; its data is deleted after
    /// `termination_delete_days`, its keys destroyed `termination_shred_days` later.
    Terminate {
        #[arg(long)]
        slug: String,
        /// Do not ask: the tenant ID is not typed again to confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Undo a termination during its grace period (before the data is deleted): the tenant
    /// is active again, its export link stops working, its contract admins are mailed.
    Reactivate {
        #[arg(long)]
        slug: String,
    },
    /// A crypto-shredded tenant's deletion certificate: signed JSON, or a ja/en rendering.
    Certificate {
        #[arg(long)]
        slug: String,
        /// json, ja or en.
        #[arg(long, default_value = "json")]
        format: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user by invitation.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Built-in role (contract_admin, admin, member, guest) or a custom role id.
        #[arg(long, default_value = "member")]
        role: String,
        #[arg(long)]
        locale: Option<String>,
    },
    /// Freeze a user: they cannot log in and their sessions end at once.
    Freeze {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Unfreeze a user.
    Unfreeze {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Delete a user.
    Delete {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Verify hash chains in the database (one tenant, or all). Exits 1 naming the first bad
    /// entry if any chain is broken.
    Verify {
        /// An exported audit log (JSON Lines) to verify offline instead of the database;
        /// needs --public-key. Exits 1 naming the first bad line.
        file: Option<std::path::PathBuf>,
        /// The deployment's public key: 64 hex characters, a file holding them, or the JSON
        /// from /.well-known/kura-audit-key.
        #[arg(long)]
        public_key: Option<String>,
        /// Tenant slug (or `_system`); all chains when omitted.
        #[arg(long)]
        tenant: Option<String>,
        /// A signed checkpoint kept outside Kura (JSON, from the daily mail, the console or
        /// `GET /api/v1/audit/checkpoint`): the chain must still contain it. Needs --tenant.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// Print the deployment's audit signing public key (as /.well-known/kura-audit-key).
    PublicKey,
}

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

#[derive(Subcommand, Debug)]
pub enum CertificateCmd {
    /// Check a deletion certificate's signature with the deployment's public key; exit 1 if
    /// it does not verify.
    Verify {
        file: std::path::PathBuf,
        /// 64 hex characters, a file holding them, or the /.well-known/kura-audit-key JSON.
        #[arg(long)]
        public_key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Write a generation now, verify it, expire the ones beyond `backup_keep`.
    Run,
    /// Generations, newest first, with their verification.
    List,
    /// Verify a generation again (the newest when none is named); exit 1 if it fails.
    Verify {
        #[arg(long)]
        generation: Option<String>,
    },
    /// Restore a generation (the newest verified one by default): every tenant in it, or
    /// only --tenant (the others are not touched). Also into an empty database.
    Restore {
        #[arg(long)]
        generation: Option<String>,
        /// Tenant slug.
        #[arg(long)]
        tenant: Option<String>,
        /// Restore a generation whose verification failed (or that does not verify now).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum JobsCmd {
    /// Every job: interval, next due time, lease, last outcome, runs and failures; then the
    /// newest runs.
    List {
        #[arg(long, default_value_t = 10)]
        runs: i64,
    },
    /// Run the due jobs once from this process (as a node named `cli`), then exit.
    Run,
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// New data-key version for a tenant. New data uses it at once; existing blobs are
    /// re-encrypted under it in the background by the running server(s), or here with
    /// `--wait`.
    Rotate {
        #[arg(long)]
        tenant: String,
        /// Re-encrypt every existing blob now, before returning.
        #[arg(long)]
        wait: bool,
    },
    /// A tenant's current data-key version and how many blobs each version encrypts.
    Status {
        #[arg(long)]
        tenant: String,
    },
    /// Rewrap every tenant data key under a new master key (then configure that key).
    Rewrap {
        /// File with the new master key (64 hex characters, mode 600).
        #[arg(long)]
        new_master_key_file: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum BlobsCmd {
    /// Remove blobs that no file version references and abandoned upload temp files.
    Sweep {
        /// Only objects older than this (uploads in flight are younger).
        #[arg(long, default_value_t = 60)]
        older_than_minutes: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum MailCmd {
    /// Show the newest mails in the outbox.
    Outbox {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

fn ctx() -> RequestCtx {
    RequestCtx {
        ip: None,
        request_id: Some(kura_domain::ids::new_id()),
        user_agent: Some(format!("kura-cli/{}", env!("CARGO_PKG_VERSION"))),
    }
}

async fn services(cfg: &Config) -> anyhow::Result<Services> {
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
        Command::Serve(a) | Command::Demo(a) => {
            if let Some(l) = a.listen {
                cfg.listen = l;
            }
            let store = crate::open_store(&cfg).await?;
            let running = crate::start(&cfg, store, None, true).await?;
            let url = cfg.public_url(running.addr.port());
            if is_demo {
                let created = crate::demo::ensure(&running.services).await?;
                if created {
                    tracing::info!("demo tenant created");
                }
                // The dashboard shows the demo's first figures at once, not within the hour.
                if let Err(e) = running.services.rollup_usage().await {
                    tracing::warn!(error = %e, "usage roll-up failed");
                }
                crate::demo::print_banner(&url);
            } else {
                println!("Kura listening on {} ({url})", running.addr);
            }
            running.wait().await?;
            Ok(0)
        }
        Command::Migrate => {
            let store = crate::open_store(&cfg).await?;
            println!(
                "database ({}) at schema version {}",
                store.backend().name(),
                store.current_version().await?
            );
            Ok(0)
        }
        Command::Tenant(t) => tenant(&cfg, t).await,
        Command::User(u) => user(&cfg, u).await,
        Command::Audit(AuditCmd::PublicKey) => {
            let k = cfg.signing_key()?;
            println!(
                "{}",
                serde_json::json!({ "alg": "Ed25519", "key_id": k.key_id(), "public_key": k.public_key_hex() })
            );
            Ok(0)
        }
        Command::Audit(AuditCmd::Verify {
            file: Some(file),
            public_key,
            ..
        }) => {
            let Some(pk) = public_key else {
                anyhow::bail!(
                    "--public-key is needed to verify an export (see `kura audit public-key`)"
                );
            };
            let pk = public_key_arg(&pk)?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            match kura_crypto::export::verify_export(std::io::BufReader::new(f), &pk) {
                Ok(s) => {
                    println!(
                        "ok    {}: {} entries (seq {}–{}), {} signed checkpoints, {}",
                        file.display(),
                        s.events,
                        s.first_seq
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| "-".into()),
                        s.last_seq
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| "-".into()),
                        s.checkpoints,
                        if s.contiguous {
                            "a contiguous piece of the chain"
                        } else {
                            "filtered (each entry and the whole file are signed)"
                        }
                    );
                    Ok(0)
                }
                Err(e) => {
                    println!("FAIL  {}: {e}", file.display());
                    Ok(1)
                }
            }
        }
        Command::Audit(AuditCmd::Verify {
            tenant, checkpoint, ..
        }) => {
            let published: Option<kura_store::audit::Checkpoint> = match &checkpoint {
                Some(f) => {
                    if tenant.is_none() {
                        anyhow::bail!("--checkpoint needs --tenant");
                    }
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    // The checkpoint itself, or as saved from GET /api/v1/audit/checkpoint.
                    let mut v: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", f.display()))?;
                    if let Some(inner) = v.get_mut("checkpoint") {
                        v = inner.take();
                    }
                    Some(
                        serde_json::from_value(v)
                            .with_context(|| format!("{} is not a checkpoint", f.display()))?,
                    )
                }
                None => None,
            };
            let s = services(&cfg).await?;
            let results = s
                .operator_verify_audit(tenant.as_deref(), published.as_ref(), &ctx())
                .await?;
            let mut bad = 0;
            for (label, r) in results {
                match r {
                    Ok(rep) => println!(
                        "ok    {label}: {} events, head {} {}",
                        rep.events, rep.head_seq, rep.head_hash
                    ),
                    Err(e) => {
                        bad += 1;
                        println!("FAIL  {label}: {e}");
                    }
                }
            }
            Ok(if bad == 0 { 0 } else { 1 })
        }
        Command::Jobs(JobsCmd::List { runs }) => {
            let s = services(&cfg).await?;
            s.ensure_jobs().await?;
            let show = |t: Option<kura_domain::Timestamp>| {
                t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into())
            };
            for j in s.list_jobs().await? {
                println!(
                    "{:<18} every {:>6}s  next {}  lease {}  last {} {} on {}  runs {}  failures {}",
                    j.name,
                    j.every_secs,
                    j.next_due.to_rfc3339(),
                    j.lease_owner.as_deref().unwrap_or("-"),
                    j.last_status.as_deref().unwrap_or("never"),
                    show(j.last_finished),
                    j.last_node.as_deref().unwrap_or("-"),
                    j.runs,
                    j.failures
                );
                if let Some(e) = &j.last_error {
                    println!("{:<18} last error: {e}", "");
                }
            }
            for r in s.job_runs(None, runs).await? {
                println!(
                    "  run {:<18} due {}  {:<8} on {}{}",
                    r.name,
                    r.due_at.to_rfc3339(),
                    r.status,
                    r.node,
                    r.error.map(|e| format!(": {e}")).unwrap_or_default()
                );
            }
            Ok(0)
        }
        Command::Notice(NoticeCmd::Publish {
            kind,
            effective,
            until,
            title_ja,
            title_en,
            body_ja,
            body_en,
            tenant,
        }) => {
            let s = services(&cfg).await?;
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
        Command::Incident(cmd) => {
            let s = services(&cfg).await?;
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
        Command::Operator(cmd) => {
            let s = services(&cfg).await?;
            let err = |e: kura_services::ServiceError| anyhow::anyhow!("{e}");
            match cmd {
                OperatorCmd::LoginLink { name } => {
                    let (link, expires) =
                        s.operator_login_link(&name, &ctx()).await.map_err(err)?;
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
        Command::Notice(NoticeCmd::Withdraw { id }) => {
            let s = services(&cfg).await?;
            let n = s
                .operator_withdraw_notice(&id, kura_services::Operator::Cli, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("notice {} withdrawn: {} / {}", n.id, n.title_ja, n.title_en);
            Ok(0)
        }
        Command::Notice(NoticeCmd::List) => {
            let s = services(&cfg).await?;
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
        Command::Certificate(CertificateCmd::Verify { file, public_key }) => {
            let pk = public_key_arg(&public_key)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match kura_services::lifecycle::verify_certificate(&text, &pk) {
                Ok(c) => {
                    println!(
                        "ok    {}: tenant {} deleted {}, keys destroyed {}",
                        file.display(),
                        c["slug"].as_str().unwrap_or("-"),
                        c["data_deleted_at"].as_str().unwrap_or("-"),
                        c["keys_destroyed_at"].as_str().unwrap_or("-")
                    );
                    Ok(0)
                }
                Err(e) => {
                    println!("FAIL  {}: {e}", file.display());
                    Ok(1)
                }
            }
        }
        Command::Backup(BackupCmd::Run) => {
            let s = services(&cfg).await?;
            let g = s
                .run_backup(&|line| eprintln!("  {line}"))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "generation {}: {} tenants, {} rows, {} blobs ({} copied now, {} bytes written), verification {}",
                g.id,
                g.tenants,
                g.rows_saved,
                g.blobs,
                g.blobs_copied,
                g.bytes,
                g.verify_status.as_deref().unwrap_or("-")
            );
            Ok(if g.verify_status.as_deref() == Some("ok") {
                0
            } else {
                1
            })
        }
        Command::Backup(BackupCmd::Restore {
            generation,
            tenant,
            force,
        }) => {
            let s = services(&cfg).await?;
            let r = s
                .restore_backup(generation.as_deref(), tenant.as_deref(), force, &|line| {
                    eprintln!("  {line}")
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "restored generation {}: {} ({} rows, {} blobs copied back, {} damaged blobs replaced, {} blobs of rolled-back uploads removed; audit logs kept and the restore recorded in them)",
                r.generation,
                r.tenants.join(", "),
                r.rows,
                r.blobs_restored,
                r.blobs_repaired,
                r.blobs_orphaned
            );
            Ok(0)
        }
        Command::Backup(BackupCmd::List) => {
            let s = services(&cfg).await?;
            let list = s.list_backups().await?;
            if list.is_empty() {
                println!("(no backups yet)");
            }
            for g in list {
                println!(
                    "{}  {:<8} {}  tenants {}  rows {}  blobs {}  verified {} {}",
                    g.id,
                    g.status,
                    g.started_at.to_rfc3339(),
                    g.tenants,
                    g.rows_saved,
                    g.blobs,
                    g.verify_status.as_deref().unwrap_or("-"),
                    g.verify_detail.as_deref().unwrap_or("")
                );
            }
            Ok(0)
        }
        Command::Backup(BackupCmd::Verify { generation }) => {
            let s = services(&cfg).await?;
            let id = match generation {
                Some(g) => g,
                None => s
                    .list_backups()
                    .await?
                    .into_iter()
                    .find(|g| g.status == "ok")
                    .map(|g| g.id)
                    .ok_or_else(|| anyhow::anyhow!("no backup generation to verify"))?,
            };
            let (ok, detail) = s.verify_backup(&id).await?;
            println!("{}  {id}: {detail}", if ok { "ok  " } else { "FAIL" });
            Ok(if ok { 0 } else { 1 })
        }
        Command::Jobs(JobsCmd::Run) => {
            let s = services(&cfg).await?;
            s.ensure_jobs().await?;
            let (_keep, stop) = tokio::sync::watch::channel(false);
            let n = s.run_due_jobs("cli", &stop).await?;
            println!("ran {n} due jobs");
            Ok(0)
        }
        Command::Mail(MailCmd::Outbox { limit }) => {
            let s = services(&cfg).await?;
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
        Command::Blobs(BlobsCmd::Sweep { older_than_minutes }) => {
            let s = services(&cfg).await?;
            let r = s
                .operator_sweep_blobs(older_than_minutes.max(0) * 60, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "removed {} orphaned blobs and {} temp files; kept {}",
                r.orphans_removed, r.temp_files_removed, r.kept
            );
            Ok(0)
        }
        Command::Keys(KeysCmd::Rotate { tenant, wait }) => {
            let s = services(&cfg).await?;
            let r = s
                .operator_rotate_key(&tenant, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "tenant {tenant}: data key version {} is current for new data; {} blobs under older versions",
                r.new_version, r.pending
            );
            if !wait {
                println!("the running server(s) re-encrypt them in the background; `kura keys status --tenant {tenant}` shows progress");
                return Ok(0);
            }
            let t = s
                .operator_find_tenant(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut total = 0;
            loop {
                let n = s
                    .reencrypt_tenant(&t.id, 100, &ctx())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                total += n;
                if n == 0 {
                    break;
                }
            }
            let st = s
                .operator_key_status(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{total} blobs re-encrypted; {} left under older versions",
                st.pending()
            );
            Ok(if st.pending() == 0 { 0 } else { 1 })
        }
        Command::Keys(KeysCmd::Status { tenant }) => {
            let s = services(&cfg).await?;
            let st = s
                .operator_key_status(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "tenant {tenant}: current data key version {}",
                st.current_version
            );
            for (v, n) in &st.blobs_by_version {
                println!("  version {v}: {n} blobs");
            }
            println!("{} blobs waiting for re-encryption", st.pending());
            Ok(0)
        }
        Command::Keys(KeysCmd::Rewrap {
            new_master_key_file,
        }) => {
            let new = kura_crypto::keys::read_key_file(&new_master_key_file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", new_master_key_file.display()))?;
            let s = services(&cfg).await?;
            let n = s
                .operator_rewrap_keys(&new, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "rewrapped {n} data keys under master key {}; configure it as master_key_file and restart every node",
                new.fingerprint()
            );
            Ok(0)
        }
        Command::Bench(args) => crate::bench::run(&cfg, args).await.map(|_| 0),
    }
}

async fn tenant(cfg: &Config, cmd: TenantCmd) -> anyhow::Result<i32> {
    let s = services(cfg).await?;
    match cmd {
        TenantCmd::Terminate { slug, yes } => {
            if !yes {
                // Asked on the terminal, or read from a pipe (`echo acme | kura …`).
                use std::io::{BufRead, Write};
                eprint!(
                    "Terminating {slug} locks it at once and deletes its data after {} days.\nType the tenant ID to confirm: ",
                    cfg.termination_delete_days
                );
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if answer.trim() != slug {
                    eprintln!("not confirmed: nothing was changed (use --yes in scripts)");
                    return Ok(1);
                }
            }
            let (l, link) = s
                .operator_terminate_tenant(&slug, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "tenant {slug} terminated: locked now; data deleted after {}; keys destroyed after {}",
                l.delete_after.to_rfc3339(),
                l.shred_after.to_rfc3339()
            );
            println!("export for its contract admins (mailed to them; valid until the deletion):\n{link}");
        }
        TenantCmd::Reactivate { slug } => {
            s.operator_reactivate_tenant(&slug, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("tenant {slug} is active again; its contract admins were mailed; the export link no longer works");
        }
        TenantCmd::Certificate { slug, format } => {
            let text = s.deletion_certificate(&slug).await.map_err(|_| {
                anyhow::anyhow!("no deletion certificate for {slug} (not crypto-shredded yet?)")
            })?;
            match format.as_str() {
                "json" => println!("{text}"),
                lang @ ("ja" | "en") => {
                    let v: serde_json::Value = serde_json::from_str(&text)?;
                    println!("{}", kura_services::lifecycle::render_certificate(&v, lang));
                }
                other => bail!("--format json, ja or en, not {other:?}"),
            }
        }
        TenantCmd::Create {
            slug,
            name,
            admin_email,
            admin_name,
            locale,
            time_zone,
        } => {
            let created = s
                .create_tenant(
                    NewTenant {
                        slug,
                        name,
                        admin_email,
                        admin_name,
                        locale,
                        time_zone,
                    },
                    &ctx(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "created tenant {} ({}) id {}",
                created.tenant.slug, created.tenant.name, created.tenant.id
            );
            println!(
                "contract admin {} invited; the invitation was also put in the mail outbox.",
                created.admin.email
            );
            println!(
                "invitation link (valid {} hours):",
                cfg.invitation_ttl_hours
            );
            println!("{}", created.invitation_link);
        }
        TenantCmd::List => {
            let list = s
                .operator_list_tenants(&ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{:<20} {:<10} {:<30} CREATED", "SLUG", "STATUS", "NAME");
            for t in list {
                println!(
                    "{:<20} {:<10} {:<30} {}",
                    t.slug,
                    t.status.as_str(),
                    t.name,
                    t.created_at.to_rfc3339()
                );
            }
        }
        TenantCmd::Show { slug } => {
            let (t, users) = s
                .operator_show_tenant(&slug, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("id:         {}", t.id);
            println!("slug:       {}", t.slug);
            println!("name:       {}", t.name);
            println!("status:     {}", t.status.as_str());
            println!(
                "created:    {} ({})",
                t.created_at.format_in_zone(&t.settings.time_zone),
                t.created_at.to_rfc3339()
            );
            println!("users:      {users}");
            println!("settings:   {}", serde_json::to_string_pretty(&t.settings)?);
        }
    }
    Ok(0)
}

async fn user(cfg: &Config, cmd: UserCmd) -> anyhow::Result<i32> {
    let s = services(cfg).await?;
    let (tenant, email, change) = match cmd {
        UserCmd::Create {
            tenant,
            email,
            name,
            role,
            locale,
        } => {
            let (user, link) = s
                .operator_create_user(
                    &tenant,
                    NewUser {
                        email,
                        display_name: name,
                        locale,
                        role: Some((role, Scope::Tenant)),
                        max_label: None,
                    },
                    &ctx(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "invited {} ({}); link also in the mail outbox:",
                user.email, user.id
            );
            println!("{link}");
            return Ok(0);
        }
        UserCmd::Freeze { tenant, email } => (tenant, email, UserChange::Freeze),
        UserCmd::Unfreeze { tenant, email } => (tenant, email, UserChange::Unfreeze),
        UserCmd::Delete { tenant, email } => (tenant, email, UserChange::Delete),
    };
    match s
        .operator_change_user(&tenant, &email, change, &ctx())
        .await
    {
        Ok(u) => {
            println!("{:?}: {} ({})", change, u.email, u.id);
            Ok(0)
        }
        Err(kura_services::ServiceError::NotFound) => {
            bail!("no tenant {tenant} or no user {email} in it")
        }
        Err(e) => Err(anyhow::anyhow!("{e}")).context("changing the user"),
    }
}

/// A public key given as hex, a file holding hex, or the well-known JSON document.
fn public_key_arg(arg: &str) -> anyhow::Result<String> {
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
