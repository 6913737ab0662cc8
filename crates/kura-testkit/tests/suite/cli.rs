//! The operator CLI, in-process against the test server's database.

use kura_domain::TenantId;
use kura_testkit::{run_cli, StatusCode, TestServer, PASSWORD};
use serde_json::json;

kura_testkit::per_backend!(operator_commands);
async fn operator_commands(b: kura_testkit::Backend) {
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

kura_testkit::per_backend!(cli_refuses_to_create_deployments_and_terminations_are_confirmed);
/// The CLI never starts a deployment by accident: run against a directory (or schema)
/// without one, every command but serve/demo/migrate refuses and creates nothing. Termination
/// asks for the tenant ID (or --yes); a terminated tenant can be reactivated in its grace
/// period (audited, mailed), not after its data was deleted; a restore does not bring a
/// terminated tenant back.
async fn cli_refuses_to_create_deployments_and_terminations_are_confirmed(
    b: kura_testkit::Backend,
) {
    if b == kura_testkit::Backend::Sqlite {
        // SQLite: a directory where there is no deployment.
        let mut nowhere = kura_testkit::test_config(kura_testkit::Backend::Sqlite);
        nowhere.master_key = None;
        nowhere.signing_key = None;
        for args in [
            vec!["tenant", "show", "demo"],
            vec!["tenant", "list"],
            vec![
                "tenant",
                "create",
                "--slug",
                "x-co",
                "--name",
                "X",
                "--admin-email",
                "a@x.example.jp",
            ],
            vec!["audit", "verify"],
            vec!["audit", "public-key"],
            vec!["backup", "list"],
        ] {
            assert_ne!(run_cli(&nowhere, &args).await, 0, "{args:?}");
            assert!(
                !nowhere.data_dir.exists(),
                "{args:?} created {}",
                nowhere.data_dir.display()
            );
        }
    }
    // PostgreSQL: a schema without Kura's tables.
    if b == kura_testkit::Backend::Postgres {
        let empty = kura_testkit::test_config(kura_testkit::Backend::Postgres);
        assert_eq!(run_cli(&empty, &["tenant", "list"]).await, 2);
        let n = kura_testkit::raw_count(
            &empty,
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'tenants' AND table_schema = current_schema()",
        )
        .await;
        assert_eq!(n, 0, "no tables were created");
        let schemas = kura_testkit::raw_count(
            &empty,
            &format!(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{}'",
                empty.database_schema.clone().unwrap()
            ),
        )
        .await;
        assert_eq!(schemas, 0, "no schema was created");
    }
    let s = TestServer::start(b).await;
    let t = s.create_tenant("again-co").await;
    // Confirmation: a wrong answer (piped) changes nothing; the right one terminates.
    let bin = crate::kura_binary();
    let dir = kura_testkit::temp_path("confirm");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kura.toml");
    std::fs::write(&file, kura_testkit::toml_of(&s.cfg)).unwrap();
    let terminate = |answer: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(&bin)
            .args([
                "--config",
                file.to_str().unwrap(),
                "tenant",
                "terminate",
                "--slug",
                "again-co",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        child.wait().unwrap().code()
    };
    assert_eq!(terminate("again"), Some(1), "{b:?}");
    let (st, _) = s.get("/api/v1/me", &t.admin_token).await;
    assert_eq!(st, StatusCode::OK, "{b:?}: not terminated");
    assert_eq!(terminate("again-co"), Some(0), "{b:?}");
    let (st, _) = s.login("again-co", &t.admin_email, PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b:?}: terminated");
    // A restore does not bring it back.
    assert_eq!(
        run_cli(&s.cfg, &["backup", "restore", "--tenant", "again-co"]).await,
        2
    );
    // Reactivated in the grace period: log-in works again, audited, mailed.
    assert_eq!(
        run_cli(&s.cfg, &["tenant", "reactivate", "--slug", "again-co"]).await,
        0
    );
    let (st, l) = s.login("again-co", &t.admin_email, PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{b:?}: {l}");
    let tok = l["token"].as_str().unwrap();
    let (_, audit) = s.get("/api/v1/audit?action=tenant.", tok).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"tenant.reactivate"), "{actions:?}");
    let mails = s.services.mail_outbox(50).await.unwrap();
    assert!(mails
        .iter()
        .any(|m| m.to == t.admin_email && m.subject.contains("再開")));
    // Reactivating an active tenant is refused; after the deletion it is too late.
    assert_eq!(
        run_cli(&s.cfg, &["tenant", "reactivate", "--slug", "again-co"]).await,
        2
    );
    assert_eq!(
        run_cli(
            &s.cfg,
            &["tenant", "terminate", "--slug", "again-co", "--yes"]
        )
        .await,
        0
    );
    s.clock.advance_secs(31 * 86_400);
    s.services.advance_lifecycles().await.unwrap();
    let e = s
        .services
        .operator_reactivate_tenant("again-co", &Default::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("grace period"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
}

/// The demo tenant `kura demo` sets up: every demo user logs in with the documented password
/// (the password rules, which refuse a password built from one's own details, accept it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tenant_users_log_in() {
    let s = TestServer::start(kura_testkit::Backend::Sqlite).await;
    assert!(kura::demo::ensure(&s.services).await.unwrap());
    for (email, _, _, _) in kura::demo::DEMO_USERS {
        let (st, v) = s
            .login(kura::demo::DEMO_TENANT, email, kura::demo::DEMO_PASSWORD)
            .await;
        assert_eq!(st, StatusCode::OK, "{email}: {v}");
    }
    // A second start finds it there.
    assert!(!kura::demo::ensure(&s.services).await.unwrap());
    s.stop().await;
}

/// `kura bench` sets itself up and runs (tiny figures; the numbers are not checked — a
/// benchmark is not a test — but its set-up must keep working as the rules change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs() {
    let cfg = kura_testkit::test_config(kura_testkit::Backend::Sqlite);
    assert_eq!(
        run_cli(
            &cfg,
            &[
                "bench",
                "--requests",
                "50",
                "--concurrency",
                "2",
                "--audit-events",
                "50",
                "--file-mib",
                "1",
                "--file-rounds",
                "1"
            ]
        )
        .await,
        0
    );
    // A directory named with --data-dir is refused, not used (the bench removes its own
    // directory at the end): what is in it stays.
    let dir = std::env::temp_dir().join(format!("kura-bench-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), b"keep").unwrap();
    let d = dir.display().to_string();
    assert_eq!(
        run_cli(&cfg, &["--data-dir", &d, "bench", "--requests", "10"]).await,
        2
    );
    assert_eq!(std::fs::read(dir.join("keep.txt")).unwrap(), b"keep");
    std::fs::remove_dir_all(&dir).unwrap();
}
