//! LOG-5: `kura audit verify` exits 0 on an intact chain and non-zero, naming the first bad
//! entry, when a row was altered, removed or reordered directly in the database.

use kura_crypto::ChainError;
use kura_domain::Clock;
use kura_testkit::{raw_sql, run_cli, StatusCode, TestServer};
use serde_json::json;

kura_testkit::per_backend!(tampering_is_detected);
async fn tampering_is_detected(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let cases = ["intact", "altered", "removed", "reordered", "truncated"];
    let mut fixtures = Vec::new();
    for slug in cases {
        let t = s.create_tenant(slug).await;
        for i in 0..5 {
            s.post(
                "/api/v1/folders",
                &t.admin_token,
                json!({ "name": format!("f{i}") }),
            )
            .await;
        }
        fixtures.push(t);
    }
    assert_eq!(
        run_cli(&s.cfg, &["audit", "verify"]).await,
        0,
        "{b:?}: fresh chains verify"
    );

    let id = |i: usize| fixtures[i].tenant_id.clone();
    raw_sql(&s.cfg, &format!("UPDATE audit_events SET details = '{{\"name\":\"evil\"}}' WHERE tenant_id = '{}' AND seq = 4", id(1))).await;
    raw_sql(
        &s.cfg,
        &format!(
            "DELETE FROM audit_events WHERE tenant_id = '{}' AND seq = 3",
            id(2)
        ),
    )
    .await;
    raw_sql(&s.cfg, &format!(
        "UPDATE audit_events SET seq = -1 WHERE tenant_id = '{t}' AND seq = 2; UPDATE audit_events SET seq = 2 WHERE tenant_id = '{t}' AND seq = 3; UPDATE audit_events SET seq = 3 WHERE tenant_id = '{t}' AND seq = -1",
        t = id(3)
    )).await;
    raw_sql(&s.cfg, &format!("DELETE FROM audit_events WHERE tenant_id = '{t}' AND seq = (SELECT MAX(seq) FROM audit_events WHERE tenant_id = '{t}')", t = id(4))).await;

    assert_eq!(
        run_cli(&s.cfg, &["audit", "verify", "--tenant", "intact"]).await,
        0
    );
    for slug in &cases[1..] {
        assert_eq!(
            run_cli(&s.cfg, &["audit", "verify", "--tenant", slug]).await,
            1,
            "{b:?}: {slug} not detected"
        );
    }
    assert_eq!(run_cli(&s.cfg, &["audit", "verify"]).await, 1);

    let results = s
        .services
        .operator_verify_audit(None, None, &Default::default())
        .await
        .unwrap();
    let get = |slug: &str| results.iter().find(|(l, _)| l == slug).unwrap().1.clone();
    assert!(get("intact").is_ok());
    assert_eq!(get("altered"), Err(ChainError::Content { seq: 4 }));
    assert_eq!(
        get("removed"),
        Err(ChainError::Sequence {
            seq: 4,
            expected: 3
        })
    );
    assert_eq!(get("reordered"), Err(ChainError::Link { seq: 2 }));
    assert!(matches!(get("truncated"), Err(ChainError::Head { .. })));
    // The tenant admin sees the failure too.
    let (_, v) = s
        .get("/api/v1/audit/verify", &fixtures[1].admin_token)
        .await;
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("seq 4"));
    s.stop().await;
}

/// Everything stored of `tenant`'s chain, oldest first.
async fn chain_of(s: &TestServer, tenant: &str) -> Vec<kura_store::audit::StoredEvent> {
    let tid = kura_domain::TenantId::from_string(tenant);
    let mut tx = s.services.store.system_read().await.unwrap();
    kura_store::audit::query(
        &mut tx,
        &tid,
        &Default::default(),
        kura_store::audit::Cursor::After(0),
        5000,
    )
    .await
    .unwrap()
}

fn sql_text(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// A forger with write access to the database: rewrites entry `seq`'s details and
/// recomputes every later hash and the head, so that hashes and links all check out.
async fn forge_rewrite(s: &TestServer, tenant: &str, seq: i64) {
    let mut prev: Option<String> = None;
    let mut sql = String::new();
    for e in chain_of(s, tenant).await {
        if e.record.seq < seq {
            continue;
        }
        let mut r = e.record.clone();
        if r.seq == seq {
            r.details = json!({ "name": "forged" });
        }
        if let Some(p) = &prev {
            r.prev_hash = p.clone();
        }
        let h = r.compute_hash();
        sql.push_str(&format!(
            "UPDATE audit_events SET details = {}, prev_hash = {}, hash = {} WHERE tenant_id = {} AND seq = {};\n",
            sql_text(&r.details.to_string()),
            sql_text(&r.prev_hash),
            sql_text(&h),
            sql_text(tenant),
            r.seq
        ));
        prev = Some(h);
    }
    sql.push_str(&format!(
        "UPDATE audit_heads SET hash = {} WHERE tenant_id = {};",
        sql_text(&prev.unwrap()),
        sql_text(tenant)
    ));
    raw_sql(&s.cfg, &sql).await;
}

/// A forger cuts the chain back to `seq` (deleting every later entry) and moves the head.
async fn forge_cut(s: &TestServer, tenant: &str, seq: i64) {
    let at = chain_of(s, tenant)
        .await
        .into_iter()
        .find(|e| e.record.seq == seq)
        .unwrap();
    raw_sql(
        &s.cfg,
        &format!(
            "DELETE FROM audit_events WHERE tenant_id = {t} AND seq > {seq}; UPDATE audit_heads SET seq = {seq}, hash = {h} WHERE tenant_id = {t};",
            t = sql_text(tenant),
            h = sql_text(&at.hash)
        ),
    )
    .await;
}

async fn folders(s: &TestServer, token: &str, prefix: &str, n: usize) {
    for i in 0..n {
        s.post(
            "/api/v1/folders",
            token,
            json!({ "name": format!("{prefix}{i}") }),
        )
        .await;
    }
}

/// The checkpoint mailed to the tenant's contract admin (the newest such mail).
async fn mailed_checkpoint(s: &TestServer, email: &str) -> serde_json::Value {
    let mails = s.services.mail_outbox(1000).await.unwrap();
    let mail = mails
        .iter()
        .rfind(|m| m.to == email && m.subject.contains("チェックポイント"))
        .unwrap_or_else(|| panic!("no checkpoint mail to {email}"));
    let start = mail.body.rfind("\n{").unwrap() + 1;
    serde_json::from_str(&mail.body[start..]).unwrap()
}

kura_testkit::per_backend!(forgery_contradicts_signed_checkpoints);
/// LOG-5 against a forger who can write the database: recomputed hashes and a moved head
/// still contradict the signed checkpoints, in every verifier (API, console's service, CLI,
/// export); the checkpoint job refuses to sign a chain that does not verify; and a
/// checkpoint mailed out of Kura catches a cut that also deleted the stored checkpoints.
async fn forgery_contradicts_signed_checkpoints(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let cases = ["cut", "rewrite", "wipe", "intact2"];
    let mut fx = Vec::new();
    for slug in cases {
        let t = s.create_tenant(slug).await;
        folders(&s, &t.admin_token, "a", 4).await;
        fx.push(t);
    }
    // First checkpoint (C1) for every chain, more entries, a second one (C2), more.
    assert!(s.services.checkpoint_all().await.unwrap() >= 4);
    let c1: Vec<i64> = {
        let mut v = Vec::new();
        for t in &fx {
            v.push(chain_of(&s, &t.tenant_id).await.last().unwrap().record.seq);
        }
        v
    };
    for t in &fx {
        folders(&s, &t.admin_token, "b", 3).await;
    }
    assert!(s.services.checkpoint_all().await.unwrap() >= 4);
    // The daily publication mails each contract admin the newest checkpoint (C2).
    assert!(s.services.publish_checkpoints().await.unwrap() >= 4);
    assert_eq!(
        s.services.publish_checkpoints().await.unwrap(),
        0,
        "{b:?}: nothing new, nothing mailed"
    );
    for t in &fx {
        folders(&s, &t.admin_token, "c", 2).await;
    }
    // Untouched chains verify, also against the mailed checkpoint.
    for t in &fx {
        let (_, v) = s.get("/api/v1/audit/verify", &t.admin_token).await;
        assert_eq!(v["ok"], true, "{b:?} {}: {v}", t.slug);
        let cp = mailed_checkpoint(&s, &t.admin_email).await;
        let (st, v) = s
            .post(
                "/api/v1/audit/verify",
                &t.admin_token,
                json!({ "checkpoint": cp }),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["ok"], true, "{b:?} {}: {v}", t.slug);
    }

    // cut: every entry after C1 deleted and the head moved back to C1 — C2 contradicts.
    forge_cut(&s, &fx[0].tenant_id, c1[0]).await;
    // rewrite: an entry before C1 edited, every later hash and the head recomputed.
    forge_rewrite(&s, &fx[1].tenant_id, 3).await;
    // wipe: cut back to C1 and every checkpoint after it deleted too — the database
    // alone now looks intact; the mailed copy does not.
    forge_cut(&s, &fx[2].tenant_id, c1[2]).await;
    raw_sql(
        &s.cfg,
        &format!(
            "DELETE FROM audit_checkpoints WHERE tenant_id = '{}' AND seq > {}",
            fx[2].tenant_id, c1[2]
        ),
    )
    .await;

    let (_, v) = s.get("/api/v1/audit/verify", &fx[0].admin_token).await;
    assert_eq!(v["ok"], false, "{b:?} cut: {v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("signed checkpoint vouches"),
        "{v}"
    );
    let (_, v) = s.get("/api/v1/audit/verify", &fx[1].admin_token).await;
    assert_eq!(v["ok"], false, "{b:?} rewrite: {v}");
    assert!(v["error"].as_str().unwrap().contains("rewritten"), "{v}");
    for slug in ["cut", "rewrite"] {
        assert_eq!(
            run_cli(&s.cfg, &["audit", "verify", "--tenant", slug]).await,
            1,
            "{b:?}: CLI misses {slug}"
        );
    }
    // wipe: the stored evidence is consistent (the documented limit) …
    let (_, v) = s.get("/api/v1/audit/verify", &fx[2].admin_token).await;
    assert_eq!(v["ok"], true, "{b:?} wipe (database only): {v}");
    // … but not with the checkpoint the contract admin got by mail.
    let cp = mailed_checkpoint(&s, &fx[2].admin_email).await;
    let (_, v) = s
        .post(
            "/api/v1/audit/verify",
            &fx[2].admin_token,
            json!({ "checkpoint": cp }),
        )
        .await;
    assert_eq!(v["ok"], false, "{b:?} wipe vs mail: {v}");
    let file = kura_testkit::temp_path("cp.json");
    std::fs::write(&file, cp.to_string()).unwrap();
    assert_eq!(
        run_cli(
            &s.cfg,
            &[
                "audit",
                "verify",
                "--tenant",
                "wipe",
                "--checkpoint",
                file.to_str().unwrap()
            ]
        )
        .await,
        1,
        "{b:?}: CLI with the mailed checkpoint"
    );
    // A checkpoint whose signature was altered is refused, not trusted.
    let mut bad = cp.clone();
    bad["seq"] = json!(1);
    let (_, v) = s
        .post(
            "/api/v1/audit/verify",
            &fx[2].admin_token,
            json!({ "checkpoint": bad }),
        )
        .await;
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not signed"), "{v}");
    // Unknown keys are refused.
    let (st, _) = s
        .post(
            "/api/v1/audit/verify",
            &fx[2].admin_token,
            json!({ "checkpoint": cp, "trust_me": true }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

    // The checkpoint job signs nothing over a forged chain, reports it, and keeps signing
    // the intact one.
    folders(&s, &fx[1].admin_token, "d", 1).await;
    folders(&s, &fx[3].admin_token, "d", 1).await;
    let before = |t: &str| {
        let t = t.to_string();
        let s = &s;
        async move {
            let mut tx = s.services.store.system_read().await.unwrap();
            kura_store::audit::checkpoints_between(
                &mut tx,
                &kura_domain::TenantId::from_string(t),
                0,
                i64::MAX,
            )
            .await
            .unwrap()
            .len()
        }
    };
    let (rewrite_cps, intact_cps) = (
        before(&fx[1].tenant_id).await,
        before(&fx[3].tenant_id).await,
    );
    let err = s.services.checkpoint_all().await.unwrap_err().to_string();
    assert!(err.contains(&fx[1].tenant_id), "{b:?}: {err}");
    assert!(err.contains(&fx[0].tenant_id), "{b:?}: {err}");
    assert_eq!(
        before(&fx[1].tenant_id).await,
        rewrite_cps,
        "{b:?}: signed a forgery"
    );
    assert_eq!(before(&fx[3].tenant_id).await, intact_cps + 1, "{b:?}");
    let (_, sys) = s
        .services
        .operator_verify_audit(Some("_system"), None, &Default::default())
        .await
        .unwrap()
        .remove(0);
    assert!(sys.is_ok());

    // An export of a forged chain says so and signs no new checkpoint over it; the
    // offline verifier refuses it.
    let res = s
        .client
        .get(format!("{}/api/v1/audit/export?format=jsonl", s.base))
        .bearer_auth(&fx[1].admin_token)
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["chain_verified"], false, "{header}");
    assert!(!text.contains("\"type\":\"anchor\""));
    let (_, key) = s
        .call("GET", "/.well-known/kura-audit-key", None, None)
        .await;
    let pk = key["public_key"].as_str().unwrap();
    let r = kura_crypto::export::verify_export(text.as_bytes(), pk);
    assert!(r.is_err(), "{b:?}: {r:?}");
    s.stop().await;
}

kura_testkit::per_backend!(export_carries_the_newest_checkpoint);
/// An export that ends before the newest checkpoint (a `to` filter) still carries it.
async fn export_carries_the_newest_checkpoint(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("newest").await;
    folders(&s, &t.admin_token, "a", 3).await;
    s.clock.advance_secs(1);
    let early = s.clock.now();
    s.clock.advance_secs(60);
    folders(&s, &t.admin_token, "b", 3).await;
    assert!(s.services.checkpoint_all().await.unwrap() >= 1);
    let newest = chain_of(&s, &t.tenant_id).await.last().unwrap().record.seq;
    let to = early.to_rfc3339();
    let res = s
        .client
        .get(format!("{}/api/v1/audit/export", s.base))
        .query(&[("format", "jsonl"), ("to", to.as_str())])
        .bearer_auth(&t.admin_token)
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let line = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "newest_checkpoint")
        .unwrap_or_else(|| panic!("{b:?}: no newest checkpoint in {text}"));
    assert!(line["seq"].as_i64().unwrap() >= newest, "{line}");
    let (_, key) = s
        .call("GET", "/.well-known/kura-audit-key", None, None)
        .await;
    let summary =
        kura_crypto::export::verify_export(text.as_bytes(), key["public_key"].as_str().unwrap())
            .unwrap();
    assert!(summary.checkpoints >= 1);
    assert!(summary.last_seq.unwrap() < newest);
    s.stop().await;
}
