//! Encrypted files through the API: upload, versions, download (whole, ranges, ETag),
//! nothing readable at rest, tampering rejected, failures leave nothing behind.

use kura_store::blobs::Listed;
use kura_testkit::{test_config, use_s3, Backend, StatusCode, Storage, TestServer};
use serde_json::{json, Value};

const MARKER: &[u8] = b"KURA-PLAINTEXT-MARKER-7f3a9c";

fn content(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        v.extend_from_slice(MARKER);
        v.extend_from_slice(format!(" line {} 日本語\n", v.len()).as_bytes());
    }
    v.truncate(n);
    v
}

async fn upload(
    s: &TestServer,
    token: &str,
    project: &str,
    name: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    s.upload(token, project, name, body).await
}

async fn try_download(
    s: &TestServer,
    token: &str,
    file: &str,
    extra: &[(&str, &str)],
    query: &str,
) -> reqwest::Result<reqwest::Response> {
    // No connection reuse: a download the server broke off mid-stream (tampering tests)
    // leaves nothing behind for the next request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut req = client
        .get(format!("{}/api/v1/files/{file}/content{query}", s.base))
        .bearer_auth(token);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await
}

async fn download(
    s: &TestServer,
    token: &str,
    file: &str,
    extra: &[(&str, &str)],
    query: &str,
) -> reqwest::Response {
    try_download(s, token, file, extra, query).await.unwrap()
}

/// The full body, or None when the server broke the transfer off (as it must for a blob
/// that fails authentication after the first chunk).
async fn body_or_broken(s: &TestServer, token: &str, file: &str) -> Option<Vec<u8>> {
    let res = try_download(s, token, file, &[], "").await.ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.bytes().await.ok().map(|b| b.to_vec())
}

/// Every file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

/// Every object in the server's blob store (local temp files included).
async fn stored(s: &TestServer) -> Vec<Listed> {
    let mut v = s.services.blobs.list_all().await.unwrap();
    v.sort_by(|a, b| (&a.tenant, &a.name).cmp(&(&b.tenant, &b.name)));
    v
}

/// The raw stored bytes of a tenant's one blob.
async fn raw_blob(s: &TestServer, tenant: &str) -> (Listed, Vec<u8>) {
    s.services
        .blobs
        .raw_objects()
        .await
        .unwrap()
        .into_iter()
        .find(|(l, _)| l.tenant == tenant)
        .unwrap()
}

/// Overwrites a stored object with `bytes`, as an attacker with access to the storage could.
async fn put_raw(s: &TestServer, at: &Listed, bytes: &[u8]) {
    let tid = kura_domain::TenantId::from_string(&at.tenant);
    s.services.blobs.delete(&tid, &at.name).await.unwrap();
    let mut w = s.services.blobs.create(&tid, &at.name).await.unwrap();
    w.write(bytes).await.unwrap();
    w.commit().await.unwrap();
}

/// Where `needle` is found at rest: files under the data directory, and stored objects
/// (S3 included).
async fn plaintext_at_rest(s: &TestServer, needle: &[u8]) -> Vec<String> {
    let mut hits: Vec<String> = files_containing(&s.cfg.data_dir, needle)
        .into_iter()
        .map(|p| p.display().to_string())
        .collect();
    for (l, bytes) in s.services.blobs.raw_objects().await.unwrap() {
        if bytes.windows(needle.len()).any(|w| w == needle) {
            hits.push(format!("object {}/{}", l.tenant, l.name));
        }
    }
    hits
}

async fn project(s: &TestServer, token: &str) -> String {
    let (_, f) = s
        .post("/api/v1/folders", token, json!({ "name": "F" }))
        .await;
    let (_, p) = s
        .post(
            "/api/v1/projects",
            token,
            json!({ "name": "P", "folder_id": f["id"] }),
        )
        .await;
    p["id"].as_str().unwrap().to_string()
}

kura_testkit::per_setup!(upload_versions_download_ranges);
async fn upload_versions_download_ranges(b: kura_testkit::Backend, storage: kura_testkit::Storage) {
    let s = TestServer::start_on(b, storage).await;
    let t = s.create_tenant("acme").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    let v1 = content(200_000);
    let (st, up) = upload(&s, tok, &p, "report.txt", v1.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let fid = up["file"]["id"].as_str().unwrap().to_string();
    assert_eq!(up["version"]["size"], 200_000);

    // Whole download, with ETag and a conditional re-request.
    let res = download(&s, tok, &fid, &[], "").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-length"], "200000");
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(res.bytes().await.unwrap().as_ref(), &v1[..]);
    assert_eq!(
        download(&s, tok, &fid, &[("if-none-match", &etag)], "")
            .await
            .status(),
        StatusCode::NOT_MODIFIED
    );

    // Ranges across chunk boundaries, suffix ranges, and unsatisfiable ones.
    for (h, a, z) in [
        ("bytes=0-9", 0, 9),
        ("bytes=65530-65545", 65530, 65545),
        ("bytes=-100", 199_900, 199_999),
        ("bytes=131000-", 131_000, 199_999),
    ] {
        let res = download(&s, tok, &fid, &[("range", h)], "").await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{h}");
        assert_eq!(
            res.headers()["content-range"].to_str().unwrap(),
            format!("bytes {a}-{z}/200000")
        );
        assert_eq!(res.bytes().await.unwrap().as_ref(), &v1[a..=z], "{h}");
    }
    assert_eq!(
        download(&s, tok, &fid, &[("range", "bytes=200000-")], "")
            .await
            .status(),
        StatusCode::RANGE_NOT_SATISFIABLE
    );

    // Same name again: a new version; the old one stays downloadable.
    let v2 = content(70_000);
    let (st, up2) = upload(&s, tok, &p, "report.txt", v2.clone()).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(up2["version"]["version"], 2);
    assert_eq!(up2["file"]["id"].as_str().unwrap(), fid);
    assert_eq!(
        download(&s, tok, &fid, &[], "")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &v2[..]
    );
    assert_eq!(
        download(&s, tok, &fid, &[], "?version=1")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &v1[..]
    );
    assert_eq!(
        download(&s, tok, &fid, &[], "?version=9").await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, info) = s.get(&format!("/api/v1/files/{fid}"), tok).await;
    assert_eq!(info["versions"].as_array().unwrap().len(), 2);
    let (_, list) = s.get(&format!("/api/v1/projects/{p}/files"), tok).await;
    assert_eq!(list["items"][0]["name"], "report.txt");

    // An empty file works too.
    let (st, e) = upload(&s, tok, &p, "empty.bin", Vec::new()).await;
    assert_eq!(st, StatusCode::CREATED);
    let eid = e["file"]["id"].as_str().unwrap();
    assert!(download(&s, tok, eid, &[], "")
        .await
        .bytes()
        .await
        .unwrap()
        .is_empty());

    // Nothing readable at rest: not in the blobs, not in the database files.
    assert!(!stored(&s).await.is_empty());
    let hits = plaintext_at_rest(&s, MARKER).await;
    assert!(
        hits.is_empty(),
        "{b:?}: plaintext found at rest in {hits:?}"
    );

    // Guests can read but not write; a project that is not there is 404.
    let (_, guest) = s
        .add_user(
            tok,
            "guest@acme.example.jp",
            "guest",
            json!({ "type": "tenant" }),
        )
        .await;
    assert_eq!(
        download(&s, &guest, &fid, &[], "").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        upload(&s, &guest, &p, "x.txt", b"x".to_vec()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(&s, tok, "nope", "x.txt", b"x".to_vec()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        upload(&s, tok, &p, "", b"x".to_vec()).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // An old version becomes current again as a new version.
    let (st, r) = s
        .post(
            &format!("/api/v1/files/{fid}/versions/1/restore"),
            tok,
            json!({}),
        )
        .await;
    assert_eq!(
        (st, r["version"]["version"].as_i64()),
        (StatusCode::CREATED, Some(3)),
        "{r}"
    );
    assert_eq!(
        download(&s, tok, &fid, &[], "")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &v1[..]
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/files/{fid}/versions/9/restore"),
            tok,
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Delete moves to the trash (blobs kept); restore brings it back; purge removes
    // rows and blobs. A project with files (trashed or not) cannot be deleted.
    let blobs_before = stored(&s).await.len();
    assert_eq!(
        s.call("DELETE", &format!("/api/v1/files/{fid}"), Some(tok), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        download(&s, tok, &fid, &[], "").await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, list) = s.get(&format!("/api/v1/projects/{p}/files"), tok).await;
    assert!(!list.to_string().contains(&fid));
    let (_, trash) = s.get(&format!("/api/v1/projects/{p}/trash"), tok).await;
    assert_eq!(trash["items"][0]["id"].as_str(), Some(fid.as_str()));
    assert_eq!(stored(&s).await.len(), blobs_before);
    assert_eq!(
        s.post(&format!("/api/v1/files/{fid}/purge"), &guest, json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(&format!("/api/v1/files/{fid}/restore"), tok, json!({}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        download(&s, tok, &fid, &[], "")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &v1[..]
    );
    assert_eq!(
        s.post(&format!("/api/v1/files/{fid}/purge"), tok, json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND,
        "only trashed files are purged"
    );
    assert_eq!(
        s.call("DELETE", &format!("/api/v1/projects/{p}"), Some(tok), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.call("DELETE", &format!("/api/v1/files/{fid}"), Some(tok), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.post(&format!("/api/v1/files/{fid}/purge"), tok, json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        stored(&s).await.len(),
        blobs_before - 2,
        "two distinct blobs (v3 shares v1's)"
    );
    let (_, trash) = s.get(&format!("/api/v1/projects/{p}/trash"), tok).await;
    assert!(trash["items"].as_array().unwrap().is_empty());

    let (_, audit) = s.get("/api/v1/audit?limit=200", tok).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "file.upload",
        "file.download",
        "file.trash",
        "file.restore",
        "file.purge",
        "file.version.restore",
        "key.create",
    ] {
        assert!(actions.contains(&a), "{a} not audited");
    }
    s.stop().await;
}

kura_testkit::per_setup!(tampered_or_moved_blobs_are_refused);
async fn tampered_or_moved_blobs_are_refused(
    b: kura_testkit::Backend,
    storage: kura_testkit::Storage,
) {
    let s = TestServer::start_on(b, storage).await;
    let a = s.create_tenant("tenant-a").await;
    let bt = s.create_tenant("tenant-b").await;
    let pa = project(&s, &a.admin_token).await;
    let pb = project(&s, &bt.admin_token).await;
    let (_, fa) = upload(&s, &a.admin_token, &pa, "a.txt", content(2_500_000)).await;
    let (_, fb) = upload(&s, &bt.admin_token, &pb, "b.txt", content(2_500_000)).await;
    let fa = fa["file"]["id"].as_str().unwrap().to_string();
    let fb = fb["file"]["id"].as_str().unwrap().to_string();
    let (at_a, original) = raw_blob(&s, &a.tenant_id).await;
    let (_, blob_b) = raw_blob(&s, &bt.tenant_id).await;

    // A flipped byte in the first chunk: an error, no content.
    let mut bad = original.clone();
    bad[40] ^= 1;
    put_raw(&s, &at_a, &bad).await;
    let res = download(&s, &a.admin_token, &fa, &[], "").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "integrity");

    // A flipped byte in a later chunk (a later read run): the response has started, and
    // the stream breaks instead of delivering it.
    let mut bad = original.clone();
    let at = bad.len() - 10;
    bad[at] ^= 1;
    put_raw(&s, &at_a, &bad).await;
    let got = body_or_broken(&s, &a.admin_token, &fa).await;
    assert!(
        got.is_none_or(|b| b.len() < 2_500_000),
        "altered bytes must never be served whole"
    );

    // Truncated.
    put_raw(&s, &at_a, &original[..original.len() - 20]).await;
    let got = body_or_broken(&s, &a.admin_token, &fa).await;
    assert!(
        got.is_none_or(|b| b.len() < 2_500_000),
        "a truncated blob must not be served whole"
    );

    // Tenant B's blob put in place of A's: bound to B, it does not decrypt for A.
    put_raw(&s, &at_a, &blob_b).await;
    assert_eq!(
        download(&s, &a.admin_token, &fa, &[], "").await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // Restored, it reads again; B was never affected.
    put_raw(&s, &at_a, &original).await;
    assert_eq!(
        download(&s, &a.admin_token, &fa, &[], "")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &content(2_500_000)[..]
    );
    assert_eq!(
        download(&s, &bt.admin_token, &fb, &[], "").await.status(),
        StatusCode::OK
    );
    s.stop().await;
}

kura_testkit::per_setup!(oversize_uploads_leave_nothing_and_concurrent_uploads_become_versions);
async fn oversize_uploads_leave_nothing_and_concurrent_uploads_become_versions(
    b: kura_testkit::Backend,
    storage: kura_testkit::Storage,
) {
    let mut cfg = test_config(b);
    if storage == Storage::S3 {
        use_s3(&mut cfg).await;
    }
    cfg.max_upload_bytes = 300_000;
    let s = TestServer::start_with(cfg, b).await;
    let t = s.create_tenant("acme").await;
    let tok = t.admin_token.clone();
    let p = project(&s, &tok).await;
    let (st, e) = upload(&s, &tok, &p, "big.bin", content(400_000)).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"))
    );
    assert!(stored(&s).await.is_empty(), "no blob or temp file left");
    let (_, list) = s.get(&format!("/api/v1/projects/{p}/files"), &tok).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "no row left");

    let mut tasks = Vec::new();
    let s = std::sync::Arc::new(s);
    for i in 0..5u8 {
        let s = s.clone();
        let tok = tok.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            upload(&s, &tok, &p, "same.txt", vec![b'a' + i; 1000 + i as usize]).await
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        let (st, v) = t.await.unwrap();
        assert_eq!(st, StatusCode::CREATED, "{b:?}: {v}");
        versions.push(v["version"]["version"].as_i64().unwrap());
    }
    versions.sort();
    assert_eq!(versions, vec![1, 2, 3, 4, 5], "{b:?}");
    let (_, list) = s.get(&format!("/api/v1/projects/{p}/files"), &tok).await;
    let fid = list["items"][0]["id"].as_str().unwrap().to_string();
    for v in 1..=5 {
        let body = download(&s, &tok, &fid, &[], &format!("?version={v}"))
            .await
            .bytes()
            .await
            .unwrap();
        assert!(
            body.len() >= 1000 && body.iter().all(|c| *c == body[0]),
            "version {v} intact"
        );
    }
    if let Ok(s) = std::sync::Arc::try_unwrap(s) {
        s.stop().await;
    }
}

kura_testkit::per_backend!(labels_cap_what_a_guest_can_see);
async fn labels_cap_what_a_guest_can_see(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    let tok = &t.admin_token;
    // A confidential folder with an unlabelled project (it inherits), an internal
    // folder with a confidential project, and a secret file in an internal project.
    let (_, cf) = s
        .post(
            "/api/v1/folders",
            tok,
            json!({ "name": "役員会", "label": "confidential", "tags": ["board"] }),
        )
        .await;
    let cf = cf["id"].as_str().unwrap().to_string();
    let (st, cp) = s
        .post(
            "/api/v1/projects",
            tok,
            json!({ "name": "議事録", "folder_id": cf }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let cp = cp["id"].as_str().unwrap().to_string();
    let (_, inf) = s
        .post(
            "/api/v1/folders",
            tok,
            json!({ "name": "総務", "label": "internal" }),
        )
        .await;
    let inf = inf["id"].as_str().unwrap().to_string();
    let (_, ip) = s
        .post(
            "/api/v1/projects",
            tok,
            json!({ "name": "備品", "folder_id": inf, "attributes": { "owner": "総務課" } }),
        )
        .await;
    let ip = ip["id"].as_str().unwrap().to_string();
    let (_, secret_proj) = s
        .post(
            "/api/v1/projects",
            tok,
            json!({ "name": "人事評価", "folder_id": inf, "label": "confidential" }),
        )
        .await;
    let secret_proj = secret_proj["id"].as_str().unwrap().to_string();
    let (_, open_file) = upload(&s, tok, &ip, "list.txt", b"pens".to_vec()).await;
    let open_file = open_file["file"]["id"].as_str().unwrap().to_string();
    let (_, hidden_file) = upload(&s, tok, &ip, "salaries.txt", b"secret numbers".to_vec()).await;
    let hidden_file = hidden_file["file"]["id"].as_str().unwrap().to_string();
    let (st, f) = s
        .call(
            "PATCH",
            &format!("/api/v1/files/{hidden_file}"),
            Some(tok),
            Some(json!({ "label": "secret" })),
        )
        .await;
    assert_eq!(
        (st, f["label"].as_str()),
        (StatusCode::OK, Some("secret")),
        "{f}"
    );
    assert_eq!(
        s.call(
            "PATCH",
            &format!("/api/v1/files/{hidden_file}"),
            Some(tok),
            Some(json!({ "label": "top-secret" }))
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.post(
            "/api/v1/folders",
            tok,
            json!({ "name": "x", "label": "nope" })
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A guest capped at "internal", and an uncapped guest.
    let (_, capped) = s
        .add_user(
            tok,
            "capped@acme.example.jp",
            "guest",
            json!({ "type": "tenant" }),
        )
        .await;
    let (cid, _) = (capped.clone(), ());
    let _ = cid;
    let (st, body) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "g2@acme.example.jp", "role": "guest", "max_label": "internal" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let token = s.invitation_token("g2@acme.example.jp").await;
    let (_, body) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": token, "password": kura_testkit::PASSWORD })),
        )
        .await;
    let guest = body["token"].as_str().unwrap().to_string();

    // The uncapped guest sees everything; the capped one nothing above internal.
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = s.get("/api/v1/folders", &capped).await;
    assert_eq!(names(&all).len(), 2);
    let (_, folders) = s.get("/api/v1/folders", &guest).await;
    assert_eq!(names(&folders), vec!["総務".to_string()]);
    let (_, projects) = s.get("/api/v1/projects", &guest).await;
    assert_eq!(
        names(&projects),
        vec!["備品".to_string()],
        "inherited and own labels both cap"
    );
    let (_, files) = s.get(&format!("/api/v1/projects/{ip}/files"), &guest).await;
    assert_eq!(
        names(&files),
        vec!["list.txt".to_string()],
        "the secret file is not listed"
    );
    assert_eq!(
        s.get(&format!("/api/v1/folders/{cf}"), &guest).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/api/v1/projects/{cp}"), &guest).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/api/v1/projects/{secret_proj}"), &guest)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&s, &guest, &hidden_file, &[], "").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/api/v1/files/{hidden_file}"), &guest)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&s, &guest, &open_file, &[], "").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        download(&s, &capped, &hidden_file, &[], "").await.status(),
        StatusCode::OK
    );

    // Filters by name, label and tag (within what the caller may see).
    let (_, hit) = s.get("/api/v1/folders?label=confidential", tok).await;
    assert_eq!(names(&hit), vec!["役員会".to_string()]);
    let (_, hit) = s.get("/api/v1/folders?tag=board", tok).await;
    assert_eq!(names(&hit), vec!["役員会".to_string()]);
    let (_, hit) = s.get("/api/v1/folders?tag=board", &guest).await;
    assert!(
        names(&hit).is_empty(),
        "filters never widen what a cap hides"
    );
    let (_, hit) = s.get("/api/v1/projects?q=%E5%82%99", tok).await;
    assert_eq!(names(&hit), vec!["備品".to_string()]);
    let (_, hit) = s
        .get(
            "/api/v1/projects?attr=owner:%E7%B7%8F%E5%8B%99%E8%AA%B2",
            tok,
        )
        .await;
    assert_eq!(names(&hit), vec!["備品".to_string()], "custom attribute");
    let (_, hit) = s.get("/api/v1/projects?attr=owner:x", tok).await;
    assert!(names(&hit).is_empty());
    let (_, hit) = s
        .get(&format!("/api/v1/projects/{ip}/files?q=LIST"), tok)
        .await;
    assert_eq!(names(&hit), vec!["list.txt".to_string()]);

    // Tenant-wide search: name, tag, custom attribute and effective label, never
    // beyond the caller's cap.
    assert_eq!(
        s.call(
            "PATCH",
            &format!("/api/v1/files/{open_file}"),
            Some(tok),
            Some(json!({ "tags": ["備品", "2026"], "attributes": { "owner": "総務課" } }))
        )
        .await
        .0,
        StatusCode::OK
    );
    let sorted = |v: &Value| {
        let mut n = names(v);
        n.sort();
        n
    };
    let (st, hit) = s.get("/api/v1/search?q=.TXT", tok).await;
    assert_eq!(st, StatusCode::OK, "{hit}");
    assert_eq!(sorted(&hit), vec!["list.txt", "salaries.txt"]);
    let (_, hit) = s.get("/api/v1/search?q=.txt", &guest).await;
    assert_eq!(
        names(&hit),
        vec!["list.txt"],
        "the cap hides the secret file"
    );
    let (_, hit) = s.get("/api/v1/search?label=internal", tok).await;
    assert_eq!(names(&hit), vec!["list.txt"], "inherited label");
    assert_eq!(hit["items"][0]["effective_label"], "internal");
    let (_, hit) = s.get("/api/v1/search?label=secret", tok).await;
    assert_eq!(names(&hit), vec!["salaries.txt"], "own label");
    let (_, hit) = s.get("/api/v1/search?label=secret", &guest).await;
    assert!(names(&hit).is_empty());
    let (_, hit) = s.get("/api/v1/search?tag=2026", tok).await;
    assert_eq!(names(&hit), vec!["list.txt"]);
    let (_, hit) = s.get("/api/v1/search?tag=202", tok).await;
    assert!(names(&hit).is_empty(), "tags match whole");
    let (_, hit) = s
        .get("/api/v1/search?attr=owner:%E7%B7%8F%E5%8B%99%E8%AA%B2", tok)
        .await;
    assert_eq!(names(&hit), vec!["list.txt"]);
    let (_, hit) = s.get("/api/v1/search?q=%25", tok).await;
    assert!(names(&hit).is_empty(), "LIKE wildcards are literal");
    assert_eq!(
        s.get("/api/v1/search?label=top-secret", tok).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.get("/api/v1/search?attr=nocolon", tok).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A member capped at internal cannot label a file above their own cap.
    let (st, body) = s
        .post(
            "/api/v1/users",
            tok,
            json!({ "email": "m2@acme.example.jp", "role": "member", "max_label": "internal" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let token = s.invitation_token("m2@acme.example.jp").await;
    let (_, body) = s
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": token, "password": kura_testkit::PASSWORD })),
        )
        .await;
    let member = body["token"].as_str().unwrap().to_string();
    let (st, mine) = upload(&s, &member, &ip, "memo.txt", b"memo".to_vec()).await;
    assert_eq!(st, StatusCode::CREATED, "{mine}");
    let mine = mine["file"]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(
            "PATCH",
            &format!("/api/v1/files/{mine}"),
            Some(&member),
            Some(json!({ "label": "confidential" })),
        )
        .await;
    assert!(
        st == StatusCode::FORBIDDEN || st == StatusCode::NOT_FOUND,
        "{st}"
    );
    let (_, f) = s.get(&format!("/api/v1/files/{mine}"), &member).await;
    assert_eq!(f["file"]["label"], Value::Null, "unchanged");

    // Relabelling moves things in and out of sight at once, and is audited.
    assert_eq!(
        s.call(
            "PATCH",
            &format!("/api/v1/folders/{cf}"),
            Some(tok),
            Some(json!({ "label": "public" }))
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!("/api/v1/projects/{cp}"), &guest).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.call(
            "PATCH",
            &format!("/api/v1/folders/{cf}"),
            Some(tok),
            Some(json!({ "label": null }))
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, f) = s.get(&format!("/api/v1/folders/{cf}"), tok).await;
    assert_eq!(f["label"], Value::Null);
    assert_eq!(f["tags"], json!(["board"]));
    let (_, audit) = s.get("/api/v1/audit?limit=200", tok).await;
    let changes = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "label.change")
        .count();
    assert!(changes >= 3, "label changes audited: {changes}");
    s.stop().await;
}

kura_testkit::per_setup!(quota_and_usage);
async fn quota_and_usage(b: kura_testkit::Backend, storage: kura_testkit::Storage) {
    let s = TestServer::start_on(b, storage).await;
    let t = s.create_tenant("quota").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    let (_, tenant) = s.get("/api/v1/tenant", tok).await;
    let mut settings = tenant["settings"].clone();
    settings["storage_quota_bytes"] = json!(5000);
    assert_eq!(
        s.call("PUT", "/api/v1/tenant/settings", Some(tok), Some(settings))
            .await
            .0,
        StatusCode::OK
    );
    let (st, up) = upload(&s, tok, &p, "a.bin", vec![1u8; 4000]).await;
    assert_eq!(st, StatusCode::CREATED);
    let fid = up["file"]["id"].as_str().unwrap().to_string();
    let blobs = stored(&s).await.len();
    let (st, e) = upload(&s, tok, &p, "b.bin", vec![2u8; 2000]).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, Some("quota_exceeded"))
    );
    assert_eq!(stored(&s).await.len(), blobs, "nothing left behind");
    assert_eq!(
        download(&s, tok, &fid, &[], "")
            .await
            .bytes()
            .await
            .unwrap()
            .len(),
        4000
    );
    let (st, u) = s.get("/api/v1/tenant/usage", tok).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (u["files"].as_i64(), u["bytes_stored"].as_i64()),
        (Some(1), Some(4000)),
        "{u}"
    );
    assert_eq!(
        (
            u["uploads"].as_i64(),
            u["downloads"].as_i64(),
            u["download_bytes"].as_i64()
        ),
        (Some(1), Some(1), Some(4000))
    );
    let (_, member) = s
        .add_user(
            tok,
            "m@quota.example.jp",
            "member",
            json!({ "type": "tenant" }),
        )
        .await;
    assert_eq!(
        s.get("/api/v1/tenant/usage", &member).await.0,
        StatusCode::FORBIDDEN
    );

    // Concurrent uploads cannot together overshoot the quota: 16,000 bytes are left and
    // eight uploads of 3,000 each start at once; each alone would fit.
    let (_, tenant) = s.get("/api/v1/tenant", tok).await;
    let mut settings = tenant["settings"].clone();
    settings["storage_quota_bytes"] = json!(20_000);
    assert_eq!(
        s.call("PUT", "/api/v1/tenant/settings", Some(tok), Some(settings))
            .await
            .0,
        StatusCode::OK
    );
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let (s, tok, p) = (s.clone(), tok.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            upload(&s, &tok, &p, &format!("c{i}.bin"), vec![i; 3000])
                .await
                .0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => ok += 1,
            st => assert_eq!(st, StatusCode::INSUFFICIENT_STORAGE),
        }
    }
    assert_eq!(ok, 5, "{b:?}/{storage:?}: exactly what fits");
    let (_, u) = s.get("/api/v1/tenant/usage", tok).await;
    assert_eq!(u["bytes_stored"].as_i64(), Some(19_000), "{u}");
    assert_eq!(stored(&s).await.len(), 6, "refused uploads leave no blob");
    std::sync::Arc::into_inner(s).unwrap().stop().await;
}

kura_testkit::per_setup!(sweep_removes_orphans_and_temp_files_only);
async fn sweep_removes_orphans_and_temp_files_only(
    b: kura_testkit::Backend,
    storage: kura_testkit::Storage,
) {
    let s = TestServer::start_on(b, storage).await;
    let t = s.create_tenant("sweep").await;
    let p = project(&s, &t.admin_token).await;
    let (_, up) = upload(&s, &t.admin_token, &p, "keep.txt", content(10_000)).await;
    let fid = up["file"]["id"].as_str().unwrap().to_string();
    let real = stored(&s).await.pop().unwrap();
    // An orphan (a copy nobody references) and, on local storage, an abandoned temp
    // file. (On S3 an unfinished upload is a multipart upload, invisible until
    // completed, and aborted when dropped.)
    let (_, bytes) = raw_blob(&s, &t.tenant_id).await;
    let orphan = Listed {
        name: kura_domain::ids::new_id(),
        ..real.clone()
    };
    put_raw(&s, &orphan, &bytes).await;
    let mut expect = 2;
    if storage == Storage::Local {
        let dir = s.cfg.data_dir.join("blobs").join(&t.tenant_id);
        std::fs::write(dir.join(".abandoned-upload.tmp"), b"partial").unwrap();
        expect = 3;
    }
    assert_eq!(stored(&s).await.len(), expect);
    // Young objects are left alone (uploads in flight).
    assert_eq!(kura_testkit::run_cli(&s.cfg, &["blobs", "sweep"]).await, 0);
    assert_eq!(stored(&s).await.len(), expect);
    assert_eq!(
        kura_testkit::run_cli(&s.cfg, &["blobs", "sweep", "--older-than-minutes", "0"]).await,
        0
    );
    assert_eq!(
        stored(&s).await,
        vec![real.clone()],
        "{b:?}/{storage:?}: only the referenced blob stays"
    );
    assert_eq!(
        download(&s, &t.admin_token, &fid, &[], "")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &content(10_000)[..]
    );

    // The daily `blobs.sweep` job does the same by itself, for orphans a day old.
    let (_, bytes) = raw_blob(&s, &t.tenant_id).await;
    let orphan = Listed {
        name: kura_domain::ids::new_id(),
        ..real.clone()
    };
    put_raw(&s, &orphan, &bytes).await;
    s.services.ensure_jobs().await.unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    s.services.run_due_jobs("test", &stop).await.unwrap();
    assert_eq!(
        stored(&s).await.len(),
        2,
        "{b:?}/{storage:?}: too young at first"
    );
    s.clock
        .advance_secs(kura_services::jobs::SWEEP_MIN_AGE_SECS + 3600);
    s.services.run_due_jobs("test", &stop).await.unwrap();
    assert_eq!(stored(&s).await, vec![real.clone()], "{b:?}/{storage:?}");
    let runs = s.services.job_runs(Some("blobs.sweep"), 10).await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    s.stop().await;
}

kura_testkit::per_setup!(key_rotation_reencrypts_without_downtime);
async fn key_rotation_reencrypts_without_downtime(
    b: kura_testkit::Backend,
    storage: kura_testkit::Storage,
) {
    // The background re-encryption runs every second here.
    let mut cfg = test_config(b);
    if storage == Storage::S3 {
        use_s3(&mut cfg).await;
    }
    cfg.reencrypt_interval_secs = 1;
    let s = TestServer::start_with(cfg, b).await;
    let t = s.create_tenant("rotate").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    let (_, a) = upload(&s, tok, &p, "a.txt", content(150_000)).await;
    upload(&s, tok, &p, "a.txt", content(1_000)).await;
    let (_, bfile) = upload(&s, tok, &p, "b.txt", content(70_000)).await;
    let a = a["file"]["id"].as_str().unwrap().to_string();
    let bid = bfile["file"]["id"].as_str().unwrap().to_string();
    let before = stored(&s).await;
    assert_eq!(before.len(), 3);
    let tid = kura_domain::TenantId::from_string(&t.tenant_id);
    let key_versions = || async {
        let mut tx = s.services.store.tenant_read(&tid).await.unwrap();
        let mut out = Vec::new();
        for f in [&a, &bid] {
            for v in kura_store::files::list_versions(&mut tx, &tid, f)
                .await
                .unwrap()
            {
                out.push(v.key_version);
            }
        }
        out
    };

    // Rotation returns at once; the running server re-encrypts in the background.
    assert_eq!(
        kura_testkit::run_cli(&s.cfg, &["keys", "rotate", "--tenant", "rotate"]).await,
        0
    );
    let mut waited = 0;
    while s
        .services
        .operator_key_status("rotate")
        .await
        .unwrap()
        .pending()
        > 0
    {
        assert!(
            waited < 300,
            "{b:?}/{storage:?}: background re-encryption did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    // Every version now lives in a new blob under key version 2; the old blobs are gone.
    let after = stored(&s).await;
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|p| !before.contains(p)));
    assert_eq!(key_versions().await, vec![2, 2, 2], "{b:?}/{storage:?}");

    // `--wait` does it in the foreground (racing the background worker, safely).
    assert_eq!(
        kura_testkit::run_cli(&s.cfg, &["keys", "rotate", "--tenant", "rotate", "--wait"]).await,
        0
    );
    assert_eq!(key_versions().await, vec![3, 3, 3], "{b:?}/{storage:?}");
    assert_eq!(stored(&s).await.len(), 3, "no copy left behind");
    assert_eq!(
        kura_testkit::run_cli(&s.cfg, &["keys", "status", "--tenant", "rotate"]).await,
        0
    );
    // Content is unchanged, all versions.
    assert_eq!(
        download(&s, tok, &a, &[], "?version=1")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &content(150_000)[..]
    );
    assert_eq!(
        download(&s, tok, &a, &[], "")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &content(1_000)[..]
    );
    assert_eq!(
        download(&s, tok, &bid, &[("range", "bytes=65530-65545")], "")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &content(70_000)[65530..=65545]
    );
    // New data uses the new key at once.
    let (_, c) = upload(&s, tok, &p, "c.txt", content(10)).await;
    let cid = c["file"]["id"].as_str().unwrap().to_string();
    let mut tx = s.services.store.tenant_read(&tid).await.unwrap();
    assert_eq!(
        kura_store::files::get_version(&mut tx, &tid, &cid, 1)
            .await
            .unwrap()
            .key_version,
        3
    );
    drop(tx);
    let (_, audit) = s.get("/api/v1/audit?limit=100", tok).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"key.rotate") && actions.contains(&"key.reencrypt"),
        "{actions:?}"
    );
    s.stop().await;
}

kura_testkit::per_backend!(master_key_rewrap);
async fn master_key_rewrap(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("rewrap").await;
    let p = project(&s, &t.admin_token).await;
    let (_, f) = upload(&s, &t.admin_token, &p, "x.txt", content(5_000)).await;
    let fid = f["file"]["id"].as_str().unwrap().to_string();
    let new_key = kura_crypto::keys::SecretKey::generate().unwrap();
    let dir = kura_testkit::temp_path("newkey");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("master.key");
    std::fs::write(&file, new_key.to_hex()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let arg = file.display().to_string();
    assert_eq!(
        kura_testkit::run_cli(&s.cfg, &["keys", "rewrap", "--new-master-key-file", &arg]).await,
        2,
        "a readable key file is refused"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        kura_testkit::run_cli(&s.cfg, &["keys", "rewrap", "--new-master-key-file", &arg]).await,
        0
    );

    // A node started with the new master key reads the data; one with the old key cannot.
    let mut with_new = s.cfg.clone();
    with_new.master_key = Some(new_key.to_hex());
    let n2 = TestServer::start_with(with_new, b).await;
    let (_, login) = n2
        .login("rewrap", &t.admin_email, kura_testkit::PASSWORD)
        .await;
    let tok2 = login["token"].as_str().unwrap().to_string();
    assert_eq!(
        download(&n2, &tok2, &fid, &[], "")
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        &content(5_000)[..]
    );
    let n3 = TestServer::start_with(s.cfg.clone(), b).await;
    let res = download(&n3, &tok2, &fid, &[], "").await;
    assert_eq!(
        res.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{b:?}: the old master key no longer unwraps"
    );
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_fields_use_the_tenant_key() {
    let s = TestServer::start(Backend::Sqlite).await;
    let a = s.create_tenant("field-a").await;
    let b = s.create_tenant("field-b").await;
    let ta = kura_domain::TenantId::from_string(&a.tenant_id);
    let tb = kura_domain::TenantId::from_string(&b.tenant_id);
    let sealed = s
        .services
        .seal_field(&ta, "totp_seed:u1", b"JBSWY3DPEHPK3PXP")
        .await
        .unwrap();
    assert!(sealed.starts_with("k1:") && !sealed.contains("JBSWY3DPEHPK3PXP"));
    assert_eq!(
        s.services
            .open_field(&ta, "totp_seed:u1", &sealed)
            .await
            .unwrap(),
        b"JBSWY3DPEHPK3PXP"
    );
    assert!(
        s.services
            .open_field(&ta, "totp_seed:u2", &sealed)
            .await
            .is_err(),
        "bound to its owner"
    );
    assert!(
        s.services
            .open_field(&tb, "totp_seed:u1", &sealed)
            .await
            .is_err(),
        "bound to its tenant"
    );
    // After a rotation old values still open (their version is recorded), new ones use v2.
    assert_eq!(
        kura_testkit::run_cli(&s.cfg, &["keys", "rotate", "--tenant", "field-a"]).await,
        0
    );
    assert_eq!(
        s.services
            .open_field(&ta, "totp_seed:u1", &sealed)
            .await
            .unwrap(),
        b"JBSWY3DPEHPK3PXP"
    );
    assert!(s
        .services
        .seal_field(&ta, "p", b"x")
        .await
        .unwrap()
        .starts_with("k2:"));
    s.stop().await;
}

/// Pages through `list` (a listing URL with its query) by the `next` cursors, at most 10
/// pages: each page's file names without `.txt`.
async fn walk_pages(s: &TestServer, list: &str, token: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = String::new();
    for _ in 0..10 {
        let (st, page) = s.get(&format!("{list}&after={after}"), token).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        pages.push(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    i["name"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches(".txt")
                        .to_string()
                })
                .collect(),
        );
        match page["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => break,
        }
    }
    pages
}

kura_testkit::per_backend!(search_pages_stay_in_their_tenant);
/// Tenant-wide search, driven by the trigram index ("report": few matches) and by walking
/// the names in order ("re": too short for trigrams), pages through the caller's tenant
/// only — also when handed a cursor taken from the other tenant's pages.
async fn search_pages_stay_in_their_tenant(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_tenant("search-a").await;
    let bt = s.create_tenant("search-b").await;
    let (pa, pb) = (
        project(&s, &a.admin_token).await,
        project(&s, &bt.admin_token).await,
    );
    for n in ["report-a1", "report-a2", "report-a3"] {
        upload(&s, &a.admin_token, &pa, &format!("{n}.txt"), b"a".to_vec()).await;
    }
    for n in [
        "report-b1",
        "report-b2",
        "report-b3",
        "report-b4",
        "report-b5",
    ] {
        upload(&s, &bt.admin_token, &pb, &format!("{n}.txt"), b"b".to_vec()).await;
    }
    for q in ["report", "re"] {
        let list = format!("/api/v1/search?q={q}&limit=2");
        let pages_a = walk_pages(&s, &list, &a.admin_token).await;
        assert_eq!(
            pages_a.concat(),
            ["report-a1", "report-a2", "report-a3"],
            "{q}"
        );
        let pages_b = walk_pages(&s, &list, &bt.admin_token).await;
        assert_eq!(
            pages_b.concat(),
            [
                "report-b1",
                "report-b2",
                "report-b3",
                "report-b4",
                "report-b5"
            ],
            "{q}"
        );
        // A's first cursor, used by B: B's own files after that name, never A's.
        let (_, first) = s.get(&list, &a.admin_token).await;
        let cursor = first["next"].as_str().unwrap();
        let (st, page) = s
            .get(&format!("{list}&after={cursor}"), &bt.admin_token)
            .await;
        assert_eq!(st, StatusCode::OK, "{page}");
        for i in page["items"].as_array().unwrap() {
            assert!(
                i["name"].as_str().unwrap().starts_with("report-b"),
                "{page}"
            );
        }
    }
    s.stop().await;
}

kura_testkit::per_backend!(paging_walks_past_hidden_files);
/// A guest capped at `internal` pages through a project whose first files (by name) are
/// all above the cap: pages are filled from the files after them, every visible file comes
/// once, no hidden one ever, and the last page has no cursor.
async fn paging_walks_past_hidden_files(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("hidden-pages").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    for n in ["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3"] {
        let (_, f) = upload(&s, tok, &p, &format!("{n}.txt"), n.as_bytes().to_vec()).await;
        if n.starts_with('a') {
            let id = f["file"]["id"].as_str().unwrap();
            let (st, body) = s
                .call(
                    "PATCH",
                    &format!("/api/v1/files/{id}"),
                    Some(tok),
                    Some(json!({ "label": "confidential" })),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{body}");
        }
    }
    let (_, guest) = s
        .add_user_with(
            tok,
            json!({ "email": "pager@acme.example.jp", "role": "guest", "max_label": "internal" }),
        )
        .await;
    for (list, want) in [
        (format!("/api/v1/projects/{p}/files?limit=2"), "b1 b2 | b3"),
        ("/api/v1/search?q=.txt&limit=2".to_string(), "b1 b2 | b3"),
        (
            format!("/api/v1/projects/{p}/files?limit=2"),
            "a1 a2 | a3 a4 | a5 a6 | b1 b2 | b3",
        ),
    ] {
        // The last case is the admin, who sees every file.
        let who = if want.starts_with('a') { tok } else { &guest };
        let pages: Vec<String> = walk_pages(&s, &list, who)
            .await
            .iter()
            .map(|names| names.join(" "))
            .collect();
        assert_eq!(pages.join(" | "), want, "{list}");
    }
    s.stop().await;
}

kura_testkit::per_backend!(keyset_pagination_and_sort);
async fn keyset_pagination_and_sort(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("pages").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    // Uploaded in an order that differs from the name order; the clock moves between.
    for n in ["c", "a", "e", "b", "d"] {
        upload(&s, tok, &p, &format!("{n}.txt"), n.as_bytes().to_vec()).await;
        s.clock.advance_secs(10);
    }
    let walk = |query: &'static str| {
        let list = format!("/api/v1/projects/{p}/files?limit=2{query}");
        let s = &s;
        async move { walk_pages(s, &list, tok).await.concat().join("") }
    };
    assert_eq!(walk("").await, "abcde");
    assert_eq!(walk("&order=desc").await, "edcba");
    assert_eq!(walk("&sort=updated").await, "caebd");
    assert_eq!(walk("&sort=updated&order=desc").await, "dbeac");
    assert_eq!(
        s.get(&format!("/api/v1/projects/{p}/files?after=zz"), tok)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.get(&format!("/api/v1/projects/{p}/files?sort=size"), tok)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    s.stop().await;
}

kura_testkit::per_backend!(rename_and_move_files);
async fn rename_and_move_files(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    let tok = &t.admin_token;
    let p1 = project(&s, tok).await;
    let (_, info) = s.get(&format!("/api/v1/projects/{p1}"), tok).await;
    let (_, p2) = s
        .post(
            "/api/v1/projects",
            tok,
            json!({ "name": "P2", "folder_id": info["folder_id"] }),
        )
        .await;
    let p2 = p2["id"].as_str().unwrap().to_string();
    let (_, a) = upload(&s, tok, &p1, "a.txt", content(5_000)).await;
    let a = a["file"]["id"].as_str().unwrap().to_string();
    upload(&s, tok, &p1, "taken.txt", b"x".to_vec()).await;
    let patch = |body: Value| {
        let s = &s;
        let a = a.clone();
        async move {
            s.call(
                "PATCH",
                &format!("/api/v1/files/{a}"),
                Some(tok),
                Some(body),
            )
            .await
        }
    };

    let (st, f) = patch(json!({ "name": "報告書.txt" })).await;
    assert_eq!(
        (st, f["name"].as_str()),
        (StatusCode::OK, Some("報告書.txt"))
    );
    let (st, e) = patch(json!({ "name": "taken.txt" })).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{e}"
    );
    assert_eq!(
        patch(json!({ "name": "" })).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(patch(json!({ "name": 5 })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        patch(json!({ "project_id": kura_domain::ids::new_id() }))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Moved with its versions; downloads keep working.
    upload(&s, tok, &p1, "報告書.txt", content(6_000)).await;
    let (st, f) = patch(json!({ "project_id": p2 })).await;
    assert_eq!(st, StatusCode::OK, "{f}");
    assert_eq!(f["project_id"].as_str(), Some(p2.as_str()));
    let (_, l1) = s.get(&format!("/api/v1/projects/{p1}/files"), tok).await;
    assert!(!l1.to_string().contains(&a));
    let (_, l2) = s.get(&format!("/api/v1/projects/{p2}/files"), tok).await;
    assert!(l2.to_string().contains(&a));
    let (_, info) = s.get(&format!("/api/v1/files/{a}"), tok).await;
    assert_eq!(info["versions"].as_array().unwrap().len(), 2);
    let got = download(&s, tok, &a, &[], "?version=1")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &content(5_000)[..]);

    // A guest cannot rename; a trashed file cannot be renamed.
    let (_, guest) = s
        .add_user(
            tok,
            "g@acme.example.jp",
            "guest",
            json!({ "type": "tenant" }),
        )
        .await;
    assert_eq!(
        s.call(
            "PATCH",
            &format!("/api/v1/files/{a}"),
            Some(&guest),
            Some(json!({ "name": "g.txt" }))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    s.call("DELETE", &format!("/api/v1/files/{a}"), Some(tok), None)
        .await;
    assert_eq!(
        patch(json!({ "name": "z.txt" })).await.0,
        StatusCode::NOT_FOUND
    );

    let (_, audit) = s.get("/api/v1/audit?limit=200", tok).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"file.rename") && actions.contains(&"file.move"));
    s.stop().await;
}

kura_testkit::per_setup!(aborted_uploads_leave_nothing);
async fn aborted_uploads_leave_nothing(b: kura_testkit::Backend, storage: kura_testkit::Storage) {
    let s = TestServer::start_on(b, storage).await;
    let t = s.create_tenant("abort").await;
    let p = project(&s, &t.admin_token).await;
    // The client sends 10 MiB (on S3 a multipart upload is under way by then) and
    // then breaks the connection.
    let piece = bytes::Bytes::from(vec![7u8; 1024 * 1024]);
    let body = futures_util::stream::iter((0..11).map(move |i| {
        if i < 10 {
            Ok(piece.clone())
        } else {
            Err(std::io::Error::other("client gave up"))
        }
    }));
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/projects/{p}/files?name=half.bin",
            s.base
        ))
        .bearer_auth(&t.admin_token)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    assert!(res.is_err() || !res.unwrap().status().is_success());
    let mut waited = 0;
    while !stored(&s).await.is_empty() {
        assert!(waited < 100, "{b:?}/{storage:?}: {:?}", stored(&s).await);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let (_, list) = s
        .get(&format!("/api/v1/projects/{p}/files"), &t.admin_token)
        .await;
    assert!(list["items"].as_array().unwrap().is_empty(), "no row");
    s.stop().await;
}

/// The `file.download` audit entries, newest first.
async fn file_downloads(s: &TestServer, tok: &str) -> Vec<Value> {
    let (_, a) = s.get("/api/v1/audit?action=file.&limit=200", tok).await;
    a["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "file.download")
        .cloned()
        .collect()
}

kura_testkit::per_backend!(small_downloads_are_recorded_before_they_are_sent);
/// A small file (read, decrypted and checked whole before anything is sent) is recorded
/// before its first byte goes out: when its record cannot be written, the caller gets an
/// error and none of the content. A larger file, streamed, is cut off before its end
/// instead. A HEAD request reads nothing and records nothing.
async fn small_downloads_are_recorded_before_they_are_sent(b: Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("dl-first").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    let small = content(1024);
    let big = content(3_000_000);
    let id = |v: Value| v["file"]["id"].as_str().unwrap().to_string();
    let small_id = id(upload(&s, tok, &p, "small.txt", small.clone()).await.1);
    let big_id = id(upload(&s, tok, &p, "big.bin", big.clone()).await.1);

    let head = |range: &'static str| {
        let mut req = s
            .client
            .head(format!("{}/api/v1/files/{small_id}/content", s.base))
            .bearer_auth(tok);
        if !range.is_empty() {
            req = req.header("range", range);
        }
        req.send()
    };
    let res = head("").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-length"], "1024");
    let res = head("bytes=5000-").await.unwrap();
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert!(
        file_downloads(&s, tok).await.is_empty(),
        "{b:?}: HEAD recorded"
    );

    let res = download(&s, tok, &small_id, &[], "").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-length"], "1024");
    assert_eq!(res.bytes().await.unwrap().to_vec(), small);
    let d = file_downloads(&s, tok).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["result"], "success", "{b:?}: {}", d[0]);
    assert_eq!(d[0]["details"]["size"], 1024);

    // The tenant's audit rows are refused from now on.
    kura_testkit::refuse_audit_rows(&s.cfg, &t.tenant_id).await;
    let res = download(&s, tok, &small_id, &[], "").await;
    assert!(
        res.status().is_server_error(),
        "{b:?}: an unrecorded small download answered {}",
        res.status()
    );
    let body = res.bytes().await.unwrap();
    assert!(
        !body.windows(MARKER.len()).any(|w| w == MARKER),
        "{b:?}: content of an unrecorded download went out"
    );
    assert_eq!(
        body_or_broken(&s, tok, &big_id).await.map(|g| g.len()),
        None,
        "{b:?}: an unrecorded large download was not cut off"
    );
    assert_eq!(file_downloads(&s, tok).await.len(), 1);

    kura_testkit::allow_audit_rows(&s.cfg).await;
    assert_eq!(
        body_or_broken(&s, tok, &small_id).await.as_deref(),
        Some(&small[..])
    );
    assert_eq!(
        body_or_broken(&s, tok, &big_id).await.map(|g| g == big),
        Some(true)
    );
    let d = file_downloads(&s, tok).await;
    assert_eq!(d.len(), 3, "{b:?}");
    assert!(d.iter().all(|e| e["result"] == "success"), "{d:?}");
}

kura_testkit::per_setup!(downloads_record_their_real_outcome);
/// The download's record says how it ended: complete (success, the bytes sent — also in the
/// access log), cut off by the client (failure, `aborted`, fewer bytes), an unsatisfiable
/// range, or an integrity failure (its own `file.integrity_failure` event and metric).
/// Bytes appended to a blob are an integrity failure too (on local storage and S3).
async fn downloads_record_their_real_outcome(
    b: kura_testkit::Backend,
    storage: kura_testkit::Storage,
) {
    let s = TestServer::start_on(b, storage).await;
    let t = s.create_tenant("dl-outcome").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    let big = content(6_000_000);
    let (_, f) = upload(&s, tok, &p, "big.bin", big.clone()).await;
    let fid = f["file"]["id"].as_str().unwrap().to_string();
    // Complete.
    let got = download(&s, tok, &fid, &[], "")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), big.len());
    let d = file_downloads(&s, tok).await;
    assert_eq!(d[0]["result"], "success", "{b:?} {storage:?}: {}", d[0]);
    assert_eq!(d[0]["details"]["size"], 6_000_000);

    // The client gives up after the first piece.
    let mut res = download(&s, tok, &fid, &[], "").await;
    let first = res.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(res);
    let mut aborted = None;
    for _ in 0..50 {
        let d = file_downloads(&s, tok).await;
        if d[0]["details"]["outcome"] == "aborted" {
            aborted = Some(d[0].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let aborted =
        aborted.unwrap_or_else(|| panic!("{b:?} {storage:?}: no aborted download recorded"));
    assert_eq!(aborted["result"], "failure");
    let sent = aborted["details"]["size"].as_i64().unwrap();
    assert!(sent < 6_000_000, "{aborted}");

    // An unsatisfiable range.
    let res = download(&s, tok, &fid, &[("range", "bytes=9000000-")], "").await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let d = file_downloads(&s, tok).await;
    assert_eq!(
        d[0]["details"]["outcome"], "range_not_satisfiable",
        "{}",
        d[0]
    );
    assert_eq!(d[0]["result"], "failure");

    // Bytes appended to the blob: refused as an integrity failure, whole or in part.
    let (at, original) = raw_blob(&s, &t.tenant_id).await;
    let mut longer = original.clone();
    longer.extend_from_slice(b"appended-bytes");
    put_raw(&s, &at, &longer).await;
    for extra in [&[][..], &[("range", "bytes=0-99")][..]] {
        let res = download(&s, tok, &fid, extra, "").await;
        assert_eq!(
            res.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{b:?} {storage:?} {extra:?}"
        );
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["code"], "integrity");
    }
    let d = file_downloads(&s, tok).await;
    assert_eq!(d[0]["details"]["outcome"], "integrity_failure", "{}", d[0]);
    let (_, a) = s
        .get("/api/v1/audit?action=file.integrity_failure", tok)
        .await;
    assert!(!a["items"].as_array().unwrap().is_empty(), "{b:?}: {a}");
    let (_, m) = s.call("GET", "/metrics", None, None).await;
    let m = m.as_str().unwrap();
    let line = m
        .lines()
        .find(|l| l.starts_with("kura_integrity_failures_total "))
        .unwrap();
    assert!(!line.ends_with(" 0"), "{line}");
    put_raw(&s, &at, &original).await;

    // The access log has the bytes that went out.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (_, log) = s
        .get(
            &format!("/api/v1/access-log?path=/api/v1/files/{fid}/content"),
            tok,
        )
        .await;
    let bytes: Vec<i64> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["bytes"].as_i64().unwrap())
        .collect();
    assert!(bytes.contains(&6_000_000), "{b:?}: {bytes:?}");
    assert!(
        bytes.iter().any(|n| *n > 0 && *n < 6_000_000),
        "{b:?}: {bytes:?}"
    );
    s.stop().await;
}

kura_testkit::per_backend!(name_search_finds_through_the_trigram_index_what_like_finds);
/// Name search narrows through a trigram index (FTS5 on SQLite, pg_trgm on PostgreSQL):
/// it must find exactly what a case-insensitive substring match finds — short terms,
/// Japanese, quotes, renames and the trash included — and nothing of another tenant.
async fn name_search_finds_through_the_trigram_index_what_like_finds(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("acme").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    let mut ids = std::collections::HashMap::new();
    for name in [
        "報告書2026.pdf",
        "say \"hi\" now.txt",
        "before-rename.txt",
        "ab.txt",
        "ABCdef.TXT",
        "gone-soon.txt",
    ] {
        let (st, f) = upload(&s, tok, &p, name, b"x".to_vec()).await;
        assert_eq!(st, StatusCode::CREATED, "{name}: {f}");
        ids.insert(name, f["file"]["id"].as_str().unwrap().to_string());
    }
    let other = s.create_tenant("other-co").await;
    let op = project(&s, &other.admin_token).await;
    upload(
        &s,
        &other.admin_token,
        &op,
        "報告書2026-other.pdf",
        b"y".to_vec(),
    )
    .await;

    let found = |q: &'static str| {
        let s = &s;
        async move {
            let (st, v) = s.get(&format!("/api/v1/search?q={q}"), tok).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            let mut n: Vec<String> = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_string())
                .collect();
            n.sort();
            n
        }
    };
    // 告書2 (three characters, through the index) and 報告 (two, a scan) alike.
    assert_eq!(found("%E5%91%8A%E6%9B%B82").await, vec!["報告書2026.pdf"]);
    assert_eq!(found("%E5%A0%B1%E5%91%8A").await, vec!["報告書2026.pdf"]);
    assert_eq!(found("cDe").await, vec!["ABCdef.TXT"], "case-insensitive");
    assert_eq!(found("b.t").await, vec!["ab.txt"]);
    assert_eq!(
        found("%22hi%22").await,
        vec!["say \"hi\" now.txt"],
        "quotes are literal"
    );
    assert_eq!(found("%22%20OR%20x").await, Vec::<String>::new());
    assert!(found("xyz").await.is_empty());

    // A rename is found by its new name only; a file in the trash is not found.
    let (st, _) = s
        .call(
            "PATCH",
            &format!("/api/v1/files/{}", ids["before-rename.txt"]),
            Some(tok),
            Some(json!({ "name": "after-rename.txt" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(found("before").await.is_empty());
    assert_eq!(found("after-ren").await, vec!["after-rename.txt"]);
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/api/v1/files/{}", ids["gone-soon.txt"]),
            Some(tok),
            None,
        )
        .await;
    assert!(st.is_success(), "{st}");
    assert!(found("gone").await.is_empty());

    // An update-time cursor that is not a number is refused, not passed to the database.
    let forged = hex::encode("abc\0x");
    let (st, e) = s
        .get(
            &format!("/api/v1/projects/{p}/files?sort=updated&after={forged}"),
            tok,
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    s.stop().await;
}

/// The console's project page shows 100 files per page with a link to the next page that
/// keeps the filter, and the pages together show every file once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_project_page_pages_through_files() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("acme").await;
    let tok = &t.admin_token;
    let p = project(&s, tok).await;
    for i in 0..105 {
        let (st, f) = upload(&s, tok, &p, &format!("f{i:03}.txt"), b"x".to_vec()).await;
        assert_eq!(st, StatusCode::CREATED, "{f}");
    }
    let cookie = format!("__Host-kura_session={tok}; kura_lang=en");
    let get = |path: String| {
        let (c, base, cookie) = (s.client.clone(), s.base.clone(), cookie.clone());
        async move {
            let res = c
                .get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.text().await.unwrap()
        }
    };
    let rows = |html: &str| -> Vec<String> {
        html.split("<tr data-name=\"")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().to_string())
            .collect()
    };
    let link = |html: &str, id: &str| -> Option<String> {
        let at = html.find(&format!("id=\"{id}\""))?;
        let start = html[..at].rfind("href=\"")? + 6;
        // (As a browser reads the attribute: askama writes & as &#38;.)
        Some(
            html[start..]
                .split('"')
                .next()?
                .replace("&#38;", "&")
                .replace("&amp;", "&"),
        )
    };
    let first = get(format!("/projects/{p}")).await;
    let mut seen = rows(&first);
    assert_eq!(seen.len(), 100);
    assert!(first.contains("Next page"));
    assert!(link(&first, "first-page").is_none());
    let next = link(&first, "next-page").expect("a next-page link");
    assert!(next.starts_with(&format!("/projects/{p}?after=")), "{next}");
    let second = get(next).await;
    let rest = rows(&second);
    assert_eq!(rest.len(), 5);
    assert!(link(&second, "next-page").is_none());
    assert_eq!(link(&second, "first-page"), Some(format!("/projects/{p}")));
    seen.extend(rest);
    let expected: Vec<String> = (0..105).map(|i| format!("f{i:03}.txt")).collect();
    assert_eq!(seen, expected, "every file once, in order");

    // The filter travels with the page link.
    let filtered = get(format!("/projects/{p}?q=.TXT")).await;
    assert_eq!(rows(&filtered).len(), 100);
    let next = link(&filtered, "next-page").expect("a next-page link");
    assert!(next.contains("&q=.TXT"), "{next}");
    let filtered_second = get(next).await;
    assert_eq!(rows(&filtered_second).len(), 5);
    assert_eq!(
        link(&filtered_second, "first-page"),
        Some(format!("/projects/{p}?q=.TXT")),
        "the first page keeps the filter"
    );

    // A cursor that is not one gets the console's error page, not a 500; another tenant's
    // project answers like a made-up id, cursor or not.
    let status = |path: String| {
        let (c, base, cookie) = (s.client.clone(), s.base.clone(), cookie.clone());
        async move {
            c.get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        status(format!("/projects/{p}?after=zz")).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let other = s.create_tenant("other-co").await;
    let theirs = project(&s, &other.admin_token).await;
    let made_up = "01a00000-0000-7000-8000-000000000000";
    for q in ["", "?after=zz"] {
        assert_eq!(
            status(format!("/projects/{theirs}{q}")).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(format!("/projects/{made_up}{q}")).await,
            StatusCode::NOT_FOUND
        );
    }
    s.stop().await;
}
