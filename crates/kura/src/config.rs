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
    /// The URL users reach Kura at (links in mail). Default: `http://localhost:<port>`.
    pub public_url: Option<String>,
    /// `__Host-` cookies with `Secure` (works on https and on http://localhost).
    pub secure_cookies: bool,
    /// Largest accepted request body for the API and console, in bytes.
    pub body_limit_bytes: usize,
    /// Invitation links stay valid this many hours.
    pub invitation_ttl_hours: i64,
    /// tracing filter, e.g. `info` or `kura=debug,info`.
    pub log: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./kura-data"),
            database_url: None,
            database_schema: None,
            db_max_connections: 16,
            public_url: None,
            secure_cookies: true,
            body_limit_bytes: 1024 * 1024,
            invitation_ttl_hours: 168,
            log: "info".into(),
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
        fig = fig.merge(
            Env::prefixed("KURA_")
                .filter(|k| !k.as_str().ends_with("_file") && k.as_str() != "config"),
        );
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
        let Some(name) = k.strip_prefix("KURA_").and_then(|k| k.strip_suffix("_FILE")) else {
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

/// Refuses a secret file that any user on the machine can read.
pub fn check_not_world_readable(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
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
