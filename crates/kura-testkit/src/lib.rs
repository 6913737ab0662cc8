//! Boots a whole Kura server in-process on a free loopback port — on SQLite (a fresh temp
//! directory) or on the real PostgreSQL (a fresh schema) — with a real HTTP client and a
//! manual clock, for the integration suite in `tests/`.
//!
//! PostgreSQL: `KURA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! The PostgreSQL half of every suite runs unless `KURA_TEST_POSTGRES=skip`; when it runs and
//! the server cannot be reached, the tests fail — CI never sets `skip`.
//!
//! S3: the blob suites also run on a real S3-compatible server: `KURA_TEST_S3_ENDPOINT`
//! (e.g. `http://127.0.0.1:5000`), or else `moto_server` (PyPI `moto[server]`) started by the
//! tests on a free loopback port. They run unless `KURA_TEST_S3=skip`; when they run and no
//! server can be reached or started, the tests fail — CI never sets `skip`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kura::config::Config;
use kura_domain::{Clock, ManualClock, SystemClock};
use kura_services::Services;
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use reqwest::StatusCode;

pub mod schema;
pub mod webauthn;

/// The password every test user gets (passes the default policy).
pub const PASSWORD: &str = "Test-Otter-Lantern-93";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends every store-touching test runs on.
pub fn backends() -> Vec<Backend> {
    if std::env::var("KURA_TEST_POSTGRES").as_deref() == Ok("skip") {
        eprintln!("NOTE: KURA_TEST_POSTGRES=skip — PostgreSQL half of the suite not run");
        vec![Backend::Sqlite]
    } else {
        vec![Backend::Sqlite, Backend::Postgres]
    }
}

/// Whether this backend runs in this process (PostgreSQL not when `KURA_TEST_POSTGRES=skip`).
pub fn backend_enabled(b: Backend) -> bool {
    backends().contains(&b)
}

/// Whether this storage runs in this process (S3 not when `KURA_TEST_S3=skip`).
pub fn storage_enabled(s: Storage) -> bool {
    storages().contains(&s)
}

/// One test per backend, named after it, so that a failure says which backend failed:
/// `per_backend!(name);` next to `async fn name(b: Backend)` gives the tests
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! per_backend {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::backend_enabled($crate::Backend::Postgres) {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        }
    };
}

/// One test per (database, storage) pair of [`setups`], named after it:
/// `per_setup!(name);` next to `async fn name(b: Backend, storage: Storage)` gives
/// `name::sqlite_local`, `name::postgres_local` and `name::sqlite_s3`.
#[macro_export]
macro_rules! per_setup {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_local() {
                super::$name($crate::Backend::Sqlite, $crate::Storage::Local).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_local() {
                if $crate::backend_enabled($crate::Backend::Postgres) {
                    super::$name($crate::Backend::Postgres, $crate::Storage::Local).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_s3() {
                if $crate::storage_enabled($crate::Storage::S3) {
                    super::$name($crate::Backend::Sqlite, $crate::Storage::S3).await
                }
            }
        }
    };
}

/// One test per blob storage, named after it: `per_storage!(name);` next to
/// `async fn name(storage: Storage)` gives `name::local` and `name::s3`.
#[macro_export]
macro_rules! per_storage {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$name($crate::Storage::Local).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                if $crate::storage_enabled($crate::Storage::S3) {
                    super::$name($crate::Storage::S3).await
                }
            }
        }
    };
}

pub fn pg_url() -> String {
    std::env::var("KURA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Where blobs go in a test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Local,
    S3,
}

/// The storages the blob suites run on.
pub fn storages() -> Vec<Storage> {
    if std::env::var("KURA_TEST_S3").as_deref() == Ok("skip") {
        eprintln!("NOTE: KURA_TEST_S3=skip — S3 half of the blob suite not run");
        vec![Storage::Local]
    } else {
        vec![Storage::Local, Storage::S3]
    }
}

/// The (database, storage) pairs the file suites run on: every database on local storage,
/// and S3 (on SQLite: the database does not change what the blob store does).
pub fn setups() -> Vec<(Backend, Storage)> {
    let mut out: Vec<(Backend, Storage)> = backends()
        .into_iter()
        .map(|b| (b, Storage::Local))
        .collect();
    if storages().contains(&Storage::S3) {
        out.push((Backend::Sqlite, Storage::S3));
    }
    out
}

static S3_ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The S3 endpoint for tests: `KURA_TEST_S3_ENDPOINT`, or a `moto_server` started once per
/// test process (it ends when this process does: its shell wrapper waits on our pipe).
pub fn s3_endpoint() -> String {
    S3_ENDPOINT
        .get_or_init(|| {
            if let Ok(e) = std::env::var("KURA_TEST_S3_ENDPOINT") {
                return e.trim_end_matches('/').to_string();
            }
            // A port outside the kernel's ephemeral range, so that no test server bound to
            // port 0 can take it between the check and moto's bind; and the server that
            // answers must be moto (an S3 bucket listing), else the next port is tried.
            for attempt in 0..8u32 {
                let port = 20_000
                    + ((u64::from(std::process::id()) * 7_919 + u64::from(attempt) * 104_729)
                        % 10_000) as u16;
                if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                    continue;
                }
                let mut child = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; \
                         cat >/dev/null; kill $pid 2>/dev/null"
                    ))
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .expect("starting moto_server (pip install 'moto[server]')");
                let addr = format!("127.0.0.1:{port}");
                for _ in 0..150 {
                    if is_s3(&addr) {
                        // The pipe stays open for the life of the process.
                        std::mem::forget(child);
                        return format!("http://{addr}");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            panic!("moto_server did not start: install it with pip install 'moto[server]', or set KURA_TEST_S3_ENDPOINT");
        })
        .clone()
}

/// Whether an S3 server answers at `addr` (a bucket listing for `GET /`).
fn is_s3(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if c.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).contains("ListAllMyBucketsResult")
}

/// Creates a fresh bucket on the test S3 server and points `cfg` at it.
pub async fn use_s3(cfg: &mut Config) {
    let endpoint = s3_endpoint();
    let bucket = unique("kura-t").replace('_', "-");
    let res = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("S3 test server at {endpoint} unreachable: {e}"));
    assert!(
        res.status().is_success(),
        "creating bucket {bucket}: {}",
        res.status()
    );
    cfg.storage = "s3".into();
    cfg.s3_bucket = Some(bucket);
    cfg.s3_prefix = "kura/test".into();
    cfg.s3_endpoint = Some(endpoint);
    cfg.s3_access_key_id = Some("test-access".into());
    cfg.s3_secret_access_key = Some("test-secret".into());
    cfg.s3_allow_http = true;
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique short name for a temp dir or schema.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = SystemClock.now().millis();
    format!("{prefix}_{}_{}_{n}", std::process::id(), t % 100_000_000)
}

/// A configuration for a test server on `backend` (fresh dir or schema).
pub fn test_config(backend: Backend) -> Config {
    let name = unique("kura_t");
    let dir = std::env::temp_dir().join(&name);
    let mut cfg = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir,
        db_max_connections: 8,
        // Background re-encryption only where a test asks for it.
        reencrypt_interval_secs: 0,
        // No growing delays after failed logins (the delays are unit-tested).
        login_failure_delay_ms: 0,
        ..Config::default()
    };
    if backend == Backend::Postgres {
        cfg.database_url = Some(pg_url());
        cfg.database_schema = Some(name);
    }
    cfg.master_key = Some(kura_crypto::keys::SecretKey::generate().unwrap().to_hex());
    cfg.signing_key = Some(kura_crypto::keys::SecretKey::generate().unwrap().to_hex());
    // Jobs only where a test runs them (or asks for the runner).
    cfg.jobs_poll_secs = 0;
    cfg
}

/// Fixtures of one tenant: its contract admin's token.
#[derive(Debug, Clone)]
pub struct TenantFixture {
    pub slug: String,
    pub tenant_id: String,
    pub admin_email: String,
    pub admin_id: String,
    pub admin_token: String,
}

pub struct TestServer {
    pub backend: Backend,
    pub base: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub cfg: Config,
    pub services: Services,
    running: Option<kura::Running>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(test_config(backend), backend).await
    }

    /// A server on `backend` with its blobs on `storage`.
    pub async fn start_on(backend: Backend, storage: Storage) -> TestServer {
        let mut cfg = test_config(backend);
        if storage == Storage::S3 {
            use_s3(&mut cfg).await;
        }
        Self::start_with(cfg, backend).await
    }

    pub async fn start_with(cfg: Config, backend: Backend) -> TestServer {
        let store = kura::open_store(&cfg)
            .await
            .unwrap_or_else(|e| panic!("opening the {backend:?} test database failed: {e:#}"));
        let clock = ManualClock::new(SystemClock.now());
        let running = kura::start(&cfg, store, Some(Arc::new(clock.clone())), false)
            .await
            .expect("start server");
        let base = format!("http://{}", running.addr);
        TestServer {
            backend,
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            cfg,
            services: running.services.clone(),
            running: Some(running),
        }
    }

    /// Stops the server and removes its temp dir or schema.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("stop server");
        }
        self.services.store.close().await;
        if let Some(schema) = &self.cfg.database_schema {
            let pool = sqlx::PgPool::connect(&pg_url()).await.expect("pg");
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&pool)
                .await
                .expect("drop schema");
            pool.close().await;
        }
        let _ = std::fs::remove_dir_all(&self.cfg.data_dir);
    }

    /// The TOTP code for a base32 secret at the server's (manual) clock, from oathtool —
    /// the independent implementation — when installed (required with `KURA_TEST_PEERS`),
    /// else from Kura's own (checked against the RFC 6238 vectors).
    pub fn totp_code(&self, secret_b32: &str) -> String {
        let unix = self.clock.now().millis() / 1000;
        if let Ok(out) = std::process::Command::new("oathtool")
            .args(["--totp", "--base32", "--now"])
            .arg(format!("@{unix}"))
            .arg(secret_b32)
            .output()
        {
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
        }
        assert!(
            std::env::var_os("KURA_TEST_PEERS").is_none(),
            "KURA_TEST_PEERS is set but oathtool is missing"
        );
        let secret = kura_crypto::totp::base32_decode(secret_b32).unwrap();
        kura_crypto::totp::code(&secret, unix)
    }

    /// A JSON request; returns status and parsed body (Null when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = self.client.request(m, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        // Every answer is checked against the published OpenAPI document.
        if path.starts_with("/api/") || schema::documented_path(path) {
            if let Err(e) = schema::check_response(method, path, status.as_u16(), &v) {
                panic!("the answer does not match the OpenAPI document: {e}\n{v}");
            }
        }
        (status, v)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn login(&self, tenant: &str, email: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(serde_json::json!({ "tenant": tenant, "email": email, "password": password })),
        )
        .await
    }

    /// The newest invitation token mailed to `email` (from the outbox).
    pub async fn invitation_token(&self, email: &str) -> String {
        let mails = self.services.mail_outbox(1000).await.unwrap();
        let mail = mails
            .iter()
            .find(|m| m.to == email)
            .unwrap_or_else(|| panic!("no mail to {email}"));
        let link = mail
            .body
            .lines()
            .find(|l| l.contains("/invite/"))
            .expect("link in mail");
        link.trim().rsplit('/').next().unwrap().to_string()
    }

    /// The operator creates a tenant; its contract admin accepts the invitation over the API.
    pub async fn create_tenant(&self, slug: &str) -> TenantFixture {
        let email = format!("owner@{slug}.example.jp");
        let created = self
            .services
            .create_tenant(
                kura_services::tenants::NewTenant {
                    slug: slug.into(),
                    name: format!("{slug} 株式会社"),
                    admin_email: email.clone(),
                    admin_name: "Owner".into(),
                    locale: "ja".into(),
                    time_zone: None,
                },
                &Default::default(),
            )
            .await
            .expect("create tenant");
        let token = created
            .invitation_link
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let (st, body) = self
            .call(
                "POST",
                "/api/v1/invitations/accept",
                None,
                Some(serde_json::json!({ "token": token, "password": PASSWORD })),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        TenantFixture {
            slug: slug.into(),
            tenant_id: created.tenant.id.to_string(),
            admin_email: email,
            admin_id: created.admin.id.to_string(),
            admin_token: body["token"].as_str().unwrap().to_string(),
        }
    }

    /// Creates a folder and a project in it; returns the project's id.
    pub async fn project(&self, token: &str, name: &str) -> String {
        let (st, f) = self
            .post(
                "/api/v1/folders",
                token,
                serde_json::json!({ "name": format!("{name} folder") }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{f}");
        let (st, p) = self
            .post(
                "/api/v1/projects",
                token,
                serde_json::json!({ "name": name, "folder_id": f["id"] }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{p}");
        p["id"].as_str().unwrap().to_string()
    }

    /// Downloads file `id`'s current content with a bearer token: the status and the body.
    pub async fn download(&self, token: &str, id: &str) -> (StatusCode, bytes::Bytes) {
        let res = self
            .client
            .get(format!("{}/api/v1/files/{id}/content", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("download request");
        let st = res.status();
        (st, res.bytes().await.expect("download body"))
    }

    /// Uploads `body` as `name` into `project`; returns the status and the JSON answer.
    /// A client of its own: after a refused upload (413/507) the server closes the
    /// connection, which a pooled client might otherwise try to reuse.
    pub async fn upload(
        &self,
        token: &str,
        project: &str,
        name: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let res = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
            .post(format!(
                "{}/api/v1/projects/{project}/files?name={name}",
                self.base
            ))
            .bearer_auth(token)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body)
            .send()
            .await
            .expect("upload request");
        let st = res.status();
        let v = res.json().await.unwrap_or(Value::Null);
        let path = format!("/api/v1/projects/{project}/files");
        if let Err(e) = schema::check_response("POST", &path, st.as_u16(), &v) {
            panic!("the answer does not match the OpenAPI document: {e}\n{v}");
        }
        (st, v)
    }

    /// An admin invites a user with a role at a scope; the user accepts. Returns (id, token).
    pub async fn add_user(
        &self,
        admin_token: &str,
        email: &str,
        role: &str,
        scope: Value,
    ) -> (String, String) {
        self.add_user_with(
            admin_token,
            serde_json::json!({ "email": email, "display_name": email, "role": role, "scope": scope }),
        )
        .await
    }

    /// An admin invites a user described by `invite` (the body of `POST /api/v1/users`,
    /// e.g. with a `max_label`); the user accepts. Returns (id, token).
    pub async fn add_user_with(&self, admin_token: &str, invite: Value) -> (String, String) {
        let email = invite["email"].as_str().unwrap_or_default().to_string();
        let (st, body) = self.post("/api/v1/users", admin_token, invite).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        let token = self.invitation_token(&email).await;
        let (st, body) = self
            .call(
                "POST",
                "/api/v1/invitations/accept",
                None,
                Some(serde_json::json!({ "token": token, "password": PASSWORD })),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        (id, body["token"].as_str().unwrap().to_string())
    }
}

/// Runs `kura` CLI commands in-process against a test server's database. Returns the exit
/// code (errors count as 2, as in `main`).
pub async fn run_cli(cfg: &Config, args: &[&str]) -> i32 {
    use clap::Parser;
    let dir = std::env::temp_dir().join(unique("kura_cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kura.toml");
    std::fs::write(&file, toml_of(cfg)).unwrap();
    let mut argv = vec![
        "kura".to_string(),
        "--config".into(),
        file.display().to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    let cli = kura::cli::Cli::parse_from(argv);
    let code = match kura::cli::run(cli).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kura: {e:#}");
            2
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    code
}

/// The settings of `cfg` a CLI run or a spawned `kura` process needs, as TOML.
pub fn toml_of(cfg: &Config) -> String {
    let mut s = format!("data_dir = {:?}\n", cfg.data_dir.display().to_string());
    if let Some(u) = &cfg.database_url {
        s.push_str(&format!("database_url = {u:?}\n"));
    }
    if let Some(sc) = &cfg.database_schema {
        s.push_str(&format!("database_schema = {sc:?}\n"));
    }
    if let Some(k) = &cfg.master_key {
        s.push_str(&format!("master_key = {k:?}\n"));
    }
    if let Some(k) = &cfg.signing_key {
        s.push_str(&format!("signing_key = {k:?}\n"));
    }
    s.push_str(&format!("backup_keep = {}\n", cfg.backup_keep));
    if let Some(d) = &cfg.backup_dir {
        s.push_str(&format!("backup_dir = {:?}\n", d.display().to_string()));
    }
    s.push_str(&format!("storage = {:?}\n", cfg.storage));
    s.push_str(&format!(
        "backup_storage = {:?}\nbackup_s3_prefix = {:?}\n",
        cfg.backup_storage, cfg.backup_s3_prefix
    ));
    if let Some(b) = &cfg.backup_s3_bucket {
        s.push_str(&format!("backup_s3_bucket = {b:?}\n"));
    }
    if cfg.storage == "s3" || cfg.backup_storage == "s3" {
        for (k, v) in [
            ("s3_bucket", &cfg.s3_bucket),
            ("s3_endpoint", &cfg.s3_endpoint),
            ("s3_access_key_id", &cfg.s3_access_key_id),
            ("s3_secret_access_key", &cfg.s3_secret_access_key),
        ] {
            if let Some(v) = v {
                s.push_str(&format!("{k} = {v:?}\n"));
            }
        }
        s.push_str(&format!(
            "s3_prefix = {:?}\ns3_region = {:?}\ns3_allow_http = {}\n",
            cfg.s3_prefix, cfg.s3_region, cfg.s3_allow_http
        ));
    }
    s
}

/// Runs raw SQL against a test server's database, outside Kura (the tamper tests' attacker).
pub async fn raw_sql(cfg: &Config, sql: &str) {
    let url = cfg.database_url();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let schema = cfg.database_schema.clone().unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let full = format!("SET search_path TO {schema}; {sql}");
        sqlx::raw_sql(&full).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// Makes the test server's database refuse every audit row of `tenant` (a trigger, outside
/// Kura) until [`allow_audit_rows`]: a write failure Kura cannot prevent.
pub async fn refuse_audit_rows(cfg: &Config, tenant: &str) {
    let sql = if cfg.database_url().starts_with("sqlite:") {
        format!("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events WHEN NEW.tenant_id = '{tenant}' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    } else {
        format!("CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN IF NEW.tenant_id = '{tenant}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
    };
    raw_sql(cfg, &sql).await;
}

/// Undoes [`refuse_audit_rows`].
pub async fn allow_audit_rows(cfg: &Config) {
    let sql = if cfg.database_url().starts_with("sqlite:") {
        "DROP TRIGGER refuse_audit"
    } else {
        "DROP TRIGGER refuse_audit ON audit_events"
    };
    raw_sql(cfg, sql).await;
}

pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(unique(name))
}

/// Runs a scalar query (`SELECT COUNT(*) …`) against a test server's database, outside Kura.
pub async fn raw_count(cfg: &Config, sql: &str) -> i64 {
    let url = cfg.database_url();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let schema = cfg.database_schema.clone().unwrap();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .after_connect(move |c, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    sqlx::Executor::execute(c, format!("SET search_path TO {schema}").as_str())
                        .await
                        .map(|_| ())
                })
            })
            .connect(&url)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

/// A folder row for store-level tests.
pub fn folder_row(name: &str) -> kura_store::workspace::Folder {
    kura_store::workspace::Folder {
        labels: Default::default(),
        id: kura_domain::FolderId::generate(),
        parent_id: None,
        name: name.into(),
        created_by: None,
        created_at: kura_domain::Timestamp(1),
        updated_at: kura_domain::Timestamp(1),
    }
}

/// What a [`TcpProxy`] does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards to the upstream.
    Up,
    /// Closes every connection, refuses new ones (a server that is down).
    Refuse,
    /// Accepts connections and never answers (a stalled server).
    Blackhole,
}

/// A loopback TCP proxy in front of a real server, for outage tests: switch it down or
/// stalled and back without touching the server itself (other tests keep using it).
pub struct TcpProxy {
    pub addr: std::net::SocketAddr,
    mode: tokio::sync::watch::Sender<ProxyMode>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(upstream: &str) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, rx) = tokio::sync::watch::channel(ProxyMode::Up);
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                let mut rx = rx.clone();
                let now = *rx.borrow_and_update();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    match now {
                        ProxyMode::Refuse => {}
                        ProxyMode::Blackhole => {
                            // Hold the connection open, silent, until the mode changes.
                            let _ = rx.changed().await;
                        }
                        ProxyMode::Up => {
                            let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                                return;
                            };
                            // Any change of mode cuts existing connections.
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                                _ = rx.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        TcpProxy { addr, mode, task }
    }

    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
