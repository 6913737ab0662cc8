//! TEN-3: with two tenants, for every API route, tenant A's users using tenant B's ids get
//! exactly what a made-up id gets (404 for ids in the path) — never B's data, never a count
//! — and B's data is unchanged afterwards. On both backends.

use kura_testkit::{StatusCode, TestServer};
use serde_json::{json, Value};
use std::collections::HashMap;

/// A body for routes that take one, referring to `ids`' folder/project/user where relevant.
fn body_for(method: &str, path: &str, ids: &HashMap<&str, String>) -> Option<Value> {
    if method == "get" || method == "delete" {
        return None;
    }
    let f = ids["folder_id"].clone();
    let p = ids["project_id"].clone();
    Some(match path {
        "/api/v1/projects" => json!({ "name": "iso", "folder_id": f }),
        "/api/v1/folders" => json!({ "name": "iso", "parent_id": f }),
        "/api/v1/users/{user_id}/grants" => {
            json!({ "role": "guest", "scope": { "type": "project", "id": p } })
        }
        "/api/v1/users" => {
            json!({ "email": "iso@a.example.jp", "role": "guest", "scope": { "type": "folder", "id": f } })
        }
        "/api/v1/projects/{project_id}" => json!({ "name": "iso", "folder_id": f }),
        "/api/v1/users/{user_id}/tokens" => json!({ "name": "iso", "scopes": ["workspace:read"] }),
        "/api/v1/folders/{folder_id}" => json!({ "name": "iso", "parent_id": f }),
        _ => json!({}),
    })
}

fn fill(path: &str, ids: &HashMap<&str, String>) -> String {
    let mut out = path.to_string();
    for (k, v) in ids {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Everything of B that must never appear in A's responses.
fn secrets(b: &HashMap<&str, String>) -> Vec<String> {
    let mut v: Vec<String> = b.values().cloned().collect();
    v.extend(
        [
            "secret.txt",
            "秘密の内容",
            "秘密フォルダー",
            "秘密プロジェクト",
            "secret@b.example.jp",
            "秘密ロール",
            "b-contact@b.example.jp",
        ]
        .map(String::from),
    );
    v
}

async fn snapshot(s: &TestServer, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/folders",
        "/api/v1/projects",
        "/api/v1/users",
        "/api/v1/roles",
        "/api/v1/tenant/contacts",
        "/api/v1/tenant",
        "/api/v1/me/mfa/passkeys",
    ] {
        let (st, mut v) = s.get(path, token).await;
        assert_eq!(st, StatusCode::OK, "{path}");
        if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
            for i in items.iter_mut() {
                if let Some(o) = i.as_object_mut() {
                    o.remove("last_seen_at");
                }
            }
        }
        out.push(v);
    }
    out
}

kura_testkit::per_backend!(tenant_a_cannot_reach_tenant_b);
async fn tenant_a_cannot_reach_tenant_b(backend: kura_testkit::Backend) {
    let s = TestServer::start(backend).await;
    let a = s.create_tenant("tenant-a").await;
    let b = s.create_tenant("tenant-b").await;

    // B's data: a folder, a project, a user with a grant, a custom role, a contact.
    let (_, f) = s
        .post(
            "/api/v1/folders",
            &b.admin_token,
            json!({ "name": "秘密フォルダー" }),
        )
        .await;
    let folder = f["id"].as_str().unwrap().to_string();
    let (_, p) = s
        .post(
            "/api/v1/projects",
            &b.admin_token,
            json!({ "name": "秘密プロジェクト", "folder_id": folder }),
        )
        .await;
    let project = p["id"].as_str().unwrap().to_string();
    let (_, r) = s
        .post(
            "/api/v1/roles",
            &b.admin_token,
            json!({ "name": "秘密ロール", "actions": ["view"] }),
        )
        .await;
    let role = r["id"].as_str().unwrap().to_string();
    let (user, _) = s
        .add_user(
            &b.admin_token,
            "secret@b.example.jp",
            &role,
            json!({ "type": "folder", "id": folder }),
        )
        .await;
    let (_, g) = s
        .get(&format!("/api/v1/users/{user}/grants"), &b.admin_token)
        .await;
    let grant = g["items"][0]["id"].as_str().unwrap().to_string();
    let (_, c) = s
        .post(
            "/api/v1/tenant/contacts",
            &b.admin_token,
            json!({ "name": "B", "email": "b-contact@b.example.jp" }),
        )
        .await;
    let contact = c["id"].as_str().unwrap().to_string();
    let res = s
        .client
        .post(format!(
            "{}/api/v1/projects/{project}/files?name=secret.txt",
            s.base
        ))
        .bearer_auth(&b.admin_token)
        .body("秘密の内容")
        .send()
        .await
        .unwrap();
    let up: Value = res.json().await.unwrap();
    let file = up["file"]["id"].as_str().unwrap().to_string();
    let (_, tk) = s
        .post(
            "/api/v1/me/tokens",
            &b.admin_token,
            json!({ "name": "b", "scopes": ["workspace:read"] }),
        )
        .await;
    let token_id = tk["id"].as_str().unwrap().to_string();
    let mut device = kura_testkit::webauthn::SoftAuthenticator::new(&s.services.config.public_url);
    let (_, o) = s
        .post("/api/v1/me/mfa/passkeys/options", &b.admin_token, json!({}))
        .await;
    let cred = device.register(&o["options"], &Default::default());
    let (_, pk) = s
        .post(
            "/api/v1/me/mfa/passkeys",
            &b.admin_token,
            json!({ "ceremony": o["ceremony"], "credential": cred }),
        )
        .await;
    let passkey = pk["passkey"]["id"].as_str().unwrap().to_string();
    let b_ids: HashMap<&str, String> = HashMap::from([
        ("token_id", token_id),
        ("passkey_id", passkey),
        ("folder_id", folder),
        ("project_id", project),
        ("user_id", user),
        ("grant_id", grant),
        ("role_id", role),
        ("contact_id", contact),
        ("file_id", file),
        ("session_id", kura_crypto::token::hash(&b.admin_token)),
    ]);
    // Ids that exist nowhere, same shape.
    let fake: HashMap<&str, String> = b_ids
        .keys()
        .map(|k| (*k, kura_domain::ids::new_id()))
        .collect();
    let before = snapshot(&s, &b.admin_token).await;

    // A's contract admin (every permission in A) and a member of A.
    let (_, a_member) = s
        .add_user(
            &a.admin_token,
            "member@a.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    let (_, a_folder) = s
        .post(
            "/api/v1/folders",
            &a.admin_token,
            json!({ "name": "A folder" }),
        )
        .await;
    assert!(a_folder["id"].is_string());
    let forbidden = secrets(&b_ids);
    let mut checked = 0;
    for (route, _) in kura_http::api::routes() {
        if route.path.contains("/auth/") || route.path.contains("/invitations/") {
            continue;
        }
        for token in [&a.admin_token, &a_member] {
            let with_b = s
                .call(
                    route.method,
                    &fill(route.path, &b_ids),
                    Some(token),
                    body_for(route.method, route.path, &b_ids),
                )
                .await;
            let with_fake = s
                .call(
                    route.method,
                    &fill(route.path, &fake),
                    Some(token),
                    body_for(route.method, route.path, &fake),
                )
                .await;
            let text = with_b.1.to_string();
            // A's own logs record the ids A sent (its own attempts); B's names never.
            let own_log = route.path.starts_with("/api/v1/audit")
                || route.path.starts_with("/api/v1/access-log");
            for secret in &forbidden {
                if own_log && b_ids.values().any(|v| v == secret) {
                    continue;
                }
                let head: String = text.chars().take(300).collect();
                assert!(
                    !text.contains(secret.as_str()),
                    "{backend:?} {} {} leaked {secret}: {head}",
                    route.method,
                    route.path
                );
            }
            if route.path.contains('{') {
                assert_eq!(
                    with_b.0,
                    StatusCode::NOT_FOUND,
                    "{backend:?} {} {} with B's ids: {}",
                    route.method,
                    route.path,
                    with_b.1
                );
            }
            // B's ids are indistinguishable from made-up ones (status and error body).
            assert_eq!(
                with_b.0, with_fake.0,
                "{backend:?} {} {}",
                route.method, route.path
            );
            if with_b.0.is_client_error() {
                assert_eq!(
                    with_b.1, with_fake.1,
                    "{backend:?} {} {}",
                    route.method, route.path
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} calls");

    // B is exactly as before, and A's denials were audited in A's chain.
    assert_eq!(
        snapshot(&s, &b.admin_token).await,
        before,
        "{backend:?}: tenant B changed"
    );
    let (_, audit) = s.get("/api/v1/audit?limit=1000", &a.admin_token).await;
    let denied = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "access.denied")
        .count();
    assert!(denied >= 10, "{backend:?}: only {denied} denials audited");
    let (_, audit_b) = s.get("/api/v1/audit?limit=1000", &b.admin_token).await;
    assert!(
        !audit_b.to_string().contains(&a.tenant_id),
        "A's activity leaked into B's log"
    );
    s.stop().await;
}

/// Accepts `email`'s invitation; returns (user id from `created`, session token).
async fn accept(s: &TestServer, created: &Value, email: &str) -> (String, String) {
    let token = s.invitation_token(email).await;
    let (st, body) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": token, "password": kura_testkit::PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    (
        created["id"].as_str().unwrap().to_string(),
        body["token"].as_str().unwrap().to_string(),
    )
}

kura_testkit::per_backend!(writes_obey_the_label_cap);
/// DATA-3 on every write path: a same-name upload over a file above the caller's cap is
/// refused with the answer of any taken name (409, nothing of the file: not its id, label,
/// tags or content), whether the file is live or in the trash, with or without `label=`;
/// nobody labels a file, folder or project above their cap.
async fn writes_obey_the_label_cap(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("capw").await;
    let tok = &t.admin_token;
    let p = s.project(tok, "見積").await;
    let (st, secret) = s
        .upload(tok, &p, "plan.txt", b"TOP-SECRET-PLAN".to_vec())
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let secret_id = secret["file"]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(
            "PATCH",
            &format!("/api/v1/files/{secret_id}"),
            Some(tok),
            Some(json!({ "label": "secret", "tags": ["役員"] })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, trashed) = s.upload(tok, &p, "old.txt", b"OLD-SECRET".to_vec()).await;
    assert_eq!(st, StatusCode::CREATED);
    let trashed_id = trashed["file"]["id"].as_str().unwrap().to_string();
    s.call(
        "PATCH",
        &format!("/api/v1/files/{trashed_id}"),
        Some(tok),
        Some(json!({ "label": "secret" })),
    )
    .await;
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/files/{trashed_id}"),
            Some(tok),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );

    let (st, created) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "capped@capw.example.jp", "role": "member", "max_label": "internal" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let (_, member) = accept(&s, &created, "capped@capw.example.jp").await;
    assert_eq!(
        s.get(&format!("/api/v1/files/{secret_id}"), &member)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Its content, in any version (one that exists or not), answers as a made-up id does —
    // to the capped member and to another tenant's admin: the version is looked up in the
    // same read as the file, but nothing about it is told before the permission check.
    let other = s.create_tenant("capw-other").await;
    let fetch = |token: String, path: String| {
        let (c, base) = (s.client.clone(), s.base.clone());
        async move {
            let res = c
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let made_up = fetch(
        member.clone(),
        "/api/v1/files/no-such-file/content".to_string(),
    )
    .await;
    assert_eq!(made_up.0, StatusCode::NOT_FOUND);
    for token in [member.clone(), other.admin_token.clone()] {
        for q in ["", "?version=1", "?version=99"] {
            let got = fetch(
                token.clone(),
                format!("/api/v1/files/{secret_id}/content{q}"),
            )
            .await;
            assert_eq!(got, made_up, "{b:?} content{q}");
        }
    }

    for (name, query) in [
        ("plan.txt", "&label=public"),
        ("plan.txt", ""),
        ("old.txt", ""),
        ("old.txt", "&label=internal"),
    ] {
        let res = reqwest::Client::new()
            .post(format!(
                "{}/api/v1/projects/{p}/files?name={name}{query}",
                s.base
            ))
            .bearer_auth(&member)
            .body("overwrite attempt")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT, "{b:?} {name}{query}");
        let text = res.text().await.unwrap();
        for leak in [
            &secret_id,
            &trashed_id,
            "secret",
            "役員",
            "plan.txt",
            "old.txt",
        ] {
            assert!(!text.contains(leak), "{b:?}: {text} reveals {leak}");
        }
    }
    // Nothing changed: one version each, still secret, content intact, still trashed.
    let (_, info) = s.get(&format!("/api/v1/files/{secret_id}"), tok).await;
    assert_eq!(info["file"]["label"], "secret", "{info}");
    assert_eq!(info["versions"].as_array().unwrap().len(), 1, "{info}");
    let (_, body) = s.download(tok, &secret_id).await;
    assert_eq!(&body[..], b"TOP-SECRET-PLAN");
    let (_, trash) = s.get(&format!("/api/v1/projects/{p}/trash"), tok).await;
    assert!(trash.to_string().contains(&trashed_id), "{trash}");
    let (_, audit) = s
        .get("/api/v1/audit?action=access.denied&limit=50", tok)
        .await;
    assert!(
        audit
            .to_string()
            .contains("same name as a file out of reach"),
        "{b:?}: refusals audited"
    );

    // No labels above the cap on any path.
    let (st, _) = s.upload(&member, &p, "new.txt", b"x".to_vec()).await;
    assert_eq!(st, StatusCode::CREATED);
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/projects/{p}/files?name=hidden.txt&label=secret",
            s.base
        ))
        .bearer_auth(&member)
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{b:?}: upload labelled above the cap: {}",
        res.status()
    );
    let (_, admin_folder) = s
        .post("/api/v1/folders", tok, json!({"name": "共有"}))
        .await;
    let fid = admin_folder["id"].as_str().unwrap();
    // An admin capped at internal (folder and project creation).
    let (st, created) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "capadm@capw.example.jp", "role": "admin", "max_label": "internal" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let (_, capadm) = accept(&s, &created, "capadm@capw.example.jp").await;
    let (st, _) = s
        .post(
            "/api/v1/folders",
            &capadm,
            json!({"name": "上", "label": "secret"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b:?}: folder above the cap");
    let (st, _) = s
        .post(
            "/api/v1/projects",
            &capadm,
            json!({"name": "上", "folder_id": fid, "label": "confidential"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b:?}: project above the cap");
    let (st, _) = s
        .call(
            "PATCH",
            &format!("/api/v1/folders/{fid}"),
            Some(&capadm),
            Some(json!({"label": "secret"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b:?}: relabel above the cap");
    let (st, _) = s
        .post(
            "/api/v1/folders",
            &capadm,
            json!({"name": "内", "label": "internal"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b:?}: within the cap");
    s.stop().await;
}

kura_testkit::per_backend!(nobody_grants_above_their_cap);
/// Nobody grants more than they hold — in the label dimension too: an admin capped at
/// `internal` cannot lift their own cap, give uncapped or higher-capped grants, invite
/// uncapped admins or create uncapped service accounts; and cannot act on users who reach
/// further (freeze, end sessions, mint a service account's tokens). An admin without tenant
/// management cannot end the contract admin's sessions.
async fn nobody_grants_above_their_cap(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("capg").await;
    let tok = &t.admin_token;
    let p = s.project(tok, "機密").await;
    s.call(
        "PATCH",
        &format!("/api/v1/projects/{p}"),
        Some(tok),
        Some(json!({"label": "confidential"})),
    )
    .await;
    let (_, created) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "capadm@capg.example.jp", "role": "admin", "max_label": "internal" }),
        )
        .await;
    let (capadm_id, capadm) = accept(&s, &created, "capadm@capg.example.jp").await;
    let (_, created) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "plain@capg.example.jp", "role": "member" }),
        )
        .await;
    let (plain_id, _plain) = accept(&s, &created, "plain@capg.example.jp").await;
    let (_, created) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "low@capg.example.jp", "role": "member", "max_label": "public" }),
        )
        .await;
    let (low_id, _low) = accept(&s, &created, "low@capg.example.jp").await;
    assert_eq!(
        s.get(&format!("/api/v1/projects/{p}"), &capadm).await.0,
        StatusCode::NOT_FOUND
    );

    // Lifting their own cap, or giving more than they reach: refused.
    for body in [
        json!({ "role": "admin", "scope": {"type": "tenant"} }),
        json!({ "role": "guest", "scope": {"type": "tenant"} }),
        json!({ "role": "admin", "scope": {"type": "tenant"}, "max_label": "confidential" }),
    ] {
        for target in [&capadm_id, &low_id] {
            let (st, v) = s
                .post(
                    &format!("/api/v1/users/{target}/grants"),
                    &capadm,
                    body.clone(),
                )
                .await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{b:?} {body} → {target}: {v}");
        }
    }
    let (st, _) = s
        .post(
            &format!("/api/v1/users/{low_id}/grants"),
            &capadm,
            json!({ "role": "guest", "scope": {"type": "tenant"}, "max_label": "internal" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b:?}: within the cap");
    let (st, _) = s
        .post(
            "/api/v1/users",
            &capadm,
            json!({ "email": "new-admin@capg.example.jp", "role": "admin" }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b:?}: uncapped invitation");
    let (st, _) = s
        .post(
            "/api/v1/service-accounts",
            &capadm,
            json!({ "name": "夜間", "role": "member", "scope": {"type": "tenant"} }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b:?}: uncapped service account");
    let (st, _) = s
        .post(
            "/api/v1/users",
            &capadm,
            json!({ "email": "ok@capg.example.jp", "role": "member", "max_label": "internal" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b:?}: a capped invitation");
    // Still capped: the confidential project stays out of reach.
    assert_eq!(
        s.get(&format!("/api/v1/projects/{p}"), &capadm).await.0,
        StatusCode::NOT_FOUND
    );

    // Actions on users who reach further: refused; on users who reach less: allowed.
    let (st, _) = s
        .post(
            &format!("/api/v1/users/{plain_id}/sessions/end"),
            &capadm,
            json!({}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "{b:?}: end an uncapped member's sessions"
    );
    let (st, _) = s
        .call(
            "POST",
            &format!("/api/v1/users/{plain_id}/freeze"),
            Some(&capadm),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "{b:?}: freeze an uncapped member"
    );
    let (st, _) = s
        .post(
            &format!("/api/v1/users/{low_id}/sessions/end"),
            &capadm,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b:?}");
    let (_, svc) = s
        .post(
            "/api/v1/service-accounts",
            tok,
            json!({ "name": "全権", "role": "member", "scope": {"type": "tenant"} }),
        )
        .await;
    let svc = svc["id"].as_str().unwrap();
    let (st, _) = s
        .post(
            &format!("/api/v1/users/{svc}/tokens"),
            &capadm,
            json!({ "name": "x", "scopes": ["files:read"], "expires_in_days": 1 }),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "{b:?}: token for an uncapped account"
    );

    // An admin without tenant management (uncapped) and the contract admin's sessions.
    let (_, created) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "adm@capg.example.jp", "role": "admin" }),
        )
        .await;
    let (_, adm) = accept(&s, &created, "adm@capg.example.jp").await;
    for _ in 0..3 {
        let (st, _) = s
            .post(
                &format!("/api/v1/users/{}/sessions/end", t.admin_id),
                &adm,
                json!({}),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "{b:?}: the contract admin's sessions"
        );
    }
    let (st, _) = s.get("/api/v1/me", tok).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "{b:?}: the contract admin is still logged in"
    );
    s.stop().await;
}

kura_testkit::per_backend!(capped_audit_readers_do_not_see_names_above_their_cap);
/// A reader of the audit log whose access is capped sees what happened to items above the
/// cap only as a redacted entry (no name, no id) in listings, and not at all in exports
/// (which are then marked filtered and still verify offline); an uncapped reader sees all.
async fn capped_audit_readers_do_not_see_names_above_their_cap(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("capaudit").await;
    let tok = &t.admin_token;
    let p = s.project(tok, "役員会").await;
    let (_, up) = s.upload(tok, &p, "secret-plan.txt", b"x".to_vec()).await;
    let fid = up["file"]["id"].as_str().unwrap().to_string();
    s.call(
        "PATCH",
        &format!("/api/v1/files/{fid}"),
        Some(tok),
        Some(json!({ "label": "secret" })),
    )
    .await;
    s.upload(tok, &p, "lunch-menu.txt", b"y".to_vec()).await;
    let (_, created) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "auditor@capaudit.example.jp", "role": "admin", "max_label": "internal" }),
        )
        .await;
    let (_, capped) = accept(&s, &created, "auditor@capaudit.example.jp").await;

    let (st, list) = s.get("/api/v1/audit?limit=500", &capped).await;
    assert_eq!(st, StatusCode::OK);
    let text = list.to_string();
    assert!(!text.contains("secret-plan"), "{b:?}: {text}");
    assert!(!text.contains(&fid), "{b:?}: the id is shown");
    assert!(text.contains("lunch-menu"), "{b:?}: within the cap");
    assert!(text.contains("above your label cap"), "{b:?}");
    let res = s
        .client
        .get(format!("{}/api/v1/audit/export?format=jsonl", s.base))
        .bearer_auth(&capped)
        .send()
        .await
        .unwrap();
    let export = res.text().await.unwrap();
    assert!(
        !export.contains("secret-plan") && !export.contains(&fid),
        "{b:?}"
    );
    let header: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(header["contiguous"], false);
    let (_, key) = s
        .call("GET", "/.well-known/kura-audit-key", None, None)
        .await;
    kura_crypto::export::verify_export(export.as_bytes(), key["public_key"].as_str().unwrap())
        .unwrap();
    // The uncapped contract admin sees everything.
    let (_, all) = s.get("/api/v1/audit?limit=500", tok).await;
    assert!(all.to_string().contains("secret-plan"), "{b:?}");
    s.stop().await;
}
