//! Resilience: cancelled requests, dependencies that fail or stall, full disks. The server
//! must keep serving writes after any number of requests abandoned mid-flight, and fail fast
//! and clearly (503 with `Retry-After`, 507) instead of hanging or answering `internal`.

use kura_domain::TenantId;
use kura_store::workspace;
use kura_testkit::{backends, StatusCode, TestServer, PASSWORD};
use serde_json::json;
use std::time::Duration;

use kura_testkit::folder_row as folder;

/// One write transaction, committed; `Err` if it fails or takes longer than 20 s (the
/// busy timeout is 10 s: a wedged write lock shows as an error or a timeout).
async fn one_write(store: &kura_store::Store, t: &TenantId, name: &str) -> Result<(), String> {
    let work = async {
        let mut tx = store.tenant_tx(t).await.map_err(|e| e.to_string())?;
        workspace::insert_folder(&mut tx, t, &folder(name))
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(20), work).await {
        Ok(r) => r,
        Err(_) => Err("write did not finish within 20 s".into()),
    }
}

kura_testkit::per_backend!(abandoned_transactions_never_wedge_writes);
/// Transactions abandoned at every point of their life — while beginning, between
/// statements, while committing — never leave a connection inside a transaction or the
/// write lock held: writes go on afterwards.
async fn abandoned_transactions_never_wedge_writes(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_tenant("wedge").await;
    let t = TenantId::from_string(&a.tenant_id);
    let store = s.services.store.clone();
    let mut handles = Vec::new();
    for i in 0..600u64 {
        let (st, tt) = (store.clone(), t.clone());
        let h = tokio::spawn(async move {
            let mut tx = st.tenant_tx(&tt).await.unwrap();
            workspace::insert_folder(&mut tx, &tt, &folder(&format!("a{i}")))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        });
        // Abort after 0…~1 ms: lands before, inside and after BEGIN, the insert and
        // COMMIT. Several are in flight at once.
        let delay = Duration::from_micros((i * 37) % 1100);
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            h.abort();
        }));
        if i % 8 == 7 {
            for h in handles.drain(..) {
                h.await.unwrap();
            }
        }
    }
    for h in handles {
        h.await.unwrap();
    }
    for i in 0..20 {
        one_write(&store, &t, &format!("after{i}"))
            .await
            .unwrap_or_else(|e| panic!("{b:?}: write {i} after aborted transactions: {e}"));
    }
    // Readiness says the truth about writes.
    let (st, r) = s.call("GET", "/readyz", None, None).await;
    assert_eq!(st, StatusCode::OK, "{b:?}: {r}");
    s.stop().await;
}

kura_testkit::per_backend!(abandoned_requests_leave_writes_working);
/// Many requests abandoned by their clients mid-flight (log-ins, uploads, downloads, reads)
/// leave the server fully able to write: the same requests succeed afterwards.
async fn abandoned_requests_leave_writes_working(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_tenant("abandon").await;
    let project = s.project(&a.admin_token, "P").await;
    let (st, up) = s
        .upload(&a.admin_token, &project, "small.txt", vec![b'k'; 1024])
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let file = up["file"]["id"].as_str().unwrap().to_string();

    // Rounds of 64 concurrent requests (as wrk -c64), each given up by its client after
    // 0.2–12 ms: many are cut off inside the server's transactions.
    for round in 0..25u64 {
        let mut tasks = Vec::new();
        for i in 0..64u64 {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_micros(
                    200 + (i * 977 + round * 331) % 12_000,
                ))
                .build()
                .unwrap();
            let base = s.base.clone();
            let token = a.admin_token.clone();
            let (project, file, slug, email) = (
                project.clone(),
                file.clone(),
                a.slug.clone(),
                a.admin_email.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _ = match i % 4 {
                    0 => {
                        client
                            .get(format!("{base}/api/v1/files/{file}/content"))
                            .bearer_auth(&token)
                            .send()
                            .await
                    }
                    1 => {
                        client
                            .post(format!(
                                "{base}/api/v1/projects/{project}/files?name=up{round}-{i}.txt"
                            ))
                            .bearer_auth(&token)
                            .body(vec![b'u'; 64 * 1024])
                            .send()
                            .await
                    }
                    2 => {
                        client
                            .post(format!("{base}/api/v1/auth/login"))
                            .json(&json!({"tenant": slug, "email": email, "password": kura_testkit::PASSWORD}))
                            .send()
                            .await
                    }
                    _ => {
                        client
                            .get(format!("{base}/api/v1/me"))
                            .bearer_auth(&token)
                            .send()
                            .await
                    }
                };
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    // Give the server a moment to notice the closed connections, then write.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (st, r) = s.call("GET", "/readyz", None, None).await;
    assert_eq!(st, StatusCode::OK, "{b:?}: {r}");
    let (st, body) = s
        .post("/api/v1/folders", &a.admin_token, json!({"name": "after"}))
        .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "{b:?}: folder after the burst: {body}"
    );
    let up = s
        .client
        .post(format!(
            "{}/api/v1/projects/{project}/files?name=after.txt",
            s.base
        ))
        .bearer_auth(&a.admin_token)
        .body(vec![b'z'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(
        up.status(),
        StatusCode::CREATED,
        "{b:?}: upload after the burst"
    );
    let (st, body) = s.download(&a.admin_token, &file).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body.len(), 1024);
    let (st, body) = s.login(&a.slug, &a.admin_email, PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{b:?}: log-in after the burst: {body}");
    s.stop().await;
}

/// Polls `sql` (a count) until it reaches `want` or 30 s pass; returns the last count.
async fn wait_for_count(cfg: &kura::config::Config, sql: &str, want: i64) -> i64 {
    let mut n = 0;
    for _ in 0..300 {
        n = kura_testkit::raw_count(cfg, sql).await;
        if n >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    n
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

kura_testkit::per_backend!(access_log_keeps_every_entry_under_overload_and_database_failure);
/// The access log keeps every entry (LOG-1): when its queue overflows under load and when
/// the database refuses its batches, entries wait in the spool on disk and are written once
/// the database takes them again; nothing is dropped, and /metrics says what happened.
async fn access_log_keeps_every_entry_under_overload_and_database_failure(
    b: kura_testkit::Backend,
) {
    let mut cfg = kura_testkit::test_config(b);
    cfg.access_log_queue = 2; // overflows at once
    let s = TestServer::start_with(cfg, b).await;

    // 1. Overload: 300 requests at once against a queue of 2.
    let mut tasks = Vec::new();
    for i in 0..300 {
        let (c, base) = (s.client.clone(), s.base.clone());
        tasks.push(tokio::spawn(async move {
            c.get(format!("{base}/api/v1/overload-probe-{i}"))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::NOT_FOUND);
    }
    let sql = "SELECT COUNT(*) FROM access_log WHERE path LIKE '/api/v1/overload-probe-%'";
    assert_eq!(wait_for_count(&s.cfg, sql, 300).await, 300, "{b:?}");

    // 2. The database refuses the batches (the table is gone for a while): requests are
    //    answered, entries are spooled and retried, and land once the table is back.
    kura_testkit::raw_sql(&s.cfg, "ALTER TABLE access_log RENAME TO access_log_away").await;
    for i in 0..120 {
        let (st, _) = s
            .call("GET", &format!("/api/v1/outage-probe-{i}"), None, None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
    // Let at least one batch fail.
    let mut failures = 0;
    for _ in 0..100 {
        let (_, m) = s.call("GET", "/metrics", None, None).await;
        failures = metric(m.as_str().unwrap(), "kura_access_log_write_failures_total");
        if failures > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failures > 0,
        "{b:?}: no batch failed while the table was away"
    );
    kura_testkit::raw_sql(&s.cfg, "ALTER TABLE access_log_away RENAME TO access_log").await;
    let sql = "SELECT COUNT(*) FROM access_log WHERE path LIKE '/api/v1/outage-probe-%'";
    assert_eq!(wait_for_count(&s.cfg, sql, 120).await, 120, "{b:?}");
    // Exactly once each.
    assert_eq!(kura_testkit::raw_count(&s.cfg, sql).await, 120);

    let (_, m) = s.call("GET", "/metrics", None, None).await;
    let m = m.as_str().unwrap().to_string();
    assert_eq!(metric(&m, "kura_access_log_dropped_total"), 0, "{b:?}");
    assert!(metric(&m, "kura_access_log_spooled_total") >= 120, "{b:?}");
    // The spool is empty again (and was never world-readable).
    let spool = s.cfg.data_dir.join("spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{b:?}: spool not drained: {left:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{b:?}");
    s.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A flood of failed log-ins (each an Argon2 run of 19 MiB) leaves a `kura serve` process
/// near its earlier size: the hashing memory is a fixed, reused set, not 19 MiB per attempt
/// kept by the allocator afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_does_not_keep_memory() {
    let bin = crate::kura_binary();
    let b = kura_testkit::Backend::Sqlite;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("flood").await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = kura_testkit::temp_path("flood");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kura.toml");
    std::fs::write(
        &file,
        format!(
            "{}listen = \"127.0.0.1:{port}\"\njobs_poll_secs = 0\nreencrypt_interval_secs = 0\nlogin_max_failures = 100000\nlogin_ip_max_failures = 100000\nlogin_failure_delay_ms = 0\n",
            kura_testkit::toml_of(&s.cfg)
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(&bin)
        .args(["--config", file.to_str().unwrap(), "serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "kura serve did not start");
    let login = |password: &'static str| {
        let (client, base, slug, email) = (
            client.clone(),
            base.clone(),
            t.slug.clone(),
            t.admin_email.clone(),
        );
        async move {
            client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"tenant": slug, "email": email, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Warm up: a few log-ins in parallel, so the idle figure includes the hashing memory.
    let mut warm = Vec::new();
    for _ in 0..8 {
        warm.push(tokio::spawn(login(PASSWORD)));
    }
    for w in warm {
        assert_eq!(w.await.unwrap(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(child.id());

    // 1,080 failed log-ins, 32 at a time.
    let mut failed = 0;
    for _ in 0..(1080 / 32 + 1) {
        let mut round = Vec::new();
        for _ in 0..32 {
            round.push(tokio::spawn(login("Wrong-Password-Flood-1")));
        }
        for r in round {
            if r.await.unwrap() == StatusCode::UNAUTHORIZED {
                failed += 1;
            }
        }
    }
    assert!(failed >= 1080, "{failed}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    // 19 MiB per attempt kept would be gigabytes; allow 64 MiB of ordinary growth.
    assert!(
        after < idle + 64 * 1024,
        "RSS {idle} KiB idle → {after} KiB after the flood"
    );
    eprintln!("login flood: RSS {idle} KiB idle → {after} KiB after 1,080 failed log-ins");
}

/// Times an HTTP call; returns status, body and seconds taken.
async fn timed(
    s: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value, f64) {
    let watch = kura_domain::clock::Stopwatch::start();
    let (st, v) = s.call(method, path, token, body).await;
    (st, v, watch.elapsed().as_secs_f64())
}

/// PostgreSQL going away (connections cut, new ones refused) and coming back, seen through a
/// proxy: requests fail fast with 503 + Retry-After instead of hanging 30 s and answering
/// `internal`; /readyz says so within about a second; once the database is back, the first
/// request succeeds (dead pooled connections are replaced, not handed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_fails_fast_and_recovers() {
    if !backends().contains(&kura_testkit::Backend::Postgres) {
        return;
    }
    let b = kura_testkit::Backend::Postgres;
    let url = kura_testkit::pg_url();
    let hostport = url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    let proxy = kura_testkit::TcpProxy::start(&hostport).await;
    let mut cfg = kura_testkit::test_config(b);
    cfg.database_url = Some(url.replace(&hostport, &proxy.addr.to_string()));
    cfg.db_acquire_timeout_secs = 2;
    let s = TestServer::start_with(cfg, b).await;
    let t = s.create_tenant("outage").await;
    let (st, _) = s
        .post("/api/v1/folders", &t.admin_token, json!({"name": "before"}))
        .await;
    assert_eq!(st, StatusCode::CREATED);

    for mode in [
        kura_testkit::ProxyMode::Refuse,
        kura_testkit::ProxyMode::Blackhole,
    ] {
        proxy.set(mode);
        let (st, r, secs) = timed(&s, "GET", "/readyz", None, None).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{mode:?}: {r}");
        assert_eq!(r["database"], "unreachable", "{mode:?}");
        assert!(secs < 3.0, "{mode:?}: /readyz took {secs:.1} s");
        let res = s
            .client
            .get(format!("{}/api/v1/folders", s.base))
            .bearer_auth(&t.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{mode:?}");
        assert!(res.headers().contains_key("retry-after"), "{mode:?}");
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unavailable", "{mode:?}: {v}");

        proxy.set(kura_testkit::ProxyMode::Up);
        // The first request after the outage succeeds: no stale connection is handed out.
        let (st, v) = s
            .post(
                "/api/v1/folders",
                &t.admin_token,
                json!({"name": format!("after {mode:?}")}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{mode:?}: {v}");
        let (st, r) = s.call("GET", "/readyz", None, None).await;
        assert_eq!(st, StatusCode::OK, "{mode:?}: {r}");
    }
    s.stop().await;
}

/// An S3 endpoint that accepts connections and then says nothing: /readyz reports the
/// storage unreachable within about a second, and an upload fails with 503 after the
/// read-idle timeout instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_s3_fails_fast() {
    if !kura_testkit::storages().contains(&kura_testkit::Storage::S3) {
        return;
    }
    let b = kura_testkit::Backend::Sqlite;
    let mut cfg = kura_testkit::test_config(b);
    kura_testkit::use_s3(&mut cfg).await;
    let endpoint = cfg.s3_endpoint.clone().unwrap();
    let proxy = kura_testkit::TcpProxy::start(endpoint.trim_start_matches("http://")).await;
    cfg.s3_endpoint = Some(format!("http://{}", proxy.addr));
    cfg.s3_read_timeout_secs = 2;
    let s = TestServer::start_with(cfg, b).await;
    let t = s.create_tenant("stall").await;
    let project = s.project(&t.admin_token, "P").await;
    let (st, r) = s.call("GET", "/readyz", None, None).await;
    assert_eq!(st, StatusCode::OK, "{r}");

    proxy.set(kura_testkit::ProxyMode::Blackhole);
    let (st, r, secs) = timed(&s, "GET", "/readyz", None, None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert_eq!(r["storage"], "unreachable");
    assert_eq!(r["database"], "ok");
    assert!(secs < 3.0, "/readyz took {secs:.1} s");
    let watch = kura_domain::clock::Stopwatch::start();
    let (st, _) = s
        .upload(&t.admin_token, &project, "a.txt", vec![b'a'; 1000])
        .await;
    let secs = watch.elapsed().as_secs_f64();
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert!(secs < 30.0, "upload against a stalled S3 took {secs:.1} s");
    // Nothing was recorded for the failed upload.
    let (_, files) = s
        .get(&format!("/api/v1/projects/{project}/files"), &t.admin_token)
        .await;
    assert_eq!(files["items"].as_array().unwrap().len(), 0, "{files}");

    proxy.set(kura_testkit::ProxyMode::Up);
    let (st, _) = s
        .upload(&t.admin_token, &project, "a.txt", vec![b'a'; 1000])
        .await;
    assert_eq!(st, StatusCode::CREATED);
    s.stop().await;
}

/// A small tmpfs mounted for one test (root only), unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None` where mounting is not possible (not root); required under `KURA_TEST_PEERS`
    /// (CI runs as root).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = kura_testkit::temp_path("tmpfs");
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("KURA_TEST_PEERS").is_none(),
                "KURA_TEST_PEERS is set but a tmpfs cannot be mounted (run as root)"
            );
            eprintln!("NOTE: cannot mount a tmpfs (not root): full-disk test not run");
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A full disk under the blobs or under the SQLite database answers 507 `storage_full`
/// (not 500 `internal`), leaves nothing half-written, and the same request succeeds once
/// there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_507() {
    let Some(blobs) = Tmpfs::mount("2m") else {
        return;
    };
    let Some(data) = Tmpfs::mount("6m") else {
        return;
    };
    let b = kura_testkit::Backend::Sqlite;
    let mut cfg = kura_testkit::test_config(b);
    cfg.blobs_dir = Some(blobs.0.join("blobs"));
    cfg.data_dir = data.0.join("kura");
    let s = TestServer::start_with(cfg, b).await;
    let t = s.create_tenant("fulldisk").await;
    let project = s.project(&t.admin_token, "P").await;
    let upload = |name: &'static str, n: usize| {
        let (c, base, tok, project) = (
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            s.base.clone(),
            t.admin_token.clone(),
            project.clone(),
        );
        async move {
            let res = c
                .post(format!(
                    "{base}/api/v1/projects/{project}/files?name={name}"
                ))
                .bearer_auth(tok)
                .body(vec![b'x'; n])
                .send()
                .await
                .unwrap();
            let st = res.status();
            (
                st,
                res.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };

    // Blobs: 3 MiB into 2 MiB.
    let (st, v) = upload("big.bin", 3 * 1024 * 1024).await;
    assert_eq!(st, StatusCode::INSUFFICIENT_STORAGE, "{v}");
    assert_eq!(v["error"]["code"], "storage_full", "{v}");
    let left: Vec<_> = walk(&blobs.0);
    assert!(left.is_empty(), "half-written blobs left: {left:?}");
    let (st, v) = upload("small.bin", 100 * 1024).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let small = v["file"]["id"].as_str().unwrap().to_string();

    // Database: fill the disk under SQLite, then write until the WAL must grow.
    let filler = data.0.join("filler");
    {
        use std::io::Write;
        let mut fh = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while fh.write_all(&block).is_ok() {}
        let _ = fh.flush();
    }
    let mut saw_507 = false;
    for i in 0..400 {
        let (st, v) = s
            .post(
                "/api/v1/folders",
                &t.admin_token,
                json!({"name": format!("folder with a long enough name to fill pages {i:04} {}", "x".repeat(150))}),
            )
            .await;
        if st == StatusCode::INSUFFICIENT_STORAGE {
            assert_eq!(v["error"]["code"], "storage_full", "{v}");
            saw_507 = true;
            eprintln!("full disk under SQLite: write {i} answered 507");
            break;
        }
        assert_eq!(st, StatusCode::CREATED, "write {i} on a full disk: {v}");
    }
    assert!(saw_507, "the database never reported a full disk");
    // Downloads on the full disk: a download whose record cannot be written does not end
    // (its last piece is withheld, the response breaks off) — none is whole and unaudited.
    let mut whole = 0;
    for _ in 0..5 {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/files/{small}/content", s.base))
            .bearer_auth(&t.admin_token)
            .send()
            .await
            .unwrap();
        if res.status() != StatusCode::OK {
            continue;
        }
        if res.bytes().await.is_ok_and(|b| b.len() == 100 * 1024) {
            whole += 1;
        }
    }
    eprintln!("full disk under SQLite: {whole} of 5 downloads whole");
    std::fs::remove_file(&filler).unwrap();
    let tid = kura_domain::TenantId::from_string(&t.tenant_id);
    let mut tx = s.services.store.tenant_read(&tid).await.unwrap();
    let audited = kura_store::audit::list(&mut tx, &tid, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.record.action == "file.download"
                && e.record.result == "success"
                && e.record.target_id.as_deref() == Some(small.as_str())
        })
        .count();
    drop(tx);
    assert!(
        audited >= whole,
        "{whole} downloads were whole but only {audited} are in the audit log"
    );
    let (st, v) = s
        .post(
            "/api/v1/folders",
            &t.admin_token,
            json!({"name": "room again"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

kura_testkit::per_backend!(commits_are_durable_before_they_are_acknowledged);
/// An acknowledged write is on disk: SQLite commits with `synchronous=FULL` on every pooled
/// connection (NORMAL could lose an upload answered 201 on power loss); PostgreSQL keeps
/// `synchronous_commit` on.
async fn commits_are_durable_before_they_are_acknowledged(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    // Several connections at once, so more than one pooled connection is asked.
    let mut all = Vec::new();
    for _ in 0..4 {
        let store = s.services.store.clone();
        all.push(tokio::spawn(
            async move { store.durability().await.unwrap() },
        ));
    }
    for d in all {
        let d = d.await.unwrap();
        match b {
            kura_testkit::Backend::Sqlite => assert_eq!(d, "sqlite synchronous=FULL"),
            kura_testkit::Backend::Postgres => assert_eq!(d, "postgres synchronous_commit=on"),
        }
    }
    s.stop().await;
}
