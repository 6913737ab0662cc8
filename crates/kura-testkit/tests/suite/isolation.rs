//! TEN-3: with two tenants, for every API route, tenant A's users using tenant B's ids get
//! exactly what a made-up id gets (404 for ids in the path) — never B's data, never a count
//! — and B's data is unchanged afterwards. On both backends.

use kura_testkit::{backends, StatusCode, TestServer};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_a_cannot_reach_tenant_b() {
    for backend in backends() {
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
        let mut device =
            kura_testkit::webauthn::SoftAuthenticator::new(&s.services.config.public_url);
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
}
