//! LOG-5: `kura audit verify` exits 0 on an intact chain and non-zero, naming the first bad
//! entry, when a row was altered, removed or reordered directly in the database.

use kura_crypto::ChainError;
use kura_testkit::{backends, raw_sql, run_cli, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected() {
    for b in backends() {
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
            .operator_verify_audit(None, &Default::default())
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
}
