//! Self-service sign-up.

use kura_testkit::{test_config, StatusCode, TestServer};
use serde_json::json;

kura_testkit::per_backend!(signup_provisions_a_tenant_after_a_mailed_code);
/// Sign-up: closed unless enabled; a code by mail that expires and allows five attempts;
/// a weak password refused before anything exists; the tenant provisioned, its contract
/// admin logged in, a welcome mail.
async fn signup_provisions_a_tenant_after_a_mailed_code(b: kura_testkit::Backend) {
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
