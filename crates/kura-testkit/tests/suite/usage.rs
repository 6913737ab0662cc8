//! Operations figures: Prometheus metrics and the daily usage roll-ups.

use kura_domain::Clock;
use kura_testkit::{test_config, StatusCode, TestServer};
use serde_json::json;
use std::time::Duration;

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

kura_testkit::per_backend!(usage_rollups_survive_log_purges);
/// Daily usage roll-ups: logins, active users, uploads, downloads, stock; a day's figures
/// stay the same after the logs they came from are purged; months add up.
async fn usage_rollups_survive_log_purges(b: kura_testkit::Backend) {
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
    let (st, _) = s.download(tok, &a).await;
    assert_eq!(st, StatusCode::OK);
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
