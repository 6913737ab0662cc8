//! Service notices, incidents and the status page.

use kura_domain::Clock;
use kura_testkit::{run_cli, StatusCode, TestServer};
use serde_json::json;

kura_testkit::per_backend!(notices_follow_lead_times_and_reach_their_tenants);
/// Notices: lead times enforced (Japanese business days for maintenance), mailed to the
/// targeted tenants' contacts only, listed for them until past.
async fn notices_follow_lead_times_and_reach_their_tenants(b: kura_testkit::Backend) {
    use kura_services::notices::NewNotice;
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

kura_testkit::per_backend!(incidents_measure_notification_against_the_target);
/// Incidents: the notification deadline (one Japanese business day, or hours), contacts of
/// the affected tenants mailed, shown to them while open, overdue ones counted in metrics.
async fn incidents_measure_notification_against_the_target(b: kura_testkit::Backend) {
    use kura_services::incidents::NewIncident;
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
    let detected = kura_domain::Timestamp::parse_in_zone("2026-11-20T18:00", "Asia/Tokyo").unwrap();
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

kura_testkit::per_backend!(status_page_reports_measured_availability);
/// The status page: availability from the probes against the SLO, state from the newest
/// probe and open incidents, planned downtime against the yearly budget; public.
async fn status_page_reports_measured_availability(b: kura_testkit::Backend) {
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
