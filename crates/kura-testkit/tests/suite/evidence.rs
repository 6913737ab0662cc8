//! Evidence and operations: the job runner across nodes, retention purges with signed
//! checkpoints, log export and offline verification.

use kura_testkit::{backends, raw_sql, run_cli, test_config, StatusCode, TestServer};
use serde_json::json;
use kura_domain::Clock;
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
        assert_eq!(s.services.run_due_jobs("test", &stop).await.unwrap(), 2);
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
