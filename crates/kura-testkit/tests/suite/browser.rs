//! The console in Debian's headless Chromium (driven through chromedriver): log in → create a
//! folder → invite a user → freeze that user (their live session ends) → log out, in Japanese
//! and in English.
//!
//! Runs when `KURA_TEST_BROWSER=1` (CI; then a missing chromedriver is a failure) or when
//! /usr/bin/chromedriver exists.

use fantoccini::{ClientBuilder, Locator};
use kura_testkit::{Backend, StatusCode, TestServer, PASSWORD};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn wanted() -> bool {
    match std::env::var("KURA_TEST_BROWSER").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::path::Path::new(CHROMEDRIVER).exists(),
    }
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_driver() -> (Driver, u16) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {CHROMEDRIVER} (apt-get install chromium chromium-driver): {e}"
                )
            }),
    );
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (driver, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

async fn browser(port: u16, lang: &str, profile: &std::path::Path) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900",
                format!("--lang={lang}"),
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": lang },
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("webdriver session")
}

/// Texts the test expects, per language.
struct Texts {
    login: &'static str,
    workspace: &'static str,
    folder_created: &'static str,
    invited: &'static str,
    frozen: &'static str,
    logged_out: &'static str,
}

const JA: Texts = Texts {
    login: "ログイン",
    workspace: "ワークスペース",
    folder_created: "フォルダーを作成しました。",
    invited: "ユーザーを招待しました。",
    frozen: "ユーザーを凍結しました。",
    logged_out: "ログアウトしました。",
};
const EN: Texts = Texts {
    login: "Log in",
    workspace: "Workspace",
    folder_created: "Folder created.",
    invited: "User invited",
    frozen: "User frozen",
    logged_out: "You have logged out.",
};

/// Polls until the element's text satisfies `ok` (pages change under us after a click).
async fn wait_text(c: &fantoccini::Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if ok(&t) {
                    return t;
                }
                last = t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = c
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    panic!("{css} on {url}: last text {last:?}");
}

async fn wait_eq(c: &fantoccini::Client, css: &str, want: &str) {
    wait_text(c, css, |t| t == want).await;
}

async fn wait_contains(c: &fantoccini::Client, css: &str, want: &str) {
    wait_text(c, css, |t| t.contains(want)).await;
}

/// Fetches a URL inside the page (with its cookies) and returns the body text.
async fn fetch_text(c: &fantoccini::Client, url: &str) -> Value {
    c.execute_async(
        "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done, e => done('ERR ' + e));",
        vec![json!(url)],
    )
    .await
    .unwrap()
}

async fn fill(c: &fantoccini::Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &fantoccini::Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn flow(s: &TestServer, port: u16, lang: &str, t: &Texts) {
    let slug = format!("e2e-{lang}");
    let tenant = s.create_tenant(&slug).await;
    let profile = kura_testkit::temp_path("chromium-profile");
    let c = browser(port, lang, &profile).await;
    let base = s.base.replace("127.0.0.1", "localhost");

    c.goto(&format!("{base}/login?tenant={slug}"))
        .await
        .unwrap();
    if wait_text(&c, "h1", |x| !x.is_empty()).await != t.login {
        // The browser did not send our language: the switch on the page must work too.
        click(&c, "#lang-switch").await;
    }
    wait_eq(&c, "h1", t.login).await;
    assert_eq!(
        c.find(Locator::Css("html"))
            .await
            .unwrap()
            .attr("lang")
            .await
            .unwrap()
            .as_deref(),
        Some(lang)
    );
    fill(&c, "#login-email", &tenant.admin_email).await;
    fill(&c, "#login-password", PASSWORD).await;
    click(&c, "#login-submit").await;
    wait_eq(&c, "h1", t.workspace).await;

    // Create a folder.
    let folder = format!("E2E設計-{lang}");
    fill(&c, "#new-folder-name", &folder).await;
    click(&c, "#new-folder-submit").await;
    wait_eq(&c, "#notice", t.folder_created).await;
    wait_contains(&c, "#tree", &folder).await;
    if lang == "ja" {
        let png = c.screenshot().await.unwrap();
        let _ = std::fs::write(std::env::temp_dir().join("kura-console-workspace.png"), png);
    }

    // Invite a user.
    click(&c, "#nav-users").await;
    let email = format!("e2e-user-{lang}@example.jp");
    fill(&c, "#invite-email", &email).await;
    fill(&c, "#invite-name", "E2E User").await;
    click(&c, "#invite-submit").await;
    wait_contains(&c, "#notice", t.invited).await;
    let row = format!("tr[data-email=\"{email}\"]");
    assert_eq!(
        c.find(Locator::Css(&row))
            .await
            .unwrap()
            .attr("data-status")
            .await
            .unwrap()
            .as_deref(),
        Some("invited")
    );

    // The user accepts the mailed invitation and has a live API session.
    let token = s.invitation_token(&email).await;
    let (st, body) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": token, "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let user_token = body["token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/v1/me", &user_token).await.0, StatusCode::OK);

    // Freeze them in the console: their session ends at once.
    c.goto(&format!("{base}/users")).await.unwrap();
    click(&c, &format!("{row} button.freeze")).await;
    wait_contains(&c, "#notice", t.frozen).await;
    assert_eq!(
        c.find(Locator::Css(&row))
            .await
            .unwrap()
            .attr("data-status")
            .await
            .unwrap()
            .as_deref(),
        Some("frozen")
    );
    assert_eq!(
        s.get("/api/v1/me", &user_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    if lang == "en" {
        let png = c.screenshot().await.unwrap();
        let _ = std::fs::write(std::env::temp_dir().join("kura-console-users.png"), png);
    }

    // The audit page shows the chain verified and the freeze.
    click(&c, "#nav-audit").await;
    let ok_text = if lang == "ja" {
        "改ざんはありません"
    } else {
        "no tampering"
    };
    wait_contains(&c, "#chain-status", ok_text).await;
    wait_contains(&c, "#audit-table", "user.freeze").await;

    click(&c, "#logout").await;
    wait_eq(&c, "#notice", t.logged_out).await;
    // The old session cookie no longer opens the console.
    c.goto(&format!("{base}/users")).await.unwrap();
    wait_eq(&c, "h1", t.login).await;

    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium() {
    if !wanted() {
        eprintln!(
            "NOTE: chromedriver not installed; browser suite not run (CI sets KURA_TEST_BROWSER=1)"
        );
        return;
    }
    let mut cfg = kura_testkit::test_config(Backend::Sqlite);
    cfg.signup_enabled = true;
    let s = TestServer::start_with(cfg, Backend::Sqlite).await;
    let (_driver, port) = start_driver().await;
    flow(&s, port, "ja", &JA).await;
    flow(&s, port, "en", &EN).await;
    files_flow(&s, port).await;
    reset_flow(&s, port).await;
    totp_flow(&s, port).await;
    passkey_flow(&s, port).await;
    logs_flow(&s, port).await;
    signup_flow(&s, port).await;
    s.stop().await;
}

/// Upload through the console form, download through the browser (with its session
/// cookie), and label-capped visibility: a guest capped at "internal" does not see a
/// confidential file.
async fn files_flow(s: &TestServer, port: u16) {
    let tenant = s.create_tenant("e2e-files").await;
    let tok = &tenant.admin_token;
    let (_, f) = s
        .post("/api/v1/folders", tok, json!({ "name": "資料" }))
        .await;
    let (_, p) = s
        .post(
            "/api/v1/projects",
            tok,
            json!({ "name": "見積", "folder_id": f["id"] }),
        )
        .await;
    let pid = p["id"].as_str().unwrap().to_string();
    // A guest capped at "internal" (DATA-3).
    let (st, _) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "cguest@e2e.example.jp", "role": "guest", "max_label": "internal" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let inv = s.invitation_token("cguest@e2e.example.jp").await;
    let (st, _) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": inv, "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    let dir = kura_testkit::temp_path("upload");
    std::fs::create_dir_all(&dir).unwrap();
    let public_path = dir.join("公開資料.txt");
    let secret_path = dir.join("機密資料.txt");
    std::fs::write(&public_path, "公開してよい内容").unwrap();
    std::fs::write(&secret_path, "取締役会の機密").unwrap();

    let base = s.base.replace("127.0.0.1", "localhost");
    let login = |c: &fantoccini::Client, email: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            c.goto(&format!("{base}/login?tenant=e2e-files"))
                .await
                .unwrap();
            fill(&c, "#login-email", &email).await;
            fill(&c, "#login-password", PASSWORD).await;
            click(&c, "#login-submit").await;
            wait_text(&c, "h1", |t| t == "ワークスペース" || t == "Workspace").await;
        }
    };

    let profile = kura_testkit::temp_path("chromium-profile");
    let c = browser(port, "ja", &profile).await;
    login(&c, tenant.admin_email.clone()).await;
    // The project is reachable from the tree.
    click(&c, &format!("a[href=\"/projects/{pid}\"]")).await;
    wait_contains(&c, "#project-name", "見積").await;
    for (path, label) in [(&public_path, "public"), (&secret_path, "confidential")] {
        let sel = c.find(Locator::Css("#upload-label")).await.unwrap();
        sel.select_by_value(label).await.unwrap();
        c.find(Locator::Css("#upload-file"))
            .await
            .unwrap()
            .send_keys(&path.display().to_string())
            .await
            .unwrap();
        click(&c, "#upload-submit").await;
        wait_contains(&c, "#notice", "アップロードしました").await;
    }
    wait_contains(&c, "#files-table", "機密資料.txt").await;
    wait_contains(&c, "#files-table", "confidential").await;
    // Download in the browser, with the console's session cookie.
    let link = c
        .find(Locator::Css("tr[data-name=\"公開資料.txt\"] a.download"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let got = fetch_text(&c, &link).await;
    assert_eq!(got, json!("公開してよい内容"));

    // A new version of the same name through the script-driven upload: the progress bar
    // reports (its last value is kept in sessionStorage across the page change).
    std::fs::write(&public_path, "公開してよい内容（第2版）".repeat(20_000)).unwrap();
    c.execute(
        "sessionStorage.removeItem('kura-progress');
         new MutationObserver(() => sessionStorage.setItem('kura-progress',
             document.getElementById('upload-percent').textContent))
           .observe(document.getElementById('upload-percent'), { childList: true, characterData: true, subtree: true });",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("#upload-label"))
        .await
        .unwrap()
        .select_by_value("")
        .await
        .unwrap();
    c.find(Locator::Css("#upload-file"))
        .await
        .unwrap()
        .send_keys(&public_path.display().to_string())
        .await
        .unwrap();
    click(&c, "#upload-submit").await;
    // (The notice of the previous upload is still on the page: wait for the new row.)
    wait_contains(&c, "tr[data-name=\"公開資料.txt\"]", "v2").await;
    wait_contains(&c, "#notice", "アップロードしました").await;
    let progress = c
        .execute("return sessionStorage.getItem('kura-progress');", vec![])
        .await
        .unwrap();
    assert_eq!(progress, json!("100%"), "the progress bar ran to 100%");

    // The file page: versions, restore an old one, tags.
    click(&c, "tr[data-name=\"公開資料.txt\"] a.file-link").await;
    wait_contains(&c, "#file-name", "公開資料.txt").await;
    wait_contains(&c, "#versions-table", "v1").await;
    click(&c, "tr[data-version=\"1\"] button.restore-version").await;
    wait_contains(&c, "#notice", "最新版として戻しました").await;
    wait_contains(&c, "tr[data-version=\"3\"]", "最新").await;
    let v3 = c
        .find(Locator::Css("#download-current"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let got = fetch_text(&c, &v3).await;
    assert_eq!(got, json!("公開してよい内容"), "v3 is v1's content");
    fill(&c, "#edit-tags", "見積, 2026").await;
    click(&c, "#labels-submit").await;
    wait_contains(&c, "#notice", "ファイルを更新しました").await;
    wait_contains(&c, "#file-tags", "2026").await;

    // Search across projects by tag and by name.
    click(&c, "#nav-search").await;
    fill(&c, "#search-tag", "2026").await;
    click(&c, "#search-submit").await;
    wait_contains(&c, "#results", "公開資料.txt").await;
    let results = wait_text(&c, "#results", |_| true).await;
    assert!(!results.contains("機密資料"), "{results}");
    assert!(results.contains("見積"), "the project is named: {results}");
    fill(&c, "#search-tag", "").await;
    fill(&c, "#search-q", "機密").await;
    click(&c, "#search-submit").await;
    wait_contains(&c, "#results", "機密資料.txt").await;

    // Trash: delete, find it in the trash, restore it.
    c.goto(&format!("{base}/projects/{pid}")).await.unwrap();
    click(&c, "tr[data-name=\"機密資料.txt\"] button.danger").await;
    wait_contains(&c, "#notice", "ゴミ箱に移動").await;
    wait_contains(&c, "#trash-table", "機密資料.txt").await;
    let table = wait_text(&c, "#files-table", |_| true).await;
    assert!(!table.contains("機密資料"), "{table}");
    click(
        &c,
        "#trash-table tr[data-name=\"機密資料.txt\"] button.restore",
    )
    .await;
    wait_contains(&c, "#notice", "ゴミ箱から戻しました").await;
    wait_contains(&c, "#files-table", "機密資料.txt").await;
    c.close().await.unwrap();

    // The capped guest sees the public file only.
    let profile2 = kura_testkit::temp_path("chromium-profile");
    let g = browser(port, "ja", &profile2).await;
    login(&g, "cguest@e2e.example.jp".into()).await;
    g.goto(&format!("{base}/projects/{pid}")).await.unwrap();
    wait_contains(&g, "#files-table", "公開資料.txt").await;
    let table = wait_text(&g, "#files-table", |_| true).await;
    assert!(
        !table.contains("機密資料"),
        "a guest capped at internal must not see the confidential file: {table}"
    );
    assert!(
        g.find(Locator::Css("#upload-form")).await.is_err(),
        "a guest gets no upload form"
    );
    assert!(g.find(Locator::Css("#trash")).await.is_err());
    g.goto(&format!("{base}/search?q=%E8%B3%87%E6%96%99"))
        .await
        .unwrap();
    wait_contains(&g, "#results", "公開資料.txt").await;
    let results = wait_text(&g, "#results", |_| true).await;
    assert!(
        !results.contains("機密資料"),
        "search never shows above the cap: {results}"
    );
    g.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_dir_all(&profile2);
}

/// Forgot password → mail → new password → every old session ended → log in.
async fn reset_flow(s: &TestServer, port: u16) {
    let tenant = s.create_tenant("e2e-reset").await;
    let base = s.base.replace("127.0.0.1", "localhost");
    let profile = kura_testkit::temp_path("chromium-profile");
    let c = browser(port, "ja", &profile).await;
    c.goto(&format!("{base}/login?tenant=e2e-reset"))
        .await
        .unwrap();
    click(&c, "#forgot-password").await;
    wait_eq(&c, "h1", "パスワードの再設定").await;
    fill(&c, "#reset-email", &tenant.admin_email).await;
    click(&c, "#reset-submit").await;
    wait_contains(&c, "#notice", "アカウントが存在する場合は").await;
    let mails = s.services.mail_outbox(50).await.unwrap();
    let link = mails
        .iter()
        .find(|m| m.to == tenant.admin_email && m.body.contains("/reset/"))
        .and_then(|m| m.body.lines().find(|l| l.contains("/reset/")))
        .unwrap()
        .trim()
        .replace("127.0.0.1", "localhost");
    c.goto(&link).await.unwrap();
    fill(&c, "#new-password", "Console-Harbor-Lantern-42").await;
    fill(&c, "#new-password2", "Console-Harbor-Lantern-42").await;
    click(&c, "#new-password-submit").await;
    wait_contains(&c, "#notice", "パスワードを再設定しました").await;
    assert_eq!(
        s.get("/api/v1/me", &tenant.admin_token).await.0,
        StatusCode::UNAUTHORIZED,
        "the old session ended"
    );
    fill(&c, "#login-email", &tenant.admin_email).await;
    fill(&c, "#login-password", "Console-Harbor-Lantern-42").await;
    click(&c, "#login-submit").await;
    wait_eq(&c, "h1", "ワークスペース").await;
    // The account page lists the sessions; another device's session can be ended there.
    let (_, api) = s
        .login(
            "e2e-reset",
            &tenant.admin_email,
            "Console-Harbor-Lantern-42",
        )
        .await;
    let api_token = api["token"].as_str().unwrap().to_string();
    click(&c, "#current-user").await;
    wait_eq(&c, "h1", "アカウントとセッション").await;
    wait_contains(&c, "#sessions-table", "このセッション").await;
    let rows = c
        .find_all(Locator::Css("#sessions-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "console and API sessions");
    click(
        &c,
        "#sessions-table tr.session:not(.current) button.end-session",
    )
    .await;
    wait_contains(&c, "#notice", "セッションを終了しました").await;
    assert_eq!(
        s.get("/api/v1/me", &api_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A personal API token from the account page: shown once, scoped, revocable.
    fill(&c, "#token-name", "夜間エクスポート").await;
    click(&c, "input[name=\"scope\"][value=\"workspace:read\"]").await;
    click(&c, "#token-create").await;
    let kat = wait_text(&c, "#new-token", |t| t.starts_with("kat_")).await;
    assert_eq!(s.get("/api/v1/folders", &kat).await.0, StatusCode::OK);
    assert_eq!(
        s.post("/api/v1/folders", &kat, json!({ "name": "x" }))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    click(&c, "tr[data-name=\"夜間エクスポート\"] button.revoke-token").await;
    wait_contains(&c, "#notice", "失効させました").await;
    assert!(
        c.find(Locator::Css("#new-token")).await.is_err(),
        "shown once"
    );
    assert_eq!(
        s.get("/api/v1/folders", &kat).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The link was single-use.
    c.goto(&link).await.unwrap();
    wait_contains(&c, "#error", "無効か、期限切れか、使用済み").await;
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}

/// Set up an authenticator app on the account page, then log in with a code.
async fn totp_flow(s: &TestServer, port: u16) {
    let tenant = s.create_tenant("e2e-totp").await;
    let base = s.base.replace("127.0.0.1", "localhost");
    let profile = kura_testkit::temp_path("chromium-profile");
    let c = browser(port, "ja", &profile).await;
    let login = |c: &fantoccini::Client| {
        let c = c.clone();
        let base = base.clone();
        let email = tenant.admin_email.clone();
        async move {
            c.goto(&format!("{base}/login?tenant=e2e-totp"))
                .await
                .unwrap();
            fill(&c, "#login-email", &email).await;
            fill(&c, "#login-password", PASSWORD).await;
            click(&c, "#login-submit").await;
        }
    };
    login(&c).await;
    wait_eq(&c, "h1", "ワークスペース").await;
    click(&c, "#current-user").await;
    wait_contains(&c, "#mfa-state", "未設定").await;
    click(&c, "#totp-start").await;
    wait_eq(&c, "h1", "認証アプリの設定").await;
    assert!(
        c.find(Locator::Css("#totp-qr svg path")).await.is_ok(),
        "QR code shown"
    );
    let secret = wait_text(&c, "#totp-secret", |t| !t.is_empty()).await;
    fill(&c, "#totp-code", &s.totp_code(&secret)).await;
    click(&c, "#totp-confirm").await;
    wait_eq(&c, "h1", "リカバリーコード").await;
    let codes = c
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    click(&c, "#recovery-done").await;
    wait_contains(&c, "#mfa-state", "有効").await;
    // The tenant admin requires MFA for everyone on the security page.
    click(&c, "#nav-security").await;
    wait_eq(&c, "h1", "セキュリティ設定").await;
    // An allowlist without the admin's own address is refused unless confirmed.
    fill(&c, "#ip-allowlist", "192.0.2.0/24").await;
    click(&c, "#security-submit").await;
    wait_contains(&c, "#error", "確認欄にチェック").await;
    wait_contains(&c, "#current-ip", "127.0.0.1").await;
    click(&c, "#mfa-required").await;
    click(&c, "#security-submit").await;
    wait_contains(&c, "#notice", "設定を保存しました").await;
    let (_, t) = s.get("/api/v1/me", &tenant.admin_token).await;
    assert!(t["user"].is_object());
    let mut tx = s.services.store.system_read().await.unwrap();
    let stored = kura_store::tenants::find_by_slug(&mut tx, "e2e-totp")
        .await
        .unwrap()
        .unwrap();
    drop(tx);
    assert!(stored.settings.mfa_required, "saved from the console");
    click(&c, "#logout").await;
    wait_contains(&c, "#notice", "ログアウトしました").await;
    // The password now leads to the code page; a fresh code logs in.
    login(&c).await;
    wait_eq(&c, "h1", "2段階認証").await;
    s.clock.advance_secs(30);
    fill(&c, "#mfa-code", &s.totp_code(&secret)).await;
    click(&c, "#mfa-submit").await;
    wait_eq(&c, "h1", "ワークスペース").await;
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}

/// Chromium's virtual authenticator (WebDriver WebAuthn extension) holds the passkeys.
async fn virtual_authenticator(c: &fantoccini::Client, port: u16) -> String {
    let sid = c.session_id().await.unwrap().expect("session id");
    let url = format!("http://127.0.0.1:{port}/session/{sid}/webauthn/authenticator");
    let res: Value = reqwest::Client::new()
        .post(&url)
        .json(&json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "isUserConsenting": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = res["value"].as_str().unwrap_or_else(|| panic!("{res}"));
    format!("{url}/{id}")
}

/// Register a passkey on the account page, use it as the second step after the password,
/// then log in with it alone.
async fn passkey_flow(s: &TestServer, port: u16) {
    let tenant = s.create_tenant("e2e-passkey").await;
    let base = s.base.replace("127.0.0.1", "localhost");
    let profile = kura_testkit::temp_path("chromium-profile");
    let c = browser(port, "ja", &profile).await;
    let authenticator = virtual_authenticator(&c, port).await;
    c.goto(&format!("{base}/login?tenant=e2e-passkey"))
        .await
        .unwrap();
    fill(&c, "#login-email", &tenant.admin_email).await;
    fill(&c, "#login-password", PASSWORD).await;
    click(&c, "#login-submit").await;
    wait_eq(&c, "h1", "ワークスペース").await;
    click(&c, "#current-user").await;
    fill(&c, "#passkey-name", "Chromium").await;
    click(&c, "#passkey-add").await;
    // The first second factor: recovery codes, shown once.
    wait_eq(&c, "h1", "リカバリーコード").await;
    assert_eq!(
        c.find_all(Locator::Css("#recovery-codes li"))
            .await
            .unwrap()
            .len(),
        10
    );
    click(&c, "#recovery-done").await;
    wait_contains(&c, "#passkeys-table", "Chromium").await;
    let creds: Value = reqwest::get(format!("{authenticator}/credentials"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let creds = creds["value"].as_array().unwrap();
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(
        creds[0]["isResidentCredential"], true,
        "a discoverable credential"
    );
    click(&c, "#logout").await;
    wait_contains(&c, "#notice", "ログアウトしました").await;

    // Password, then the passkey as the second step.
    c.goto(&format!("{base}/login?tenant=e2e-passkey"))
        .await
        .unwrap();
    fill(&c, "#login-email", &tenant.admin_email).await;
    fill(&c, "#login-password", PASSWORD).await;
    click(&c, "#login-submit").await;
    wait_eq(&c, "h1", "2段階認証").await;
    click(&c, "#mfa-passkey").await;
    wait_eq(&c, "h1", "ワークスペース").await;

    // A service account from the users page, and a token for it.
    click(&c, "#nav-users").await;
    fill(&c, "#service-name", "夜間バックアップ").await;
    click(&c, "#service-submit").await;
    wait_contains(&c, "#notice", "サービスアカウントを作成しました").await;
    wait_contains(&c, "#service-account", "夜間バックアップ").await;
    fill(&c, "#token-name", "backup").await;
    click(&c, "input[name=\"scope\"][value=\"workspace:read\"]").await;
    click(&c, "#token-create").await;
    let kat = wait_text(&c, "#new-token", |t| t.starts_with("kat_")).await;
    let (st, me) = s.get("/api/v1/me", &kat).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["user"]["kind"], "service", "{me}");
    click(&c, "tr[data-name=\"backup\"] button.revoke-token").await;
    wait_contains(&c, "#notice", "失効させました").await;
    assert_eq!(s.get("/api/v1/me", &kat).await.0, StatusCode::UNAUTHORIZED);
    click(&c, "#back-to-users").await;
    wait_contains(&c, "#users-table", "サービス").await;
    click(&c, "#logout").await;
    wait_contains(&c, "#notice", "ログアウトしました").await;

    // The passkey alone: no e-mail, no password.
    c.goto(&format!("{base}/login?tenant=e2e-passkey"))
        .await
        .unwrap();
    click(&c, "#passkey-login").await;
    wait_eq(&c, "h1", "ワークスペース").await;
    let me = fetch_text(&c, &format!("{base}/api/v1/me")).await;
    assert!(me.as_str().unwrap().contains(&tenant.admin_email), "{me}");
    let creds: Value = reqwest::get(format!("{authenticator}/credentials"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The server kept the authenticator's counter (registration and two uses).
    let tid = kura_domain::TenantId::from_string(tenant.tenant_id.clone());
    let uid = kura_domain::UserId::from_string(tenant.admin_id.clone());
    let mut tx = s.services.store.tenant_read(&tid).await.unwrap();
    let stored = kura_store::passkeys::list_for_user(&mut tx, &tid, &uid)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].last_used_at.is_some());
    assert_eq!(
        creds["value"][0]["signCount"],
        json!(stored[0].counter),
        "{creds}"
    );
    assert!(stored[0].counter >= 2);
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}

/// The audit log filtered and exported from the console (the JSON Lines export verifies
/// offline), the access log, the usage dashboard, and log retention on the security page.
async fn logs_flow(s: &TestServer, port: u16) {
    let tenant = s.create_tenant("e2e-logs").await;
    for i in 0..4 {
        s.post(
            "/api/v1/folders",
            &tenant.admin_token,
            json!({ "name": format!("記録{i}") }),
        )
        .await;
    }
    let base = s.base.replace("127.0.0.1", "localhost");
    let profile = kura_testkit::temp_path("chromium-profile");
    let c = browser(port, "ja", &profile).await;
    c.goto(&format!("{base}/login?tenant=e2e-logs"))
        .await
        .unwrap();
    fill(&c, "#login-email", &tenant.admin_email).await;
    fill(&c, "#login-password", PASSWORD).await;
    click(&c, "#login-submit").await;
    wait_eq(&c, "h1", "ワークスペース").await;
    // The operator, signed in to the operator console by a CLI link, publishes a notice
    // and an incident for this tenant; both appear on every page of its console.
    let (link, _) = s
        .services
        .operator_login_link("e2e-operator", &Default::default())
        .await
        .unwrap();
    c.goto(&format!("{base}/operator/login/{link}"))
        .await
        .unwrap();
    click(&c, "#op-login").await;
    wait_contains(&c, "#operator-name", "e2e-operator").await;
    wait_contains(&c, "#op-tenants", "e2e-logs").await;
    click(&c, "#op-nav-notices").await;
    wait_eq(&c, "h1", "お知らせ").await;
    let tomorrow = {
        use kura_domain::Clock;
        s.clock
            .now()
            .plus_secs(86_400)
            .to_rfc3339_in_zone("Asia/Tokyo")[..16]
            .to_string()
    };
    click(&c, "input[name=kind][value=planned_maintenance]").await;
    c.execute(
        "document.querySelector('#notice-effective').value = arguments[0];",
        vec![json!(tomorrow)],
    )
    .await
    .unwrap();
    fill(&c, "#notice-title-ja", "障害のお知らせ").await;
    fill(&c, "#notice-title-en", "Incident notice").await;
    fill(&c, "#notice-body-ja", "復旧しました。").await;
    click(&c, "input[name=tenant][value=e2e-logs]").await;
    click(&c, "#notice-publish").await;
    // Planned maintenance tomorrow breaks the five-business-day rule: refused, form kept.
    wait_contains(&c, "#error", "事前告知の期間が足りません").await;
    let kept = c
        .find(Locator::Css("#notice-title-ja"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("障害のお知らせ"));
    assert!(c
        .find(Locator::Css("input[name=tenant][value=e2e-logs]"))
        .await
        .unwrap()
        .is_selected()
        .await
        .unwrap());
    // An emergency notice may be published at any time.
    click(&c, "input[name=kind][value=emergency]").await;
    click(&c, "#notice-publish").await;
    wait_contains(&c, "#notice", "お知らせを公開").await;
    wait_contains(&c, "#op-notices", "障害のお知らせ").await;
    click(&c, "#op-nav-incidents").await;
    fill(&c, "#incident-title-ja", "ダウンロードの遅延").await;
    fill(&c, "#incident-title-en", "Slow downloads").await;
    fill(&c, "#incident-scope", "ダウンロード").await;
    click(&c, "input[name=tenant][value=e2e-logs]").await;
    click(&c, "#incident-open").await;
    wait_contains(&c, "#notice", "インシデントを登録しました").await;
    fill(&c, "#update-text-ja", "原因を調査しています。").await;
    fill(&c, "#update-text-en", "Investigating.").await;
    click(&c, "#incident-post-update").await;
    wait_contains(&c, "#incident-updates", "原因を調査しています").await;
    click(&c, "#incident-notify").await;
    wait_contains(&c, "#notice", "通知しました").await;
    wait_contains(&c, "#incident-notified", "分後").await;
    c.goto(&format!("{base}/")).await.unwrap();
    wait_contains(&c, "main", "緊急のお知らせ").await;
    wait_contains(&c, "main", "障害のお知らせ").await;
    wait_contains(&c, "main", "障害発生中").await;
    wait_contains(&c, "main", "ダウンロードの遅延").await;
    // The operator signs out; the tenant's own session is untouched.
    c.goto(&format!("{base}/operator")).await.unwrap();
    click(&c, "#op-logout").await;
    wait_contains(&c, "#op-login-help", "kura operator login-link").await;
    c.goto(&format!("{base}/")).await.unwrap();
    wait_eq(&c, "h1", "ワークスペース").await;
    click(&c, "#nav-audit").await;
    wait_contains(&c, "#chain-status", "").await;
    fill(&c, "#filter-action", "folder.").await;
    click(&c, "#filter-submit").await;
    wait_text(&c, "#audit-table tbody", |t| t.contains("folder.create")).await;
    let rows = c
        .find_all(Locator::Css("#audit-table tbody tr.event"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        assert_eq!(
            r.attr("data-action").await.unwrap().as_deref(),
            Some("folder.create")
        );
    }
    // The export links carry the filter; downloaded with the session cookie.
    let href = |id: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Css(id))
                .await
                .unwrap()
                .attr("href")
                .await
                .unwrap()
                .unwrap()
        }
    };
    let csv_href = href("#export-csv").await;
    assert!(csv_href.contains("action=folder."), "{csv_href}");
    let csv = fetch_text(&c, &csv_href).await;
    let csv = csv.as_str().unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.contains("+09:00") && csv.contains("記録3"), "{csv}");
    let jsonl = fetch_text(&c, &href("#export-jsonl").await).await;
    let key = fetch_text(&c, &format!("{base}/.well-known/kura-audit-key")).await;
    let key: Value = serde_json::from_str(key.as_str().unwrap()).unwrap();
    let summary = kura_crypto::export::verify_export(
        std::io::Cursor::new(jsonl.as_str().unwrap().as_bytes()),
        key["public_key"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(summary.events, 4);
    // The access log, filtered by path.
    click(&c, "#to-access-log").await;
    fill(&c, "#filter-path", "/audit").await;
    click(&c, "#filter-submit").await;
    wait_text(&c, "#access-table tbody", |t| t.contains("GET /audit")).await;
    // The usage dashboard after the hourly roll-up.
    s.services.rollup_usage().await.unwrap();
    let generation = s.services.run_backup(&|_| {}).await.unwrap().id;
    click(&c, "#nav-usage").await;
    wait_eq(&c, "h1", "利用状況").await;
    wait_contains(&c, "#backup-status", &generation).await;
    let bars = c
        .find_all(Locator::Css("#chart-logins rect.bar"))
        .await
        .unwrap();
    assert!(!bars.is_empty(), "a bar per day");
    let today = {
        use kura_domain::Clock;
        s.clock.now().day_in_zone("Asia/Tokyo")
    };
    let row = c
        .find(Locator::Css(&format!(
            "#usage-table tr[data-day=\"{today}\"]"
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.starts_with(&today), "{row}");
    click(&c, "#usage-monthly").await;
    wait_contains(&c, "#usage-table", &today[..7]).await;
    // Retention on the security page, with what happens to the data when the contract ends.
    click(&c, "#nav-security").await;
    wait_contains(&c, "#lifecycle-policy", "30 日後").await;
    fill(&c, "#audit-retention", "365").await;
    click(&c, "#security-submit").await;
    wait_contains(&c, "#notice", "設定を保存しました").await;
    let (_, t) = s.get("/api/v1/tenant", &tenant.admin_token).await;
    assert_eq!(t["settings"]["audit_retention_days"], 365);
    // The contract ends: the console locks at once; the mailed export link downloads in
    // the browser.
    let (_, link) = s
        .services
        .operator_terminate_tenant("e2e-logs", &Default::default())
        .await
        .unwrap();
    c.goto(&format!("{base}/")).await.unwrap();
    wait_eq(&c, "h1", "ログイン").await;
    let size = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.ok ? r.arrayBuffer() : Promise.reject(r.status)).then(b => done(b.byteLength), e => done('ERR ' + e));",
            vec![json!(link)],
        )
        .await
        .unwrap();
    assert!(size.as_u64().unwrap_or(0) > 2048, "{size}");
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}

/// Sign-up in the browser: e-mail, the mailed code, tenant and password, then the console.
async fn signup_flow(s: &TestServer, port: u16) {
    let base = s.base.replace("127.0.0.1", "localhost");
    let profile = kura_testkit::temp_path("chromium-profile");
    let c = browser(port, "ja", &profile).await;
    c.goto(&format!("{base}/signup")).await.unwrap();
    fill(&c, "#signup-email", "founder@new-kobo.example.jp").await;
    click(&c, "#signup-submit").await;
    // The code step (its text names the 6 digits; the first step's does not).
    wait_text(&c, "#signup-form", |t| t.contains("6 桁")).await;
    let mails = s.services.mail_outbox(500).await.unwrap();
    let body = &mails
        .iter()
        .find(|m| m.to == "founder@new-kobo.example.jp")
        .unwrap()
        .body;
    let code = body
        .split(|ch: char| !ch.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_string();
    fill(&c, "#signup-code", &code).await;
    click(&c, "#signup-submit").await;
    wait_text(&c, "#signup-form", |t| t.contains("契約管理者")).await;
    fill(&c, "#signup-tenant", "new-kobo").await;
    fill(&c, "#signup-tenant-name", "新工房").await;
    fill(&c, "#signup-name", "創業 一郎").await;
    fill(&c, "#signup-password", PASSWORD).await;
    click(&c, "#signup-submit").await;
    wait_eq(&c, "h1", "ワークスペース").await;
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}
