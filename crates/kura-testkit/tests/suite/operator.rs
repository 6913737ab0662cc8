//! The operator console.

use kura_domain::Clock;
use kura_testkit::{run_cli, StatusCode, TestServer};

kura_testkit::per_backend!(
    operator_console_signs_in_by_one_time_link_and_manages_notices_and_incidents
);
/// The operator console over HTTP: sign-in only by a one-time link from the CLI (a GET
/// does not use it up; used, expired and forged ones fail), CSRF on every form, the
/// lead-time rule refusing with the form kept and the earliest time named, a notice and an
/// incident reaching only their tenants' contract admins, actions audited under the
/// console name, idle timeout, log-out and "log out everyone".
async fn operator_console_signs_in_by_one_time_link_and_manages_notices_and_incidents(
    b: kura_testkit::Backend,
) {
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
    assert!(location(&get("/operator".into(), one).await.unwrap()).starts_with("/operator/login"));
    assert_eq!(
        get("/operator".into(), two.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    assert!(s.services.operator_end_sessions(&ctx).await.unwrap() >= 1);
    assert!(location(&get("/operator".into(), two).await.unwrap()).starts_with("/operator/login"));
    assert_eq!(run_cli(&s.cfg, &["operator", "sessions"]).await, 0);
    s.stop().await;
}
