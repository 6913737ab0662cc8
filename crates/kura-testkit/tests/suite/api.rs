//! The API as a user drives it.

use kura_testkit::{Backend, StatusCode, TestServer, PASSWORD};
use serde_json::{json, Value};

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn audit_actions(s: &TestServer, token: &str) -> Vec<(String, String)> {
    let (st, body) = s.get("/api/v1/audit?limit=1000", token).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

kura_testkit::per_backend!(login_logout_and_failures);
async fn login_logout_and_failures(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    // Wrong password, unknown user, unknown tenant: one answer.
    for (tenant, email, pw) in [
        ("acme", t.admin_email.as_str(), "wrong-password-123"),
        ("acme", "nobody@acme.example.jp", PASSWORD),
        ("nope", t.admin_email.as_str(), PASSWORD),
    ] {
        let (st, body) = s.login(tenant, email, pw).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{b:?}");
        assert_eq!(body["error"]["code"], "bad_credentials");
    }
    let (st, body) = s
        .login("ACME", &t.admin_email.to_uppercase(), PASSWORD)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("kss_"));
    let (st, me) = s.get("/api/v1/me", &token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["user"]["email"], t.admin_email);
    assert_eq!(me["tenant"]["time_zone"], "Asia/Tokyo");
    assert!(me["user"].get("password_hash").is_none());
    let (st, _) = s
        .call("POST", "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, body) = s.get("/api/v1/me", &token).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (st, _) = s.call("GET", "/api/v1/me", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s.get("/api/v1/me", "kss_forged").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let actions = audit_actions(&s, &t.admin_token).await;
    assert!(
        actions.contains(&("auth.login".into(), "failure".into())),
        "{actions:?}"
    );
    assert!(actions.contains(&("auth.login".into(), "success".into())));
    assert!(actions.contains(&("auth.logout".into(), "success".into())));
    // The unknown-tenant attempt is in the system chain, not in any tenant's.
    let mut tx = s.services.store.system_read().await.unwrap();
    let sys = kura_store::audit::list(
        &mut tx,
        &kura_domain::TenantId::from_string("_system"),
        None,
        100,
    )
    .await
    .unwrap();
    assert!(
        sys.iter()
            .any(|e| e.record.action == "auth.login"
                && e.record.details["reason"] == "unknown_tenant")
    );
    drop(tx);
    s.stop().await;
}

kura_testkit::per_backend!(folders_and_projects);
async fn folders_and_projects(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    let tok = &t.admin_token;
    let (st, f1) = s
        .post("/api/v1/folders", tok, json!({ "name": "設計" }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{f1}");
    let f1id = f1["id"].as_str().unwrap();
    let (st, f2) = s
        .post(
            "/api/v1/folders",
            tok,
            json!({ "name": "図面", "parent_id": f1id }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let f2id = f2["id"].as_str().unwrap();
    let (st, p) = s
        .post(
            "/api/v1/projects",
            tok,
            json!({ "name": "A棟", "folder_id": f2id }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let pid = p["id"].as_str().unwrap();

    // Rename and move.
    let (st, r) = s
        .call(
            "PATCH",
            &format!("/api/v1/folders/{f2id}"),
            Some(tok),
            Some(json!({ "name": "図面2" })),
        )
        .await;
    assert_eq!((st, r["name"].as_str()), (StatusCode::OK, Some("図面2")));
    let (st, r) = s
        .call(
            "PATCH",
            &format!("/api/v1/folders/{f1id}"),
            Some(tok),
            Some(json!({ "parent_id": f2id })),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a folder cannot move below itself: {r}"
    );
    let (st, r) = s
        .call(
            "PATCH",
            &format!("/api/v1/folders/{f2id}"),
            Some(tok),
            Some(json!({ "parent_id": null })),
        )
        .await;
    assert_eq!((st, r["parent_id"].clone()), (StatusCode::OK, Value::Null));
    let (st, r) = s
        .call(
            "PATCH",
            &format!("/api/v1/projects/{pid}"),
            Some(tok),
            Some(json!({ "folder_id": f1id, "name": "B棟" })),
        )
        .await;
    assert_eq!(
        (st, r["folder_id"].as_str(), r["name"].as_str()),
        (StatusCode::OK, Some(f1id), Some("B棟"))
    );

    // Listing, one item.
    let (_, list) = s.get("/api/v1/folders", tok).await;
    assert_eq!(ids(&list).len(), 2);
    let (st, one) = s.get(&format!("/api/v1/projects/{pid}"), tok).await;
    assert_eq!((st, one["name"].as_str()), (StatusCode::OK, Some("B棟")));

    // Bad input is refused with a clear error and nothing is written.
    let (st, e) = s
        .post("/api/v1/folders", tok, json!({ "name": "  " }))
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid"))
    );
    let (st, e) = s
        .post("/api/v1/folders", tok, json!({ "name": "a/b" }))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, e) = s
        .post(
            "/api/v1/projects",
            tok,
            json!({ "name": "x", "folder_id": "no-such-folder" }),
        )
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let res = s
        .client
        .post(format!("{}/api/v1/folders", s.base))
        .bearer_auth(tok)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().contains_key("x-request-id"));
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], "bad_request");
    let big = json!({ "name": "x".repeat(2 * 1024 * 1024) });
    // The server answers 413 as soon as the limit is passed and closes the connection;
    // the client may still be writing and then sees the pipe broken instead.
    // (A client of its own: the connection the server closes is not reused.)
    let res = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(format!("{}/api/v1/folders", s.base))
        .bearer_auth(tok)
        .json(&big)
        .send()
        .await;
    match res {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    let (_, list) = s.get("/api/v1/folders", tok).await;
    assert_eq!(ids(&list).len(), 2, "failed requests wrote nothing");

    // Delete: a non-empty folder is refused.
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/api/v1/folders/{f1id}"),
            Some(tok),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/projects/{pid}"),
            Some(tok),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/folders/{f1id}"),
            Some(tok),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/api/v1/folders/{f1id}"), tok).await.0,
        StatusCode::NOT_FOUND
    );

    let actions: Vec<String> = audit_actions(&s, tok)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    for a in [
        "folder.create",
        "folder.rename",
        "folder.move",
        "project.create",
        "project.move",
        "project.delete",
        "folder.delete",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
    s.stop().await;
}

kura_testkit::per_backend!(users_roles_freeze_and_delete);
async fn users_roles_freeze_and_delete(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    let adm = &t.admin_token;
    let (_, f) = s.post("/api/v1/folders", adm, json!({ "name": "F" })).await;
    let fid = f["id"].as_str().unwrap().to_string();
    let (mid, member) = s
        .add_user(
            adm,
            "member@acme.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    let (_gid, guest) = s
        .add_user(
            adm,
            "guest@acme.example.jp",
            "guest",
            json!({ "type": "tenant" }),
        )
        .await;
    let (aid, admin2) = s
        .add_user(
            adm,
            "admin@acme.example.jp",
            "admin",
            json!({ "type": "tenant" }),
        )
        .await;

    // Members see the workspace but not the user list; guests cannot create.
    assert_eq!(s.get("/api/v1/folders", &member).await.0, StatusCode::OK);
    assert_eq!(
        s.get("/api/v1/users", &member).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(
            "/api/v1/projects",
            &member,
            json!({ "name": "m", "folder_id": fid })
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        s.post(
            "/api/v1/projects",
            &guest,
            json!({ "name": "g", "folder_id": fid })
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post("/api/v1/folders", &member, json!({ "name": "m" }))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/api/v1/tenant/contacts", &admin2).await.0,
        StatusCode::FORBIDDEN,
        "contacts are the contract admin's"
    );

    // An admin freezes the member: their live token stops at once.
    assert_eq!(
        s.post(&format!("/api/v1/users/{mid}/freeze"), &admin2, json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/api/v1/me", &member).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login("acme", "member@acme.example.jp", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, u) = s.get(&format!("/api/v1/users/{mid}"), adm).await;
    assert_eq!(u["user"]["status"], "frozen");
    assert_eq!(
        s.post(&format!("/api/v1/users/{mid}/freeze"), adm, json!({}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.post(&format!("/api/v1/users/{mid}/unfreeze"), adm, json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (st, body) = s.login("acme", "member@acme.example.jp", PASSWORD).await;
    assert_eq!(st, StatusCode::OK);
    let member = body["token"].as_str().unwrap().to_string();

    // Nobody freezes themselves; an admin cannot freeze the contract admin; the last
    // contract admin cannot be frozen by anyone.
    assert_eq!(
        s.post(&format!("/api/v1/users/{aid}/freeze"), &admin2, json!({}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{}/freeze", t.admin_id),
            &admin2,
            json!({})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/users/{}", t.admin_id),
            Some(&admin2),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // An admin cannot make themselves (or anyone) contract admin.
    let (st, _) = s
        .post(
            &format!("/api/v1/users/{aid}/grants"),
            &admin2,
            json!({ "role": "contract_admin" }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Delete ends the session and the user is gone.
    assert_eq!(
        s.call("DELETE", &format!("/api/v1/users/{mid}"), Some(adm), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/api/v1/me", &member).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get(&format!("/api/v1/users/{mid}"), adm).await.0,
        StatusCode::NOT_FOUND
    );

    let (_, users) = s.get("/api/v1/users", adm).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 3);
    let actions: Vec<(String, String)> = audit_actions(&s, adm).await;
    for a in [
        "user.invite",
        "user.activate",
        "user.freeze",
        "user.unfreeze",
        "user.delete",
    ] {
        assert!(actions.iter().any(|x| x.0 == a), "{a} not audited");
    }
    assert!(
        actions.contains(&("access.denied".into(), "denied".into())),
        "denials are audited"
    );
    s.stop().await;
}

kura_testkit::per_backend!(custom_roles_and_scoped_grants);
async fn custom_roles_and_scoped_grants(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    let adm = &t.admin_token;
    let (_, f1) = s
        .post("/api/v1/folders", adm, json!({ "name": "現場写真" }))
        .await;
    let (_, f2) = s
        .post("/api/v1/folders", adm, json!({ "name": "経理" }))
        .await;
    let f1 = f1["id"].as_str().unwrap().to_string();
    let f2 = f2["id"].as_str().unwrap().to_string();
    let (_, p2) = s
        .post(
            "/api/v1/projects",
            adm,
            json!({ "name": "決算", "folder_id": f2 }),
        )
        .await;
    let p2 = p2["id"].as_str().unwrap().to_string();

    let (st, role) = s
        .post(
            "/api/v1/roles",
            adm,
            json!({ "name": "ドローン操縦者", "actions": ["view", "project_create"] }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    let rid = role["id"].as_str().unwrap().to_string();
    let (st, e) = s
        .post(
            "/api/v1/roles",
            adm,
            json!({ "name": "x", "actions": ["fly"] }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, _) = s
        .post(
            "/api/v1/roles",
            adm,
            json!({ "name": "ドローン操縦者", "actions": ["view"] }),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    let (did, drone) = s
        .add_user(
            adm,
            "drone@acme.example.jp",
            &rid,
            json!({ "type": "folder", "id": f1 }),
        )
        .await;
    // Creates projects in its folder only; the other folder does not exist for it.
    let (st, p) = s
        .post(
            "/api/v1/projects",
            &drone,
            json!({ "name": "A区画", "folder_id": f1 }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let pid = p["id"].as_str().unwrap();
    assert_eq!(
        s.post(
            "/api/v1/projects",
            &drone,
            json!({ "name": "x", "folder_id": f2 })
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/api/v1/projects/{p2}"), &drone).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.call(
            "PATCH",
            &format!("/api/v1/projects/{pid}"),
            Some(&drone),
            Some(json!({ "name": "y" }))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (_, visible) = s.get("/api/v1/folders", &drone).await;
    assert_eq!(ids(&visible), vec![f1.clone()]);
    let (_, visible) = s.get("/api/v1/projects", &drone).await;
    assert_eq!(ids(&visible), vec![pid.to_string()]);

    // A folder-scoped admin manages that folder only and cannot escalate.
    let (fa_id, fadmin) = s
        .add_user(
            adm,
            "fadmin@acme.example.jp",
            "admin",
            json!({ "type": "folder", "id": f1 }),
        )
        .await;
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{did}/grants"),
            &fadmin,
            json!({ "role": "guest", "scope": { "type": "folder", "id": f1 } })
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{did}/grants"),
            &fadmin,
            json!({ "role": "guest", "scope": { "type": "folder", "id": f2 } })
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{fa_id}/grants"),
            &fadmin,
            json!({ "role": "admin" })
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/api/v1/users", &fadmin).await.0,
        StatusCode::FORBIDDEN
    );

    // Revoking the grant takes the access away at once.
    let (_, grants) = s.get(&format!("/api/v1/users/{did}/grants"), adm).await;
    for g in grants["items"].as_array().unwrap() {
        let gid = g["id"].as_str().unwrap();
        assert_eq!(
            s.call(
                "DELETE",
                &format!("/api/v1/users/{did}/grants/{gid}"),
                Some(adm),
                None
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        s.get(&format!("/api/v1/projects/{pid}"), &drone).await.0,
        StatusCode::NOT_FOUND
    );
    // Deleting a role deletes its grants.
    assert_eq!(
        s.call("DELETE", &format!("/api/v1/roles/{rid}"), Some(adm), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/api/v1/roles/{rid}"), adm).await.0,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

kura_testkit::per_backend!(invitations_password_policy_and_settings);
async fn invitations_password_policy_and_settings(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    let adm = &t.admin_token;
    let (st, _) = s
        .post(
            "/api/v1/users",
            adm,
            json!({ "email": "new@acme.example.jp", "role": "member" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        s.post(
            "/api/v1/users",
            adm,
            json!({ "email": "NEW@acme.example.jp" })
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.post("/api/v1/users", adm, json!({ "email": "not-an-email" }))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let token = s.invitation_token("new@acme.example.jp").await;
    // Weak passwords are refused and the invitation stays usable.
    for weak in ["short1", "password123", "acme12345678", "qwertyuiop12"] {
        let (st, e) = s
            .call(
                "POST",
                "/api/v1/invitations/accept",
                None,
                Some(json!({ "token": token, "password": weak })),
            )
            .await;
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password")),
            "{weak}"
        );
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
    // Single use.
    let (st, _) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": token, "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Expiry (7 days by default), driven by the clock.
    s.post(
        "/api/v1/users",
        adm,
        json!({ "email": "late@acme.example.jp" }),
    )
    .await;
    let late = s.invitation_token("late@acme.example.jp").await;
    s.clock.advance_secs(7 * 86_400 + 1);
    let (st, _) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": late, "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // (The admin's session expired meanwhile, too.)
    let (st, body) = s.login("acme", &t.admin_email, PASSWORD).await;
    assert_eq!(st, StatusCode::OK);
    let adm = body["token"].as_str().unwrap().to_string();

    // The contract admin tightens the policy.
    let (_, tenant) = s.get("/api/v1/tenant", &adm).await;
    let mut settings = tenant["settings"].clone();
    settings["password_policy"]["min_length"] = json!(24);
    settings["time_zone"] = json!("Mars/Olympus");
    assert_eq!(
        s.call(
            "PUT",
            "/api/v1/tenant/settings",
            Some(&adm),
            Some(settings.clone())
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    settings["time_zone"] = json!("Asia/Tokyo");
    let (st, t2) = s
        .call("PUT", "/api/v1/tenant/settings", Some(&adm), Some(settings))
        .await;
    assert_eq!(
        (st, t2["settings"]["password_policy"]["min_length"].as_i64()),
        (StatusCode::OK, Some(24))
    );
    s.post(
        "/api/v1/users",
        &adm,
        json!({ "email": "strict@acme.example.jp" }),
    )
    .await;
    let strict = s.invitation_token("strict@acme.example.jp").await;
    let (st, e) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": strict, "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

    // Contacts (TEN-5).
    let (st, c) = s.post("/api/v1/tenant/contacts", &adm, json!({ "name": "情報システム部", "email": "it@acme.example.jp", "purpose": "security" })).await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let (_, cs) = s.get("/api/v1/tenant/contacts", &adm).await;
    assert_eq!(cs["items"][0]["email"], "it@acme.example.jp");
    s.stop().await;
}

kura_testkit::per_backend!(session_idle_and_absolute_timeouts);
async fn session_idle_and_absolute_timeouts(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    let (_, tenant) = s.get("/api/v1/tenant", &t.admin_token).await;
    let mut settings = tenant["settings"].clone();
    settings["session_policy"] =
        json!({ "idle_timeout_secs": 600, "absolute_lifetime_secs": 3600 });
    assert_eq!(
        s.call(
            "PUT",
            "/api/v1/tenant/settings",
            Some(&t.admin_token),
            Some(settings)
        )
        .await
        .0,
        StatusCode::OK
    );

    // Idle: unused for 10 minutes, the session ends.
    let idle = s.login("acme", &t.admin_email, PASSWORD).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.clock.advance_secs(599);
    assert_eq!(s.get("/api/v1/me", &idle).await.0, StatusCode::OK);
    s.clock.advance_secs(601);
    assert_eq!(s.get("/api/v1/me", &idle).await.0, StatusCode::UNAUTHORIZED);

    // Absolute: kept busy, it still ends after an hour.
    let busy = s.login("acme", &t.admin_email, PASSWORD).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..7 {
        s.clock.advance_secs(500);
        assert_eq!(s.get("/api/v1/me", &busy).await.0, StatusCode::OK);
    }
    s.clock.advance_secs(150);
    assert_eq!(s.get("/api/v1/me", &busy).await.0, StatusCode::UNAUTHORIZED);

    // The shortest idle limit (60 s): a session used every 35 s stays alive — its last
    // use is written often enough — and one left for 61 s ends.
    let admin = s.login("acme", &t.admin_email, PASSWORD).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, tenant) = s.get("/api/v1/tenant", &admin).await;
    let mut settings = tenant["settings"].clone();
    settings["session_policy"] = json!({ "idle_timeout_secs": 60, "absolute_lifetime_secs": 3600 });
    assert_eq!(
        s.call(
            "PUT",
            "/api/v1/tenant/settings",
            Some(&admin),
            Some(settings)
        )
        .await
        .0,
        StatusCode::OK
    );
    let active = s.login("acme", &t.admin_email, PASSWORD).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..10 {
        s.clock.advance_secs(35);
        assert_eq!(
            s.get("/api/v1/me", &active).await.0,
            StatusCode::OK,
            "{b:?}: an active session died after {} s",
            (i + 1) * 35
        );
    }
    s.clock.advance_secs(61);
    assert_eq!(
        s.get("/api/v1/me", &active).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route_and_health() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (st, doc) = s.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = kura_http::api::routes();
    assert!(routes.len() >= 35);
    for (r, _) in &routes {
        let op = &doc["paths"][r.path][r.method];
        assert!(op.is_object(), "{} {} is not documented", r.method, r.path);
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(op["responses"][r.ok.to_string()].is_object());
        // Every success body and every request body has a schema from its wire type.
        let ok_content = &op["responses"][r.ok.to_string()]["content"];
        if r.ok == 204 {
            assert!(
                ok_content.is_null(),
                "{} {}: 204 with a body",
                r.method,
                r.path
            );
        } else {
            let media = ok_content
                .as_object()
                .unwrap_or_else(|| panic!("{} {}: no documented response body", r.method, r.path));
            assert!(
                media.values().all(|m| m["schema"].is_object()),
                "{} {}: a response without a schema",
                r.method,
                r.path
            );
        }
        if r.body.is_some() {
            assert!(
                op["requestBody"]["content"]
                    .as_object()
                    .is_some_and(|m| m.values().all(|m| m["schema"].is_object())),
                "{} {}: request body without a schema",
                r.method,
                r.path
            );
        }
        // The documented route exists in the router (an unknown /api path says "no_route").
        let path = r.path.replace(['{', '}'], "");
        let (_, body) = s
            .call(
                r.method,
                &path,
                None,
                if r.body.is_some() {
                    Some(json!({}))
                } else {
                    None
                },
            )
            .await;
        assert_ne!(
            body["error"]["code"], "no_route",
            "{} {} is documented but not routed",
            r.method, r.path
        );
    }
    // Query parameters are documented, from the handlers' query types.
    let params = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    for (path, method, names) in [
        (
            "/api/v1/audit",
            "get",
            &[
                "before", "limit", "from", "to", "user", "action", "ip", "result", "path", "format",
            ][..],
        ),
        (
            "/api/v1/access-log/export",
            "get",
            &["format", "from", "to"][..],
        ),
        (
            "/api/v1/projects/{project_id}/files",
            "get",
            &[
                "q", "label", "tag", "attr", "sort", "order", "after", "limit",
            ][..],
        ),
        (
            "/api/v1/search",
            "get",
            &["q", "sort", "after", "limit"][..],
        ),
        (
            "/api/v1/projects/{project_id}/files",
            "post",
            &["name", "label"][..],
        ),
        ("/api/v1/files/{file_id}/content", "get", &["version"][..]),
        (
            "/api/v1/tenant/usage/daily",
            "get",
            &["from", "to", "by"][..],
        ),
        ("/api/v1/tenant/settings", "patch", &["confirm_lockout"][..]),
        ("/api/v1/folders", "get", &["q", "label", "tag", "attr"][..]),
    ] {
        let got = params(path, method);
        for n in names {
            assert!(
                got.contains(&n.to_string()),
                "{method} {path}: query parameter {n} undocumented ({got:?})"
            );
        }
    }
    // Every documented operation is a route (no stale documentation).
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, routes.len());
    let (st, body) = s.call("GET", "/api/v1/nothing-here", None, None).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_route"))
    );
    assert_eq!(
        s.call("GET", "/healthz", None, None).await,
        (StatusCode::OK, json!({ "status": "ok" }))
    );
    let (st, r) = s.call("GET", "/readyz", None, None).await;
    assert_eq!((st, r["database"].as_str()), (StatusCode::OK, Some("ok")));
    s.stop().await;
}

kura_testkit::per_backend!(access_log_records_requests);
async fn access_log_records_requests(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    for _ in 0..3 {
        s.get("/api/v1/folders", &t.admin_token).await;
    }
    s.get("/api/v1/folders/nope", &t.admin_token).await;
    // The writer flushes batches within a fraction of a second; poll (bounded).
    let mut entries = Value::Null;
    for _ in 0..50 {
        let (_, body) = s.get("/api/v1/access-log?limit=100", &t.admin_token).await;
        let n = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["path"] == "/api/v1/folders")
            .count();
        entries = body;
        if n >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let items = entries["items"].as_array().unwrap();
    let e = items
        .iter()
        .find(|e| e["path"] == "/api/v1/folders")
        .expect("logged");
    assert_eq!(e["method"], "GET");
    assert_eq!(e["status"], 200);
    assert_eq!(e["ip"], "127.0.0.1");
    assert_eq!(e["user_id"], t.admin_id.as_str());
    assert!(e["bytes"].as_i64().unwrap() > 0);
    assert!(e["latency_us"].as_i64().is_some());
    assert!(e["request_id"].as_str().is_some());
    assert!(items
        .iter()
        .any(|e| e["path"] == "/api/v1/folders/nope" && e["status"] == 404));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_need_csrf() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("acme").await;
    let cookie = format!("__Host-kura_session={}", t.admin_token);
    // API with the cookie but no CSRF header: refused, nothing created.
    let res = s
        .client
        .post(format!("{}/api/v1/folders", s.base))
        .header("cookie", &cookie)
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Console form without the token: redirected with an error, nothing created.
    let res = s
        .client
        .post(format!("{}/folders", s.base))
        .header("cookie", &cookie)
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("err=csrf"));
    let (_, list) = s.get("/api/v1/folders", &t.admin_token).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    // Login form without the double-submit cookie: refused.
    let res = s
        .client
        .post(format!("{}/login", s.base))
        .form(&[
            ("tenant", "acme"),
            ("email", t.admin_email.as_str()),
            ("password", PASSWORD),
            ("_csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("err=csrf"));
    assert!(res.headers().get("set-cookie").is_none());
    // Pages carry the security headers.
    let res = s
        .client
        .get(format!("{}/login", s.base))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    let set = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.starts_with("__Host-kura_csrf=")
            && set.contains("Secure")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
    );
    s.stop().await;
}

kura_testkit::per_backend!(spoofing_names_are_refused);
/// Names that display as something else are refused (422) on every naming path — files,
/// folders, projects — including bytes that are not UTF-8 in the upload's query string.
async fn spoofing_names_are_refused(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("spoof").await;
    let tok = &t.admin_token;
    let p = s.project(tok, "P").await;
    for bad in [
        "invoice\u{202E}fdp.exe",
        "zero\u{200B}width",
        "\u{FEFF}bom",
        "sep\u{2028}line",
        "..",
    ] {
        let (st, v) = s.post("/api/v1/folders", tok, json!({ "name": bad })).await;
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{b:?} folder {bad:?}: {v}"
        );
        let (st, v) = s
            .post(
                "/api/v1/projects",
                tok,
                json!({ "name": bad, "folder_id": s.get("/api/v1/folders", tok).await.1["items"][0]["id"] }),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{b:?} project {bad:?}: {v}"
        );
        let (st, v) = s.upload(tok, &p, &urlencode(bad), b"x".to_vec()).await;
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{b:?} file {bad:?}: {v}"
        );
    }
    // Not UTF-8: refused, not stored as U+FFFD.
    let (st, v) = s.upload(tok, &p, "bad%FF%FEname.txt", b"x".to_vec()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b:?}: {v}");
    let (_, files) = s.get(&format!("/api/v1/projects/{p}/files"), tok).await;
    assert_eq!(files["items"].as_array().unwrap().len(), 0, "{files}");
    // An ordinary Japanese name with an emoji sequence is fine.
    let (st, _) = s
        .upload(
            tok,
            &p,
            &urlencode("家族👨\u{200D}👩\u{200D}👧.jpg"),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The console shows only its own messages: error text in a link (`detail=`, an unknown
/// `reason` or `field`) is never displayed; known reasons are translated. `POST /lang`
/// goes back only to console pages: no open redirect, no 500 on CR/LF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_messages_and_redirects_come_only_from_kura() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("phish").await;
    let cookie = format!("__Host-kura_session={}; kura_lang=ja", t.admin_token);
    let page = |q: &'static str| {
        let (c, base, cookie) = (s.client.clone(), s.base.clone(), cookie.clone());
        async move {
            c.get(format!("{base}/users?{q}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let html = page("err=conflict&detail=Your+account+is+locked.+Call+https%3A%2F%2Fevil.example&reason=evil&field=evil_example_com").await;
    assert!(html.contains("この操作は実行できません。"), "{html}");
    assert!(!html.contains("evil"), "crafted text shown");
    assert!(!html.contains("Call"), "crafted text shown");
    let html = page("err=conflict&reason=folder_not_empty").await;
    assert!(html.contains("フォルダーが空ではありません。"));
    let html = page("err=weak_password&reason=pw_too_short&n=12").await;
    assert!(html.contains("12 文字以上"));
    let html = page("err=weak_password&reason=pw_too_short&n=12%20call%20us").await;
    assert!(!html.contains("call us"));

    for (back, want) in [
        ("/%09/evil.example/phish", "/"),
        ("//evil.example", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        ("/audit?user=x", "/audit?user=x"),
    ] {
        let res = s
            .client
            .post(format!("{}/lang", s.base))
            .form(&[("lang", "en"), ("back", back), ("_csrf", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{back:?}");
        assert_eq!(res.headers()["location"], want, "{back:?}");
    }
    s.stop().await;
}

kura_testkit::per_backend!(settings_refuse_unknown_keys_and_merge);
/// Settings are never reset by accident: a misspelt key is refused (422 naming it) and
/// nothing changes; PATCH changes only what it names (nested objects too); PUT must name
/// every setting.
async fn settings_refuse_unknown_keys_and_merge(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("settings").await;
    let tok = &t.admin_token;
    let (_, tenant) = s.get("/api/v1/tenant", tok).await;
    let mut settings = tenant["settings"].clone();
    settings["ip_allowlist"] = json!(["127.0.0.0/8"]);
    settings["storage_quota_bytes"] = json!(1_000_000);
    settings["password_policy"]["min_length"] = json!(14);
    let (st, v) = s
        .call(
            "PUT",
            "/api/v1/tenant/settings",
            Some(tok),
            Some(settings.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let before = s.get("/api/v1/tenant", tok).await.1["settings"].clone();

    for (method, body) in [
        ("PUT", json!({ "mfa_requierd": true })),
        ("PATCH", json!({ "mfa_requierd": true })),
        ("PATCH", json!({ "password_policy": { "min_lenght": 20 } })),
    ] {
        let (st, v) = s
            .call(
                method,
                "/api/v1/tenant/settings",
                Some(tok),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{b:?} {method} {body}: {v}"
        );
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("requierd") || msg.contains("lenght"), "{msg}");
        assert_eq!(
            s.get("/api/v1/tenant", tok).await.1["settings"],
            before,
            "{b:?}"
        );
    }
    // PUT without every key: refused, naming what is missing.
    let (st, v) = s
        .call(
            "PUT",
            "/api/v1/tenant/settings",
            Some(tok),
            Some(json!({ "mfa_required": true })),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ip_allowlist"),
        "{v}"
    );
    // PATCH merges.
    let (st, v) = s
        .call(
            "PATCH",
            "/api/v1/tenant/settings",
            Some(tok),
            Some(json!({ "default_locale": "en", "password_policy": { "require_symbol": true } })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let after = s.get("/api/v1/tenant", tok).await.1["settings"].clone();
    assert_eq!(after["default_locale"], "en");
    assert_eq!(after["ip_allowlist"], json!(["127.0.0.0/8"]), "kept");
    assert_eq!(after["storage_quota_bytes"], 1_000_000, "kept");
    assert_eq!(after["password_policy"]["min_length"], 14, "kept");
    assert_eq!(after["password_policy"]["require_symbol"], true);
    s.stop().await;
}

/// One JSON error shape for every rejection of the API: malformed query values, a path
/// that is not UTF-8, a wrong method (with `Allow`), and 401 with `WWW-Authenticate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_rejection_is_json() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("json-errors").await;
    let p = s.project(&t.admin_token, "p").await;
    let (_, up) = s.upload(&t.admin_token, &p, "a.txt", b"a".to_vec()).await;
    let f = up["file"]["id"].as_str().unwrap().to_string();
    let get = |path: String| {
        let (c, base, tok) = (s.client.clone(), s.base.clone(), t.admin_token.clone());
        async move {
            c.get(format!("{base}{path}"))
                .bearer_auth(tok)
                .send()
                .await
                .unwrap()
        }
    };
    for (path, want) in [
        (
            format!("/api/v1/files/{f}/content?version=abc"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/audit?limit=many".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/audit?before=yesterday".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/access-log?limit=-x".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/files/%FF%FE/content".to_string(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = get(path.clone()).await;
        assert_eq!(res.status(), want, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let v: serde_json::Value = res.json().await.unwrap();
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{path}: {v}"
        );
    }
    // 405 with a JSON body and the Allow header.
    let res = s
        .client
        .put(format!("{}/api/v1/folders", s.base))
        .bearer_auth(&t.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(res.headers().contains_key("allow"));
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed");
    // 401 names the scheme.
    let res = s
        .client
        .get(format!("{}/api/v1/me", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"kura\"");
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthenticated");
    s.stop().await;
}

/// The console's security page asks the one authorization gate: a member is refused and
/// the denial is audited like every other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_page_denials_are_audited() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("secpage").await;
    let (_, member) = s
        .add_user(
            &t.admin_token,
            "m@secpage.example.jp",
            "member",
            json!({"type": "tenant"}),
        )
        .await;
    let res = s
        .client
        .get(format!("{}/security", s.base))
        .header("cookie", format!("__Host-kura_session={member}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, audit) = s
        .get("/api/v1/audit?action=access.denied", &t.admin_token)
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["details"]["action"] == "tenant_manage"),
        "{audit}"
    );
    s.stop().await;
}

/// One scope parser for the API and the console: a scope the console form names wrongly is
/// refused with the field named (it used to become tenant-wide), as the API refuses it; a
/// right one works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_refuses_a_bad_scope_like_the_api() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("scopeco").await;
    let cookie = format!("__Host-kura_session={}", t.admin_token);
    let page = s
        .client
        .get(format!("{}/users", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page.find("name=\"_csrf\" value=\"").expect("a form") + 20;
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_string();
    let invite = |email: &'static str, scope: &'static str| {
        let req = s
            .client
            .post(format!("{}/users", s.base))
            .header("cookie", &cookie)
            .form(&[
                ("email", email),
                ("display_name", "Scope Test"),
                ("locale", "ja"),
                ("role", "member"),
                ("scope", scope),
                ("_csrf", csrf.as_str()),
            ]);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            res.headers()["location"].to_str().unwrap().to_string()
        }
    };
    let emails = || async {
        let (_, list) = s.get("/api/v1/users", &t.admin_token).await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    for (email, bad) in [
        ("a@scopeco.example.jp", "team:1"),
        ("b@scopeco.example.jp", "folder"),
        ("c@scopeco.example.jp", "tenant:x"),
    ] {
        let to = invite(email, bad).await;
        assert!(
            to.contains("err=invalid") && to.contains("field=scope"),
            "{bad}: {to}"
        );
        assert!(
            !emails().await.contains(&email.to_string()),
            "{bad} invited"
        );
    }
    // The API refuses the same scope the same way.
    let (st, body) = s
        .post(
            "/api/v1/users",
            &t.admin_token,
            json!({ "email": "d@scopeco.example.jp", "role": "member", "scope": { "type": "team", "id": "1" } }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("scope"),
        "{body}"
    );
    // A right one works.
    let to = invite("e@scopeco.example.jp", "tenant").await;
    assert!(to.contains("ok="), "{to}");
    assert!(emails().await.contains(&"e@scopeco.example.jp".to_string()));
    s.stop().await;
}

/// Every documented JSON response matches what its route returns: a walk through the API as
/// a tenant would use it calls every route whose success answer the OpenAPI document
/// describes, and each answer is validated (strictly: no undocumented property) against the
/// documented schema by `TestServer::call`. A route the walk did not reach fails the test,
/// so a new route needs a representative call here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_response_matches_what_the_route_returns() {
    use kura_testkit::schema;
    use kura_testkit::webauthn::{Misbehave, SoftAuthenticator};
    use std::collections::BTreeSet;
    // The validator itself refuses an undocumented property (else nothing below proves
    // anything).
    assert!(schema::check_response(
        "GET",
        "/api/v1/folders",
        200,
        &json!({ "items": [{ "bogus": 1 }] })
    )
    .is_err());

    let mut cfg = kura_testkit::test_config(Backend::Sqlite);
    cfg.signup_enabled = true;
    let s = TestServer::start_with(cfg, Backend::Sqlite).await;
    let seen = std::sync::Mutex::new(BTreeSet::new());
    let call = |method: &'static str,
                path: String,
                token: Option<String>,
                body: Option<serde_json::Value>| {
        let s = &s;
        let seen = &seen;
        async move {
            let (st, v) = s.call(method, &path, token.as_deref(), body).await;
            assert!(st.is_success(), "{method} {path}: {st} {v}");
            if let Some(k) = schema::route_key(method, &path) {
                seen.lock().unwrap().insert(k);
            }
            v
        }
    };
    let none = || None::<String>;
    let t = s.create_tenant("wire").await;
    seen.lock()
        .unwrap()
        .insert("POST /api/v1/invitations/accept".into());
    let tok = || Some(t.admin_token.clone());

    // Health and public documents.
    for p in [
        "/healthz",
        "/readyz",
        "/api/v1/openapi.json",
        "/status.json",
        "/.well-known/kura-audit-key",
    ] {
        call("GET", p.into(), none(), None).await;
    }
    // Log-in and the caller.
    let login = json!({ "tenant": "wire", "email": t.admin_email, "password": PASSWORD });
    call(
        "POST",
        "/api/v1/auth/login".into(),
        none(),
        Some(login.clone()),
    )
    .await;
    call("GET", "/api/v1/me".into(), tok(), None).await;

    // Workspace and files.
    let f = call(
        "POST",
        "/api/v1/folders".into(),
        tok(),
        Some(json!({ "name": "本社", "label": "internal", "tags": ["a"] })),
    )
    .await;
    let fid = f["id"].as_str().unwrap().to_string();
    call("GET", "/api/v1/folders?q=本".into(), tok(), None).await;
    call("GET", format!("/api/v1/folders/{fid}"), tok(), None).await;
    call(
        "PATCH",
        format!("/api/v1/folders/{fid}"),
        tok(),
        Some(json!({ "name": "本社2", "attributes": { "k": 1 } })),
    )
    .await;
    let p = call(
        "POST",
        "/api/v1/projects".into(),
        tok(),
        Some(json!({ "name": "案件", "folder_id": fid })),
    )
    .await;
    let pid = p["id"].as_str().unwrap().to_string();
    call("GET", "/api/v1/projects".into(), tok(), None).await;
    call("GET", format!("/api/v1/projects/{pid}"), tok(), None).await;
    call(
        "PATCH",
        format!("/api/v1/projects/{pid}"),
        tok(),
        Some(json!({ "name": "案件2" })),
    )
    .await;
    let (st, up) = s
        .upload(&t.admin_token, &pid, "a.txt", b"hello".to_vec())
        .await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    seen.lock()
        .unwrap()
        .insert("POST /api/v1/projects/{project_id}/files".to_string());
    s.upload(&t.admin_token, &pid, "a.txt", b"hello 2".to_vec())
        .await;
    let file = up["file"]["id"].as_str().unwrap().to_string();
    call(
        "GET",
        format!("/api/v1/projects/{pid}/files?sort=updated&limit=10"),
        tok(),
        None,
    )
    .await;
    call("GET", format!("/api/v1/files/{file}"), tok(), None).await;
    call(
        "PATCH",
        format!("/api/v1/files/{file}"),
        tok(),
        Some(json!({ "tags": ["x"] })),
    )
    .await;
    call("GET", "/api/v1/search?q=a".into(), tok(), None).await;
    call("DELETE", format!("/api/v1/files/{file}"), tok(), None).await;
    call("GET", format!("/api/v1/projects/{pid}/trash"), tok(), None).await;
    call("POST", format!("/api/v1/files/{file}/restore"), tok(), None).await;
    call(
        "POST",
        format!("/api/v1/files/{file}/versions/1/restore"),
        tok(),
        None,
    )
    .await;

    // Users, grants, roles, service accounts.
    let u = call("POST", "/api/v1/users".into(), tok(), Some(json!({ "email": "m@wire.example.jp", "role": "member", "scope": { "type": "folder", "id": fid } }))).await;
    let uid = u["id"].as_str().unwrap().to_string();
    call("GET", "/api/v1/users".into(), tok(), None).await;
    call("GET", format!("/api/v1/users/{uid}"), tok(), None).await;
    call(
        "POST",
        format!("/api/v1/users/{uid}/grants"),
        tok(),
        Some(json!({ "role": "guest", "scope": { "type": "project", "id": pid } })),
    )
    .await;
    call("GET", format!("/api/v1/users/{uid}/grants"), tok(), None).await;
    call(
        "POST",
        format!("/api/v1/users/{uid}/sessions/end"),
        tok(),
        None,
    )
    .await;
    let r = call(
        "POST",
        "/api/v1/roles".into(),
        tok(),
        Some(json!({ "name": "閲覧者", "actions": ["view"] })),
    )
    .await;
    call("GET", "/api/v1/roles".into(), tok(), None).await;
    call(
        "GET",
        format!("/api/v1/roles/{}", r["id"].as_str().unwrap()),
        tok(),
        None,
    )
    .await;
    let sa = call(
        "POST",
        "/api/v1/service-accounts".into(),
        tok(),
        Some(json!({ "name": "連携", "role": "member" })),
    )
    .await;
    let said = sa["id"].as_str().unwrap().to_string();
    call(
        "POST",
        format!("/api/v1/users/{said}/tokens"),
        tok(),
        Some(json!({ "name": "ci", "scopes": ["files:read"] })),
    )
    .await;
    call("GET", format!("/api/v1/users/{said}/tokens"), tok(), None).await;

    // The tenant.
    let tenant = call("GET", "/api/v1/tenant".into(), tok(), None).await;
    call(
        "PATCH",
        "/api/v1/tenant/settings".into(),
        tok(),
        Some(json!({ "time_zone": "Asia/Tokyo" })),
    )
    .await;
    call(
        "PUT",
        "/api/v1/tenant/settings".into(),
        tok(),
        Some(tenant["settings"].clone()),
    )
    .await;
    call("POST", "/api/v1/tenant/contacts".into(), tok(), Some(json!({ "name": "情報システム部", "email": "it@wire.example.jp", "purpose": "security" }))).await;
    call("GET", "/api/v1/tenant/contacts".into(), tok(), None).await;
    s.services.rollup_usage().await.unwrap();
    call("GET", "/api/v1/tenant/usage".into(), tok(), None).await;
    call(
        "GET",
        "/api/v1/tenant/usage/daily?by=month".into(),
        tok(),
        None,
    )
    .await;
    call("GET", "/api/v1/tenant/backups".into(), tok(), None).await;

    // Notices and incidents reach the tenant.
    let ctx = kura_services::RequestCtx::default();
    let now = s.services.now();
    s.services
        .operator_publish_notice(
            kura_services::notices::NewNotice {
                kind: "emergency".into(),
                title_ja: "緊急".into(),
                title_en: "Urgent".into(),
                body_ja: "本文".into(),
                body_en: "Body".into(),
                effective_at: now,
                show_until: Some(now.plus_secs(86_400)),
                tenants: vec![],
            },
            kura_services::Operator::Cli,
            &ctx,
        )
        .await
        .unwrap();
    s.services
        .operator_open_incident(
            kura_services::incidents::NewIncident {
                title_ja: "障害".into(),
                title_en: "Outage".into(),
                severity: "high".into(),
                scope: "ファイル".into(),
                tenants: vec![],
                detected_at: None,
                target: None,
            },
            kura_services::Operator::Cli,
            &ctx,
        )
        .await
        .unwrap();
    call("GET", "/api/v1/notices".into(), tok(), None).await;
    call("GET", "/api/v1/incidents".into(), tok(), None).await;

    // The logs.
    s.services.checkpoint_all().await.unwrap();
    call("GET", "/api/v1/audit?limit=5".into(), tok(), None).await;
    call("GET", "/api/v1/audit/verify".into(), tok(), None).await;
    let cp = call("GET", "/api/v1/audit/checkpoint".into(), tok(), None).await;
    assert!(cp["checkpoint"].is_object(), "{cp}");
    call(
        "POST",
        "/api/v1/audit/verify".into(),
        tok(),
        Some(json!({ "checkpoint": cp["checkpoint"] })),
    )
    .await;
    call("GET", "/api/v1/access-log?limit=5".into(), tok(), None).await;

    // Second factors: TOTP, then a passkey; log-ins that need them.
    let me_tok = call(
        "POST",
        "/api/v1/me/tokens".into(),
        tok(),
        Some(json!({ "name": "cli", "scopes": ["files:read"] })),
    )
    .await;
    assert!(me_tok["token"].is_string());
    call("GET", "/api/v1/me/tokens".into(), tok(), None).await;
    call("GET", "/api/v1/sessions".into(), tok(), None).await;
    let enrol = call("POST", "/api/v1/me/mfa/totp".into(), tok(), None).await;
    let code = s.totp_code(enrol["secret"].as_str().unwrap());
    call(
        "POST",
        "/api/v1/me/mfa/totp/confirm".into(),
        tok(),
        Some(json!({ "code": code })),
    )
    .await;
    call("GET", "/api/v1/me/mfa".into(), tok(), None).await;
    let mut device = SoftAuthenticator::new(&s.services.config.public_url);
    let ok = Misbehave::default();
    let o = call(
        "POST",
        "/api/v1/me/mfa/passkeys/options".into(),
        tok(),
        Some(json!({})),
    )
    .await;
    let cred = device.register(&o["options"], &ok);
    call(
        "POST",
        "/api/v1/me/mfa/passkeys".into(),
        tok(),
        Some(json!({ "ceremony": o["ceremony"], "name": "PC", "credential": cred })),
    )
    .await;
    call("GET", "/api/v1/me/mfa/passkeys".into(), tok(), None).await;
    let ch = call(
        "POST",
        "/api/v1/auth/login".into(),
        none(),
        Some(login.clone()),
    )
    .await;
    assert_eq!(ch["mfa_required"], true, "{ch}");
    call(
        "POST",
        "/api/v1/auth/mfa/passkey/options".into(),
        none(),
        Some(json!({ "challenge": ch["challenge"] })),
    )
    .await;
    s.clock.advance_secs(31);
    let code = s.totp_code(enrol["secret"].as_str().unwrap());
    call(
        "POST",
        "/api/v1/auth/mfa".into(),
        none(),
        Some(json!({ "challenge": ch["challenge"], "code": code })),
    )
    .await;
    let o = call(
        "POST",
        "/api/v1/auth/passkey/options".into(),
        none(),
        Some(json!({ "tenant": "wire" })),
    )
    .await;
    let a = device.assert(&o["options"], 0, &ok);
    call(
        "POST",
        "/api/v1/auth/passkey".into(),
        none(),
        Some(json!({ "ceremony": o["ceremony"], "credential": a })),
    )
    .await;
    call(
        "POST",
        "/api/v1/auth/password-reset".into(),
        none(),
        Some(json!({ "tenant": "wire", "email": t.admin_email })),
    )
    .await;

    // Sign-up.
    call(
        "POST",
        "/api/v1/signup".into(),
        none(),
        Some(json!({ "email": "new@signup-wire.example.jp", "locale": "ja" })),
    )
    .await;
    let mails = s.services.mail_outbox(100).await.unwrap();
    let body = mails
        .iter()
        .find(|m| m.to == "new@signup-wire.example.jp")
        .unwrap()
        .body
        .clone();
    let signup_code = body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_string();
    let st = call(
        "POST",
        "/api/v1/signup/verify".into(),
        none(),
        Some(json!({ "email": "new@signup-wire.example.jp", "code": signup_code })),
    )
    .await;
    call("POST", "/api/v1/signup/complete".into(), none(), Some(json!({ "signup_token": st["signup_token"], "tenant": "wire-new", "tenant_name": "新会社", "display_name": "新", "password": PASSWORD }))).await;

    let missing: Vec<String> = schema::documented_json_responses()
        .difference(&seen.lock().unwrap())
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "documented JSON responses the walk did not check: {missing:?}"
    );
    s.stop().await;
}
