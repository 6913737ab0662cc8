//! The operator CLI, in-process against the test server's database.

use kura_domain::TenantId;
use kura_testkit::{backends, run_cli, StatusCode, TestServer, PASSWORD};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands() {
    for b in backends() {
        let s = TestServer::start(b).await;
        assert_eq!(run_cli(&s.cfg, &["migrate"]).await, 0);
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "tenant",
                    "create",
                    "--slug",
                    "kaisha",
                    "--name",
                    "株式会社カイシャ",
                    "--admin-email",
                    "boss@kaisha.example.jp"
                ]
            )
            .await,
            0
        );
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "tenant",
                    "create",
                    "--slug",
                    "kaisha",
                    "--name",
                    "dup",
                    "--admin-email",
                    "x@y.jp"
                ]
            )
            .await,
            2,
            "duplicate slug refused"
        );
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "tenant",
                    "create",
                    "--slug",
                    "x",
                    "--name",
                    "bad",
                    "--admin-email",
                    "x@y.jp"
                ]
            )
            .await,
            2,
            "bad slug refused"
        );
        // The invitation went to the outbox, in Japanese (the tenant's language).
        let mails = s.services.mail_outbox(10).await.unwrap();
        let tx = s.services.store.system_read().await.unwrap();
        drop(tx);
        let mail = mails
            .iter()
            .find(|m| m.to == "boss@kaisha.example.jp")
            .unwrap();
        assert!(mail.subject.contains("招待"), "{}", mail.subject);
        let token = s.invitation_token("boss@kaisha.example.jp").await;
        let (st, _) = s
            .call(
                "POST",
                "/api/v1/invitations/accept",
                None,
                Some(json!({ "token": token, "password": PASSWORD })),
            )
            .await;
        assert_eq!(st, StatusCode::OK);

        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "user",
                    "create",
                    "--tenant",
                    "kaisha",
                    "--email",
                    "staff@kaisha.example.jp",
                    "--role",
                    "member",
                    "--locale",
                    "en"
                ]
            )
            .await,
            0
        );
        let token = s.invitation_token("staff@kaisha.example.jp").await;
        let (_, body) = s
            .call(
                "POST",
                "/api/v1/invitations/accept",
                None,
                Some(json!({ "token": token, "password": PASSWORD })),
            )
            .await;
        let staff = body["token"].as_str().unwrap().to_string();
        assert_eq!(s.get("/api/v1/me", &staff).await.0, StatusCode::OK);
        // Freezing from the CLI ends the session at once.
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "user",
                    "freeze",
                    "--tenant",
                    "kaisha",
                    "--email",
                    "staff@kaisha.example.jp"
                ]
            )
            .await,
            0
        );
        assert_eq!(
            s.get("/api/v1/me", &staff).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "user",
                    "unfreeze",
                    "--tenant",
                    "kaisha",
                    "--email",
                    "staff@kaisha.example.jp"
                ]
            )
            .await,
            0
        );
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "user",
                    "delete",
                    "--tenant",
                    "kaisha",
                    "--email",
                    "staff@kaisha.example.jp"
                ]
            )
            .await,
            0
        );
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "user",
                    "delete",
                    "--tenant",
                    "kaisha",
                    "--email",
                    "staff@kaisha.example.jp"
                ]
            )
            .await,
            2
        );
        // The last contract admin cannot be frozen, even by the operator.
        assert_eq!(
            run_cli(
                &s.cfg,
                &[
                    "user",
                    "freeze",
                    "--tenant",
                    "kaisha",
                    "--email",
                    "boss@kaisha.example.jp"
                ]
            )
            .await,
            2
        );

        assert_eq!(run_cli(&s.cfg, &["tenant", "list"]).await, 0);
        assert_eq!(run_cli(&s.cfg, &["tenant", "show", "kaisha"]).await, 0);
        assert_eq!(run_cli(&s.cfg, &["tenant", "show", "nope"]).await, 2);
        assert_eq!(run_cli(&s.cfg, &["mail", "outbox"]).await, 0);
        assert_eq!(run_cli(&s.cfg, &["audit", "verify"]).await, 0);

        // Every operator action is audited (IAM-10): in the tenant's chain when it concerns a
        // tenant, in the system chain otherwise.
        let t = s.services.operator_find_tenant("kaisha").await.unwrap();
        let mut tx = s.services.store.system_read().await.unwrap();
        let ev = kura_store::audit::list(&mut tx, &t.id, None, 100)
            .await
            .unwrap();
        let ops: Vec<&str> = ev
            .iter()
            .filter(|e| e.record.actor_kind == "operator")
            .map(|e| e.record.action.as_str())
            .collect();
        for a in [
            "tenant.create",
            "user.invite",
            "user.freeze",
            "user.unfreeze",
            "user.delete",
            "operator.tenant.show",
        ] {
            assert!(ops.contains(&a), "{a} by operator not audited: {ops:?}");
        }
        let sys = kura_store::audit::list(&mut tx, &TenantId::from_string("_system"), None, 100)
            .await
            .unwrap();
        let sys: Vec<&str> = sys.iter().map(|e| e.record.action.as_str()).collect();
        assert!(
            sys.contains(&"operator.tenant.list") && sys.contains(&"operator.audit.verify"),
            "{sys:?}"
        );
        drop(tx);
        s.stop().await;
    }
}
