//! Evidence and operations: the job runner across nodes, retention purges with signed
//! checkpoints, log export and offline verification.

use kura_domain::Clock;
use kura_testkit::{backends, raw_sql, run_cli, test_config, StatusCode, TestServer};
use serde_json::json;
use std::time::Duration;

async fn checkpoint_runs(s: &TestServer) -> Vec<kura_store::jobs::Run> {
    s.services
        .job_runs(Some("audit.checkpoint"), 1000)
        .await
        .unwrap()
}

/// Two nodes on one database, each polling every second: every due time of a job runs
/// exactly once, whichever node gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_once_across_two_nodes() {
    for b in backends() {
        let mut cfg = test_config(b);
        cfg.jobs_poll_secs = 1;
        cfg.audit_checkpoint_interval_secs = 60;
        cfg.node_name = Some("node-a".into());
        let a = TestServer::start_with(cfg.clone(), b).await;
        cfg.node_name = Some("node-b".into());
        let node_b = TestServer::start_with(cfg.clone(), b).await;
        let t = a.create_tenant("jobco").await;
        let rounds = 5;
        for round in 0..=rounds {
            if round > 0 {
                // New audit events, then the next due time on both nodes' clocks.
                a.post(
                    "/api/v1/folders",
                    &t.admin_token,
                    json!({ "name": format!("f{round}") }),
                )
                .await;
                a.clock.advance_secs(60);
                node_b.clock.advance_secs(60);
            }
            let mut seen = 0;
            for _ in 0..100 {
                seen = checkpoint_runs(&a)
                    .await
                    .iter()
                    .filter(|r| r.status == "ok")
                    .count();
                if seen > round {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(seen, round + 1, "{b:?}: round {round}");
        }
        // Let both nodes poll a few more times: nothing more is due, nothing more runs.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let runs = checkpoint_runs(&a).await;
        assert_eq!(runs.len(), rounds + 1, "{b:?}: {runs:?}");
        let mut due: Vec<i64> = runs.iter().map(|r| r.due_at.0).collect();
        due.sort();
        due.dedup();
        assert_eq!(due.len(), rounds + 1, "each due time once");
        let nodes: std::collections::BTreeSet<&str> =
            runs.iter().map(|r| r.node.as_str()).collect();
        assert!(
            nodes.iter().all(|n| *n == "node-a" || *n == "node-b"),
            "{nodes:?}"
        );
        // Each run checkpointed the chain that had moved; all signatures check out.
        let tid = kura_domain::TenantId::from_string(t.tenant_id.clone());
        let mut tx = a.services.store.tenant_read(&tid).await.unwrap();
        let cps = kura_store::audit::checkpoints_between(&mut tx, &tid, 0, i64::MAX)
            .await
            .unwrap();
        drop(tx);
        // (The first run may come before the tenant existed.)
        assert!(cps.len() >= rounds, "{b:?}: {cps:?}");
        assert!(cps.iter().all(|c| a.services.checkpoint_is_genuine(c)));
        // The operator sees the jobs and their runs.
        assert_eq!(run_cli(&a.cfg, &["jobs", "list"]).await, 0);
        node_b.stop().await;
        a.stop().await;
    }
}

/// Retention: entries older than the tenant's retention go by the hourly job, after a
/// signed purge checkpoint; the rest of the chain still verifies; a forged starting point
/// does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_and_the_chain_still_verifies() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let t = s.create_tenant("retco").await;
        let tok = &t.admin_token;
        for i in 0..5 {
            s.post("/api/v1/folders", tok, json!({ "name": format!("old{i}") }))
                .await;
        }
        let (_, tenant) = s.get("/api/v1/tenant", tok).await;
        let mut settings = tenant["settings"].clone();
        assert_eq!(settings["audit_retention_days"], 730);
        settings["audit_retention_days"] = json!(30);
        let (st, e) = s
            .call(
                "PUT",
                "/api/v1/tenant/settings",
                Some(tok),
                Some(settings.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "below the floor: {e}");
        settings["audit_retention_days"] = json!(90);
        settings["access_log_retention_days"] = json!(90);
        let (st, e) = s
            .call("PUT", "/api/v1/tenant/settings", Some(tok), Some(settings))
            .await;
        assert_eq!(st, StatusCode::OK, "{e}");
        // 91 days later, with a fresh session, one new event.
        s.clock.advance_secs(91 * 86_400);
        let (_, l) = s
            .login("retco", &t.admin_email, kura_testkit::PASSWORD)
            .await;
        let tok = l["token"].as_str().unwrap().to_string();
        s.post("/api/v1/folders", &tok, json!({ "name": "new" }))
            .await;
        // Wait for the access log writer to flush the new requests.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (_, before) = s.get("/api/v1/audit?limit=1000", &tok).await;
        let n_before = before["items"].as_array().unwrap().len();
        let (_, access_before) = s.get("/api/v1/access-log?limit=1000", &tok).await;
        let access_before = access_before["items"].as_array().unwrap().len();

        s.services.ensure_jobs().await.unwrap();
        let (_keep, stop) = tokio::sync::watch::channel(false);
        // Checkpoint, purge, roll-up (and the daily backup, due after 91 days).
        assert!(s.services.run_due_jobs("test", &stop).await.unwrap() >= 3);
        let (_, after) = s.get("/api/v1/audit?limit=1000", &tok).await;
        let items = after["items"].as_array().unwrap();
        assert!(items.len() < n_before, "{} → {}", n_before, items.len());
        let oldest = items
            .iter()
            .map(|e| e["at"].as_i64().unwrap())
            .min()
            .unwrap();
        assert!(
            oldest >= s.clock.now().0 - 90 * 86_400_000,
            "nothing older than 90 days"
        );
        let purge = items
            .iter()
            .find(|e| e["action"] == "log.purge")
            .expect("the purge is audited");
        assert_eq!(purge["actor_kind"], "system");
        assert!(purge["details"]["audit_entries"].as_i64().unwrap() >= 5);
        let (_, access_after) = s.get("/api/v1/access-log?limit=1000", &tok).await;
        assert!(
            access_after["items"].as_array().unwrap().len() < access_before,
            "old access-log rows purged"
        );
        let (st, v) = s.get("/api/v1/audit/verify", &tok).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(
            run_cli(&s.cfg, &["audit", "verify", "--tenant", "retco"]).await,
            0
        );
        // Running again soon does nothing (the job is not due for an hour).
        assert_eq!(s.services.run_due_jobs("test", &stop).await.unwrap(), 0);

        // Someone moves the chain's starting point (to hide a deletion): no signed purge
        // checkpoint says so, and verification fails.
        raw_sql(
            &s.cfg,
            &format!(
                "UPDATE audit_heads SET base_hash = '{}' WHERE tenant_id = '{}'",
                "ab".repeat(32),
                t.tenant_id
            ),
        )
        .await;
        let (_, v) = s.get("/api/v1/audit/verify", &tok).await;
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(
            run_cli(&s.cfg, &["audit", "verify", "--tenant", "retco"]).await,
            1
        );
        s.stop().await;
    }
}

/// Filtered viewing, streamed exports (CSV, signed JSON Lines) and offline verification:
/// the untouched file verifies; an edited, deleted, reordered or re-signed line fails,
/// naming the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_verifies_offline_and_tampering_fails() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let t = s.create_tenant("expco").await;
        let tok = &t.admin_token;
        for i in 0..30 {
            s.post("/api/v1/folders", tok, json!({ "name": format!("f{i}") }))
                .await;
        }
        // A stored interval checkpoint in the middle of the chain.
        assert!(s.services.checkpoint_all().await.unwrap() >= 1);
        s.post("/api/v1/folders", tok, json!({ "name": "after" }))
            .await;
        s.login("expco", &t.admin_email, "wrong-password").await;

        // Filters and keyset paging.
        let (st, page) = s.get("/api/v1/audit?action=folder.&limit=10", tok).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 10);
        assert!(items.iter().all(|e| e["action"] == "folder.create"));
        let next = page["next_before"].as_i64().unwrap();
        let (_, page2) = s
            .get(
                &format!("/api/v1/audit?action=folder.&limit=100&before={next}"),
                tok,
            )
            .await;
        assert_eq!(page2["items"].as_array().unwrap().len(), 21);
        let (_, failed) = s.get("/api/v1/audit?result=failure", tok).await;
        assert!(failed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["result"] == "failure" && e["action"] == "auth.login"));
        assert!(!failed["items"].as_array().unwrap().is_empty());
        let tomorrow = (s.clock.now().0 / 86_400_000 + 2) * 86_400_000;
        let future = kura_domain::Timestamp(tomorrow).to_rfc3339();
        let (_, none) = s.get(&format!("/api/v1/audit?from={future}"), tok).await;
        assert_eq!(none["items"].as_array().unwrap().len(), 0);
        assert_eq!(
            s.get("/api/v1/audit?from=yesterday", tok).await.0,
            StatusCode::BAD_REQUEST
        );

        // CSV, times with the tenant's offset.
        let res = s
            .client
            .get(format!(
                "{}/api/v1/audit/export?format=csv&action=folder.",
                s.base
            ))
            .bearer_auth(tok)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("audit-expco-"));
        let csv = res.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("time,seq,actor_kind"));
        assert_eq!(lines.len(), 32, "header + 31 folder events");
        assert!(lines[1].contains("+09:00,"), "{}", lines[1]);

        // Signed JSON Lines, verified offline with the public key only.
        let (_, key) = s
            .call("GET", "/.well-known/kura-audit-key", None, None)
            .await;
        let pk = key["public_key"].as_str().unwrap().to_string();
        let export = |q: &'static str| {
            let s = &s;
            async move {
                let res = s
                    .client
                    .get(format!("{}/api/v1/audit/export?format=jsonl{q}", s.base))
                    .bearer_auth(tok)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
                res.text().await.unwrap()
            }
        };
        let full = export("").await;
        let dir = kura_testkit::temp_path("export");
        std::fs::create_dir_all(&dir).unwrap();
        let verify = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let cfg = s.cfg.clone();
            let pk = pk.clone();
            async move {
                run_cli(
                    &cfg,
                    &[
                        "audit",
                        "verify",
                        path.to_str().unwrap(),
                        "--public-key",
                        &pk,
                    ],
                )
                .await
            }
        };
        let check = |text: &str| {
            kura_crypto::export::verify_export(std::io::Cursor::new(text.as_bytes()), &pk)
        };
        let summary = check(&full).unwrap();
        assert!(summary.contiguous);
        assert!(summary.events >= 33, "{summary:?}");
        assert!(
            summary.checkpoints >= 2,
            "the stored one and the export's own"
        );
        assert_eq!(verify("ok.jsonl", &full).await, 0);
        let filtered = export("&action=folder.").await;
        let fs = check(&filtered).unwrap();
        assert!(!fs.contiguous);
        assert_eq!(fs.events, 31);

        let lines: Vec<String> = full.lines().map(str::to_string).collect();
        let event_at = |i: usize| -> usize {
            lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.contains("\"type\":\"event\""))
                .nth(i)
                .unwrap()
                .0
        };
        let join = |ls: &[String]| ls.join("\n") + "\n";
        // Edited: a folder name changed.
        let mut edited = lines.clone();
        let k = event_at(10);
        edited[k] = edited[k].replacen("\"f", "\"F", 1);
        assert_ne!(edited[k], lines[k]);
        let e = check(&join(&edited)).unwrap_err();
        assert_eq!(e.line as usize, k + 1, "{e}");
        assert_eq!(verify("edited.jsonl", &join(&edited)).await, 1);
        // Deleted.
        let mut deleted = lines.clone();
        let k = event_at(12);
        deleted.remove(k);
        let e = check(&join(&deleted)).unwrap_err();
        assert_eq!(e.line as usize, k + 1, "{e}");
        // Reordered.
        let mut swapped = lines.clone();
        let (x, y) = (event_at(14), event_at(15));
        swapped.swap(x, y);
        let e = check(&join(&swapped)).unwrap_err();
        assert_eq!(e.line as usize, x + 1, "{e}");
        // Truncated (the trailer gone).
        let e = check(&join(&lines[..lines.len() - 1])).unwrap_err();
        assert!(e.reason.contains("truncated"), "{e}");
        // Rewritten and re-signed with another key: every hash recomputed, every signature
        // made anew — the deployment's public key refuses the first signed line.
        let forger = kura_crypto::sign::SigningKey::from_seed(
            &kura_crypto::keys::SecretKey::generate().unwrap(),
        )
        .unwrap();
        let forged = resign(&lines, 10, &forger);
        assert!(
            kura_crypto::export::verify_export(
                std::io::Cursor::new(forged.as_bytes()),
                &forger.public_key_hex()
            )
            .is_ok(),
            "the forgery is consistent under the forger's key"
        );
        let e = check(&forged).unwrap_err();
        assert_eq!(e.line, 2, "the anchor's signature fails first: {e}");
        assert_eq!(verify("forged.jsonl", &forged).await, 1);
        let _ = std::fs::remove_dir_all(&dir);
        s.stop().await;
    }
}

/// Alters event `index` of an export and re-signs everything with `key`, as a forger with
/// database access and their own key would.
fn resign(lines: &[String], index: usize, key: &kura_crypto::sign::SigningKey) -> String {
    use kura_crypto::sign::{checkpoint_message, export_message};
    use sha2::Digest;
    let mut out: Vec<String> = Vec::new();
    let mut prev_hash = String::new();
    let mut events = 0;
    for l in lines {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        match v["type"].as_str().unwrap() {
            "anchor" | "checkpoint" => {
                if v["type"] == "checkpoint" {
                    v["hash"] = prev_hash.clone().into();
                } else {
                    prev_hash = v["hash"].as_str().unwrap().to_string();
                }
                let msg = checkpoint_message(
                    v["tenant_id"].as_str().unwrap(),
                    v["seq"].as_i64().unwrap(),
                    v["hash"].as_str().unwrap(),
                    v["at"].as_i64().unwrap(),
                );
                v["signature"] = key.sign(&msg).into();
                v["key_id"] = key.key_id().into();
            }
            "event" => {
                let mut rec: kura_crypto::AuditRecord = serde_json::from_value(v.clone()).unwrap();
                if events == index {
                    rec.action = "folder.rename".into();
                }
                rec.prev_hash = prev_hash.clone();
                let h = rec.compute_hash();
                let time = v["time"].clone();
                v = serde_json::to_value(&rec).unwrap();
                v["hash"] = h.clone().into();
                v["type"] = "event".into();
                v["time"] = time;
                prev_hash = h;
                events += 1;
            }
            "trailer" => {
                let body = out.iter().map(|l| format!("{l}\n")).collect::<String>();
                let sha = hex::encode(sha2::Sha256::digest(body.as_bytes()));
                v["lines"] = out.len().into();
                v["sha256"] = sha.clone().into();
                v["signature"] = key.sign(&export_message(out.len() as u64, &sha)).into();
            }
            _ => {}
        }
        out.push(v.to_string());
    }
    out.join("\n") + "\n"
}

/// The access log: filters (status class, path, user), keyset paging, CSV and JSON Lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_filters_and_exports() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let t = s.create_tenant("accco").await;
        let tok = &t.admin_token;
        for _ in 0..3 {
            s.get("/api/v1/folders", tok).await;
            s.get("/api/v1/folders/no-such-folder", tok).await;
        }
        // The writer flushes in batches.
        let mut items = Vec::new();
        for _ in 0..50 {
            let (_, page) = s.get("/api/v1/access-log?status=4xx", tok).await;
            items = page["items"].as_array().unwrap().clone();
            if items.len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(items.iter().all(|e| e["status"] == 404));
        let (_, page) = s
            .get("/api/v1/access-log?path=/api/v1/folders&limit=2", tok)
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let next = page["next_before"].as_i64().unwrap();
        let (_, more) = s
            .get(
                &format!("/api/v1/access-log?path=/api/v1/folders&limit=100&before={next}"),
                tok,
            )
            .await;
        assert!(more["items"].as_array().unwrap().len() >= 4);
        assert_eq!(
            s.get("/api/v1/access-log?status=teapot", tok).await.0,
            StatusCode::BAD_REQUEST
        );
        for (format, first) in [("csv", "time,user_id,ip"), ("jsonl", "{")] {
            let res = s
                .client
                .get(format!(
                    "{}/api/v1/access-log/export?format={format}&status=404",
                    s.base
                ))
                .bearer_auth(tok)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let text = res.text().await.unwrap();
            assert!(text.starts_with(first), "{text}");
            assert!(text.contains("+09:00"), "{text}");
            let rows = text.lines().count() - usize::from(format == "csv");
            assert_eq!(rows, 3, "{text}");
        }
        s.stop().await;
    }
}

/// Parses the Prometheus text format strictly enough to catch a malformed exposition:
/// every sample is `name{labels} value`, its family declared by `# TYPE` first.
fn parse_prometheus(text: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let mut typed = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_string();
            let kind = it.next().unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name);
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (head, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let (name, labels) = match head.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let mut m = std::collections::BTreeMap::new();
                for pair in l.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                    m.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (n.to_string(), m)
            }
            None => (head.to_string(), Default::default()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| typed.contains(*f))
            .unwrap_or(&name)
            .to_string();
        assert!(typed.contains(&family), "no # TYPE before {line}");
        out.push((name, labels, value));
    }
    out
}

/// `/metrics`: requests by route and status, latency histograms, failed log-ins, job runs,
/// readiness; only for this machine or with the metrics token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_prometheus_format() {
    let mut cfg = test_config(kura_testkit::Backend::Sqlite);
    cfg.trusted_proxies = vec!["127.0.0.1/32".into()];
    cfg.metrics_token = Some("metrics-secret-token".into());
    let s = TestServer::start_with(cfg, kura_testkit::Backend::Sqlite).await;
    let t = s.create_tenant("metco").await;
    for _ in 0..3 {
        s.get("/api/v1/folders", &t.admin_token).await;
    }
    s.login("metco", &t.admin_email, "wrong-password").await;
    s.services.ensure_jobs().await.unwrap();
    let (_keep, stop) = tokio::sync::watch::channel(false);
    s.services.run_due_jobs("test", &stop).await.unwrap();
    s.services.run_backup(&|_| {}).await.unwrap();
    let get = |xff: Option<&'static str>, token: Option<&'static str>| {
        let mut req = s.client.get(format!("{}/metrics", s.base));
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.unwrap();
            let st = res.status();
            (st, res.text().await.unwrap())
        }
    };
    let (st, text) = get(None, None).await;
    assert_eq!(st, StatusCode::OK);
    let samples = parse_prometheus(&text);
    let find = |name: &str, want: &[(&str, &str)]| -> Vec<f64> {
        samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect()
    };
    let folders = find(
        "kura_http_requests_total",
        &[
            ("route", "/api/v1/folders"),
            ("method", "GET"),
            ("status", "200"),
        ],
    );
    assert_eq!(folders, vec![3.0], "{text}");
    // The histogram: buckets never decrease and +Inf equals the count.
    let buckets = find(
        "kura_http_request_duration_seconds_bucket",
        &[("route", "/api/v1/folders")],
    );
    assert_eq!(buckets.len(), 13);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(
        *buckets.last().unwrap(),
        find(
            "kura_http_request_duration_seconds_count",
            &[("route", "/api/v1/folders")]
        )[0]
    );
    assert!(find("kura_auth_failures_total", &[])[0] >= 1.0);
    assert_eq!(find("kura_up", &[("component", "database")]), vec![1.0]);
    assert_eq!(find("kura_up", &[("component", "storage")]), vec![1.0]);
    assert_eq!(
        find(
            "kura_job_runs_total",
            &[("job", "logs.purge"), ("status", "ok")]
        ),
        vec![1.0]
    );
    assert!(!find("kura_storage_bytes", &[]).is_empty());
    assert_eq!(
        find("kura_last_backup_age_seconds", &[]),
        vec![0.0],
        "a backup just now"
    );
    // From elsewhere: not there, unless with the token.
    assert_eq!(
        get(Some("203.0.113.5"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(Some("203.0.113.5"), Some("wrong")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(Some("203.0.113.5"), Some("metrics-secret-token"))
            .await
            .0,
        StatusCode::OK
    );
    s.stop().await;
}

/// Daily usage roll-ups: logins, active users, uploads, downloads, stock; a day's figures
/// stay the same after the logs they came from are purged; months add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_rollups_survive_log_purges() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let t = s.create_tenant("useco").await;
        let tok = &t.admin_token;
        let (_, f) = s.post("/api/v1/folders", tok, json!({ "name": "f" })).await;
        let (_, p) = s
            .post(
                "/api/v1/projects",
                tok,
                json!({ "name": "p", "folder_id": f["id"] }),
            )
            .await;
        let pid = p["id"].as_str().unwrap().to_string();
        let upload = |name: &'static str, body: &'static str| {
            let s = &s;
            let pid = pid.clone();
            async move {
                let res = s
                    .client
                    .post(format!(
                        "{}/api/v1/projects/{pid}/files?name={name}",
                        s.base
                    ))
                    .bearer_auth(tok)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::CREATED);
                let v: serde_json::Value = res.json().await.unwrap();
                v["file"]["id"].as_str().unwrap().to_string()
            }
        };
        let a = upload("a.txt", "hello").await;
        upload("b.txt", "world!!").await;
        let res = s
            .client
            .get(format!("{}/api/v1/files/{a}/content", s.base))
            .bearer_auth(tok)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        s.login("useco", &t.admin_email, kura_testkit::PASSWORD)
            .await;
        tokio::time::sleep(Duration::from_millis(1200)).await; // access-log batch
        s.services.rollup_usage().await.unwrap();
        let today = s.clock.now().day_in_zone("Asia/Tokyo");
        let (st, u) = s.get("/api/v1/tenant/usage/daily", tok).await;
        assert_eq!(st, StatusCode::OK, "{u}");
        let day = u["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["day"] == today.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{u}"));
        assert_eq!(day["uploads"], 2, "{day}");
        assert_eq!(day["upload_bytes"], 12);
        assert_eq!(day["downloads"], 1);
        assert_eq!(day["download_bytes"], 5);
        assert_eq!(day["logins"], 2, "the invitation's log-in and this one");
        assert_eq!(day["active_users"], 1);
        assert_eq!(
            (
                day["folders"].clone(),
                day["projects"].clone(),
                day["files"].clone()
            ),
            (json!(1), json!(1), json!(2))
        );
        assert_eq!(day["bytes_stored"], 12);

        // 100 days on, with 90-day retention: the logs of that day are gone, its figures
        // are not.
        let (_, tenant) = s.get("/api/v1/tenant", tok).await;
        let mut settings = tenant["settings"].clone();
        settings["audit_retention_days"] = json!(90);
        settings["access_log_retention_days"] = json!(90);
        s.call("PUT", "/api/v1/tenant/settings", Some(tok), Some(settings))
            .await;
        s.clock.advance_secs(100 * 86_400);
        let (_, l) = s
            .login("useco", &t.admin_email, kura_testkit::PASSWORD)
            .await;
        let tok2 = l["token"].as_str().unwrap().to_string();
        let (a_n, _) = s.services.purge_logs().await.unwrap();
        assert!(a_n > 0);
        s.services.rollup_usage().await.unwrap();
        let (_, u) = s
            .get(
                &format!("/api/v1/tenant/usage/daily?from={today}&to={today}"),
                &tok2,
            )
            .await;
        assert_eq!(u["items"][0], day, "unchanged after the purge");
        let (_, m) = s
            .get(
                &format!("/api/v1/tenant/usage/daily?from={today}&to=2099-12-31&by=month"),
                &tok2,
            )
            .await;
        let months = m["items"].as_array().unwrap();
        assert_eq!(months[0]["day"], &today[..7]);
        assert_eq!(months[0]["uploads"], 2);
        assert_eq!(months.last().unwrap()["logins"], 1, "{m}");
        assert_eq!(
            s.get("/api/v1/tenant/usage/daily?from=soon", &tok2).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        s.stop().await;
    }
}

/// Batched appends (one head update, rows sent as one JSON array per statement) build the
/// same chain as single appends: it verifies, mixes with single appends, reads back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_audit_appends_chain_correctly() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let t = s.create_tenant("batchco").await;
        let tid = kura_domain::TenantId::from_string(t.tenant_id.clone());
        let ev = |i: usize| kura_store::audit::NewEvent {
            at: s.clock.now(),
            actor_kind: "system",
            actor_id: if i.is_multiple_of(2) {
                None
            } else {
                Some(format!("u{i}"))
            },
            action: "bench.event".into(),
            target_kind: None,
            target_id: Some(i.to_string()),
            result: "success",
            ip: Some("192.0.2.1".into()),
            request_id: None,
            details: json!({ "i": i, "名前": "資料 \"引用\"", "nested": { "z": 1, "a": [1, 2] } }),
        };
        let store = &s.services.store;
        let mut tx = store.tenant_tx(&tid).await.unwrap();
        let last = kura_store::audit::append_batch(&mut tx, &tid, (0..2500).map(ev).collect())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.tenant_tx(&tid).await.unwrap();
        let one = kura_store::audit::append(&mut tx, &tid, ev(9999))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(one, last + 1);
        let mut tx = store.tenant_read(&tid).await.unwrap();
        let rep = kura_store::audit::verify(&mut tx, &tid, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rep.head_seq, one);
        let newest = kura_store::audit::list(&mut tx, &tid, Some(one), 1)
            .await
            .unwrap();
        drop(tx);
        assert_eq!(newest[0].record.details["名前"], "資料 \"引用\"");
        assert_eq!(newest[0].record.actor_id.as_deref(), Some("u2499"));
        let (_, v) = s.get("/api/v1/audit/verify", &t.admin_token).await;
        assert_eq!(v["ok"], true, "{v}");
        s.stop().await;
    }
}

/// Two `kura serve` processes on one PostgreSQL database, each polling for jobs every
/// second with a job due every second: every run is recorded once, and the runs the two
/// processes log add up to exactly the recorded ones (nothing ran twice or unrecorded);
/// when one process dies, the other carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_kura_processes_run_each_due_job_once() {
    if !backends().contains(&kura_testkit::Backend::Postgres) {
        return;
    }
    let bin = crate::kura_binary();

    let b = kura_testkit::Backend::Postgres;
    let s = TestServer::start(b).await; // creates and migrates the schema
    let t = s.create_tenant("procco").await;
    let dir = kura_testkit::temp_path("two-nodes");
    std::fs::create_dir_all(&dir).unwrap();
    let mut nodes = Vec::new();
    for name in ["proc-a", "proc-b"] {
        let file = dir.join(format!("{name}.toml"));
        let toml = format!(
            "{}listen = \"127.0.0.1:0\"\njobs_poll_secs = 1\naudit_checkpoint_interval_secs = 1\nnode_name = \"{name}\"\nreencrypt_interval_secs = 0\n",
            kura_testkit::toml_of(&s.cfg)
        );
        std::fs::write(&file, toml).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = std::process::Command::new(&bin)
            .args(["--config", file.to_str().unwrap(), "serve"])
            .env("KURA_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        nodes.push(child);
    }
    // Audit events keep arriving while both nodes run jobs for a while; then the first node
    // dies and the other carries on alone (after the dead node's lease, if it died holding
    // one).
    let post = |name: String| {
        let s = &s;
        let tok = t.admin_token.clone();
        async move {
            s.post("/api/v1/folders", &tok, json!({ "name": name }))
                .await;
        }
    };
    for i in 0..8 {
        post(format!("p{i}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = nodes[0].kill();
    let _ = nodes[0].wait();
    let killed_at = s
        .services
        .job_runs(Some("audit.checkpoint"), 10_000)
        .await
        .unwrap()
        .len();
    for i in 0..60 {
        post(format!("q{i}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let runs = s
            .services
            .job_runs(Some("audit.checkpoint"), 10_000)
            .await
            .unwrap();
        if runs.len() >= killed_at + 2 {
            break;
        }
    }
    for mut n in nodes {
        let _ = n.kill();
        let _ = n.wait();
    }
    let runs = s
        .services
        .job_runs(Some("audit.checkpoint"), 10_000)
        .await
        .unwrap();
    assert!(runs.len() >= 3, "{runs:?}");
    let per_node = |n: &str| runs.iter().filter(|r| r.node == n).count();
    assert!(
        per_node("proc-a") + per_node("proc-b") == runs.len(),
        "{runs:?}"
    );
    let mut due: Vec<i64> = runs.iter().map(|r| r.due_at.0).collect();
    due.sort();
    due.dedup();
    assert_eq!(due.len(), runs.len(), "each due time once");
    // What the processes say they did equals what was recorded.
    let logged: usize = ["proc-a", "proc-b"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.join(format!("{n}.log")))
                .unwrap()
                .lines()
                .filter(|l| l.contains("job done") && l.contains("audit.checkpoint"))
                .count()
        })
        .sum();
    // (A node killed between its log line and recording the outcome leaves one `running`.)
    let finished = runs.iter().filter(|r| r.status == "ok").count();
    assert!(
        finished <= logged && logged <= runs.len(),
        "{logged} logged, {runs:?}"
    );
    // After the kill, only the survivor ran.
    let after_kill = runs.len() - killed_at;
    assert!(after_kill >= 2, "{runs:?}");
    assert!(
        runs[..after_kill].iter().all(|r| r.node == "proc-b"),
        "{runs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Backups: a generation per run with each tenant's rows sealed with its key, blob copies
/// made once, a signed manifest, restore verification recorded; tampering is found; old
/// generations expire beyond `backup_keep`; the metric shows the last backup's age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_encrypted_verified_and_rotated() {
    for b in backends() {
        let mut cfg = test_config(b);
        cfg.backup_keep = 2;
        let s = TestServer::start_with(cfg, b).await;
        let backup_dir = s.cfg.data_dir.join("backups");
        let mut marker_files = Vec::new();
        for slug in ["bk-a", "bk-b"] {
            let t = s.create_tenant(slug).await;
            let (_, f) = s
                .post("/api/v1/folders", &t.admin_token, json!({ "name": "f" }))
                .await;
            let (_, p) = s
                .post(
                    "/api/v1/projects",
                    &t.admin_token,
                    json!({ "name": "p", "folder_id": f["id"] }),
                )
                .await;
            let body = format!("BACKUP-MARKER-{slug} 極秘");
            let res = s
                .client
                .post(format!(
                    "{}/api/v1/projects/{}/files?name=secret.txt",
                    s.base,
                    p["id"].as_str().unwrap()
                ))
                .bearer_auth(&t.admin_token)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            marker_files.push((t, body));
        }
        assert_eq!(s.services.last_backup_age_secs().await.unwrap(), None);
        let tok = marker_files[0].0.admin_token.clone();
        let (_, none) = s.get("/api/v1/tenant/backups", &tok).await;
        assert!(none["last_verified_generation"].is_null(), "{none}");
        assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
        let (_, some) = s.get("/api/v1/tenant/backups", &tok).await;
        assert!(some["last_verified_generation"].is_string(), "{some}");
        assert_eq!(some["generations_kept"], 2);
        let list = s.services.list_backups().await.unwrap();
        assert_eq!(list.len(), 1);
        let g = &list[0];
        assert_eq!(g.status, "ok");
        assert_eq!(g.verify_status.as_deref(), Some("ok"), "{g:?}");
        assert!(
            g.verify_detail
                .as_deref()
                .unwrap_or_default()
                .contains("scratch database"),
            "{g:?}"
        );
        assert!(
            g.tenants >= 2 && g.blobs >= 2 && g.blobs_copied == g.blobs,
            "{g:?}"
        );
        let files = files_under(&backup_dir);
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        assert!(names.iter().any(|n| n.ends_with("/manifest")), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("/vault")));
        for (t, body) in &marker_files {
            assert!(names
                .iter()
                .any(|n| n.ends_with(&format!("snap-{}", t.tenant_id))));
            // Nothing readable at rest: neither the file's text nor the tenant's rows.
            for f in &files {
                let bytes = std::fs::read(f).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains(body.as_str()),
                    "{} holds plaintext",
                    f.display()
                );
                assert!(
                    !text.contains(&t.admin_email),
                    "{} holds plaintext",
                    f.display()
                );
            }
        }
        // The next generation copies no blob again.
        s.clock.advance_secs(86_400);
        assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
        let list = s.services.list_backups().await.unwrap();
        assert_eq!(list[0].blobs_copied, 0, "{:?}", list[0]);
        assert!(s.services.last_backup_age_secs().await.unwrap().is_some());
        // An altered snapshot is found by verification, naming the tenant.
        let newest = list[0].id.clone();
        let snap = backup_dir
            .join(format!("gen-{newest}"))
            .join(format!("snap-{}", marker_files[0].0.tenant_id));
        let mut bytes = std::fs::read(&snap).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&snap, bytes).unwrap();
        assert_eq!(
            run_cli(&s.cfg, &["backup", "verify", "--generation", &newest]).await,
            1
        );
        let (ok, detail) = s.services.verify_backup(&newest).await.unwrap();
        assert!(!ok && detail.contains("bk-a"), "{detail}");
        // Two verified generations are kept: the next run drops the one that failed
        // verification; the one after drops the oldest.
        let first = list[1].id.clone();
        s.clock.advance_secs(86_400);
        assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
        let list = s.services.list_backups().await.unwrap();
        let status = |list: &[kura_store::backup::Generation], id: &str| {
            list.iter().find(|g| g.id == id).unwrap().status.clone()
        };
        assert_eq!(status(&list, &newest), "expired");
        assert!(!snap.exists());
        assert_eq!(status(&list, &first), "ok");
        s.clock.advance_secs(86_400);
        assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
        let list = s.services.list_backups().await.unwrap();
        assert_eq!(status(&list, &first), "expired");
        assert!(!backup_dir
            .join(format!("gen-{first}"))
            .join("manifest")
            .exists());
        // Blob copies stay while a kept generation references them.
        assert!(s.services.verify_backup(&list[0].id).await.unwrap().0);
        assert_eq!(run_cli(&s.cfg, &["backup", "list"]).await, 0);
        s.stop().await;
    }
}

/// Restore: one tenant goes back to its backup while the other keeps its newer data; and a
/// full restore into an empty database brings every file back byte for byte with the
/// audit chain verifying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_one_tenant_alone_and_everything_into_a_fresh_database() {
    // Every backend with local storage; and once with the files and the backups in S3,
    // restored into a fresh database and an empty bucket.
    let runs = backends()
        .into_iter()
        .map(|b| (b, false))
        .chain([(kura_testkit::Backend::Sqlite, true)]);
    for (b, s3) in runs {
        let mut cfg = test_config(b);
        if s3 {
            kura_testkit::use_s3(&mut cfg).await;
            cfg.backup_storage = "s3".into();
            cfg.backup_s3_bucket = cfg.s3_bucket.clone();
            cfg.backup_s3_prefix = "kura-backups".into();
        }
        let s = TestServer::start_with(cfg, b).await;
        let a = s.create_tenant("rs-a").await;
        let bt = s.create_tenant("rs-b").await;
        let (_, f) = s
            .post("/api/v1/folders", &a.admin_token, json!({ "name": "保管" }))
            .await;
        let (_, p) = s
            .post(
                "/api/v1/projects",
                &a.admin_token,
                json!({ "name": "p", "folder_id": f["id"] }),
            )
            .await;
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let res = s
            .client
            .post(format!(
                "{}/api/v1/projects/{}/files?name=data.bin",
                s.base,
                p["id"].as_str().unwrap()
            ))
            .bearer_auth(&a.admin_token)
            .body(content.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let file: serde_json::Value = res.json().await.unwrap();
        let fid = file["file"]["id"].as_str().unwrap().to_string();
        assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
        let g = &s.services.list_backups().await.unwrap()[0];
        assert_eq!(g.verify_status.as_deref(), Some("ok"), "{g:?}");
        if s3 {
            // The generation is in the bucket, and nothing there is readable.
            let bucket = s.cfg.s3_bucket.clone().unwrap();
            let listing = s
                .client
                .get(format!(
                    "{}/{bucket}?list-type=2&prefix=kura-backups/",
                    kura_testkit::s3_endpoint()
                ))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let keys: Vec<&str> = listing
                .split("<Key>")
                .skip(1)
                .filter_map(|k| k.split("</Key>").next())
                .collect();
            assert!(
                keys.iter()
                    .any(|k| k.ends_with(&format!("/gen-{}/manifest", g.id))),
                "{keys:?}"
            );
            assert!(keys
                .iter()
                .any(|k| k.ends_with(&format!("snap-{}", a.tenant_id))));
            for k in &keys {
                let bytes = s
                    .client
                    .get(format!("{}/{bucket}/{k}", kura_testkit::s3_endpoint()))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(&a.admin_email),
                    "{k} holds plaintext"
                );
                assert!(
                    !bytes.windows(64).any(|w| w == &content[1000..1064]),
                    "{k} holds the file in the clear"
                );
            }
        }

        // After the backup: A trashes and purges its file and adds a folder; B adds one.
        s.call(
            "DELETE",
            &format!("/api/v1/files/{fid}"),
            Some(&a.admin_token),
            None,
        )
        .await;
        let (st, _) = s
            .post(
                &format!("/api/v1/files/{fid}/purge"),
                &a.admin_token,
                json!({}),
            )
            .await;
        assert!(st.is_success(), "{st}");
        s.post(
            "/api/v1/folders",
            &a.admin_token,
            json!({ "name": "後から" }),
        )
        .await;
        s.post(
            "/api/v1/folders",
            &bt.admin_token,
            json!({ "name": "B の新しいフォルダー" }),
        )
        .await;

        assert_eq!(
            run_cli(&s.cfg, &["backup", "restore", "--tenant", "rs-a"]).await,
            0
        );
        // A's sessions ended with the restore.
        assert_eq!(
            s.get("/api/v1/me", &a.admin_token).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (_, l) = s
            .login("rs-a", &a.admin_email, kura_testkit::PASSWORD)
            .await;
        let tok = l["token"].as_str().unwrap().to_string();
        let (_, folders) = s.get("/api/v1/folders", &tok).await;
        let names: Vec<&str> = folders["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["保管"], "A is back to its backup");
        let got = s
            .client
            .get(format!("{}/api/v1/files/{fid}/content", s.base))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            got.as_ref(),
            content.as_slice(),
            "the purged file is back, byte for byte"
        );
        let (_, v) = s.get("/api/v1/audit/verify", &tok).await;
        assert_eq!(v["ok"], true, "{v}");
        let (_, bf) = s.get("/api/v1/folders", &bt.admin_token).await;
        assert!(
            bf.to_string().contains("B の新しいフォルダー"),
            "B untouched: {bf}"
        );

        // Everything into an empty database (same master and signing keys, the backups).
        let mut fresh = test_config(b);
        fresh.master_key = s.cfg.master_key.clone();
        fresh.signing_key = s.cfg.signing_key.clone();
        fresh.backup_dir = Some(s.cfg.data_dir.join("backups"));
        if s3 {
            // A new, empty bucket for the files; the backups where they were.
            kura_testkit::use_s3(&mut fresh).await;
            fresh.backup_storage = "s3".into();
            fresh.backup_s3_bucket = s.cfg.backup_s3_bucket.clone();
            fresh.backup_s3_prefix = s.cfg.backup_s3_prefix.clone();
        }
        let gen = s.services.list_backups().await.unwrap()[0].id.clone();
        // Only `migrate` (or `serve`) creates the new, empty database.
        assert_eq!(
            run_cli(&fresh, &["backup", "restore", "--generation", &gen]).await,
            2
        );
        assert_eq!(run_cli(&fresh, &["migrate"]).await, 0);
        assert_eq!(
            run_cli(&fresh, &["backup", "restore", "--generation", &gen]).await,
            0
        );
        let t2 = TestServer::start_with(fresh, b).await;
        let (st, l) = t2
            .login("rs-a", &a.admin_email, kura_testkit::PASSWORD)
            .await;
        assert_eq!(st, StatusCode::OK, "{l}");
        let tok2 = l["token"].as_str().unwrap().to_string();
        let got = t2
            .client
            .get(format!("{}/api/v1/files/{fid}/content", t2.base))
            .bearer_auth(&tok2)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got.as_ref(), content.as_slice());
        let (_, v) = t2.get("/api/v1/audit/verify", &tok2).await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(
            run_cli(&t2.cfg, &["audit", "verify", "--tenant", "rs-b"]).await,
            0
        );
        t2.stop().await;
        s.stop().await;
    }
}

/// Termination: locked at once; 30 days later the data is deleted; 7 days after that the
/// keys are destroyed in the vault and in every backup generation (its backup can no
/// longer be restored), and a signed deletion certificate verifies — altered, it does not.
/// Another tenant is untouched throughout. The clock is driven; nothing sleeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_locks_deletes_and_crypto_shreds_with_a_certificate() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let gone = s.create_tenant("bye-co").await;
        let stay = s.create_tenant("stay-co").await;
        let (_, f) = s
            .post("/api/v1/folders", &gone.admin_token, json!({ "name": "f" }))
            .await;
        let (_, p) = s
            .post(
                "/api/v1/projects",
                &gone.admin_token,
                json!({ "name": "p", "folder_id": f["id"] }),
            )
            .await;
        let res = s
            .client
            .post(format!(
                "{}/api/v1/projects/{}/files?name=a.txt",
                s.base,
                p["id"].as_str().unwrap()
            ))
            .bearer_auth(&gone.admin_token)
            .body("最後のデータ")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);

        // (On the server's own clock, which the test drives; the CLI runs on the real one.)
        let (_, link) = s
            .services
            .operator_terminate_tenant("bye-co", &Default::default())
            .await
            .unwrap();
        // The contract admin is mailed the export link.
        let mails = s.services.mail_outbox(20).await.unwrap();
        let tx = s.services.store.system_read().await.unwrap();
        drop(tx);
        assert!(mails
            .iter()
            .any(|m| m.to == gone.admin_email && m.body.contains(&link)));
        let link = link.replace("http://localhost", "http://127.0.0.1");
        let tar = s.client.get(&link).send().await.unwrap();
        assert_eq!(tar.status(), StatusCode::OK);
        let tar = tar.bytes().await.unwrap();
        let members = untar(&tar);
        // GNU tar reads it too.
        let tar_file = kura_testkit::temp_path("export.tar");
        std::fs::write(&tar_file, &tar).unwrap();
        let listing = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&tar_file)
            .output()
            .expect("tar");
        assert!(listing.status.success(), "{listing:?}");
        let listing = String::from_utf8_lossy(&listing.stdout).to_string();
        assert!(listing.contains("kura-export/metadata.json"), "{listing}");
        assert_eq!(listing.lines().count(), members.len());
        let _ = std::fs::remove_file(&tar_file);
        let get = |suffix: &str| {
            members
                .iter()
                .find(|(n, _)| n.ends_with(suffix))
                .unwrap_or_else(|| {
                    panic!(
                        "{suffix} in {:?}",
                        members.iter().map(|m| &m.0).collect::<Vec<_>>()
                    )
                })
                .1
                .clone()
        };
        assert_eq!(String::from_utf8(get("/a.txt")).unwrap(), "最後のデータ");
        let meta = String::from_utf8(get("metadata.json")).unwrap();
        assert!(meta.contains(&gone.admin_email) && !meta.contains("password_hash"));
        let audit = get("audit.jsonl");
        kura_crypto::export::verify_export(
            std::io::Cursor::new(audit),
            &s.services.signing.public_key_hex(),
        )
        .unwrap();
        assert!(String::from_utf8(get("access.csv"))
            .unwrap()
            .starts_with("time,"));
        assert_eq!(
            s.get("/api/v1/folders", &gone.admin_token).await.0,
            StatusCode::UNAUTHORIZED,
            "sessions end at once"
        );
        assert_eq!(
            s.login("bye-co", &gone.admin_email, kura_testkit::PASSWORD)
                .await
                .0,
            StatusCode::UNAUTHORIZED,
            "no log-in"
        );
        assert_eq!(
            run_cli(
                &s.cfg,
                &["tenant", "terminate", "--slug", "bye-co", "--yes"]
            )
            .await,
            2
        );

        // Not yet: 29 days on, nothing is deleted.
        s.clock.advance_secs(29 * 86_400);
        assert_eq!(s.services.advance_lifecycles().await.unwrap(), 0);
        let tid = kura_domain::TenantId::from_string(gone.tenant_id.clone());
        let count = |table: &'static str| {
            let s = &s;
            let tid = tid.clone();
            async move {
                let mut tx = s.services.store.system_read().await.unwrap();
                kura_store::backup::count_rows(&mut tx, &tid).await.unwrap()[table]
            }
        };
        assert_eq!(count("files").await, 1);
        // Day 30: the data goes (rows and blobs); the keys stay for now.
        s.clock.advance_secs(86_400);
        assert_eq!(s.services.advance_lifecycles().await.unwrap(), 1);
        for table in ["files", "file_versions", "users", "folders", "audit_events"] {
            assert_eq!(count(table).await, 0, "{table}");
        }
        assert!(s
            .services
            .blobs
            .list_all()
            .await
            .unwrap()
            .iter()
            .all(|o| o.tenant != gone.tenant_id));
        assert!(s.services.deletion_certificate("bye-co").await.is_err());
        assert_eq!(
            s.client.get(&link).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "the export link ends with the data"
        );
        // Day 37: the keys go, everywhere.
        s.clock.advance_secs(7 * 86_400);
        assert_eq!(s.services.advance_lifecycles().await.unwrap(), 1);
        let mut tx = s.services.store.system_read().await.unwrap();
        assert!(kura_store::keys::current(&mut tx, &tid)
            .await
            .unwrap()
            .is_none());
        drop(tx);
        for f in files_under(&s.cfg.data_dir.join("backups")) {
            if f.ends_with("vault") {
                let v = std::fs::read_to_string(&f).unwrap();
                assert!(
                    !v.contains(&gone.tenant_id),
                    "{} still holds its keys",
                    f.display()
                );
            }
        }
        assert_ne!(
            run_cli(&s.cfg, &["backup", "restore", "--tenant", "bye-co"]).await,
            0,
            "its backup copies cannot be restored"
        );
        // The backup still verifies for everyone else.
        let g = s.services.list_backups().await.unwrap()[0].id.clone();
        let (ok, detail) = s.services.verify_backup(&g).await.unwrap();
        assert!(ok, "{detail}");
        assert!(detail.contains("crypto-shredded"), "{detail}");
        // The certificate: signed, verifiable, readable; altered, it fails.
        let cert = s.services.deletion_certificate("bye-co").await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&cert).unwrap();
        assert_eq!(v["certificate"]["slug"], "bye-co");
        assert!(v["certificate"]["data_deleted"]["blobs"].as_i64().unwrap() >= 1);
        assert!(!v["certificate"]["backup_generations_shredded"]
            .as_array()
            .unwrap()
            .is_empty());
        let dir = kura_testkit::temp_path("cert");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cert.json");
        std::fs::write(&path, &cert).unwrap();
        let pk = s.services.signing.public_key_hex();
        let verify = |p: &std::path::Path| {
            let cfg = s.cfg.clone();
            let p = p.to_str().unwrap().to_string();
            let pk = pk.clone();
            async move { run_cli(&cfg, &["certificate", "verify", &p, "--public-key", &pk]).await }
        };
        assert_eq!(verify(&path).await, 0);
        let forged = dir.join("forged.json");
        std::fs::write(&forged, cert.replace("bye-co", "byeco")).unwrap();
        assert_eq!(verify(&forged).await, 1);
        let ja = kura_services::lifecycle::render_certificate(&v, "ja");
        assert!(
            ja.contains("データ削除証明書") && ja.contains("bye-co"),
            "{ja}"
        );
        // A document to file: times in the tenant's zone with 年月日, what was deleted in
        // words, the signing key's id, how to verify; no raw table names, no localhost.
        assert!(
            ja.contains("年") && ja.contains("月") && ja.contains("(Asia/Tokyo)"),
            "{ja}"
        );
        assert!(ja.contains("ファイル: 1 件"), "{ja}");
        assert!(
            !ja.contains("file_versions") && !ja.contains("audit_events"),
            "{ja}"
        );
        assert!(ja.contains(v["key_id"].as_str().unwrap()), "{ja}");
        assert!(ja.contains("kura certificate verify"), "{ja}");
        assert!(!ja.contains("localhost"), "{ja}");
        let en = kura_services::lifecycle::render_certificate(&v, "en");
        assert!(
            en.contains("files: 1") && en.contains("Issued by: Kura"),
            "{en}"
        );
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "tenant",
                    "certificate",
                    "--slug",
                    "bye-co",
                    "--format",
                    "en"
                ]
            )
            .await,
            0
        );
        let _ = std::fs::remove_dir_all(&dir);
        // The other tenant never noticed (a fresh session: weeks have passed).
        let (st, l) = s
            .login("stay-co", &stay.admin_email, kura_testkit::PASSWORD)
            .await;
        assert_eq!(st, StatusCode::OK, "{l}");
        let (st, _) = s.get("/api/v1/folders", l["token"].as_str().unwrap()).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            run_cli(&s.cfg, &["audit", "verify", "--tenant", "stay-co"]).await,
            0
        );
        s.stop().await;
    }
}

/// The members of a tar archive (name, bytes), read by hand from the ustar headers.
fn untar(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= data.len() {
        let h = &data[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size_text = String::from_utf8_lossy(&h[124..135]).to_string();
        let size = usize::from_str_radix(size_text.trim_matches(char::from(0)).trim(), 8).unwrap();
        // The header checksum: the sum of its bytes with the checksum field as spaces.
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        let stored = String::from_utf8_lossy(&h[148..154]).to_string();
        assert_eq!(
            u32::from_str_radix(stored.trim(), 8).unwrap(),
            sum,
            "{name}"
        );
        at += 512;
        out.push((name, data[at..at + size].to_vec()));
        at += size.div_ceil(512) * 512;
    }
    out
}

/// Notices: lead times enforced (Japanese business days for maintenance), mailed to the
/// targeted tenants' contacts only, listed for them until past.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_follow_lead_times_and_reach_their_tenants() {
    use kura_services::notices::NewNotice;
    for b in backends() {
        let s = TestServer::start(b).await;
        let one = s.create_tenant("note-a").await;
        let two = s.create_tenant("note-b").await;
        for (t, email) in [
            (&one, "ops@note-a.example.jp"),
            (&two, "ops@note-b.example.jp"),
        ] {
            let (st, e) = s
                .post(
                    "/api/v1/tenant/contacts",
                    &t.admin_token,
                    json!({ "name": "運用窓口", "email": email, "purpose": "notices" }),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{e}");
        }
        let notice = |kind: &str, days: i64, tenants: Vec<String>| NewNotice {
            kind: kind.into(),
            title_ja: "メンテナンスのお知らせ".into(),
            title_en: "Planned maintenance".into(),
            body_ja: "サービスを停止します。".into(),
            body_en: "The service will be down.".into(),
            effective_at: s.clock.now().plus_secs(days * 86_400),
            show_until: None,
            tenants,
        };
        let ctx = kura_services::RequestCtx::default();
        // Two calendar days are never five business days.
        let e = s
            .services
            .operator_publish_notice(
                notice("planned_maintenance", 2, vec![]),
                kura_services::Operator::Cli,
                &ctx,
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("business days"), "{e}");
        assert!(s
            .services
            .operator_publish_notice(
                notice("spec_change", 6, vec![]),
                kura_services::Operator::Cli,
                &ctx
            )
            .await
            .is_err());
        assert!(s
            .services
            .operator_publish_notice(
                notice("bogus", 60, vec![]),
                kura_services::Operator::Cli,
                &ctx
            )
            .await
            .is_err());
        // Fifteen calendar days always hold five business days, holidays or not.
        s.services
            .operator_publish_notice(
                notice("planned_maintenance", 15, vec!["note-a".into()]),
                kura_services::Operator::Cli,
                &ctx,
            )
            .await
            .unwrap();
        let mails = s.services.mail_outbox(50).await.unwrap();
        let tx = s.services.store.system_read().await.unwrap();
        drop(tx);
        assert!(mails
            .iter()
            .any(|m| m.to == "ops@note-a.example.jp" && m.subject.contains("メンテナンス")));
        assert!(!mails.iter().any(|m| m.to == "ops@note-b.example.jp"));
        // The contract admin gets it too (TEN-5: contacts are in addition to them).
        assert!(mails
            .iter()
            .any(|m| m.to == one.admin_email && m.subject.contains("メンテナンス")));
        assert!(!mails
            .iter()
            .any(|m| m.to == two.admin_email && m.subject.contains("メンテナンス")));
        let (_, a) = s.get("/api/v1/notices", &one.admin_token).await;
        let (_, bn) = s.get("/api/v1/notices", &two.admin_token).await;
        assert_eq!(a["items"].as_array().unwrap().len(), 1, "{a}");
        assert_eq!(bn["items"].as_array().unwrap().len(), 0, "{bn}");
        // An emergency notice, after the fact, for everyone — except a terminated tenant.
        let ended = s.create_tenant("note-c").await;
        s.services
            .operator_terminate_tenant("note-c", &ctx)
            .await
            .unwrap();
        s.services
            .operator_publish_notice(
                notice("emergency", -1, vec![]),
                kura_services::Operator::Cli,
                &ctx,
            )
            .await
            .unwrap();
        let (_, bn) = s.get("/api/v1/notices", &two.admin_token).await;
        assert_eq!(bn["items"][0]["kind"], "emergency");
        let mails = s.services.mail_outbox(50).await.unwrap();
        let tx = s.services.store.system_read().await.unwrap();
        drop(tx);
        assert!(mails
            .iter()
            .any(|m| m.to == two.admin_email && m.subject.contains("メンテナンス")));
        assert!(
            !mails
                .iter()
                .any(|m| m.to == ended.admin_email && m.subject.contains("メンテナンス")),
            "no notices after the contract ended"
        );
        // Past notices are no longer shown.
        s.clock.advance_secs(20 * 86_400);
        assert!(s
            .services
            .current_notices(&kura_domain::TenantId::from_string(one.tenant_id.clone()))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(run_cli(&s.cfg, &["notice", "list"]).await, 0);
        s.stop().await;
    }
}

/// The operator console over HTTP: sign-in only by a one-time link from the CLI (a GET
/// does not use it up; used, expired and forged ones fail), CSRF on every form, the
/// lead-time rule refusing with the form kept and the earliest time named, a notice and an
/// incident reaching only their tenants' contract admins, actions audited under the
/// console name, idle timeout, log-out and "log out everyone".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_console_signs_in_by_one_time_link_and_manages_notices_and_incidents() {
    use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
    fn cookie_of(r: &reqwest::Response, name: &str) -> Option<String> {
        r.headers().get_all(SET_COOKIE).iter().find_map(|v| {
            let v = v.to_str().ok()?;
            let pair = v.split(';').next()?;
            let (n, val) = pair.split_once('=')?;
            (n.trim_start_matches("__Host-") == name && !val.is_empty()).then(|| pair.to_string())
        })
    }
    fn csrf_in(body: &str) -> String {
        let at = body.find("name=\"_csrf\" value=\"").expect("a form") + 20;
        body[at..at + body[at..].find('"').unwrap()].to_string()
    }
    fn location(r: &reqwest::Response) -> String {
        r.headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
    for b in backends() {
        let s = TestServer::start(b).await;
        let a = s.create_tenant("opc-a").await;
        let bt = s.create_tenant("opc-b").await;
        let ctx = kura_services::RequestCtx::default();
        let get = |path: String, cookie: Option<String>| {
            let mut r = s
                .client
                .get(format!("{}{path}", s.base))
                .header("accept-language", "ja");
            if let Some(c) = cookie {
                r = r.header(COOKIE, c);
            }
            r.send()
        };
        let post = |path: String, cookie: Option<String>, form: Vec<(&'static str, String)>| {
            let mut r = s
                .client
                .post(format!("{}{path}", s.base))
                .header("accept-language", "ja")
                .form(&form);
            if let Some(c) = cookie {
                r = r.header(COOKIE, c);
            }
            r.send()
        };
        // No session: the sign-in explanation.
        let r = get("/operator".into(), None).await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/operator/login");
        let r = get("/operator/login".into(), None).await.unwrap();
        assert!(r.text().await.unwrap().contains("kura operator login-link"));
        assert!(s
            .services
            .operator_login_link("two words", &ctx)
            .await
            .is_err());
        // A link opens a confirmation page; fetching it does not use it up.
        let (link, _) = s.services.operator_login_link("sato", &ctx).await.unwrap();
        let path = format!("/operator/login/{link}");
        let _ = get(path.clone(), None).await.unwrap();
        let r = get(path.clone(), None).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let pre = cookie_of(&r, "kura_csrf").expect("a pre-login CSRF cookie");
        let body = r.text().await.unwrap();
        assert!(body.contains("id=\"op-login\""), "{body}");
        let token = csrf_in(&body);
        // Without the double-submit cookie nothing happens.
        let r = post(path.clone(), None, vec![("_csrf", token.clone())])
            .await
            .unwrap();
        assert!(location(&r).contains("err=csrf"), "{}", location(&r));
        assert!(cookie_of(&r, "kura_op").is_none());
        let r = post(
            path.clone(),
            Some(pre.clone()),
            vec![("_csrf", token.clone())],
        )
        .await
        .unwrap();
        assert_eq!(location(&r), "/operator");
        let session = cookie_of(&r, "kura_op").expect("an operator session cookie");
        assert!(session.contains("=kos_"), "{session}");
        let op = Some(session.clone());
        // Used: gone, and a second redemption fails.
        assert_eq!(
            get(path.clone(), None).await.unwrap().status(),
            StatusCode::GONE
        );
        let r = post(path.clone(), Some(pre.clone()), vec![("_csrf", token)])
            .await
            .unwrap();
        assert!(location(&r).contains("err=op_link"));
        assert!(cookie_of(&r, "kura_op").is_none());
        // An expired link.
        let (late, _) = s.services.operator_login_link("sato", &ctx).await.unwrap();
        s.clock.advance_secs(11 * 60);
        let r = get(format!("/operator/login/{late}"), None).await.unwrap();
        assert_eq!(r.status(), StatusCode::GONE);
        // The overview names the tenants and shows none of their data.
        let r = get("/operator".into(), op.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let home = r.text().await.unwrap();
        assert!(home.contains("opc-a") && home.contains("opc-b") && home.contains("sato"));
        assert!(!home.contains(&a.admin_email), "no tenant user data");
        // A tenant's session token is no operator session.
        let (_, login) = s
            .login("opc-a", &a.admin_email, kura_testkit::PASSWORD)
            .await;
        let tenant_token = login["token"].as_str().unwrap().to_string();
        let forged = session.replace(session.split_once('=').unwrap().1, &tenant_token);
        let r = get("/operator".into(), Some(forged)).await.unwrap();
        assert!(
            location(&r).starts_with("/operator/login"),
            "{}",
            location(&r)
        );
        // Forms need the session's CSRF token.
        let page = get("/operator/notices".into(), op.clone())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_in(&page);
        let at = |days: i64| {
            s.clock
                .now()
                .plus_secs(days * 86_400)
                .to_rfc3339_in_zone("Asia/Tokyo")[..16]
                .to_string()
        };
        let notice = |csrf: &str, kind: &str, days: i64| {
            vec![
                ("_csrf", csrf.to_string()),
                ("kind", kind.to_string()),
                ("effective", at(days)),
                ("title_ja", "定期保守のお知らせ".to_string()),
                ("title_en", "Planned maintenance".to_string()),
                ("body_ja", "02:00 から 04:00 まで停止します。".to_string()),
                ("body_en", "Down from 02:00 to 04:00.".to_string()),
                ("tenant", "opc-a".to_string()),
            ]
        };
        let r = post(
            "/operator/notices".into(),
            op.clone(),
            notice("wrong", "planned_maintenance", 15),
        )
        .await
        .unwrap();
        assert!(location(&r).contains("err=csrf"));
        assert!(s.services.all_notices().await.unwrap().is_empty());
        // Too short a lead time: refused, the form kept, the earliest acceptable time named.
        let r = post(
            "/operator/notices".into(),
            op.clone(),
            notice(&csrf, "planned_maintenance", 2),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = r.text().await.unwrap();
        let earliest = kura_domain::notice::earliest_effective(
            kura_domain::notice::NoticeKind::PlannedMaintenance,
            s.clock.now(),
        )
        .format_in_zone("Asia/Tokyo");
        assert!(
            body.contains("事前告知の期間が足りません") && body.contains(&earliest),
            "{body}"
        );
        assert!(
            body.contains("value=\"定期保守のお知らせ\""),
            "the form is kept"
        );
        assert!(s.services.all_notices().await.unwrap().is_empty());
        // Accepted: mailed to opc-a's contract admin only, shown in opc-a's console.
        let r = post(
            "/operator/notices".into(),
            op.clone(),
            notice(&csrf, "planned_maintenance", 15),
        )
        .await
        .unwrap();
        assert_eq!(location(&r), "/operator/notices?ok=op_published");
        let notices = s.services.all_notices().await.unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].tenants, vec![a.tenant_id.clone()]);
        let mails = s.services.mail_outbox(50).await.unwrap();
        let tx = s.services.store.system_read().await.unwrap();
        drop(tx);
        assert!(mails
            .iter()
            .any(|m| m.to == a.admin_email && m.subject.contains("定期保守のお知らせ")));
        assert!(!mails
            .iter()
            .any(|m| m.to == bt.admin_email && m.subject.contains("定期保守")));
        let (_, shown) = s.get("/api/v1/notices", &a.admin_token).await;
        assert_eq!(
            shown["items"][0]["title_ja"], "定期保守のお知らせ",
            "{shown}"
        );
        // Withdrawn (the maintenance is cancelled): gone from the console, the tenant told,
        // and only once.
        let withdraw = format!("/operator/notices/{}/withdraw", notices[0].id);
        let r = post(
            withdraw.clone(),
            op.clone(),
            vec![("_csrf", "wrong".into())],
        )
        .await
        .unwrap();
        assert!(location(&r).contains("err=csrf"));
        let r = post(withdraw.clone(), op.clone(), vec![("_csrf", csrf.clone())])
            .await
            .unwrap();
        assert_eq!(location(&r), "/operator/notices?ok=op_withdrawn");
        let (_, shown) = s.get("/api/v1/notices", &a.admin_token).await;
        assert_eq!(shown["items"].as_array().unwrap().len(), 0, "{shown}");
        let mails = s.services.mail_outbox(50).await.unwrap();
        let tx = s.services.store.system_read().await.unwrap();
        drop(tx);
        assert!(mails
            .iter()
            .any(|m| m.to == a.admin_email && m.subject.contains("取り消し: 定期保守")));
        let r = post(withdraw, op.clone(), vec![("_csrf", csrf.clone())])
            .await
            .unwrap();
        assert!(location(&r).contains("err=invalid"), "{}", location(&r));
        let listed = get("/operator/notices".into(), op.clone())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(listed.contains("取り消し済み"));
        // An incident for opc-b: a bad severity keeps the form; then opened, updated, notified.
        let incident = |csrf: &str, severity: &str| {
            vec![
                ("_csrf", csrf.to_string()),
                ("title_ja", "ファイルのダウンロードが遅延".to_string()),
                ("title_en", "Slow downloads".to_string()),
                ("severity", severity.to_string()),
                ("scope", "download API".to_string()),
                ("target", "72h".to_string()),
                ("tenant", "opc-b".to_string()),
            ]
        };
        let r = post(
            "/operator/incidents".into(),
            op.clone(),
            incident(&csrf, "huge"),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("value=\"ファイルのダウンロードが遅延\""));
        let r = post(
            "/operator/incidents".into(),
            op.clone(),
            incident(&csrf, "high"),
        )
        .await
        .unwrap();
        let page = location(&r);
        assert!(
            page.starts_with("/operator/incidents/") && page.ends_with("?ok=op_opened"),
            "{page}"
        );
        let page = page.split('?').next().unwrap().to_string();
        let r = post(
            format!("{page}/update"),
            op.clone(),
            vec![
                ("_csrf", csrf.clone()),
                ("status", "identified".into()),
                ("text_ja", "原因を特定しました。".into()),
                ("text_en", "Cause identified.".into()),
            ],
        )
        .await
        .unwrap();
        assert!(location(&r).ends_with("?ok=op_updated"));
        let (_, before) = s.get("/api/v1/incidents", &bt.admin_token).await;
        assert_eq!(
            before["items"].as_array().unwrap().len(),
            0,
            "not before notifying"
        );
        let r = post(
            format!("{page}/notify"),
            op.clone(),
            vec![("_csrf", csrf.clone())],
        )
        .await
        .unwrap();
        assert!(location(&r).ends_with("?ok=op_notified"));
        let (_, hit) = s.get("/api/v1/incidents", &bt.admin_token).await;
        let (_, spared) = s.get("/api/v1/incidents", &a.admin_token).await;
        assert_eq!(hit["items"].as_array().unwrap().len(), 1, "{hit}");
        assert_eq!(spared["items"].as_array().unwrap().len(), 0, "{spared}");
        let mails = s.services.mail_outbox(50).await.unwrap();
        let tx = s.services.store.system_read().await.unwrap();
        drop(tx);
        assert!(mails
            .iter()
            .any(|m| m.to == bt.admin_email && m.body.contains("原因を特定しました")));
        let detail = get(page.clone(), op.clone())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            detail.contains("原因を特定しました") && detail.contains("0 分後"),
            "{detail}"
        );
        // Every step is in the system chain under the console name.
        let mut tx = s.services.store.system_read().await.unwrap();
        let events = kura_store::audit::list(
            &mut tx,
            &kura_domain::TenantId::from_string(kura_store::SYSTEM_TENANT),
            None,
            100,
        )
        .await
        .unwrap();
        drop(tx);
        for action in [
            "operator.login",
            "notice.publish",
            "notice.withdraw",
            "incident.open",
            "incident.update",
            "incident.notify",
        ] {
            assert!(
                events.iter().any(|e| e.record.action == action
                    && e.record.actor_id.as_deref() == Some("console:sato")),
                "{action}"
            );
        }
        assert!(events
            .iter()
            .any(|e| e.record.action == "operator.login" && e.record.result == "failure"));
        // Idle for over 30 minutes: signed out.
        s.clock.advance_secs(31 * 60);
        let r = get("/operator".into(), op.clone()).await.unwrap();
        assert_eq!(location(&r), "/operator/login?expired=1");
        // Log-out ends a session; "log out everyone" (CLI) ends the rest.
        let (s_ref, ctx_ref, get_ref, post_ref) = (&s, &ctx, &get, &post);
        let sign_in = |name: &'static str| async move {
            let (get, post) = (get_ref, post_ref);
            let (link, _) = s_ref
                .services
                .operator_login_link(name, ctx_ref)
                .await
                .unwrap();
            let r = get(format!("/operator/login/{link}"), None).await.unwrap();
            let pre = cookie_of(&r, "kura_csrf").unwrap();
            let token = csrf_in(&r.text().await.unwrap());
            let r = post(
                format!("/operator/login/{link}"),
                Some(pre.clone()),
                vec![("_csrf", token)],
            )
            .await
            .unwrap();
            Some(cookie_of(&r, "kura_op").unwrap())
        };
        let one = sign_in("sato").await;
        let two = sign_in("suzuki").await;
        let page = get("/operator".into(), one.clone())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = post(
            "/operator/logout".into(),
            one.clone(),
            vec![("_csrf", csrf_in(&page))],
        )
        .await
        .unwrap();
        assert_eq!(location(&r), "/operator/login?out=1");
        assert!(
            location(&get("/operator".into(), one).await.unwrap()).starts_with("/operator/login")
        );
        assert_eq!(
            get("/operator".into(), two.clone()).await.unwrap().status(),
            StatusCode::OK
        );
        assert!(s.services.operator_end_sessions(&ctx).await.unwrap() >= 1);
        assert!(
            location(&get("/operator".into(), two).await.unwrap()).starts_with("/operator/login")
        );
        assert_eq!(run_cli(&s.cfg, &["operator", "sessions"]).await, 0);
        s.stop().await;
    }
}

/// Incidents: the notification deadline (one Japanese business day, or hours), contacts of
/// the affected tenants mailed, shown to them while open, overdue ones counted in metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_measure_notification_against_the_target() {
    use kura_services::incidents::NewIncident;
    for b in backends() {
        let s = TestServer::start(b).await;
        let hit = s.create_tenant("inc-a").await;
        let spared = s.create_tenant("inc-b").await;
        for (t, email) in [
            (&hit, "ops@inc-a.example.jp"),
            (&spared, "ops@inc-b.example.jp"),
        ] {
            let (st, e) = s
                .post(
                    "/api/v1/tenant/contacts",
                    &t.admin_token,
                    json!({ "name": "窓口", "email": email, "purpose": "security" }),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{e}");
        }
        let ctx = kura_services::RequestCtx::default();
        // Detected on Friday 2026-11-20 18:00 JST: one business day ends Tuesday 24th
        // 18:00 (Monday the 23rd is a holiday).
        let detected =
            kura_domain::Timestamp::parse_in_zone("2026-11-20T18:00", "Asia/Tokyo").unwrap();
        let i = s
            .services
            .operator_open_incident(
                NewIncident {
                    title_ja: "ファイルのアップロード障害".into(),
                    title_en: "Upload failures".into(),
                    severity: "high".into(),
                    scope: "uploads".into(),
                    tenants: vec!["inc-a".into()],
                    detected_at: Some(detected),
                    target: None,
                },
                kura_services::Operator::Cli,
                &ctx,
            )
            .await
            .unwrap();
        assert_eq!(
            i.deadline_at.to_rfc3339_in_zone("Asia/Tokyo"),
            "2026-11-24T18:00:00.000+09:00"
        );
        let h72 = s
            .services
            .operator_open_incident(
                NewIncident {
                    title_ja: "x".into(),
                    title_en: "x".into(),
                    severity: "low".into(),
                    scope: String::new(),
                    tenants: vec![],
                    detected_at: Some(detected),
                    target: Some("72h".into()),
                },
                kura_services::Operator::Cli,
                &ctx,
            )
            .await
            .unwrap();
        assert_eq!(h72.deadline_at.0 - detected.0, 72 * 3_600_000);
        // Before the deadlines nothing is overdue; three days later both are.
        let before = s.services.overdue_incidents().await.unwrap();
        s.clock
            .set(kura_domain::Timestamp::parse_in_zone("2026-11-25T12:00", "Asia/Tokyo").unwrap());
        assert_eq!(
            s.services.overdue_incidents().await.unwrap(),
            2,
            "(before: {before})"
        );
        // (Fresh sessions: days have passed.)
        let mut tokens = Vec::new();
        for t in [&hit, &spared] {
            let (_, l) = s
                .login(&t.slug, &t.admin_email, kura_testkit::PASSWORD)
                .await;
            tokens.push(l["token"].as_str().unwrap().to_string());
        }
        let (hit_tok, spared_tok) = (tokens[0].clone(), tokens[1].clone());
        let (_, none) = s.get("/api/v1/incidents", &hit_tok).await;
        assert_eq!(
            none["items"].as_array().unwrap().len(),
            0,
            "not shown before notifying"
        );
        s.services
            .operator_update_incident(
                &i.id,
                "identified",
                "原因を特定しました。",
                "Cause identified.",
                kura_services::Operator::Cli,
                &ctx,
            )
            .await
            .unwrap();
        let notified = s
            .services
            .operator_notify_incident(&i.id, kura_services::Operator::Cli, &ctx)
            .await
            .unwrap();
        assert!(
            notified.overdue(s.clock.now()),
            "notified after the deadline: late"
        );
        let mails = s.services.mail_outbox(50).await.unwrap();
        let mail = mails
            .iter()
            .find(|m| m.to == "ops@inc-a.example.jp" && m.body.contains("原因を特定"))
            .expect("the incident mail");
        // In the reader's language throughout: the severity too.
        assert!(mail.body.contains("重要度: 高"), "{}", mail.body);
        assert!(!mail.body.contains("high"), "{}", mail.body);
        assert!(!mails.iter().any(|m| m.to == "ops@inc-b.example.jp"));
        let (_, a) = s.get("/api/v1/incidents", &hit_tok).await;
        let (_, bn) = s.get("/api/v1/incidents", &spared_tok).await;
        assert_eq!(a["items"].as_array().unwrap().len(), 1, "{a}");
        assert_eq!(bn["items"].as_array().unwrap().len(), 0, "{bn}");
        s.services
            .operator_update_incident(
                &i.id,
                "resolved",
                "復旧しました。",
                "Resolved.",
                kura_services::Operator::Cli,
                &ctx,
            )
            .await
            .unwrap();
        let (_, a) = s.get("/api/v1/incidents", &hit_tok).await;
        assert_eq!(
            a["items"].as_array().unwrap().len(),
            0,
            "resolved ones are not shown"
        );
        // The unnotified 72 h incident stays overdue (the resolved one no longer counts).
        assert_eq!(s.services.overdue_incidents().await.unwrap(), 1);
        assert_eq!(run_cli(&s.cfg, &["incident", "list"]).await, 0);
        // Without a scope, its mail says who is affected (not an empty line).
        s.services
            .operator_notify_incident(&h72.id, kura_services::Operator::Cli, &ctx)
            .await
            .unwrap();
        let mails = s.services.mail_outbox(100).await.unwrap();
        let all = mails
            .iter()
            .find(|m| m.to == "ops@inc-b.example.jp")
            .expect("every tenant is told of an incident for all");
        assert!(
            all.body.contains("影響範囲: すべてのお客様"),
            "{}",
            all.body
        );
        assert!(all.body.contains("重要度: 低"), "{}", all.body);
        s.stop().await;
    }
}

/// The status page: availability from the probes against the SLO, state from the newest
/// probe and open incidents, planned downtime against the yearly budget; public.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_reports_measured_availability() {
    for b in backends() {
        let s = TestServer::start(b).await;
        s.create_tenant("stat-co").await;
        // Three good probes a minute apart, then one failure recorded as a probe would.
        for _ in 0..3 {
            assert!(s.services.probe_status().await.unwrap());
            s.clock.advance_secs(60);
        }
        let mut tx = s.services.store.system_tx().await.unwrap();
        kura_store::status::record(&mut tx, s.clock.now(), false, "database=0 storage=1")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let (st, j) = s.call("GET", "/status.json", None, None).await;
        assert_eq!(st, StatusCode::OK, "{j}");
        assert_eq!(j["state"], "down");
        assert_eq!(j["availability"][0]["days"], 30);
        assert_eq!(j["availability"][0]["samples"], 4);
        assert_eq!(j["availability"][0]["percent"], 75.0);
        assert_eq!(j["availability"][0]["meets_slo"], false);
        assert_eq!(j["planned_downtime_hours_this_year"].to_string(), "0.0");
        s.clock.advance_secs(60);
        s.services.probe_status().await.unwrap();
        // A two-hour maintenance for everyone counts against the budget.
        let start = s.clock.now().plus_secs(20 * 86_400);
        s.services
            .operator_publish_notice(
                kura_services::notices::NewNotice {
                    kind: "planned_maintenance".into(),
                    title_ja: "定期メンテナンス".into(),
                    title_en: "Scheduled maintenance".into(),
                    body_ja: String::new(),
                    body_en: String::new(),
                    effective_at: start,
                    show_until: Some(start.plus_secs(2 * 3600)),
                    tenants: vec![],
                },
                kura_services::Operator::Cli,
                &Default::default(),
            )
            .await
            .unwrap();
        let (_, j) = s.call("GET", "/status.json", None, None).await;
        assert_eq!(j["state"], "operational");
        assert_eq!(j["planned_downtime_budget_hours"], 60.0);
        assert_eq!(j["maintenance"].as_array().unwrap().len(), 1, "{j}");
        let page = s
            .client
            .get(format!("{}/status", s.base))
            .header("accept-language", "ja")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("正常に稼働しています") && html.contains("定期メンテナンス"),
            "{html}"
        );
        assert!(html.contains("80.000 %"), "4 of 5 probes up: {html}");
        s.stop().await;
    }
}

/// Sign-up: closed unless enabled; a code by mail that expires and allows five attempts;
/// a weak password refused before anything exists; the tenant provisioned, its contract
/// admin logged in, a welcome mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_provisions_a_tenant_after_a_mailed_code() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let start = |email: &'static str| {
            let s = &s;
            async move {
                s.call(
                    "POST",
                    "/api/v1/signup",
                    None,
                    Some(json!({ "email": email, "locale": "ja" })),
                )
                .await
                .0
            }
        };
        assert_eq!(
            start("new@signup.example.jp").await,
            StatusCode::NOT_FOUND,
            "closed by default"
        );
        s.stop().await;

        let mut cfg = test_config(b);
        cfg.signup_enabled = true;
        let s = TestServer::start_with(cfg, b).await;
        let code_for = |email: &'static str| {
            let s = &s;
            async move {
                let mails = s.services.mail_outbox(20).await.unwrap();
                let body = mails.iter().find(|m| m.to == email).unwrap().body.clone();
                body.split(|c: char| !c.is_ascii_digit())
                    .find(|w| w.len() == 6)
                    .unwrap()
                    .to_string()
            }
        };
        let post = |path: &'static str, body: serde_json::Value| {
            let s = &s;
            async move { s.call("POST", path, None, Some(body)).await }
        };
        assert_eq!(
            post(
                "/api/v1/signup",
                json!({ "email": "sato@signup.example.jp", "locale": "ja" })
            )
            .await
            .0,
            StatusCode::ACCEPTED
        );
        let code = code_for("sato@signup.example.jp").await;
        // Five wrong codes, and even the right one no longer works; each answer says what
        // happened.
        for _ in 0..5 {
            let (st, e) = post(
                "/api/v1/signup/verify",
                json!({ "email": "sato@signup.example.jp", "code": "000000x" }),
            )
            .await;
            assert_eq!(st, StatusCode::UNAUTHORIZED);
            assert_eq!(e["error"]["code"], "code_wrong", "{e}");
        }
        let (st, e) = post(
            "/api/v1/signup/verify",
            json!({ "email": "sato@signup.example.jp", "code": code }),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "attempts used up");
        assert_eq!(e["error"]["code"], "code_exhausted", "{e}");
        // A new code gives no new tries within the hour (the count is per address).
        post(
            "/api/v1/signup",
            json!({ "email": "sato@signup.example.jp" }),
        )
        .await;
        let code = code_for("sato@signup.example.jp").await;
        let (_, e) = post(
            "/api/v1/signup/verify",
            json!({ "email": "sato@signup.example.jp", "code": code }),
        )
        .await;
        assert_eq!(e["error"]["code"], "code_exhausted", "{e}");
        // An hour on: a new code; it expires after 15 minutes.
        s.clock.advance_secs(61 * 60);
        post(
            "/api/v1/signup",
            json!({ "email": "sato@signup.example.jp" }),
        )
        .await;
        s.clock.advance_secs(16 * 60);
        let code = code_for("sato@signup.example.jp").await;
        let (st, e) = post(
            "/api/v1/signup/verify",
            json!({ "email": "sato@signup.example.jp", "code": code }),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "expired");
        assert_eq!(e["error"]["code"], "code_expired", "{e}");
        // The right code in time.
        post(
            "/api/v1/signup",
            json!({ "email": "sato@signup.example.jp" }),
        )
        .await;
        let code = code_for("sato@signup.example.jp").await;
        let (st, v) = post(
            "/api/v1/signup/verify",
            json!({ "email": "sato@signup.example.jp", "code": code }),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let token = v["signup_token"].as_str().unwrap().to_string();
        let details = |password: &str| json!({ "signup_token": token, "tenant": "sato-kobo", "tenant_name": "佐藤工房", "display_name": "佐藤", "password": password });
        let (st, e) = post("/api/v1/signup/complete", details("password")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        // A tenant ID already taken is refused and loses nothing: the token still works.
        s.create_tenant("taken-kobo").await;
        let mut taken = details(kura_testkit::PASSWORD);
        taken["tenant"] = json!("taken-kobo");
        let (st, e) = post("/api/v1/signup/complete", taken).await;
        assert_eq!(st, StatusCode::CONFLICT, "{e}");
        let (st, l) = post("/api/v1/signup/complete", details(kura_testkit::PASSWORD)).await;
        assert_eq!(st, StatusCode::OK, "{l}");
        let (_, me) = s.get("/api/v1/me", l["token"].as_str().unwrap()).await;
        assert_eq!(me["tenant"]["slug"], "sato-kobo", "{me}");
        assert!(me.to_string().contains("contract_admin"), "{me}");
        let (st, _) = post("/api/v1/signup/complete", details(kura_testkit::PASSWORD)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "single use");
        let mails = s.services.mail_outbox(20).await.unwrap();
        assert!(mails
            .iter()
            .any(|m| m.subject.contains("ようこそ") && m.body.contains("sato-kobo")));
        // The welcome mail only: no invitation link for a password already set.
        assert!(
            !mails
                .iter()
                .any(|m| m.to == "sato@signup.example.jp" && m.body.contains("/invite/")),
            "no invitation mail"
        );
        // Recorded as a sign-up, not as an operator action.
        let (_, audit) = s
            .get(
                "/api/v1/audit?action=tenant.create",
                l["token"].as_str().unwrap(),
            )
            .await;
        assert_eq!(audit["items"][0]["actor_kind"], "anonymous", "{audit}");
        s.stop().await;
    }
}

/// The termination export loses nothing: same-named files in several projects (uploaded
/// within the same minute), two projects of one name in one folder, a name over 100 bytes,
/// a name that would climb out of the archive, and every version — each extracts with GNU
/// tar to its own path with its own bytes, and files.json names exactly those paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_export_keeps_every_file_and_version() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let t = s.create_tenant("many-co").await;
        let tok = &t.admin_token;
        let (_, f) = s
            .post("/api/v1/folders", tok, json!({ "name": "営業部" }))
            .await;
        let (_, sub) = s
            .post(
                "/api/v1/folders",
                tok,
                json!({ "name": "2026年度", "parent_id": f["id"] }),
            )
            .await;
        let mut projects = Vec::new();
        for (name, folder) in [("見積", &f), ("見積", &f), ("契約", &sub)] {
            let (st, p) = s
                .post(
                    "/api/v1/projects",
                    tok,
                    json!({ "name": name, "folder_id": folder["id"] }),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{p}");
            projects.push(p["id"].as_str().unwrap().to_string());
        }
        let long = format!("{}.txt", "長い名前のファイル".repeat(6)); // > 100 bytes
        let mut expected: Vec<(String, Vec<u8>)> = Vec::new(); // (name, content) per version
        for (i, p) in projects.iter().enumerate() {
            for v in 1..=2 {
                let body = format!("quote {i} version {v}").into_bytes();
                let (st, _) = s.upload(tok, p, "quote.txt", body.clone()).await;
                assert_eq!(st, StatusCode::CREATED);
                expected.push(("quote.txt".into(), body));
            }
        }
        let (st, _) = s.upload(tok, &projects[2], &long, b"long".to_vec()).await;
        assert_eq!(st, StatusCode::CREATED);
        expected.push((long.clone(), b"long".to_vec()));

        let (_, link) = s
            .services
            .operator_terminate_tenant("many-co", &Default::default())
            .await
            .unwrap();
        let link = link.replace("http://localhost", "http://127.0.0.1");
        let tar = s
            .client
            .get(&link)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let dir = kura_testkit::temp_path("export-x");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("export.tar"), &tar).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg("export.tar")
            .current_dir(&dir)
            .output()
            .expect("tar");
        assert!(out.status.success(), "{b:?}: {out:?}");
        let index: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(dir.join("kura-export/files.json")).unwrap())
                .unwrap();
        assert_eq!(index.len(), expected.len(), "{b:?}: {index:#?}");
        let mut paths = std::collections::HashSet::new();
        let mut contents = Vec::new();
        for e in &index {
            let path = e["path"].as_str().unwrap();
            assert!(paths.insert(path.to_lowercase()), "{b:?}: {path} twice");
            assert!(!path.contains(".."), "{path}");
            let bytes = std::fs::read(dir.join(path))
                .unwrap_or_else(|err| panic!("{b:?}: {path} not extracted: {err}"));
            let sha = {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(&bytes))
            };
            assert_eq!(e["sha256"], sha, "{b:?}: {path}");
            contents.push((e["name"].as_str().unwrap().to_string(), bytes));
        }
        let mut want = expected.clone();
        want.sort();
        contents.sort();
        assert_eq!(contents, want, "{b:?}");
        // The structure is there: folders, project, name; old versions beside.
        assert!(
            paths.contains("kura-export/files/営業部/2026年度/契約/quote.txt"),
            "{paths:?}"
        );
        assert!(
            paths.contains("kura-export/versions/営業部/2026年度/契約/quote.txt/v1"),
            "{paths:?}"
        );
        assert!(
            paths.iter().any(|p| p.ends_with(&long.to_lowercase())),
            "{paths:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        s.stop().await;
    }
}

/// Counts a tenant's rows in a table, outside Kura.
async fn rows_of(s: &TestServer, table: &str, tenant: &str) -> i64 {
    kura_testkit::raw_count(
        &s.cfg,
        &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = '{tenant}'"),
    )
    .await
}

/// Backups across a tenant's whole termination timeline: every generation verifies —
/// before the deletion, in the shred window and after it (it used to fail for every
/// tenant between deletion and shredding); no data key is ever created for the terminated
/// tenant (the backup job used to create one after shredding); after shredding nothing of
/// it is left (rows written by jobs after the deletion, mail) and no generation restores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_across_the_termination_timeline() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let gone = s.create_tenant("tl-gone").await;
        let stay = s.create_tenant("tl-stay").await;
        // The leaving tenant has no files (so no data key) until its termination.
        s.post("/api/v1/folders", &gone.admin_token, json!({ "name": "x" }))
            .await;
        let p = s.project(&stay.admin_token, "p").await;
        s.upload(&stay.admin_token, &p, "keep.txt", b"keep".to_vec())
            .await;
        let run = |label: &'static str| {
            let s = &s;
            async move {
                s.clock.advance_secs(60);
                let g = s.services.run_backup(&|_| {}).await.unwrap();
                assert_eq!(g.status, "ok", "{label}: {g:?}");
                assert_eq!(g.verify_status.as_deref(), Some("ok"), "{label}: {g:?}");
                g
            }
        };
        run("before").await;
        // (The access log is written in batches: let this tenant's requests land first.)
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.services
            .operator_terminate_tenant("tl-gone", &Default::default())
            .await
            .unwrap();
        run("terminated").await;
        // Deleted (30 days), then the shred window: backups still verify, the gone tenant
        // is in none of them.
        s.clock.advance_secs(31 * 86_400);
        assert!(s.services.advance_lifecycles().await.unwrap() >= 1);
        // Jobs that ran for every tenant write nothing for it any more.
        s.services.rollup_usage().await.unwrap();
        s.services.purge_logs().await.unwrap();
        let g = run("shred window").await;
        let m = s.services.list_backups().await.unwrap();
        assert!(m.iter().any(|x| x.id == g.id));
        assert_eq!(
            run_cli(&s.cfg, &["backup", "verify", "--generation", &g.id]).await,
            0
        );
        s.clock.advance_secs(8 * 86_400);
        assert!(s.services.advance_lifecycles().await.unwrap() >= 1);
        s.services.rollup_usage().await.unwrap();
        let g = run("after shredding").await;
        // No key came back, nothing is left.
        for table in [
            "tenant_keys",
            "audit_events",
            "audit_heads",
            "usage_daily",
            "tenant_usage",
            "access_log",
            "mail_outbox",
            "users",
        ] {
            assert_eq!(
                rows_of(&s, table, &gone.tenant_id).await,
                0,
                "{b:?}: {table}"
            );
        }
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "backup",
                    "restore",
                    "--tenant",
                    "tl-gone",
                    "--generation",
                    &g.id
                ]
            )
            .await,
            2,
            "{b:?}: the newest generation does not hold the shredded tenant"
        );
        for older in s.services.list_backups().await.unwrap() {
            if older.status != "ok" {
                continue;
            }
            let r = s
                .services
                .restore_backup(Some(&older.id), Some("tl-gone"), true, &|_| {})
                .await;
            assert!(r.is_err(), "{b:?}: {} restored a shredded tenant", older.id);
        }
        // The tenant that stayed is whole.
        assert_eq!(
            run_cli(&s.cfg, &["audit", "verify", "--tenant", "tl-stay"]).await,
            0
        );
        s.stop().await;
    }
}

/// A tenant restore brings the data back and keeps the audit log whole: the entries written
/// since the backup stay, the chain gains `backup.restore` naming what was rolled back, and
/// it verifies; the blob of the rolled-back upload is removed; a token revoked since the
/// backup stays revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_restore_never_rewinds_the_audit_log() {
    for b in backends() {
        let s = TestServer::start(b).await;
        let t = s.create_tenant("rw-a").await;
        let tok = t.admin_token.clone();
        let p = s.project(&tok, "p").await;
        s.upload(&tok, &p, "before.txt", b"before".to_vec()).await;
        s.clock.advance_secs(60);
        let (_, kat) = s
            .post(
                "/api/v1/me/tokens",
                &tok,
                json!({ "name": "ci", "scopes": ["files:read"], "expires_in_days": 30 }),
            )
            .await;
        let kat_secret = kat["token"].as_str().unwrap().to_string();
        let kat_id = kat["id"].as_str().unwrap().to_string();
        s.services.run_backup(&|_| {}).await.unwrap();

        // Since the backup: an upload, and the token revoked.
        let (st, up) = s.upload(&tok, &p, "after.txt", b"after".to_vec()).await;
        assert_eq!(st, StatusCode::CREATED);
        let after_id = up["file"]["id"].as_str().unwrap().to_string();
        let (st, _) = s
            .call(
                "DELETE",
                &format!("/api/v1/me/tokens/{kat_id}"),
                Some(&tok),
                None,
            )
            .await;
        assert!(st.is_success(), "{st}");
        let blobs_before = files_under(&s.cfg.data_dir.join("blobs")).len();
        let (_, audit) = s.get("/api/v1/audit?limit=1000", &tok).await;
        let head_before = audit["items"][0]["seq"].as_i64().unwrap();

        assert_eq!(
            run_cli(&s.cfg, &["backup", "restore", "--tenant", "rw-a"]).await,
            0
        );
        let (_, l) = s
            .login("rw-a", &t.admin_email, kura_testkit::PASSWORD)
            .await;
        let tok = l["token"].as_str().unwrap().to_string();
        // Data is back to the backup …
        assert_eq!(
            s.get(&format!("/api/v1/files/{after_id}"), &tok).await.0,
            StatusCode::NOT_FOUND
        );
        // … the log is not: the upload's entry is still there, the chain goes on.
        let (_, audit) = s.get("/api/v1/audit?limit=1000", &tok).await;
        let items = audit["items"].as_array().unwrap();
        assert!(
            items
                .iter()
                .any(|e| e["action"] == "file.upload" && e["target_id"] == after_id.as_str()),
            "{b:?}: the upload's audit entry was lost"
        );
        let restore = items
            .iter()
            .find(|e| e["action"] == "backup.restore")
            .expect("the restore is recorded");
        assert!(restore["seq"].as_i64().unwrap() > head_before, "{restore}");
        assert_eq!(
            restore["details"]["rolled_back"]["files"]["ids"][0],
            after_id.as_str(),
            "{restore}"
        );
        let (_, v) = s.get("/api/v1/audit/verify", &tok).await;
        assert_eq!(v["ok"], true, "{b:?}: {v}");
        assert_eq!(
            run_cli(&s.cfg, &["audit", "verify", "--tenant", "rw-a"]).await,
            0
        );
        // The rolled-back upload's blob is gone; the revoked token stays revoked.
        assert_eq!(
            files_under(&s.cfg.data_dir.join("blobs")).len(),
            blobs_before - 1,
            "{b:?}"
        );
        assert_eq!(
            s.get("/api/v1/folders", &kat_secret).await.0,
            StatusCode::UNAUTHORIZED,
            "{b:?}: a revoked token came back"
        );
        s.stop().await;
    }
}

/// Restore checks what it copies against the signed manifest: an altered blob copy in a
/// backup refuses the restore naming the file (also with --force, which a generation whose
/// verification failed needs); a live blob damaged in place is replaced by a tenant restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_checks_blob_copies_and_repairs_damaged_blobs() {
    let b = kura_testkit::Backend::Sqlite;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("bc-a").await;
    let p = s.project(&t.admin_token, "p").await;
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 239) as u8).collect();
    let (_, up) = s
        .upload(&t.admin_token, &p, "report.pdf", body.clone())
        .await;
    let fid = up["file"]["id"].as_str().unwrap().to_string();
    let good = s.services.run_backup(&|_| {}).await.unwrap();
    assert_eq!(good.verify_status.as_deref(), Some("ok"));
    let download = |tok: String| {
        let s = &s;
        let fid = fid.clone();
        async move {
            let res = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
                .get(format!("{}/api/v1/files/{fid}/content", s.base))
                .bearer_auth(tok)
                .send()
                .await
                .unwrap();
            if !res.status().is_success() {
                return None;
            }
            res.bytes().await.ok().map(|b| b.to_vec())
        }
    };

    // A live blob damaged in place: downloads fail; a tenant restore replaces it.
    let live: Vec<_> = files_under(&s.cfg.data_dir.join("blobs"))
        .into_iter()
        .filter(|p| p.display().to_string().contains(&t.tenant_id))
        .collect();
    assert_eq!(live.len(), 1);
    let mut bytes = std::fs::read(&live[0]).unwrap();
    bytes[100_000] ^= 0x40;
    std::fs::write(&live[0], &bytes).unwrap();
    assert_ne!(
        download(t.admin_token.clone()).await.as_deref(),
        Some(&body[..])
    );
    assert_eq!(
        run_cli(&s.cfg, &["backup", "restore", "--tenant", "bc-a"]).await,
        0
    );
    let (_, l) = s
        .login("bc-a", &t.admin_email, kura_testkit::PASSWORD)
        .await;
    let tok = l["token"].as_str().unwrap().to_string();
    assert_eq!(
        download(tok.clone()).await.as_deref(),
        Some(&body[..]),
        "repaired"
    );

    // One flipped byte in the backup's blob copy: verification fails, and a restore of that
    // generation is refused — without --force because it failed verification, with --force
    // because the copy does not match the manifest — naming the file; nothing changes.
    s.clock.advance_secs(86_400);
    let g = s.services.run_backup(&|_| {}).await.unwrap();
    let copy = files_under(&s.cfg.data_dir.join("backups"))
        .into_iter()
        .find(|p| p.parent().is_some_and(|d| d.ends_with(&t.tenant_id)))
        .expect("blob copy");
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[50_000] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();
    let (ok, _) = s.services.verify_backup(&g.id).await.unwrap();
    assert!(!ok);
    // Make the restore need the copy: the live blob is gone.
    std::fs::remove_file(&live[0]).unwrap();
    let e = s
        .services
        .restore_backup(Some(&g.id), Some("bc-a"), false, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--force"), "{e}");
    assert_eq!(
        run_cli(
            &s.cfg,
            &[
                "backup",
                "restore",
                "--generation",
                &g.id,
                "--tenant",
                "bc-a"
            ]
        )
        .await,
        2
    );
    let e = s
        .services
        .restore_backup(Some(&g.id), Some("bc-a"), true, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("report.pdf"), "names the file: {e}");
    assert!(!live[0].exists(), "no altered copy was put in place");
    s.stop().await;
}

/// A clock that jumps backwards (by more than a job's interval and a margin) does not stall
/// the jobs until it catches up: they are rescheduled and run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_clock_going_back() {
    for b in backends() {
        let s = TestServer::start(b).await;
        s.create_tenant("clockco").await;
        s.services.ensure_jobs().await.unwrap();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        assert!(s.services.run_due_jobs("test", &stop).await.unwrap() >= 4);
        let before = s
            .services
            .job_runs(Some("status.probe"), 100)
            .await
            .unwrap()
            .len();
        // Three hours back.
        s.clock.advance_secs(-3 * 3600);
        s.clock.advance_secs(61);
        s.services.run_due_jobs("test", &stop).await.unwrap();
        let after = s
            .services
            .job_runs(Some("status.probe"), 100)
            .await
            .unwrap()
            .len();
        assert_eq!(after, before + 1, "{b:?}: the minute job ran again");
        let purge = s.services.job_runs(Some("logs.purge"), 100).await.unwrap();
        assert_eq!(
            purge.len(),
            2,
            "{b:?}: the hourly job did not wait three hours"
        );
        s.stop().await;
    }
}
