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

/// Transactions abandoned at every point of their life — while beginning, between
/// statements, while committing — never leave a connection inside a transaction or the
/// write lock held: writes go on afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_transactions_never_wedge_writes() {
    for b in backends() {
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
}

/// Many requests abandoned by their clients mid-flight (log-ins, uploads, downloads, reads)
/// leave the server fully able to write: the same requests succeed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_leave_writes_working() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let a = s.create_tenant("abandon").await;
        let (st, f) = s
            .post("/api/v1/folders", &a.admin_token, json!({"name": "F"}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{f}");
        let (st, p) = s
            .post(
                "/api/v1/projects",
                &a.admin_token,
                json!({"name": "P", "folder_id": f["id"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{p}");
        let project = p["id"].as_str().unwrap().to_string();
        let up = s
            .client
            .post(format!(
                "{}/api/v1/projects/{project}/files?name=small.txt",
                s.base
            ))
            .bearer_auth(&a.admin_token)
            .body(vec![b'k'; 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(up.status(), StatusCode::CREATED);
        let file = up.json::<serde_json::Value>().await.unwrap()["file"]["id"]
            .as_str()
            .unwrap()
            .to_string();

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
        let res = s
            .client
            .get(format!("{}/api/v1/files/{file}/content", s.base))
            .bearer_auth(&a.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.bytes().await.unwrap().len(), 1024);
        let (st, body) = s.login(&a.slug, &a.admin_email, PASSWORD).await;
        assert_eq!(st, StatusCode::OK, "{b:?}: log-in after the burst: {body}");
        s.stop().await;
    }
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

/// The access log keeps every entry (LOG-1): when its queue overflows under load and when
/// the database refuses its batches, entries wait in the spool on disk and are written once
/// the database takes them again; nothing is dropped, and /metrics says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_keeps_every_entry_under_overload_and_database_failure() {
    for b in backends() {
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
    let bin = kura_testkit::kura_binary();
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
