//! Configuration: built-in defaults, then `kura.toml`, then `KURA_*` environment variables,
//! then `KURA_*_FILE` (the value read from a file, for secrets), then command-line flags.

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Where the embedded database (and, later, blobs) live.
    pub data_dir: PathBuf,
    /// `sqlite:///path/kura.db` or `postgres://user:pass@host/db`. Default: SQLite in data_dir.
    pub database_url: Option<String>,
    /// PostgreSQL only: the schema to use instead of `public` (created if missing).
    pub database_schema: Option<String>,
    /// Connection pool size.
    pub db_max_connections: u32,
    /// Seconds a request waits for a database connection (and, on SQLite, for the write
    /// lock) before it is answered 503 with `Retry-After`.
    pub db_acquire_timeout_secs: u64,
    /// Access-log entries queued in memory for the batch writer; beyond this (or while the
    /// database fails) entries go to `<data_dir>/spool` and are written later.
    pub access_log_queue: usize,
    /// The URL users reach Kura at (links in mail). Default: `http://localhost:<port>`.
    pub public_url: Option<String>,
    /// `__Host-` cookies with `Secure` (works on https and on http://localhost).
    pub secure_cookies: bool,
    /// Largest accepted request body for the API and console, in bytes.
    pub body_limit_bytes: usize,
    /// Invitation links stay valid this many hours.
    pub invitation_ttl_hours: i64,
    /// Password-reset links stay valid this many minutes.
    pub password_reset_ttl_minutes: i64,
    /// Failed log-ins of one account within `login_lock_minutes` that lock it for that long.
    pub login_max_failures: i64,
    /// Failed log-ins from one client address within `login_lock_minutes` that lock it.
    pub login_ip_max_failures: i64,
    /// Length of the counting window and of a lock.
    pub login_lock_minutes: i64,
    /// Growing delay before answering repeated failures: this × 2^(n-3) ms from the third.
    pub login_failure_delay_ms: u64,
    /// The master key (64 hex characters); prefer `master_key_file` or `KURA_MASTER_KEY_FILE`.
    pub master_key: Option<String>,
    /// File holding the master key (64 hex characters, mode 600). Default with SQLite:
    /// `<data_dir>/master.key`, created on first start. Required with PostgreSQL.
    pub master_key_file: Option<PathBuf>,
    /// The deployment's Ed25519 signing key seed (64 hex characters); prefer
    /// `signing_key_file`.
    pub signing_key: Option<String>,
    /// File holding the signing key seed (64 hex characters, mode 600). Default with
    /// SQLite: `<data_dir>/signing.key`, created on first start. Required with PostgreSQL.
    pub signing_key_file: Option<PathBuf>,
    /// How often (seconds) each tenant's audit chain head is checkpointed and signed.
    pub audit_checkpoint_interval_secs: i64,
    /// How often (seconds) this node looks for due jobs; 0: this node runs no jobs.
    pub jobs_poll_secs: u64,
    /// This node's name in job leases and runs (default: host name and process id).
    pub node_name: Option<String>,
    /// Where backup generations go: `local` (`backup_dir`) or `s3` (`backup_s3_bucket`, with
    /// the `s3_*` endpoint and credentials).
    pub backup_storage: String,
    /// `local`: the backup directory (default `<data_dir>/backups`; put it on another disk).
    pub backup_dir: Option<PathBuf>,
    pub backup_s3_bucket: Option<String>,
    pub backup_s3_prefix: String,
    /// A label for where backups are kept (e.g. `ap-northeast-1`), shown with them.
    pub backup_region: String,
    /// Generations kept.
    pub backup_keep: usize,
    /// Daily backup time (`HH:MM`) in `backup_time_zone`.
    pub backup_time: String,
    pub backup_time_zone: String,
    /// Days from a tenant's termination to the deletion of its data.
    pub termination_delete_days: i64,
    /// Days from that deletion to the destruction of its data keys (crypto-shredding).
    pub termination_shred_days: i64,
    /// Availability objective shown on the status page, percent.
    pub slo_percent: f64,
    /// Planned downtime allowed per year, hours.
    pub planned_downtime_budget_hours: f64,
    /// The operator's name as documents (deletion certificates) give the issuer, e.g.
    /// `株式会社クラウド蔵`.
    pub provider_name: String,
    /// Open self-service sign-up (`/api/v1/signup`): anyone with a mailbox gets a tenant.
    pub signup_enabled: bool,
    /// Largest file upload, in bytes.
    pub max_upload_bytes: u64,
    /// Reverse proxies (IPv4/IPv6 CIDR) whose `X-Forwarded-For` names the client address
    /// (for the access log, audit and tenants' IP allowlists). Empty: the socket peer.
    pub trusted_proxies: Vec<String>,
    /// SMTP server for outgoing mail: `smtp://host:25`, `smtp://user:pass@host:587?tls=required`
    /// or `smtps://user:pass@host:465` (prefer `KURA_SMTP_URL_FILE`). Unset: mail stays in the
    /// outbox (`kura mail outbox`).
    pub smtp_url: Option<String>,
    /// The sender of Kura's mail.
    pub mail_from: String,
    /// Show the mail outbox (invitations, reset links) at `/outbox` to clients on this
    /// machine (loopback only). `kura demo` turns it on; keep it off in production.
    pub mail_outbox_page: bool,
    /// A bearer token that opens `/metrics` to other hosts (prefer
    /// `KURA_METRICS_TOKEN_FILE`); clients on this machine may always read it.
    pub metrics_token: Option<String>,
    /// How often (seconds) a server re-encrypts blobs left under an older data-key version
    /// after `kura keys rotate` (a batch each time); 0 turns it off on this node.
    pub reencrypt_interval_secs: u64,
    /// Where encrypted blobs are kept: `local` (`<data_dir>/blobs`, or `blobs_dir`) or `s3`.
    pub storage: String,
    /// `storage = "local"`: the blob directory. Default `<data_dir>/blobs`.
    pub blobs_dir: Option<PathBuf>,
    /// `storage = "s3"`: the bucket (must exist).
    pub s3_bucket: Option<String>,
    /// `storage = "s3"`: object names start with this prefix (e.g. `kura/prod`).
    pub s3_prefix: String,
    /// `storage = "s3"`: the region.
    pub s3_region: String,
    /// `storage = "s3"`: an S3-compatible endpoint (MinIO, Garage...); unset for AWS.
    pub s3_endpoint: Option<String>,
    /// `storage = "s3"`: the access key id (unset: the AWS environment / instance role).
    pub s3_access_key_id: Option<String>,
    /// `storage = "s3"`: the secret key; prefer `KURA_S3_SECRET_ACCESS_KEY_FILE`.
    pub s3_secret_access_key: Option<String>,
    /// `storage = "s3"`: allow an `http://` endpoint (private networks and tests only).
    pub s3_allow_http: bool,
    /// S3 requests fail after this many seconds without a byte from the endpoint (a stalled
    /// endpoint); transfers that keep moving are never cut off.
    pub s3_read_timeout_secs: u64,
    /// Set by `kura bench` only (never from a file or the environment): mounts the plain
    /// baseline routes.
    #[serde(skip)]
    pub bench_dir: Option<PathBuf>,
    /// Set by the commands that may start a deployment (`serve`, `demo`, `migrate`,
    /// `bench`; never from a file): only they generate missing key files. Every other
    /// command refuses to run against a deployment that is not there.
    #[serde(skip)]
    pub may_create: bool,
}

/// The keys a `KURA_*` environment variable may set (others, such as `KURA_LOG` or the
/// test suite's `KURA_TEST_*`, are not configuration).
pub const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "database_schema",
    "db_max_connections",
    "db_acquire_timeout_secs",
    "access_log_queue",
    "public_url",
    "secure_cookies",
    "body_limit_bytes",
    "invitation_ttl_hours",
    "password_reset_ttl_minutes",
    "login_max_failures",
    "login_ip_max_failures",
    "login_lock_minutes",
    "login_failure_delay_ms",
    "master_key",
    "master_key_file",
    "max_upload_bytes",
    "backup_storage",
    "backup_dir",
    "backup_s3_bucket",
    "backup_s3_prefix",
    "backup_region",
    "backup_keep",
    "backup_time",
    "backup_time_zone",
    "termination_delete_days",
    "termination_shred_days",
    "slo_percent",
    "planned_downtime_budget_hours",
    "signup_enabled",
    "provider_name",
    "signing_key",
    "signing_key_file",
    "audit_checkpoint_interval_secs",
    "jobs_poll_secs",
    "node_name",
    "reencrypt_interval_secs",
    "trusted_proxies",
    "smtp_url",
    "mail_from",
    "mail_outbox_page",
    "metrics_token",
    "storage",
    "blobs_dir",
    "s3_bucket",
    "s3_prefix",
    "s3_region",
    "s3_endpoint",
    "s3_access_key_id",
    "s3_secret_access_key",
    "s3_allow_http",
    "s3_read_timeout_secs",
];

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./kura-data"),
            database_url: None,
            database_schema: None,
            db_max_connections: 16,
            db_acquire_timeout_secs: 5,
            access_log_queue: 10_000,
            public_url: None,
            secure_cookies: true,
            body_limit_bytes: 1024 * 1024,
            invitation_ttl_hours: 168,
            password_reset_ttl_minutes: 30,
            login_max_failures: 5,
            login_ip_max_failures: 30,
            login_lock_minutes: 15,
            login_failure_delay_ms: 250,
            master_key: None,
            master_key_file: None,
            max_upload_bytes: 10 * 1024 * 1024 * 1024,
            backup_storage: "local".into(),
            backup_dir: None,
            backup_s3_bucket: None,
            backup_s3_prefix: "kura-backups".into(),
            backup_region: "local".into(),
            backup_keep: 7,
            backup_time: "03:00".into(),
            backup_time_zone: "Asia/Tokyo".into(),
            termination_delete_days: 30,
            termination_shred_days: 7,
            slo_percent: 99.0,
            planned_downtime_budget_hours: 60.0,
            signup_enabled: false,
            provider_name: "Kura".into(),
            signing_key: None,
            signing_key_file: None,
            audit_checkpoint_interval_secs: 3600,
            jobs_poll_secs: 5,
            node_name: None,
            reencrypt_interval_secs: 30,
            trusted_proxies: Vec::new(),
            smtp_url: None,
            mail_from: "Kura <kura@localhost>".into(),
            mail_outbox_page: false,
            metrics_token: None,
            storage: "local".into(),
            blobs_dir: None,
            s3_bucket: None,
            s3_prefix: String::new(),
            s3_region: "us-east-1".into(),
            s3_endpoint: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
            s3_read_timeout_secs: 20,
            bench_dir: None,
            may_create: false,
        }
    }
}

impl Config {
    /// Loads the configuration. `file` is `--config`; without it `./kura.toml` is read if it
    /// exists.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    bail!("config file {} does not exist", f.display());
                }
                fig = fig.merge(Toml::file(f));
            }
            None => {
                if Path::new("kura.toml").exists() {
                    fig = fig.merge(Toml::file("kura.toml"));
                }
            }
        }
        fig = fig.merge(Env::prefixed("KURA_").only(KEYS));
        for (key, value) in secret_files()? {
            fig = fig.merge(Serialized::default(&key, value));
        }
        fig.extract().context("invalid configuration")
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("kura.db").display()),
        }
    }

    /// Loads the master key: `master_key`, else `master_key_file`, else (SQLite only)
    /// `<data_dir>/master.key`, generated with mode 600 on first start.
    pub fn master_key(&self) -> anyhow::Result<kura_crypto::keys::SecretKey> {
        use kura_crypto::keys::{read_key_file, SecretKey};
        if let Some(hex) = &self.master_key {
            return SecretKey::from_hex(hex).context("master_key");
        }
        if let Some(f) = &self.master_key_file {
            return read_key_file(f).with_context(|| format!("master key file {}", f.display()));
        }
        if !self.database_url().starts_with("sqlite:") {
            bail!("set master_key_file (or KURA_MASTER_KEY_FILE): with PostgreSQL every node needs the same master key");
        }
        let path = self.data_dir.join("master.key");
        if !path.exists() && !self.may_create {
            bail!(
                "no master key at {}: is this the deployment you mean? (--data-dir / --config; `kura serve` or `kura migrate` create one)",
                path.display()
            );
        }
        if !path.exists() {
            crate::private_data_dir(&self.data_dir)?;
            let key = SecretKey::generate().context("generating the master key")?;
            write_private(&path, &format!("{}\n", key.to_hex()))?;
            tracing::warn!(path = %path.display(), "generated a new master key: back it up separately from the data; without it the data cannot be read");
        }
        read_key_file(&path).with_context(|| format!("master key file {}", path.display()))
    }

    /// Loads the signing key: `signing_key`, else `signing_key_file`, else (SQLite only)
    /// `<data_dir>/signing.key`, generated with mode 600 on first start.
    pub fn signing_key(&self) -> anyhow::Result<kura_crypto::sign::SigningKey> {
        use kura_crypto::keys::{read_key_file, SecretKey};
        use kura_crypto::sign::SigningKey;
        let seed = if let Some(hex) = &self.signing_key {
            SecretKey::from_hex(hex).context("signing_key")?
        } else if let Some(f) = &self.signing_key_file {
            read_key_file(f).with_context(|| format!("signing key file {}", f.display()))?
        } else {
            if !self.database_url().starts_with("sqlite:") {
                bail!("set signing_key_file (or KURA_SIGNING_KEY_FILE): with PostgreSQL every node must sign with the same key");
            }
            let path = self.data_dir.join("signing.key");
            if !path.exists() && !self.may_create {
                bail!(
                    "no signing key at {}: is this the deployment you mean? (--data-dir / --config; `kura serve` or `kura migrate` create one)",
                    path.display()
                );
            }
            if !path.exists() {
                crate::private_data_dir(&self.data_dir)?;
                let key = SecretKey::generate().context("generating the signing key")?;
                write_private(&path, &format!("{}\n", key.to_hex()))?;
                tracing::warn!(path = %path.display(), "generated a new audit signing key: keep it; its public key verifies exported logs");
            }
            read_key_file(&path).with_context(|| format!("signing key file {}", path.display()))?
        };
        SigningKey::from_seed(&seed).map_err(|e| anyhow::anyhow!("signing key: {e}"))
    }

    /// This node's name for job leases.
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "node".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// The backup store this configuration names.
    pub fn backup_store(&self) -> anyhow::Result<kura_store::blobs::Blobs> {
        use kura_store::blobs::{Blobs, LocalBlobs, S3Blobs, S3Settings};
        match self.backup_storage.as_str() {
            "local" => Ok(Blobs::Local(LocalBlobs::new(
                self.backup_dir
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("backups")),
            ))),
            "s3" => {
                let Some(bucket) = self.backup_s3_bucket.clone().filter(|b| !b.is_empty()) else {
                    bail!("backup_storage = \"s3\" needs backup_s3_bucket");
                };
                let s3 = S3Blobs::new(&S3Settings {
                    bucket,
                    prefix: self.backup_s3_prefix.clone(),
                    region: self.s3_region.clone(),
                    endpoint: self.s3_endpoint.clone(),
                    access_key_id: self.s3_access_key_id.clone(),
                    secret_access_key: self.s3_secret_access_key.clone(),
                    allow_http: self.s3_allow_http,
                    read_timeout: std::time::Duration::from_secs(self.s3_read_timeout_secs.max(1)),
                })
                .context("S3 backup storage")?;
                Ok(Blobs::S3(s3))
            }
            other => bail!("backup_storage must be local or s3, not {other:?}"),
        }
    }

    /// The blob store this configuration names.
    pub fn blobs(&self) -> anyhow::Result<kura_store::blobs::Blobs> {
        use kura_store::blobs::{Blobs, LocalBlobs, S3Blobs, S3Settings};
        match self.storage.as_str() {
            "local" => Ok(Blobs::Local(LocalBlobs::new(
                self.blobs_dir
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("blobs")),
            ))),
            "s3" => {
                let Some(bucket) = self.s3_bucket.clone().filter(|b| !b.is_empty()) else {
                    bail!("storage = \"s3\" needs s3_bucket (KURA_S3_BUCKET)");
                };
                let s3 = S3Blobs::new(&S3Settings {
                    bucket,
                    prefix: self.s3_prefix.clone(),
                    region: self.s3_region.clone(),
                    endpoint: self.s3_endpoint.clone(),
                    access_key_id: self.s3_access_key_id.clone(),
                    secret_access_key: self.s3_secret_access_key.clone(),
                    allow_http: self.s3_allow_http,
                    read_timeout: std::time::Duration::from_secs(self.s3_read_timeout_secs.max(1)),
                })
                .context("S3 storage")?;
                Ok(Blobs::S3(s3))
            }
            other => bail!("storage must be \"local\" or \"s3\", not {other:?}"),
        }
    }

    pub fn public_url(&self, bound_port: u16) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://localhost:{bound_port}"),
        }
    }
}

/// `KURA_X_FILE=/path` → key `x` with the file's content (trimmed). A file that others can
/// read is refused: it holds a secret.
fn secret_files() -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (k, v) in std::env::vars() {
        let Some(name) = k
            .strip_prefix("KURA_")
            .and_then(|k| k.strip_suffix("_FILE"))
        else {
            continue;
        };
        let path = PathBuf::from(&v);
        check_not_world_readable(&path)?;
        let content = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {k}={}", path.display()))?;
        out.push((name.to_ascii_lowercase(), content.trim().to_string()));
    }
    Ok(out)
}

/// Creates a file readable by its owner only.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Refuses a secret file that any user on the machine can read.
pub fn check_not_world_readable(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.permissions().mode() & 0o004 != 0 {
            bail!(
                "{} is readable by every user; run `chmod o-r {}` (it holds a secret)",
                path.display(),
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &str, mode: u32) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kura-config-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        p
    }

    #[test]
    fn file_values_and_defaults() {
        let f = temp_file(
            "kura.toml",
            "listen = \"0.0.0.0:9000\"\ndatabase_url = \"postgres://db/kura\"\n",
            0o600,
        );
        let c = Config::load(Some(&f)).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.database_url(), "postgres://db/kura");
        assert!(c.secure_cookies);
        assert_eq!(c.public_url(9000), "http://localhost:9000");
        let d = Config::default();
        assert!(d.database_url().starts_with("sqlite://") && d.database_url().ends_with("kura.db"));
    }

    #[test]
    fn the_example_file_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../kura.toml.example");
        let cfg = Config::load(Some(Path::new(path))).unwrap();
        assert_eq!(cfg.storage, "local");
        assert!(cfg.blobs().is_ok());
        assert_eq!(cfg.reencrypt_interval_secs, 30);
    }

    #[test]
    fn bad_files_are_refused() {
        let f = temp_file("typo.toml", "lisen = \"x\"\n", 0o600);
        assert!(Config::load(Some(&f)).is_err(), "unknown keys are errors");
        assert!(Config::load(Some(Path::new("/nonexistent/kura.toml"))).is_err());
        let secret = temp_file("secret", "postgres://u:pw@db/kura", 0o644);
        assert!(check_not_world_readable(&secret).is_err());
        let secret = temp_file("secret2", "postgres://u:pw@db/kura", 0o600);
        assert!(check_not_world_readable(&secret).is_ok());
    }
}
