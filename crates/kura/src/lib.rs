//! The `kura` binary's library half: configuration, server start-up and the operator CLI, so
//! the test kit can start exactly what `kura serve` starts.

pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;

use anyhow::Context;
use config::Config;
use kura_domain::{Clock, SystemClock};
use kura_http::{AppParts, AppState, HttpConfig};
use kura_services::{ServiceConfig, Services};
use kura_store::{ConnectOptions, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The `kura` command: parses the arguments, sets up logging (`KURA_LOG` / `RUST_LOG`) and
/// runs the command on a multi-threaded runtime. (The binary is this; the test suite builds
/// the same entry point as its own binary target.)
pub fn main_entry() -> std::process::ExitCode {
    use clap::Parser;
    let cli = cli::Cli::parse();
    let filter = std::env::var("KURA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kura: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(cli::run(cli)) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("kura: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The data directory, created 0700 — or narrowed to 0700 if it exists wider (it holds the
/// database, keys and spool).
pub fn private_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to its owner", dir.display()))?;
        tracing::warn!(dir = %dir.display(), "data directory was readable by others; now 0700");
    }
    Ok(())
}

/// A data file for its owner only: created 0600, or narrowed to 0600 if it exists wider
/// (with its SQLite -wal and -shm companions).
fn private_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
    }
    for p in [
        path.to_path_buf(),
        std::path::PathBuf::from(format!("{}-wal", path.display())),
        std::path::PathBuf::from(format!("{}-shm", path.display())),
    ] {
        if let Ok(meta) = std::fs::metadata(&p) {
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("restricting {} to its owner", p.display()))?;
            }
        }
    }
    Ok(())
}

/// Opens the database of an existing deployment (every command but `serve`, `demo` and
/// `migrate`): refuses — without creating anything — when there is none, or when its
/// schema is behind this binary.
pub async fn open_existing_store(cfg: &Config) -> anyhow::Result<Store> {
    let url = cfg.database_url();
    let hint = "is this the deployment you mean? (--data-dir / --config; `kura migrate` or `kura serve` create one)";
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
    {
        if !std::path::Path::new(path).exists() {
            anyhow::bail!("no database at {path}: {hint}");
        }
    }
    let store = Store::connect(&ConnectOptions {
        pg_schema: cfg.database_schema.clone(),
        acquire_timeout: std::time::Duration::from_secs(cfg.db_acquire_timeout_secs.max(1)),
        create_schema: false,
        ..ConnectOptions::new(url.clone(), cfg.db_max_connections)
    })
    .await
    .context("connecting to the database")?;
    let version = store.current_version().await.unwrap_or(0);
    if version == 0 {
        anyhow::bail!("no Kura database at {}: {hint}", redact_url(&url));
    }
    if version < kura_store::schema_version() {
        anyhow::bail!(
            "the database is at schema version {version}, this binary needs {}: run `kura migrate` first",
            kura_store::schema_version()
        );
    }
    if version > kura_store::schema_version() {
        anyhow::bail!(
            "the database is at schema version {version}, newer than this binary ({}); refusing to run",
            kura_store::schema_version()
        );
    }
    Ok(store)
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Opens the database named by the configuration and brings its schema up to date.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let url = cfg.database_url();
    if url.starts_with("sqlite:") {
        private_data_dir(&cfg.data_dir)?;
        // SQLite gives its -wal and -shm files the database file's mode: create it 0600.
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .map(|p| p.split('?').next().unwrap_or(p))
        {
            private_file(std::path::Path::new(path))?;
        }
    }
    let store = Store::connect(&ConnectOptions {
        pg_schema: cfg.database_schema.clone(),
        acquire_timeout: std::time::Duration::from_secs(cfg.db_acquire_timeout_secs.max(1)),
        ..ConnectOptions::new(url, cfg.db_max_connections)
    })
    .await
    .context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

pub fn services(
    cfg: &Config,
    store: Store,
    clock: Arc<dyn Clock>,
    port: u16,
) -> anyhow::Result<Services> {
    Ok(Services::new(
        store,
        clock,
        ServiceConfig {
            public_url: cfg.public_url(port),
            invitation_ttl_secs: cfg.invitation_ttl_hours * 3600,
            password_reset_ttl_secs: cfg.password_reset_ttl_minutes * 60,
            login: kura_services::LoginThrottle {
                account_max_failures: cfg.login_max_failures,
                ip_max_failures: cfg.login_ip_max_failures,
                lock_secs: cfg.login_lock_minutes * 60,
                delay_base_ms: cfg.login_failure_delay_ms,
            },
            checkpoint_interval_secs: cfg.audit_checkpoint_interval_secs.max(1),
            backup_keep: cfg.backup_keep.max(1),
            backup_region: cfg.backup_region.clone(),
            backup_time: cfg.backup_time.clone(),
            backup_time_zone: cfg.backup_time_zone.clone(),
            delete_after_days: cfg.termination_delete_days.max(0),
            shred_after_days: cfg.termination_shred_days.max(0),
            slo_percent: cfg.slo_percent,
            planned_downtime_budget_hours: cfg.planned_downtime_budget_hours,
            signup_enabled: cfg.signup_enabled,
            provider_name: cfg.provider_name.clone(),
            public_url_configured: cfg.public_url.is_some(),
            reencrypt_interval_secs: cfg.reencrypt_interval_secs,
        },
        cfg.master_key()?,
        cfg.blobs()?,
        cfg.signing_key()?,
    )
    .with_backups(cfg.backup_store()?))
}

/// A server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub services: Services,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    background: Option<kura_services::jobs::Background>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, flushes the access log.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // Background work stops cooperatively: the round in hand finishes (a job records
        // its outcome).
        if let Some(b) = self.background.take() {
            b.stop().await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = self.task.await.context("server task");
        // Sessions' last use still pending is written before the process goes.
        self.services.flush_touches().await;
        served?
    }

    /// Waits until the server ends (Ctrl-C / SIGTERM for `kura serve`).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let served = (&mut self.task).await.context("server task");
        if let Some(b) = self.background.take() {
            b.stop().await;
        }
        self.services.flush_touches().await;
        served?
    }
}

/// Binds `cfg.listen` and serves the API and console.
pub async fn start(
    cfg: &Config,
    store: Store,
    clock: Option<Arc<dyn Clock>>,
    stop_on_signal: bool,
) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
    let mut services = services(cfg, store.clone(), clock, addr.port())?;
    if let Some(url) = cfg.smtp_url.as_deref().filter(|u| !u.is_empty()) {
        let smtp = kura_services::mail::SmtpSender::new(url, &cfg.mail_from)
            .map_err(|e| anyhow::anyhow!(e))?;
        services = services.with_mailer(smtp);
    }
    services
        .blobs
        .check()
        .await
        .with_context(|| format!("blob storage ({})", services.blobs.describe()))?;
    let (access, writer) = kura_http::access::start_writer(
        store.clone(),
        cfg.data_dir.join("spool"),
        cfg.access_log_queue,
        services.clock.clone(),
    );
    let state = AppState::new(AppParts {
        services: services.clone(),
        access,
        http: Arc::new(HttpConfig {
            secure_cookies: cfg.secure_cookies,
            body_limit: cfg.body_limit_bytes,
            max_upload_bytes: cfg.max_upload_bytes,
            trusted_proxies: cfg.trusted_proxies.clone(),
            bench_dir: cfg.bench_dir.clone(),
            mail_outbox_page: cfg.mail_outbox_page,
            metrics_token: cfg.metrics_token.clone(),
        }),
        metrics: Default::default(),
    });
    let app = kura_http::app(state);
    for c in &cfg.trusted_proxies {
        if kura_domain::tenant::cidr_contains(c, std::net::IpAddr::from([127, 0, 0, 1])).is_none() {
            anyhow::bail!("trusted_proxies: {c:?} is not an IPv4/IPv6 address or CIDR range");
        }
    }
    let poll = (cfg.jobs_poll_secs > 0).then(|| std::time::Duration::from_secs(cfg.jobs_poll_secs));
    let background = kura_services::jobs::Background::start(&services, &cfg.node_name(), poll);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let signal = async move {
            if stop_on_signal {
                tokio::select! {
                    _ = rx => {},
                    _ = shutdown_signal() => {},
                }
            } else {
                let _ = rx.await;
            }
        };
        // TCP_NODELAY: a streamed response (a download) goes out in several writes; with
        // Nagle's algorithm the second one waits for the client's delayed ACK (~40 ms).
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .await
        .context("serving")?;
        // Every sender is gone with the router: the writer flushes and ends.
        let _ = writer.await;
        Ok(())
    });
    Ok(Running {
        addr,
        services,
        shutdown: Some(tx),
        task,
        background: Some(background),
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
