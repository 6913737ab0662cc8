//! The audit and access logs: retention purges with signed checkpoints, filtered viewing,
//! exports verified offline, batched appends.

use kura_domain::Clock;
use kura_testkit::{raw_sql, run_cli, StatusCode, TestServer};
use serde_json::json;
use std::time::Duration;

kura_testkit::per_backend!(retention_purges_and_the_chain_still_verifies);
/// Retention: entries older than the tenant's retention go by the hourly job, after a
/// signed purge checkpoint; the rest of the chain still verifies; a forged starting point
/// does not.
async fn retention_purges_and_the_chain_still_verifies(b: kura_testkit::Backend) {
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

kura_testkit::per_backend!(audit_export_verifies_offline_and_tampering_fails);
/// Filtered viewing, streamed exports (CSV, signed JSON Lines) and offline verification:
/// the untouched file verifies; an edited, deleted, reordered or re-signed line fails,
/// naming the line.
async fn audit_export_verifies_offline_and_tampering_fails(b: kura_testkit::Backend) {
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
    let check =
        |text: &str| kura_crypto::export::verify_export(std::io::Cursor::new(text.as_bytes()), &pk);
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

kura_testkit::per_backend!(access_log_filters_and_exports);
/// The access log: filters (status class, path, user), keyset paging, CSV and JSON Lines.
async fn access_log_filters_and_exports(b: kura_testkit::Backend) {
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

kura_testkit::per_backend!(batched_audit_appends_chain_correctly);
/// Batched appends (one head update, multi-row INSERTs: 1,000 rows of `?` placeholders on
/// SQLite, one JSON array per statement on PostgreSQL) build the
/// same chain as single appends: it verifies, mixes with single appends, reads back intact.
async fn batched_audit_appends_chain_correctly(b: kura_testkit::Backend) {
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
    // A batch in a transaction of its own: in place on SQLite's writer, else the same.
    let in_place_before = store.in_place_writes();
    let many = kura_store::audit::append_many(store, &tid, (2500..4000).map(ev).collect())
        .await
        .unwrap();
    assert_eq!(many, last + 1500);
    assert_eq!(
        store.in_place_writes() > in_place_before,
        b == kura_testkit::Backend::Sqlite,
        "in place exactly on SQLite"
    );
    assert_eq!(
        kura_store::audit::append_many(store, &tid, Vec::new())
            .await
            .unwrap(),
        many,
        "nothing to append moves nothing"
    );
    let mut tx = store.tenant_tx(&tid).await.unwrap();
    let one = kura_store::audit::append(&mut tx, &tid, ev(9999))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(one, many + 1);
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
    assert_eq!(newest[0].record.actor_id.as_deref(), Some("u3999"));
    let (_, v) = s.get("/api/v1/audit/verify", &t.admin_token).await;
    assert_eq!(v["ok"], true, "{v}");
    s.stop().await;
}
