//! Account security: mail over a real SMTP conversation (Debian's `python3-aiosmtpd` as the
//! sink, Python's own `email` package as the independent parser).

use kura_testkit::{test_config, Backend, StatusCode, TestServer, PASSWORD};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};

/// An SMTP sink on a free loopback port that stores what it receives in a Maildir.
struct Sink {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Sink {
    /// Starts the sink on `port`; None if what answers there is not an SMTP server.
    fn try_start_on(port: u16, dir: &std::path::Path) -> Option<Sink> {
        use std::io::Read;
        let mut child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (apt-get install python3-aiosmtpd)");
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return None;
            }
            if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut banner = [0u8; 3];
                if c.read_exact(&mut banner).is_ok() && &banner == b"220" {
                    return Some(Sink {
                        child,
                        port,
                        dir: dir.to_path_buf(),
                    });
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        None
    }

    fn start_on(port: u16, dir: &std::path::Path) -> Sink {
        Self::try_start_on(port, dir).expect("the SMTP sink did not start")
    }

    /// On a port outside the kernel's ephemeral range (no test server bound to port 0 can
    /// take it meanwhile), trying the next one if it is busy.
    fn start() -> Sink {
        let dir = kura_testkit::temp_path("maildir");
        for attempt in 0..10u64 {
            let port =
                30_000 + ((u64::from(std::process::id()) * 31 + attempt * 211) % 2_500) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            if let Some(s) = Self::try_start_on(port, &dir) {
                return s;
            }
        }
        panic!("no port for the SMTP sink");
    }

    /// Every message received, decoded by Python's `email` package.
    fn messages(&self) -> Vec<Value> {
        let script = r#"
import email, json, mailbox, sys
from email import policy
out = []
for key, msg in mailbox.Maildir(sys.argv[1], create=False).items():
    m = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    out.append({"to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
                "body": m.get_body(("plain",)).get_content()})
print(json.dumps(out, ensure_ascii=False))
"#;
        if !self.dir.join("new").exists() {
            return Vec::new();
        }
        let out = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the SMTP sink did not receive {n} mails: {:?}",
            self.messages()
        );
    }

    fn stop(mut self) -> (u16, std::path::PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_out_over_smtp_and_failures_are_retried() {
    let sink = Sink::start();
    let mut cfg = test_config(Backend::Sqlite);
    cfg.smtp_url = Some(format!("smtp://127.0.0.1:{}", sink.port));
    cfg.mail_from = "Kura 蔵 <kura@kura.example.jp>".into();
    let s = TestServer::start_with(cfg, Backend::Sqlite).await;

    // The invitation of a new tenant's contract admin (Japanese by default).
    let t = s.create_tenant("mailer").await;
    let got = sink.wait_for(1).await;
    let m = &got[0];
    assert_eq!(m["to"], t.admin_email.as_str());
    assert!(
        m["from"].as_str().unwrap().contains("kura@kura.example.jp"),
        "{m}"
    );
    assert!(m["subject"].as_str().unwrap().contains("招待"), "{m}");
    assert!(m["body"].as_str().unwrap().contains("/invite/kin_"), "{m}");
    let mails = s.services.mail_outbox(10).await.unwrap();
    // The sink has the mail as soon as the DATA is accepted; the sender records the
    // delivery after the SMTP conversation ends, so give it a moment.
    let mut d = None;
    for _ in 0..50 {
        let mut tx = s.services.store.system_read().await.unwrap();
        let got = kura_store::outbox::delivery(&mut tx, &mails[0].id)
            .await
            .unwrap();
        drop(tx);
        let sent = got.sent_at.is_some();
        d = Some(got);
        if sent {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let d = d.unwrap();
    assert!(d.sent_at.is_some() && d.attempts == 1, "{d:?}");

    // The SMTP server is down: the mail stays queued with its error, and goes out once the
    // server is back and the retry time has come.
    let (port, dir) = sink.stop();
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.admin_token,
            serde_json::json!({ "email": "late@mailer.example.jp", "role": "member" }),
        )
        .await;
    assert_eq!(st, kura_testkit::StatusCode::CREATED);
    let mut waited = 0;
    let late = loop {
        let mails = s.services.mail_outbox(10).await.unwrap();
        let mut tx = s.services.store.system_read().await.unwrap();
        let late = mails
            .iter()
            .find(|m| m.to == "late@mailer.example.jp")
            .unwrap()
            .clone();
        let d = kura_store::outbox::delivery(&mut tx, &late.id)
            .await
            .unwrap();
        if d.last_error.is_some() {
            assert!(d.sent_at.is_none());
            break late;
        }
        assert!(waited < 100, "no failed attempt recorded: {d:?}");
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let sink = Sink::start_on(port, &dir);
    s.clock.advance_secs(61);
    let got = sink.wait_for(2).await;
    assert!(got.iter().any(|m| m["to"] == "late@mailer.example.jp"));
    let mut tx = s.services.store.system_read().await.unwrap();
    let d = kura_store::outbox::delivery(&mut tx, &late.id)
        .await
        .unwrap();
    assert!(d.sent_at.is_some() && d.attempts >= 2, "{d:?}");
    drop(tx);
    sink.stop();
    s.stop().await;
}

/// The newest mail to `to` in the outbox, and the `/reset/` token in it.
async fn reset_token(s: &TestServer, to: &str) -> Option<(String, String)> {
    let mails = s.services.mail_outbox(100).await.unwrap();
    let m = mails
        .iter()
        .find(|m| m.to == to && m.body.contains("/reset/"))?;
    let token = m
        .body
        .lines()
        .find(|l| l.contains("/reset/"))?
        .trim()
        .rsplit('/')
        .next()?
        .to_string();
    Some((m.subject.clone(), token))
}

kura_testkit::per_backend!(password_reset_by_one_time_link);
async fn password_reset_by_one_time_link(b: kura_testkit::Backend) {
    use kura_testkit::{StatusCode, PASSWORD};
    use serde_json::json;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("resetco").await;
    let (_, member) = s
        .add_user(
            &t.admin_token,
            "yamada@resetco.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    let ask = |email: &'static str| {
        let s = &s;
        async move {
            s.call(
                "POST",
                "/api/v1/auth/password-reset",
                None,
                Some(json!({ "tenant": "resetco", "email": email })),
            )
            .await
        }
    };
    // Unknown address, unknown tenant: the same answer, and no mail.
    let (st1, body1) = ask("nobody@resetco.example.jp").await;
    let (st2, body2) = ask("yamada@resetco.example.jp").await;
    assert_eq!(st1, StatusCode::ACCEPTED);
    assert_eq!((st1, &body1), (st2, &body2), "no enumeration");
    let (st3, _) = s
        .call(
            "POST",
            "/api/v1/auth/password-reset",
            None,
            Some(json!({ "tenant": "nosuch", "email": "yamada@resetco.example.jp" })),
        )
        .await;
    assert_eq!(st3, StatusCode::ACCEPTED);
    assert!(reset_token(&s, "nobody@resetco.example.jp").await.is_none());
    let (subject, token) = reset_token(&s, "yamada@resetco.example.jp").await.unwrap();
    assert!(
        subject.contains("パスワード再設定"),
        "Japanese by the tenant: {subject}"
    );
    assert!(token.starts_with("krs_"));

    // A weak password is refused and the link stays usable.
    let complete = |token: String, password: &'static str| {
        let s = &s;
        async move {
            s.call(
                "POST",
                "/api/v1/auth/password-reset/complete",
                None,
                Some(json!({ "token": token, "password": password })),
            )
            .await
            .0
        }
    };
    assert_eq!(
        complete(token.clone(), "password").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A newer request replaces the older link.
    ask("yamada@resetco.example.jp").await;
    let (_, newer) = reset_token(&s, "yamada@resetco.example.jp").await.unwrap();
    assert_ne!(newer, token);
    assert_eq!(
        complete(token.clone(), "Brand-New-Kettle-77").await,
        StatusCode::NOT_FOUND,
        "the older link no longer works"
    );
    assert_eq!(
        complete(newer.clone(), "Brand-New-Kettle-77").await,
        StatusCode::NO_CONTENT
    );
    // Single use; every session ended; the new password works, the old does not.
    assert_eq!(
        complete(newer.clone(), "Another-New-Kettle-78").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/api/v1/me", &member).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login("resetco", "yamada@resetco.example.jp", PASSWORD)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login(
            "resetco",
            "yamada@resetco.example.jp",
            "Brand-New-Kettle-77"
        )
        .await
        .0,
        StatusCode::OK
    );
    // An invitation token is not a reset token.
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.admin_token,
            json!({ "email": "new@resetco.example.jp", "role": "member" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let invitation = s.invitation_token("new@resetco.example.jp").await;
    assert_eq!(
        complete(invitation, "Invite-As-Reset-80").await,
        StatusCode::NOT_FOUND
    );
    let (_, audit) = s.get("/api/v1/audit?limit=100", &t.admin_token).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"auth.password_reset.request"));
    assert!(actions.contains(&"auth.password_reset"));
    // Links expire (30 minutes by default).
    ask("yamada@resetco.example.jp").await;
    let (_, late) = reset_token(&s, "yamada@resetco.example.jp").await.unwrap();
    s.clock.advance_secs(31 * 60);
    assert_eq!(
        complete(late, "Late-New-Kettle-79").await,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

kura_testkit::per_backend!(failed_logins_lock_for_a_while_and_a_reset_lifts_it);
async fn failed_logins_lock_for_a_while_and_a_reset_lifts_it(b: kura_testkit::Backend) {
    use kura_testkit::{StatusCode, PASSWORD};
    use serde_json::json;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("lockco").await;
    s.add_user(
        &t.admin_token,
        "suzuki@lockco.example.jp",
        "member",
        json!({ "type": "tenant" }),
    )
    .await;
    let login = |email: &'static str, password: &'static str| {
        let s = &s;
        async move {
            let res = s
                .client
                .post(format!("{}/api/v1/auth/login", s.base))
                .json(&json!({ "tenant": "lockco", "email": email, "password": password }))
                .send()
                .await
                .unwrap();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
            (res.status(), retry)
        }
    };
    // Five failures lock the account; then even the right password is refused, with
    // Retry-After. An address that does not exist behaves the same.
    for email in ["suzuki@lockco.example.jp", "ghost@lockco.example.jp"] {
        for _ in 0..5 {
            assert_eq!(
                login(email, "wrong-Password-1").await.0,
                StatusCode::UNAUTHORIZED
            );
        }
        let (st, retry) = login(email, PASSWORD).await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{email}");
        assert!(retry.is_some_and(|r| r > 800 && r <= 900), "{retry:?}");
    }
    // Others are not affected.
    assert_eq!(
        login("owner@lockco.example.jp", PASSWORD).await.0,
        StatusCode::OK
    );
    // The lock expires.
    s.clock.advance_secs(15 * 60 + 1);
    assert_eq!(
        login("suzuki@lockco.example.jp", PASSWORD).await.0,
        StatusCode::OK
    );
    // Locked again, a password reset lifts it at once.
    for _ in 0..5 {
        login("suzuki@lockco.example.jp", "wrong-Password-1").await;
    }
    assert_eq!(
        login("suzuki@lockco.example.jp", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.call(
        "POST",
        "/api/v1/auth/password-reset",
        None,
        Some(json!({ "tenant": "lockco", "email": "suzuki@lockco.example.jp" })),
    )
    .await;
    let (_, token) = reset_token(&s, "suzuki@lockco.example.jp").await.unwrap();
    let (st, _) = s
        .call(
            "POST",
            "/api/v1/auth/password-reset/complete",
            None,
            Some(json!({ "token": token, "password": "After-Lock-Kettle-55" })),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        login("suzuki@lockco.example.jp", "After-Lock-Kettle-55")
            .await
            .0,
        StatusCode::OK
    );
    let (_, owner) = s.login("lockco", "owner@lockco.example.jp", PASSWORD).await;
    let tok = owner["token"].as_str().unwrap();
    let (_, audit) = s.get("/api/v1/audit?limit=200", tok).await;
    let lockouts = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth.lockout")
        .count();
    assert!(lockouts >= 3, "lockouts audited: {lockouts}");
    s.stop().await;
}

/// Per address: many accounts from one address lock the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_from_one_address_lock_the_address() {
    let mut cfg = test_config(Backend::Sqlite);
    cfg.login_ip_max_failures = 6;
    let s = TestServer::start_with(cfg, Backend::Sqlite).await;
    s.create_tenant("ipco").await;
    for i in 0..6 {
        let (st, _) = s
            .login("ipco", &format!("user{i}@ipco.example.jp"), "nope-Nope-1")
            .await;
        assert_eq!(st, kura_testkit::StatusCode::UNAUTHORIZED);
    }
    let (st, _) = s
        .login("ipco", "owner@ipco.example.jp", kura_testkit::PASSWORD)
        .await;
    assert_eq!(
        st,
        kura_testkit::StatusCode::TOO_MANY_REQUESTS,
        "the address is locked"
    );
    s.stop().await;
}

kura_testkit::per_backend!(session_last_use_is_written_in_batches);
/// A session's last use is written in batches, not by the request that used it: after
/// a use that is due to be recorded, the request answers, the next one already counts the
/// use (the session stays alive), and the stored time catches up within a few seconds —
/// for every session used, in one write per tenant.
async fn session_last_use_is_written_in_batches(b: kura_testkit::Backend) {
    use kura_domain::clock::Clock;
    use kura_testkit::{StatusCode, PASSWORD};
    let s = TestServer::start(b).await;
    let t = s.create_tenant("touchco").await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (st, v) = s.login("touchco", &t.admin_email, PASSWORD).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    s.clock.advance_secs(120);
    let used_at = s.clock.now().0;
    for tok in &tokens {
        assert_eq!(s.get("/api/v1/me", tok).await.0, StatusCode::OK);
    }
    let mut caught_up = false;
    for _ in 0..100 {
        let (st, v) = s.get("/api/v1/sessions", &tokens[0]).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let stored: Vec<i64> = items
            .iter()
            .filter_map(|i| i["last_seen_at"].as_i64())
            .collect();
        // The three used (the tenant's first session was not).
        if stored.iter().filter(|&&at| at >= used_at).count() == 3 {
            caught_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(caught_up, "the sessions' last use was not written");
    // What is pending can be written at once (as stopping the server does).
    s.clock.advance_secs(120);
    let later = s.clock.now().0;
    assert_eq!(s.get("/api/v1/me", &tokens[1]).await.0, StatusCode::OK);
    assert!(s.services.flush_touches().await, "nothing left pending");
    let (_, v) = s.get("/api/v1/sessions", &tokens[0]).await;
    let items = v["items"].as_array().cloned().unwrap_or_default();
    assert!(
        items
            .iter()
            .any(|i| i["last_seen_at"].as_i64().unwrap_or(0) >= later),
        "{v}"
    );
    s.stop().await;
}

/// Password hashing reuses its 19 MiB workspaces while log-ins keep coming and drops them
/// once log-ins stop (memory back near idle after a flood).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hashing_memory_is_reused_then_released() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.create_tenant("hashco").await;
    for _ in 0..4 {
        let (st, _) = s
            .login("hashco", "owner@hashco.example.jp", kura_testkit::PASSWORD)
            .await;
        assert_eq!(st, kura_testkit::StatusCode::OK);
    }
    let held = s.services.hash_workspaces_held();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert!(
        (1..=cores).contains(&held),
        "sequential log-ins reuse workspaces: {held} held"
    );
    // Dropped two seconds after the last hash; wait up to ten.
    let mut released = false;
    for _ in 0..100 {
        if s.services.hash_workspaces_held() == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(released, "workspaces still held after log-ins stopped");
    // And a later log-in still works (a fresh workspace).
    let (st, _) = s
        .login("hashco", "owner@hashco.example.jp", kura_testkit::PASSWORD)
        .await;
    assert_eq!(st, kura_testkit::StatusCode::OK);
    s.stop().await;
}

kura_testkit::per_backend!(users_list_and_end_their_sessions_and_admins_end_a_users);
async fn users_list_and_end_their_sessions_and_admins_end_a_users(b: kura_testkit::Backend) {
    use kura_testkit::{StatusCode, PASSWORD};
    use serde_json::json;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("sessco").await;
    let (member_id, m1) = s
        .add_user(
            &t.admin_token,
            "kato@sessco.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    let (_, m2) = s.login("sessco", "kato@sessco.example.jp", PASSWORD).await;
    let m2 = m2["token"].as_str().unwrap().to_string();
    let (st, list) = s.get("/api/v1/sessions", &m1).await;
    assert_eq!(st, StatusCode::OK);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items.iter().filter(|i| i["current"] == true).count(), 1);
    assert!(items
        .iter()
        .all(|i| i["ip"] == "127.0.0.1" && i["kind"] == "api"));
    assert!(
        items.iter().all(|i| i.get("csrf_token").is_none()),
        "no secrets listed"
    );
    let other = items.iter().find(|i| i["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // End the other device's session; it stops at once.
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/sessions/{other}"),
            Some(&m1),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.get("/api/v1/me", &m2).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/api/v1/me", &m1).await.0, StatusCode::OK);
    // Someone else's session is not the caller's to end.
    let admin_session = kura_crypto::token::hash(&t.admin_token);
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/sessions/{admin_session}"),
            Some(&m1),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get("/api/v1/me", &t.admin_token).await.0, StatusCode::OK);
    // Only user managers end another user's sessions.
    let (admin_id, _) = {
        let (_, me) = s.get("/api/v1/me", &t.admin_token).await;
        (me["user"]["id"].as_str().unwrap().to_string(), ())
    };
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{admin_id}/sessions/end"),
            &m1,
            json!({})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (st, ended) = s
        .post(
            &format!("/api/v1/users/{member_id}/sessions/end"),
            &t.admin_token,
            json!({}),
        )
        .await;
    assert_eq!((st, ended["ended"].as_i64()), (StatusCode::OK, Some(1)));
    assert_eq!(s.get("/api/v1/me", &m1).await.0, StatusCode::UNAUTHORIZED);

    // Idle sessions are not listed (nor usable).
    let (_, fresh) = s.login("sessco", "kato@sessco.example.jp", PASSWORD).await;
    let fresh = fresh["token"].as_str().unwrap().to_string();
    s.clock.advance_secs(31 * 60);
    let (_, newest) = s.login("sessco", "kato@sessco.example.jp", PASSWORD).await;
    let newest = newest["token"].as_str().unwrap().to_string();
    let (_, list) = s.get("/api/v1/sessions", &newest).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        s.get("/api/v1/me", &fresh).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (_, audit) = s.get("/api/v1/audit?limit=100", &newest).await;
    let _ = audit;
    s.stop().await;
}

fn totp_now(s: &TestServer, secret_b32: &str) -> String {
    s.totp_code(secret_b32)
}

kura_testkit::per_backend!(totp_second_factor_with_recovery_codes);
async fn totp_second_factor_with_recovery_codes(b: kura_testkit::Backend) {
    use kura_testkit::{StatusCode, PASSWORD};
    use serde_json::json;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("totpco").await;
    let email = "ito@totpco.example.jp";
    let (_, m) = s
        .add_user(&t.admin_token, email, "member", json!({ "type": "tenant" }))
        .await;
    let (st, en) = s.post("/api/v1/me/mfa/totp", &m, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{en}");
    let secret = en["secret"].as_str().unwrap().to_string();
    assert!(en["qr_svg"].as_str().unwrap().starts_with("<svg"));
    assert!(en["otpauth_uri"].as_str().unwrap().contains(&secret));
    // Not active until confirmed: logging in still takes the password alone.
    let (_, l) = s.login("totpco", email, PASSWORD).await;
    assert!(l["token"].is_string(), "{l}");
    assert_eq!(
        s.post(
            "/api/v1/me/mfa/totp/confirm",
            &m,
            json!({ "code": "000000" })
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let code = totp_now(&s, &secret);
    let (st, rc) = s
        .post("/api/v1/me/mfa/totp/confirm", &m, json!({ "code": code }))
        .await;
    assert_eq!(st, StatusCode::OK, "{rc}");
    let recovery: Vec<String> = rc["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);

    // Now the password alone gives a challenge, not a session.
    let mfa_login = || async {
        let (st, l) = s.login("totpco", email, PASSWORD).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(l["mfa_required"], true, "{l}");
        assert!(l.get("token").is_none());
        l["challenge"].as_str().unwrap().to_string()
    };
    let second = |challenge: String, code: String| {
        let s = &s;
        async move {
            s.call(
                "POST",
                "/api/v1/auth/mfa",
                None,
                Some(json!({ "challenge": challenge, "code": code })),
            )
            .await
        }
    };
    // The code used to confirm cannot be used again (same step).
    let ch = mfa_login().await;
    assert_eq!(
        second(ch.clone(), code.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.clock.advance_secs(30);
    let fresh = totp_now(&s, &secret);
    let (st, ok) = second(ch.clone(), fresh.clone()).await;
    assert_eq!(st, StatusCode::OK, "{ok}");
    assert_eq!(
        s.get("/api/v1/me", ok["token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    // A challenge is single-use; an old code is not accepted two steps later.
    assert_eq!(second(ch, fresh.clone()).await.0, StatusCode::UNAUTHORIZED);
    s.clock.advance_secs(90);
    let ch = mfa_login().await;
    assert_eq!(second(ch, fresh).await.0, StatusCode::UNAUTHORIZED);

    // A recovery code works once.
    let ch = mfa_login().await;
    let (st, ok) = second(ch, recovery[0].to_uppercase()).await;
    assert_eq!(st, StatusCode::OK, "{ok}");
    let ch = mfa_login().await;
    assert_eq!(
        second(ch, recovery[0].clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let tok = ok["token"].as_str().unwrap().to_string();
    let (_, status) = s.get("/api/v1/me/mfa", &tok).await;
    assert_eq!(
        (
            status["totp"].as_bool(),
            status["recovery_codes_left"].as_i64()
        ),
        (Some(true), Some(9))
    );
    // Turning it off needs a code; then the password suffices again.
    assert_eq!(
        s.post(
            "/api/v1/me/mfa/totp/disable",
            &tok,
            json!({ "code": "nope" })
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.post(
            "/api/v1/me/mfa/totp/disable",
            &tok,
            json!({ "code": recovery[1] })
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, l) = s.login("totpco", email, PASSWORD).await;
    assert!(l["token"].is_string());
    let (_, audit) = s.get("/api/v1/audit?limit=200", &t.admin_token).await;
    let _ = audit;
    s.stop().await;
}

kura_testkit::per_backend!(required_mfa_means_enrol_before_anything_else);
async fn required_mfa_means_enrol_before_anything_else(b: kura_testkit::Backend) {
    use kura_testkit::StatusCode;
    use serde_json::json;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("mustco").await;
    let tok = &t.admin_token;
    let (_, tenant) = s.get("/api/v1/tenant", tok).await;
    let mut settings = tenant["settings"].clone();
    settings["mfa_required"] = json!(true);
    assert_eq!(
        s.call("PUT", "/api/v1/tenant/settings", Some(tok), Some(settings))
            .await
            .0,
        StatusCode::OK
    );
    // Without a second factor, only enrolment (and who-am-I, log-out) works.
    let (st, e) = s.get("/api/v1/folders", tok).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("mfa_enrolment_required"))
    );
    assert_eq!(s.get("/api/v1/me", tok).await.0, StatusCode::OK);
    let (_, en) = s.post("/api/v1/me/mfa/totp", tok, json!({})).await;
    let secret = en["secret"].as_str().unwrap().to_string();
    let code = totp_now(&s, &secret);
    let (st, _) = s
        .post("/api/v1/me/mfa/totp/confirm", tok, json!({ "code": code }))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.get("/api/v1/folders", tok).await.0, StatusCode::OK);
    // It cannot be turned off while required.
    s.clock.advance_secs(30);
    let code = totp_now(&s, &secret);
    assert_eq!(
        s.post("/api/v1/me/mfa/totp/disable", tok, json!({ "code": code }))
            .await
            .0,
        StatusCode::CONFLICT
    );
    s.stop().await;
}

kura_testkit::per_backend!(api_tokens_are_scoped_expire_and_stop_when_revoked_or_frozen);
async fn api_tokens_are_scoped_expire_and_stop_when_revoked_or_frozen(b: kura_testkit::Backend) {
    use kura_testkit::StatusCode;
    use serde_json::json;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("tokco").await;
    let admin = &t.admin_token;
    let (member_id, member) = s
        .add_user(
            admin,
            "abe@tokco.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    let (st, e) = s
        .post(
            "/api/v1/me/tokens",
            &member,
            json!({ "name": "ci", "scopes": ["files:delete"] }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, _) = s
        .post(
            "/api/v1/me/tokens",
            &member,
            json!({ "name": "ci", "scopes": ["workspace:read"], "expires_in_days": 0 }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, created) = s
        .post(
            "/api/v1/me/tokens",
            &member,
            json!({ "name": "nightly export", "scopes": ["workspace:read", "users:write"], "expires_in_days": 30 }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let tok = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(tok.starts_with("kat_"));
    let (_, list) = s.get("/api/v1/me/tokens", &member).await;
    assert_eq!(list["items"][0]["name"], "nightly export");
    assert!(!list.to_string().contains(&tok), "the secret is shown once");

    // Scopes: read the workspace, nothing else; never beyond the user's own rights.
    assert_eq!(s.get("/api/v1/folders", &tok).await.0, StatusCode::OK);
    assert_eq!(s.get("/api/v1/me", &tok).await.0, StatusCode::OK);
    let (st, e) = s
        .post("/api/v1/folders", &tok, json!({ "name": "x" }))
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert_eq!(s.get("/api/v1/audit", &tok).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        s.get("/api/v1/sessions", &tok).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(
            "/api/v1/me/tokens",
            &tok,
            json!({ "name": "more", "scopes": ["files:write"] })
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "a token cannot mint tokens"
    );
    let (st, e) = s
        .post(
            "/api/v1/users",
            &tok,
            json!({ "email": "x@tokco.example.jp", "role": "member" }),
        )
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "the member's own rights cap the token"
    );
    let (_, list) = s.get("/api/v1/me/tokens", &member).await;
    assert!(list["items"][0]["last_used_at"].is_number(), "{list}");

    // Revoked: stops at once; another token stops when its user is frozen.
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/me/tokens/{id}"),
            Some(&member),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/api/v1/folders", &tok).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, second) = s
        .post(
            "/api/v1/me/tokens",
            &member,
            json!({ "name": "second", "scopes": ["workspace:read"], "expires_in_days": 1 }),
        )
        .await;
    let second = second["token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/v1/folders", &second).await.0, StatusCode::OK);
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{member_id}/freeze"),
            admin,
            json!({})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/api/v1/folders", &second).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{member_id}/unfreeze"),
            admin,
            json!({})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.get("/api/v1/folders", &second).await.0, StatusCode::OK);
    // Expired.
    s.clock.advance_secs(86_400 + 1);
    assert_eq!(
        s.get("/api/v1/folders", &second).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

kura_testkit::per_backend!(ip_allowlist_by_role_behind_a_trusted_proxy);
async fn ip_allowlist_by_role_behind_a_trusted_proxy(b: kura_testkit::Backend) {
    use kura_testkit::{StatusCode, PASSWORD};
    use serde_json::json;
    // Kura sits behind a reverse proxy on loopback: X-Forwarded-For names the client.
    let mut cfg = test_config(b);
    cfg.trusted_proxies = vec!["127.0.0.0/8".into()];
    let s = TestServer::start_with(cfg, b).await;
    let t = s.create_tenant("ipco").await;
    let admin = &t.admin_token;
    let (_, member) = s
        .add_user(
            admin,
            "mori@ipco.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    let from = |ip: &'static str, token: String, path: &'static str| {
        let s = &s;
        async move {
            let res = s
                .client
                .get(format!("{}{path}", s.base))
                .bearer_auth(token)
                .header("x-forwarded-for", format!("198.51.100.7, {ip}"))
                .send()
                .await
                .unwrap();
            let st = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            (
                st,
                body["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    let put = |settings: serde_json::Value, confirm: bool| {
        let s = &s;
        async move {
            let q = if confirm { "?confirm_lockout=true" } else { "" };
            s.call(
                "PUT",
                &format!("/api/v1/tenant/settings{q}"),
                Some(admin),
                Some(settings),
            )
            .await
        }
    };
    let (_, tenant) = s.get("/api/v1/tenant", admin).await;
    let base = tenant["settings"].clone();

    // A list that would shut out the admin's own address needs confirmation.
    let mut only_office = base.clone();
    only_office["ip_allowlist"] = json!(["192.0.2.0/24"]);
    let (st, e) = put(only_office.clone(), false).await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    let mut bad = base.clone();
    bad["ip_allowlist"] = json!(["192.0.2.0/33"]);
    assert_eq!(put(bad, false).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    // Members only, from the office range.
    let mut members = only_office.clone();
    members["ip_allowlist_roles"] = json!(["member"]);
    assert_eq!(put(members, false).await.0, StatusCode::OK);
    assert_eq!(
        from("203.0.113.9", member.clone(), "/api/v1/folders").await,
        (StatusCode::FORBIDDEN, "ip_not_allowed".to_string())
    );
    assert_eq!(
        from("192.0.2.44", member.clone(), "/api/v1/folders")
            .await
            .0,
        StatusCode::OK,
        "the proxy's X-Forwarded-For counts"
    );
    assert_eq!(
        from("203.0.113.9", admin.clone(), "/api/v1/folders")
            .await
            .0,
        StatusCode::OK,
        "admins are not in the listed roles"
    );
    // API tokens too; and log-in from outside is refused.
    let (_, tk) = s
        .post(
            "/api/v1/me/tokens",
            &member,
            json!({ "name": "t", "scopes": ["workspace:read"] }),
        )
        .await;
    let tk = tk["token"].as_str();
    assert!(tk.is_none(), "creating a token from outside is refused too");
    let res = s
        .client
        .post(format!("{}/api/v1/auth/login", s.base))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({ "tenant": "ipco", "email": "mori@ipco.example.jp", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, audit) = s.get("/api/v1/audit?limit=100", admin).await;
    assert!(
        audit.to_string().contains("ip_not_allowed"),
        "denials audited"
    );
    // A list for everyone is checked before the password: from outside, a wrong
    // password, an unknown user and the right password get the same answer.
    assert_eq!(put(only_office, true).await.0, StatusCode::OK);
    let login_from = |ip: &'static str, email: &'static str, password: &'static str| {
        let s = &s;
        async move {
            s.client
                .post(format!("{}/api/v1/auth/login", s.base))
                .header("x-forwarded-for", ip)
                .json(&json!({ "tenant": "ipco", "email": email, "password": password }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for (email, password) in [
        ("mori@ipco.example.jp", "wrong-password"),
        ("nobody@ipco.example.jp", PASSWORD),
        ("mori@ipco.example.jp", PASSWORD),
    ] {
        assert_eq!(
            login_from("203.0.113.9", email, password).await,
            StatusCode::FORBIDDEN,
            "{email}"
        );
    }
    assert_eq!(
        login_from("192.0.2.44", "mori@ipco.example.jp", "wrong-password").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from("192.0.2.44", "mori@ipco.example.jp", PASSWORD).await,
        StatusCode::OK
    );
    s.stop().await;
}

kura_testkit::per_backend!(mfa_required_for_chosen_roles_only);
async fn mfa_required_for_chosen_roles_only(b: kura_testkit::Backend) {
    use kura_testkit::StatusCode;
    use serde_json::json;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("roleco").await;
    let admin = &t.admin_token;
    let (_, member) = s
        .add_user(
            admin,
            "ono@roleco.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    let (_, tenant) = s.get("/api/v1/tenant", admin).await;
    let mut st = tenant["settings"].clone();
    st["mfa_required_roles"] = json!(["nosuchrole"]);
    assert_eq!(
        s.call(
            "PUT",
            "/api/v1/tenant/settings",
            Some(admin),
            Some(st.clone())
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    st["mfa_required_roles"] = json!(["member"]);
    assert_eq!(
        s.call("PUT", "/api/v1/tenant/settings", Some(admin), Some(st))
            .await
            .0,
        StatusCode::OK
    );
    let (code, e) = s.get("/api/v1/folders", &member).await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("mfa_enrolment_required"))
    );
    assert_eq!(
        s.get("/api/v1/folders", admin).await.0,
        StatusCode::OK,
        "not for admins"
    );
    let (_, m) = s.get("/api/v1/me/mfa", &member).await;
    assert_eq!(m["required"], true);
    s.stop().await;
}

kura_testkit::per_backend!(passkeys_register_second_factor_and_passwordless);
/// Passkeys through the API with an independent software authenticator: registration
/// (origin checked, ceremonies single use and short-lived), second factor after a
/// password, passwordless log-in, replay and cloned-counter refusal, removal.
async fn passkeys_register_second_factor_and_passwordless(b: kura_testkit::Backend) {
    use kura_testkit::webauthn::{Misbehave, SoftAuthenticator};
    use kura_testkit::{StatusCode, PASSWORD};
    use serde_json::json;
    let ok = Misbehave::default();
    let s = TestServer::start(b).await;
    let t = s.create_tenant("passco").await;
    let email = "kato@passco.example.jp";
    let (mid, m) = s
        .add_user(&t.admin_token, email, "member", json!({ "type": "tenant" }))
        .await;
    let mut device = SoftAuthenticator::new(&s.services.config.public_url);

    let start = |tok: String| {
        let s = &s;
        async move {
            let (st, o) = s
                .post("/api/v1/me/mfa/passkeys/options", &tok, json!({}))
                .await;
            assert_eq!(st, StatusCode::OK, "{o}");
            o
        }
    };
    let o = start(m.clone()).await;
    let pk = &o["options"]["publicKey"];
    assert_eq!(
        pk["authenticatorSelection"]["residentKey"], "preferred",
        "{o}"
    );
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["user"]["name"], email);
    // Signed for another site: refused, and the ceremony is spent.
    let evil = Misbehave {
        origin: Some("https://kura.evil.example".into()),
        ..Misbehave::default()
    };
    let bad = device.register(&o["options"], &evil);
    let (st, e) = s
        .post(
            "/api/v1/me/mfa/passkeys",
            &m,
            json!({ "ceremony": o["ceremony"], "credential": bad }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let good = device.register(&o["options"], &ok);
    let (st, e) = s
        .post(
            "/api/v1/me/mfa/passkeys",
            &m,
            json!({ "ceremony": o["ceremony"], "credential": good }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "single use: {e}");
    // A ceremony expires after five minutes.
    let o = start(m.clone()).await;
    let late = device.register(&o["options"], &ok);
    s.clock.advance_secs(301);
    let (st, _) = s
        .post(
            "/api/v1/me/mfa/passkeys",
            &m,
            json!({ "ceremony": o["ceremony"], "credential": late }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    // Without user verification the registration is refused.
    let o = start(m.clone()).await;
    let no_uv = Misbehave {
        no_user_verification: true,
        ..Misbehave::default()
    };
    let weak = device.register(&o["options"], &no_uv);
    let (st, _) = s
        .post(
            "/api/v1/me/mfa/passkeys",
            &m,
            json!({ "ceremony": o["ceremony"], "credential": weak }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    // A good one: the first second factor comes with recovery codes.
    device.credentials.clear();
    let o = start(m.clone()).await;
    let cred = device.register(&o["options"], &ok);
    let (st, added) = s
        .post(
            "/api/v1/me/mfa/passkeys",
            &m,
            json!({ "ceremony": o["ceremony"], "name": "ノートPC", "credential": cred }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{added}");
    assert_eq!(added["passkey"]["name"], "ノートPC");
    assert_eq!(added["recovery_codes"].as_array().unwrap().len(), 10);
    let passkey_id = added["passkey"]["id"].as_str().unwrap().to_string();
    let (_, list) = s.get("/api/v1/me/mfa/passkeys", &m).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    // The same authenticator cannot register twice (excluded, and refused if it tries).
    let o = start(m.clone()).await;
    let excluded = o["options"]["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(excluded.len(), 1);
    let (_, st_m) = s.get("/api/v1/me/mfa", &m).await;
    assert_eq!(st_m["passkeys"], 1, "{st_m}");

    // Second factor: the password gives a challenge that names the passkey.
    let password_then_passkey = || {
        let s = &s;
        async move {
            let (_, l) = s.login("passco", email, PASSWORD).await;
            assert_eq!(l["mfa_required"], true, "{l}");
            assert!(l["methods"].as_array().unwrap().contains(&json!("passkey")));
            let ch = l["challenge"].as_str().unwrap().to_string();
            let (st, o) = s
                .call(
                    "POST",
                    "/api/v1/auth/mfa/passkey/options",
                    None,
                    Some(json!({ "challenge": ch })),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{o}");
            (ch, o)
        }
    };
    let (ch, o) = password_then_passkey().await;
    let allowed = o["options"]["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1);
    let a = device.assert(&o["options"], 0, &ok);
    let answer = json!({ "challenge": ch, "ceremony": o["ceremony"], "credential": a });
    let (st, l) = s
        .call("POST", "/api/v1/auth/mfa", None, Some(answer.clone()))
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    let (_, me) = s.get("/api/v1/me", l["token"].as_str().unwrap()).await;
    assert_eq!(me["user"]["email"], email, "{me}");
    // The same answer again: the ceremony and the challenge are spent.
    assert_eq!(
        s.call("POST", "/api/v1/auth/mfa", None, Some(answer))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Wrong origin, and a counter that went backwards (a cloned authenticator): refused.
    for how in [
        evil.clone(),
        Misbehave {
            counter: Some(1),
            ..Misbehave::default()
        },
    ] {
        let (ch, o) = password_then_passkey().await;
        let a = device.assert(&o["options"], 0, &how);
        let (st, e) = s
            .call(
                "POST",
                "/api/v1/auth/mfa",
                None,
                Some(json!({ "challenge": ch, "ceremony": o["ceremony"], "credential": a })),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{how:?}: {e}");
    }

    // Passwordless: the tenant only; the authenticator names the user.
    let passwordless = |tenant: &'static str| {
        let s = &s;
        async move {
            let (st, o) = s
                .call(
                    "POST",
                    "/api/v1/auth/passkey/options",
                    None,
                    Some(json!({ "tenant": tenant })),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{o}");
            assert!(
                o["options"]["publicKey"]
                    .get("allowCredentials")
                    .is_none_or(|a| a.as_array().is_some_and(|a| a.is_empty())),
                "{o}"
            );
            o
        }
    };
    let o = passwordless("passco").await;
    let a = device.assert(&o["options"], 0, &ok);
    let body = json!({ "ceremony": o["ceremony"], "credential": a });
    let (st, l) = s
        .call("POST", "/api/v1/auth/passkey", None, Some(body.clone()))
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    assert_eq!(l["user"]["email"], email);
    assert_eq!(
        s.call("POST", "/api/v1/auth/passkey", None, Some(body))
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "a ceremony is single use"
    );
    // An unknown tenant gets options too, and the answer fails like a wrong passkey.
    let o = passwordless("no-such-tenant").await;
    let a = device.assert(&o["options"], 0, &ok);
    assert_eq!(
        s.call(
            "POST",
            "/api/v1/auth/passkey",
            None,
            Some(json!({ "ceremony": o["ceremony"], "credential": a }))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // A passkey of this tenant is no key to another tenant.
    let other = s.create_tenant("otherco").await;
    let o = passwordless("otherco").await;
    let a = device.assert(&o["options"], 0, &ok);
    assert_eq!(
        s.call(
            "POST",
            "/api/v1/auth/passkey",
            None,
            Some(json!({ "ceremony": o["ceremony"], "credential": a }))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // A frozen user's passkey opens nothing.
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{mid}/freeze"),
            &t.admin_token,
            json!({})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let o = passwordless("passco").await;
    let a = device.assert(&o["options"], 0, &ok);
    assert_eq!(
        s.call(
            "POST",
            "/api/v1/auth/passkey",
            None,
            Some(json!({ "ceremony": o["ceremony"], "credential": a }))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    s.post(
        &format!("/api/v1/users/{mid}/unfreeze"),
        &t.admin_token,
        json!({}),
    )
    .await;
    let (_, l) = s.login("passco", email, PASSWORD).await;
    let ch = l["challenge"].as_str().unwrap();
    let codes = added["recovery_codes"].as_array().unwrap();
    let (st, l) = s
        .call(
            "POST",
            "/api/v1/auth/mfa",
            None,
            Some(json!({ "challenge": ch, "code": codes[0] })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    let m = l["token"].as_str().unwrap().to_string();

    // While the tenant requires a second factor, the last one cannot be removed; and a
    // passkey counts as one (no enrolment demanded).
    let (_, tenant) = s.get("/api/v1/tenant", &t.admin_token).await;
    let mut settings = tenant["settings"].clone();
    settings["mfa_required_roles"] = json!(["member"]);
    assert_eq!(
        s.call(
            "PUT",
            "/api/v1/tenant/settings",
            Some(&t.admin_token),
            Some(settings.clone())
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(s.get("/api/v1/folders", &m).await.0, StatusCode::OK);
    let (st, e) = s
        .call(
            "DELETE",
            &format!("/api/v1/me/mfa/passkeys/{passkey_id}"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    settings["mfa_required_roles"] = json!([]);
    s.call(
        "PUT",
        "/api/v1/tenant/settings",
        Some(&t.admin_token),
        Some(settings),
    )
    .await;
    // Removal: audited; the password alone works again.
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/api/v1/me/mfa/passkeys/{passkey_id}"),
            Some(&m),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, l) = s.login("passco", email, PASSWORD).await;
    assert!(l["token"].is_string(), "{l}");
    let (_, audit) = s.get("/api/v1/audit?limit=200", &t.admin_token).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["mfa.passkey.add", "mfa.passkey.remove"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let reasons = |audit: &serde_json::Value| -> Vec<String> {
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "auth.login" && e["result"] == "failure")
            .map(|e| {
                e["details"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let here = reasons(&audit);
    // Wrong origin and cloned counter as a second factor; the frozen user's passkey.
    assert!(
        here.iter().filter(|r| *r == "bad_second_factor").count() >= 2,
        "{here:?}"
    );
    assert!(here.iter().any(|r| r == "not_active"), "{here:?}");
    let (_, audit) = s.get("/api/v1/audit?limit=50", &other.admin_token).await;
    assert!(
        reasons(&audit).iter().any(|r| r == "bad_passkey"),
        "a refused passkey is audited in the tenant it was tried on"
    );
    s.stop().await;
}

kura_testkit::per_backend!(service_accounts_act_only_through_their_tokens);
/// Service accounts: created by an admin with a role, no log-in, API tokens issued by an
/// admin, within the account's roles and the token's scopes; freezing stops them.
async fn service_accounts_act_only_through_their_tokens(b: kura_testkit::Backend) {
    use kura_testkit::{StatusCode, PASSWORD};
    use serde_json::json;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("svcco").await;
    let admin = &t.admin_token;
    let (person, m) = s
        .add_user(
            admin,
            "ueda@svcco.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    let body =
        json!({ "name": "夜間バックアップ", "role": "member", "scope": { "type": "tenant" } });
    assert_eq!(
        s.post("/api/v1/service-accounts", &m, body.clone()).await.0,
        StatusCode::FORBIDDEN,
        "members do not create service accounts"
    );
    let (st, svc) = s.post("/api/v1/service-accounts", admin, body).await;
    assert_eq!(st, StatusCode::CREATED, "{svc}");
    assert_eq!(svc["kind"], "service");
    assert_eq!(svc["status"], "active");
    let email = svc["email"].as_str().unwrap().to_string();
    assert!(email.ends_with("@service.invalid"), "{email}");
    let id = svc["id"].as_str().unwrap().to_string();

    // It cannot log in or ask for a password reset.
    assert_eq!(
        s.login("svcco", &email, PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.call(
        "POST",
        "/api/v1/auth/password-reset",
        None,
        Some(json!({ "tenant": "svcco", "email": email })),
    )
    .await;
    let mails = s.services.mail_outbox(100).await.unwrap();
    let tx = s.services.store.system_read().await.unwrap();
    drop(tx);
    assert!(
        mails.iter().all(|m| m.to != email),
        "no mail to a service account"
    );

    // Tokens: only for service accounts, only by user managers.
    let tok = json!({ "name": "backup", "scopes": ["workspace:read"], "expires_in_days": 30 });
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{person}/tokens"),
            admin,
            tok.clone()
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.post(&format!("/api/v1/users/{id}/tokens"), &m, tok.clone())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (st, issued) = s
        .post(&format!("/api/v1/users/{id}/tokens"), admin, tok)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{issued}");
    let secret = issued["token"].as_str().unwrap().to_string();
    let token_id = issued["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("kat_"));
    let (st, me) = s.get("/api/v1/me", &secret).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["id"], id.as_str());
    assert_eq!(s.get("/api/v1/folders", &secret).await.0, StatusCode::OK);
    let (st, e) = s
        .post("/api/v1/folders", &secret, json!({ "name": "x" }))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "insufficient_scope");
    let (_, list) = s.get(&format!("/api/v1/users/{id}/tokens"), admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert!(list["items"][0].get("token").is_none());
    // Freezing the account stops its tokens at once; revoking stops one for good.
    assert_eq!(
        s.post(&format!("/api/v1/users/{id}/freeze"), admin, json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/api/v1/folders", &secret).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.post(&format!("/api/v1/users/{id}/unfreeze"), admin, json!({}))
        .await;
    assert_eq!(s.get("/api/v1/folders", &secret).await.0, StatusCode::OK);
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/api/v1/users/{id}/tokens/{token_id}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/v1/folders", &secret).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, audit) = s.get("/api/v1/audit?limit=100", admin).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.service_account.create",
        "token.create",
        "token.revoke",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let (_, issued) = s
        .post(
            &format!("/api/v1/users/{id}/tokens"),
            admin,
            json!({ "name": "second", "scopes": ["workspace:read"] }),
        )
        .await;
    let second = issued["token"].as_str().unwrap().to_string();
    // A tenant requiring MFA does not stop a service account's token.
    let (_, tenant) = s.get("/api/v1/tenant", admin).await;
    let mut settings = tenant["settings"].clone();
    settings["mfa_required"] = json!(true);
    let (st, e) = s
        .call(
            "PUT",
            "/api/v1/tenant/settings",
            Some(admin),
            Some(settings),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(s.get("/api/v1/folders", &second).await.0, StatusCode::OK);
    s.stop().await;
}

/// `kura demo`'s mail page: the outbox for clients on this machine only, and only when
/// `mail_outbox_page` is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_outbox_page_is_local_and_opt_in() {
    use kura_testkit::{test_config, Backend, StatusCode};
    use serde_json::json;
    let page = |s: &TestServer, forwarded: Option<&'static str>| {
        let mut req = s.client.get(format!("{}/outbox", s.base));
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let s = TestServer::start(Backend::Sqlite).await;
    s.create_tenant("mailco").await;
    assert_eq!(
        page(&s, None).await.0,
        StatusCode::NOT_FOUND,
        "off by default"
    );
    s.stop().await;

    let mut cfg = test_config(Backend::Sqlite);
    cfg.mail_outbox_page = true;
    cfg.trusted_proxies = vec!["127.0.0.1/32".into()];
    let s = TestServer::start_with(cfg, Backend::Sqlite).await;
    let t = s.create_tenant("mailco").await;
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.admin_token,
            json!({ "email": "new@mailco.example.jp", "role": "member", "scope": { "type": "tenant" } }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, body) = page(&s, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("new@mailco.example.jp"), "{body}");
    assert!(
        body.contains("/invite/kin_"),
        "the invitation link is readable"
    );
    // A client elsewhere (through the trusted proxy) does not see it.
    assert_eq!(page(&s, Some("203.0.113.7")).await.0, StatusCode::NOT_FOUND);
    s.stop().await;
}

/// Every file under `dir`, with its bytes.
fn everything_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(everything_under(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

/// No secret at rest in the clear: after an invitation, a password reset, a sign-up, an
/// operator sign-in link, an API token, a TOTP enrolment and a termination export link,
/// none of those secrets (nor the sign-up code) appears in any file of the data directory
/// — database, its WAL, blobs, spool, backups — while each still works; the data directory
/// is 0700 and every file in it 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_live_secret_in_the_data_directory() {
    use std::os::unix::fs::PermissionsExt;
    let mut cfg = kura_testkit::test_config(Backend::Sqlite);
    cfg.signup_enabled = true;
    let s = TestServer::start_with(cfg, Backend::Sqlite).await;
    let t = s.create_tenant("secrets").await;
    let mut secrets: Vec<(&str, String)> = Vec::new();

    // Invitation (not yet accepted).
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.admin_token,
            json!({ "email": "new@secrets.example.jp", "role": "member" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    secrets.push((
        "invitation",
        s.invitation_token("new@secrets.example.jp").await,
    ));
    // Password reset link.
    s.call(
        "POST",
        "/api/v1/auth/password-reset",
        None,
        Some(json!({ "tenant": "secrets", "email": t.admin_email })),
    )
    .await;
    let (_, reset) = reset_token(&s, &t.admin_email).await.expect("reset mail");
    secrets.push(("reset", reset));
    // Sign-up code and token.
    s.call(
        "POST",
        "/api/v1/signup",
        None,
        Some(json!({ "email": "founder@newco.example.jp", "locale": "ja" })),
    )
    .await;
    let mails = s.services.mail_outbox(50).await.unwrap();
    let code = mails
        .iter()
        .find(|m| m.to == "founder@newco.example.jp")
        .unwrap()
        .body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_string();
    let (st, v) = s
        .call(
            "POST",
            "/api/v1/signup/verify",
            None,
            Some(json!({ "email": "founder@newco.example.jp", "code": code })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    secrets.push((
        "signup token",
        v["signup_token"].as_str().unwrap().to_string(),
    ));
    // Operator sign-in link.
    let (link, _) = s
        .services
        .operator_login_link("sato", &Default::default())
        .await
        .unwrap();
    secrets.push((
        "operator link",
        link.rsplit('/').next().unwrap().to_string(),
    ));
    // API token, session token, TOTP seed.
    let (_, kat) = s
        .post(
            "/api/v1/me/tokens",
            &t.admin_token,
            json!({ "name": "ci", "scopes": ["files:read"], "expires_in_days": 30 }),
        )
        .await;
    secrets.push(("api token", kat["token"].as_str().unwrap().to_string()));
    secrets.push(("session", t.admin_token.clone()));
    let (_, totp) = s
        .call("POST", "/api/v1/me/mfa/totp", Some(&t.admin_token), None)
        .await;
    secrets.push(("totp seed", totp["secret"].as_str().unwrap().to_string()));
    // Termination export link (another tenant).
    s.create_tenant("leaving").await;
    let (_, export) = s
        .services
        .operator_terminate_tenant("leaving", &Default::default())
        .await
        .unwrap();
    secrets.push((
        "export link",
        export.rsplit('/').next().unwrap().to_string(),
    ));
    // Some written blobs and a backup, for good measure.
    let p = s.project(&t.admin_token, "p").await;
    s.upload(&t.admin_token, &p, "a.txt", b"hello".to_vec())
        .await;
    s.services.run_backup(&|_| {}).await.unwrap();
    // The access log's batch is on disk too.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let files = everything_under(&s.cfg.data_dir);
    assert!(files.len() > 3, "{files:?}");
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what}: {secret}");
        for (path, bytes) in &files {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{what} in the clear in {}",
                path.display()
            );
        }
    }
    for (path, bytes) in &files {
        assert!(
            !bytes
                .windows(code.len() + 2)
                .any(|w| w == format!(" {code}\n").as_bytes()
                    || w == format!("{code}\n\n").as_bytes()),
            "the sign-up code in the clear in {}",
            path.display()
        );
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.cfg.data_dir), 0o700);
    for (path, _) in &files {
        assert_eq!(
            mode(path) & 0o077,
            0,
            "{} is {:o}",
            path.display(),
            mode(path)
        );
    }
    // The secrets still work where they should: the invitation is accepted, the link opens.
    let (st, _) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": secrets[0].1, "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // A sent or expired body is emptied: two weeks on, the invitation mail is gone.
    s.clock.advance_secs(14 * 86_400);
    s.services.purge_logs().await.unwrap();
    let mails = s.services.mail_outbox(100).await.unwrap();
    let inv = mails
        .iter()
        .find(|m| m.to == "new@secrets.example.jp")
        .unwrap();
    assert!(inv.body.is_empty(), "{}", inv.body);
    s.stop().await;
}

kura_testkit::per_backend!(signup_and_reset_are_rate_limited);
/// Sign-up and password reset cannot be used to mail-bomb an address or to draw codes
/// without end: codes per address and requests per client are capped (sign-up: 429 with
/// `Retry-After`), reset requests keep the same answer but mail at most three links per
/// account in 15 minutes — and none to a client locked out of log-in.
async fn signup_and_reset_are_rate_limited(b: kura_testkit::Backend) {
    let mut cfg = test_config(b);
    cfg.signup_enabled = true;
    let s = TestServer::start_with(cfg, b).await;
    let signup = |email: String| {
        let s = &s;
        async move {
            s.call(
                "POST",
                "/api/v1/signup",
                None,
                Some(json!({ "email": email })),
            )
            .await
        }
    };
    let count = |to: &'static str| {
        let s = &s;
        async move {
            s.services
                .mail_outbox(1000)
                .await
                .unwrap()
                .iter()
                .filter(|m| m.to == to)
                .count()
        }
    };
    // Twelve requests for one address: three codes, then 429.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(signup("target@victim.example.jp".into()).await.0);
    }
    assert_eq!(&statuses[..3], &[StatusCode::ACCEPTED; 3], "{b:?}");
    assert!(statuses[3..]
        .iter()
        .all(|s| *s == StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(count("target@victim.example.jp").await, 3, "{b:?}");
    let res = s
        .client
        .post(format!("{}/api/v1/signup", s.base))
        .json(&json!({ "email": "target@victim.example.jp" }))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    // One client, many addresses: capped too (ten per hour, the twelve above counted).
    let (st, _) = signup("other@example.jp".into()).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{b:?}: per client");
    // An hour later it works again.
    s.clock.advance_secs(3601);
    assert_eq!(
        signup("other@example.jp".into()).await.0,
        StatusCode::ACCEPTED
    );

    // Password reset: 100 requests, the same 202 each time, three mails.
    let t = s.create_tenant("resetco").await;
    for _ in 0..100 {
        let (st, _) = s
            .call(
                "POST",
                "/api/v1/auth/password-reset",
                None,
                Some(json!({ "tenant": "resetco", "email": t.admin_email })),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{b:?}");
    }
    let mails = s.services.mail_outbox(1000).await.unwrap();
    let resets = mails
        .iter()
        .filter(|m| m.to == t.admin_email && m.body.contains("/reset/"))
        .count();
    assert_eq!(resets, 3, "{b:?}");
    // A client locked out of log-in gets no reset mail at all.
    s.clock.advance_secs(16 * 60);
    for i in 0..40 {
        s.login(
            "resetco",
            &format!("nobody{i}@resetco.example.jp"),
            "wrong-Password-1",
        )
        .await;
    }
    let (st, _) = s
        .call(
            "POST",
            "/api/v1/auth/password-reset",
            None,
            Some(json!({ "tenant": "resetco", "email": t.admin_email })),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let after = s
        .services
        .mail_outbox(1000)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.to == t.admin_email && m.body.contains("/reset/"))
        .count();
    assert_eq!(after, 3, "{b:?}: mailed to a locked-out client");
    s.stop().await;
}

/// Passwords built from one's own details are refused where passwords are set (invitation,
/// reset): the e-mail's local part whole or joined, the tenant ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_from_ones_details_are_refused() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("demo1").await;
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.admin_token,
            json!({ "email": "yamada.taro@demo1.example.jp", "display_name": "山田 太郎", "role": "member" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let token = s.invitation_token("yamada.taro@demo1.example.jp").await;
    for bad in [
        "yamada.taro2026",
        "Yamadataro-Lantern-93",
        "Harbor-demo1-Lantern-93",
    ] {
        let (st, v) = s
            .call(
                "POST",
                "/api/v1/invitations/accept",
                None,
                Some(json!({ "token": token, "password": bad })),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "weak_password", "{v}");
    }
    let (st, _) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": token, "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}
