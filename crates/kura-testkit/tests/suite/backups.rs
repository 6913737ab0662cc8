//! Backups and restore: encrypted, verified, rotated generations; tenant and full restores that
//! check what they copy.

use kura_testkit::{run_cli, test_config, StatusCode, TestServer};
use serde_json::json;
use std::time::Duration;

pub(crate) fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

kura_testkit::per_backend!(backups_are_encrypted_verified_and_rotated);
/// Backups: a generation per run with each tenant's rows sealed with its key, blob copies
/// made once, a signed manifest, restore verification recorded; tampering is found; old
/// generations expire beyond `backup_keep`; the metric shows the last backup's age.
async fn backups_are_encrypted_verified_and_rotated(b: kura_testkit::Backend) {
    let mut cfg = test_config(b);
    cfg.backup_keep = 2;
    let s = TestServer::start_with(cfg, b).await;
    let backup_dir = s.cfg.data_dir.join("backups");
    let mut marker_files = Vec::new();
    for slug in ["bk-a", "bk-b"] {
        let t = s.create_tenant(slug).await;
        let (_, f) = s
            .post("/api/v1/folders", &t.admin_token, json!({ "name": "f" }))
            .await;
        let (_, p) = s
            .post(
                "/api/v1/projects",
                &t.admin_token,
                json!({ "name": "p", "folder_id": f["id"] }),
            )
            .await;
        let body = format!("BACKUP-MARKER-{slug} 極秘");
        let res = s
            .client
            .post(format!(
                "{}/api/v1/projects/{}/files?name=secret.txt",
                s.base,
                p["id"].as_str().unwrap()
            ))
            .bearer_auth(&t.admin_token)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        marker_files.push((t, body));
    }
    assert_eq!(s.services.last_backup_age_secs().await.unwrap(), None);
    let tok = marker_files[0].0.admin_token.clone();
    let (_, none) = s.get("/api/v1/tenant/backups", &tok).await;
    assert!(none["last_verified_generation"].is_null(), "{none}");
    assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
    let (_, some) = s.get("/api/v1/tenant/backups", &tok).await;
    assert!(some["last_verified_generation"].is_string(), "{some}");
    assert_eq!(some["generations_kept"], 2);
    let list = s.services.list_backups().await.unwrap();
    assert_eq!(list.len(), 1);
    let g = &list[0];
    assert_eq!(g.status, "ok");
    assert_eq!(g.verify_status.as_deref(), Some("ok"), "{g:?}");
    assert!(
        g.verify_detail
            .as_deref()
            .unwrap_or_default()
            .contains("scratch database"),
        "{g:?}"
    );
    assert!(
        g.tenants >= 2 && g.blobs >= 2 && g.blobs_copied == g.blobs,
        "{g:?}"
    );
    let files = files_under(&backup_dir);
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    assert!(names.iter().any(|n| n.ends_with("/manifest")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("/vault")));
    for (t, body) in &marker_files {
        assert!(names
            .iter()
            .any(|n| n.ends_with(&format!("snap-{}", t.tenant_id))));
        // Nothing readable at rest: neither the file's text nor the tenant's rows.
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(body.as_str()),
                "{} holds plaintext",
                f.display()
            );
            assert!(
                !text.contains(&t.admin_email),
                "{} holds plaintext",
                f.display()
            );
        }
    }
    // The next generation copies no blob again.
    s.clock.advance_secs(86_400);
    assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
    let list = s.services.list_backups().await.unwrap();
    assert_eq!(list[0].blobs_copied, 0, "{:?}", list[0]);
    assert!(s.services.last_backup_age_secs().await.unwrap().is_some());
    // An altered snapshot is found by verification, naming the tenant.
    let newest = list[0].id.clone();
    let snap = backup_dir
        .join(format!("gen-{newest}"))
        .join(format!("snap-{}", marker_files[0].0.tenant_id));
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&snap, bytes).unwrap();
    assert_eq!(
        run_cli(&s.cfg, &["backup", "verify", "--generation", &newest]).await,
        1
    );
    let (ok, detail) = s.services.verify_backup(&newest).await.unwrap();
    assert!(!ok && detail.contains("bk-a"), "{detail}");
    // Two verified generations are kept: the next run drops the one that failed
    // verification; the one after drops the oldest.
    let first = list[1].id.clone();
    s.clock.advance_secs(86_400);
    assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
    let list = s.services.list_backups().await.unwrap();
    let status = |list: &[kura_store::backup::Generation], id: &str| {
        list.iter().find(|g| g.id == id).unwrap().status.clone()
    };
    assert_eq!(status(&list, &newest), "expired");
    assert!(!snap.exists());
    assert_eq!(status(&list, &first), "ok");
    s.clock.advance_secs(86_400);
    assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
    let list = s.services.list_backups().await.unwrap();
    assert_eq!(status(&list, &first), "expired");
    assert!(!backup_dir
        .join(format!("gen-{first}"))
        .join("manifest")
        .exists());
    // Blob copies stay while a kept generation references them.
    assert!(s.services.verify_backup(&list[0].id).await.unwrap().0);
    assert_eq!(run_cli(&s.cfg, &["backup", "list"]).await, 0);
    s.stop().await;
}

// Every backend with local storage; and once with the files and the backups in S3,
// restored into a fresh database and an empty bucket.
kura_testkit::per_setup!(restore_one_tenant_alone_and_everything_into_a_fresh_database);
/// Restore: one tenant goes back to its backup while the other keeps its newer data; and a
/// full restore into an empty database brings every file back byte for byte with the
/// audit chain verifying.
async fn restore_one_tenant_alone_and_everything_into_a_fresh_database(
    b: kura_testkit::Backend,
    storage: kura_testkit::Storage,
) {
    let s3 = storage == kura_testkit::Storage::S3;
    let mut cfg = test_config(b);
    if s3 {
        kura_testkit::use_s3(&mut cfg).await;
        cfg.backup_storage = "s3".into();
        cfg.backup_s3_bucket = cfg.s3_bucket.clone();
        cfg.backup_s3_prefix = "kura-backups".into();
    }
    let s = TestServer::start_with(cfg, b).await;
    let a = s.create_tenant("rs-a").await;
    let bt = s.create_tenant("rs-b").await;
    let (_, f) = s
        .post("/api/v1/folders", &a.admin_token, json!({ "name": "保管" }))
        .await;
    let (_, p) = s
        .post(
            "/api/v1/projects",
            &a.admin_token,
            json!({ "name": "p", "folder_id": f["id"] }),
        )
        .await;
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let res = s
        .client
        .post(format!(
            "{}/api/v1/projects/{}/files?name=data.bin",
            s.base,
            p["id"].as_str().unwrap()
        ))
        .bearer_auth(&a.admin_token)
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let file: serde_json::Value = res.json().await.unwrap();
    let fid = file["file"]["id"].as_str().unwrap().to_string();
    assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);
    let g = &s.services.list_backups().await.unwrap()[0];
    assert_eq!(g.verify_status.as_deref(), Some("ok"), "{g:?}");
    if s3 {
        // The generation is in the bucket, and nothing there is readable.
        let bucket = s.cfg.s3_bucket.clone().unwrap();
        let listing = s
            .client
            .get(format!(
                "{}/{bucket}?list-type=2&prefix=kura-backups/",
                kura_testkit::s3_endpoint()
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let keys: Vec<&str> = listing
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .collect();
        assert!(
            keys.iter()
                .any(|k| k.ends_with(&format!("/gen-{}/manifest", g.id))),
            "{keys:?}"
        );
        assert!(keys
            .iter()
            .any(|k| k.ends_with(&format!("snap-{}", a.tenant_id))));
        for k in &keys {
            let bytes = s
                .client
                .get(format!("{}/{bucket}/{k}", kura_testkit::s3_endpoint()))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&a.admin_email),
                "{k} holds plaintext"
            );
            assert!(
                !bytes.windows(64).any(|w| w == &content[1000..1064]),
                "{k} holds the file in the clear"
            );
        }
    }

    // After the backup: A trashes and purges its file and adds a folder; B adds one.
    s.call(
        "DELETE",
        &format!("/api/v1/files/{fid}"),
        Some(&a.admin_token),
        None,
    )
    .await;
    let (st, _) = s
        .post(
            &format!("/api/v1/files/{fid}/purge"),
            &a.admin_token,
            json!({}),
        )
        .await;
    assert!(st.is_success(), "{st}");
    s.post(
        "/api/v1/folders",
        &a.admin_token,
        json!({ "name": "後から" }),
    )
    .await;
    s.post(
        "/api/v1/folders",
        &bt.admin_token,
        json!({ "name": "B の新しいフォルダー" }),
    )
    .await;

    assert_eq!(
        run_cli(&s.cfg, &["backup", "restore", "--tenant", "rs-a"]).await,
        0
    );
    // A's sessions ended with the restore.
    assert_eq!(
        s.get("/api/v1/me", &a.admin_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, l) = s
        .login("rs-a", &a.admin_email, kura_testkit::PASSWORD)
        .await;
    let tok = l["token"].as_str().unwrap().to_string();
    let (_, folders) = s.get("/api/v1/folders", &tok).await;
    let names: Vec<&str> = folders["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["保管"], "A is back to its backup");
    let (_, got) = s.download(&tok, &fid).await;
    assert_eq!(
        got.as_ref(),
        content.as_slice(),
        "the purged file is back, byte for byte"
    );
    let (_, v) = s.get("/api/v1/audit/verify", &tok).await;
    assert_eq!(v["ok"], true, "{v}");
    let (_, bf) = s.get("/api/v1/folders", &bt.admin_token).await;
    assert!(
        bf.to_string().contains("B の新しいフォルダー"),
        "B untouched: {bf}"
    );

    // Everything into an empty database (same master and signing keys, the backups).
    let mut fresh = test_config(b);
    fresh.master_key = s.cfg.master_key.clone();
    fresh.signing_key = s.cfg.signing_key.clone();
    fresh.backup_dir = Some(s.cfg.data_dir.join("backups"));
    if s3 {
        // A new, empty bucket for the files; the backups where they were.
        kura_testkit::use_s3(&mut fresh).await;
        fresh.backup_storage = "s3".into();
        fresh.backup_s3_bucket = s.cfg.backup_s3_bucket.clone();
        fresh.backup_s3_prefix = s.cfg.backup_s3_prefix.clone();
    }
    let gen = s.services.list_backups().await.unwrap()[0].id.clone();
    // Only `migrate` (or `serve`) creates the new, empty database.
    assert_eq!(
        run_cli(&fresh, &["backup", "restore", "--generation", &gen]).await,
        2
    );
    assert_eq!(run_cli(&fresh, &["migrate"]).await, 0);
    assert_eq!(
        run_cli(&fresh, &["backup", "restore", "--generation", &gen]).await,
        0
    );
    let t2 = TestServer::start_with(fresh, b).await;
    let (st, l) = t2
        .login("rs-a", &a.admin_email, kura_testkit::PASSWORD)
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    let tok2 = l["token"].as_str().unwrap().to_string();
    let got = t2
        .client
        .get(format!("{}/api/v1/files/{fid}/content", t2.base))
        .bearer_auth(&tok2)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), content.as_slice());
    let (_, v) = t2.get("/api/v1/audit/verify", &tok2).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        run_cli(&t2.cfg, &["audit", "verify", "--tenant", "rs-b"]).await,
        0
    );
    t2.stop().await;
    s.stop().await;
}

/// Counts a tenant's rows in a table, outside Kura.
async fn rows_of(s: &TestServer, table: &str, tenant: &str) -> i64 {
    kura_testkit::raw_count(
        &s.cfg,
        &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = '{tenant}'"),
    )
    .await
}

kura_testkit::per_backend!(backups_across_the_termination_timeline);
/// Backups across a tenant's whole termination timeline: every generation verifies —
/// before the deletion, in the shred window and after it (it used to fail for every
/// tenant between deletion and shredding); no data key is ever created for the terminated
/// tenant (the backup job used to create one after shredding); after shredding nothing of
/// it is left (rows written by jobs after the deletion, mail) and no generation restores it.
async fn backups_across_the_termination_timeline(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let gone = s.create_tenant("tl-gone").await;
    let stay = s.create_tenant("tl-stay").await;
    // The leaving tenant has no files (so no data key) until its termination.
    s.post("/api/v1/folders", &gone.admin_token, json!({ "name": "x" }))
        .await;
    let p = s.project(&stay.admin_token, "p").await;
    s.upload(&stay.admin_token, &p, "keep.txt", b"keep".to_vec())
        .await;
    let run = |label: &'static str| {
        let s = &s;
        async move {
            s.clock.advance_secs(60);
            let g = s.services.run_backup(&|_| {}).await.unwrap();
            assert_eq!(g.status, "ok", "{label}: {g:?}");
            assert_eq!(g.verify_status.as_deref(), Some("ok"), "{label}: {g:?}");
            g
        }
    };
    run("before").await;
    // (The access log is written in batches: let this tenant's requests land first.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.services
        .operator_terminate_tenant("tl-gone", &Default::default())
        .await
        .unwrap();
    run("terminated").await;
    // Deleted (30 days), then the shred window: backups still verify, the gone tenant
    // is in none of them.
    s.clock.advance_secs(31 * 86_400);
    assert!(s.services.advance_lifecycles().await.unwrap() >= 1);
    // Jobs that ran for every tenant write nothing for it any more.
    s.services.rollup_usage().await.unwrap();
    s.services.purge_logs().await.unwrap();
    let g = run("shred window").await;
    let m = s.services.list_backups().await.unwrap();
    assert!(m.iter().any(|x| x.id == g.id));
    assert_eq!(
        run_cli(&s.cfg, &["backup", "verify", "--generation", &g.id]).await,
        0
    );
    s.clock.advance_secs(8 * 86_400);
    assert!(s.services.advance_lifecycles().await.unwrap() >= 1);
    s.services.rollup_usage().await.unwrap();
    let g = run("after shredding").await;
    // No key came back, nothing is left.
    for table in [
        "tenant_keys",
        "audit_events",
        "audit_heads",
        "usage_daily",
        "tenant_usage",
        "access_log",
        "mail_outbox",
        "users",
    ] {
        assert_eq!(
            rows_of(&s, table, &gone.tenant_id).await,
            0,
            "{b:?}: {table}"
        );
    }
    assert_eq!(
        run_cli(
            &s.cfg,
            &[
                "backup",
                "restore",
                "--tenant",
                "tl-gone",
                "--generation",
                &g.id
            ]
        )
        .await,
        2,
        "{b:?}: the newest generation does not hold the shredded tenant"
    );
    for older in s.services.list_backups().await.unwrap() {
        if older.status != "ok" {
            continue;
        }
        let r = s
            .services
            .restore_backup(Some(&older.id), Some("tl-gone"), true, &|_| {})
            .await;
        assert!(r.is_err(), "{b:?}: {} restored a shredded tenant", older.id);
    }
    // The tenant that stayed is whole.
    assert_eq!(
        run_cli(&s.cfg, &["audit", "verify", "--tenant", "tl-stay"]).await,
        0
    );
    s.stop().await;
}

kura_testkit::per_backend!(tenant_restore_never_rewinds_the_audit_log);
/// A tenant restore brings the data back and keeps the audit log whole: the entries written
/// since the backup stay, the chain gains `backup.restore` naming what was rolled back, and
/// it verifies; the blob of the rolled-back upload is removed; a token revoked since the
/// backup stays revoked.
async fn tenant_restore_never_rewinds_the_audit_log(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("rw-a").await;
    let tok = t.admin_token.clone();
    let p = s.project(&tok, "p").await;
    s.upload(&tok, &p, "before.txt", b"before".to_vec()).await;
    s.clock.advance_secs(60);
    let (_, kat) = s
        .post(
            "/api/v1/me/tokens",
            &tok,
            json!({ "name": "ci", "scopes": ["files:read"], "expires_in_days": 30 }),
        )
        .await;
    let kat_secret = kat["token"].as_str().unwrap().to_string();
    let kat_id = kat["id"].as_str().unwrap().to_string();
    s.services.run_backup(&|_| {}).await.unwrap();

    // Since the backup: an upload, and the token revoked.
    let (st, up) = s.upload(&tok, &p, "after.txt", b"after".to_vec()).await;
    assert_eq!(st, StatusCode::CREATED);
    let after_id = up["file"]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/api/v1/me/tokens/{kat_id}"),
            Some(&tok),
            None,
        )
        .await;
    assert!(st.is_success(), "{st}");
    let blobs_before = files_under(&s.cfg.data_dir.join("blobs")).len();
    let (_, audit) = s.get("/api/v1/audit?limit=1000", &tok).await;
    let head_before = audit["items"][0]["seq"].as_i64().unwrap();

    assert_eq!(
        run_cli(&s.cfg, &["backup", "restore", "--tenant", "rw-a"]).await,
        0
    );
    let (_, l) = s
        .login("rw-a", &t.admin_email, kura_testkit::PASSWORD)
        .await;
    let tok = l["token"].as_str().unwrap().to_string();
    // Data is back to the backup …
    assert_eq!(
        s.get(&format!("/api/v1/files/{after_id}"), &tok).await.0,
        StatusCode::NOT_FOUND
    );
    // … the log is not: the upload's entry is still there, the chain goes on.
    let (_, audit) = s.get("/api/v1/audit?limit=1000", &tok).await;
    let items = audit["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|e| e["action"] == "file.upload" && e["target_id"] == after_id.as_str()),
        "{b:?}: the upload's audit entry was lost"
    );
    let restore = items
        .iter()
        .find(|e| e["action"] == "backup.restore")
        .expect("the restore is recorded");
    assert!(restore["seq"].as_i64().unwrap() > head_before, "{restore}");
    assert_eq!(
        restore["details"]["rolled_back"]["files"]["ids"][0],
        after_id.as_str(),
        "{restore}"
    );
    let (_, v) = s.get("/api/v1/audit/verify", &tok).await;
    assert_eq!(v["ok"], true, "{b:?}: {v}");
    assert_eq!(
        run_cli(&s.cfg, &["audit", "verify", "--tenant", "rw-a"]).await,
        0
    );
    // The rolled-back upload's blob is gone; the revoked token stays revoked.
    assert_eq!(
        files_under(&s.cfg.data_dir.join("blobs")).len(),
        blobs_before - 1,
        "{b:?}"
    );
    assert_eq!(
        s.get("/api/v1/folders", &kat_secret).await.0,
        StatusCode::UNAUTHORIZED,
        "{b:?}: a revoked token came back"
    );
    s.stop().await;
}

/// Restore checks what it copies against the signed manifest: an altered blob copy in a
/// backup refuses the restore naming the file (also with --force, which a generation whose
/// verification failed needs); a live blob damaged in place is replaced by a tenant restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_checks_blob_copies_and_repairs_damaged_blobs() {
    let b = kura_testkit::Backend::Sqlite;
    let s = TestServer::start(b).await;
    let t = s.create_tenant("bc-a").await;
    let p = s.project(&t.admin_token, "p").await;
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 239) as u8).collect();
    let (_, up) = s
        .upload(&t.admin_token, &p, "report.pdf", body.clone())
        .await;
    let fid = up["file"]["id"].as_str().unwrap().to_string();
    let good = s.services.run_backup(&|_| {}).await.unwrap();
    assert_eq!(good.verify_status.as_deref(), Some("ok"));
    let download = |tok: String| {
        let s = &s;
        let fid = fid.clone();
        async move {
            let res = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
                .get(format!("{}/api/v1/files/{fid}/content", s.base))
                .bearer_auth(tok)
                .send()
                .await
                .unwrap();
            if !res.status().is_success() {
                return None;
            }
            res.bytes().await.ok().map(|b| b.to_vec())
        }
    };

    // A live blob damaged in place: downloads fail; a tenant restore replaces it.
    let live: Vec<_> = files_under(&s.cfg.data_dir.join("blobs"))
        .into_iter()
        .filter(|p| p.display().to_string().contains(&t.tenant_id))
        .collect();
    assert_eq!(live.len(), 1);
    let mut bytes = std::fs::read(&live[0]).unwrap();
    bytes[100_000] ^= 0x40;
    std::fs::write(&live[0], &bytes).unwrap();
    assert_ne!(
        download(t.admin_token.clone()).await.as_deref(),
        Some(&body[..])
    );
    assert_eq!(
        run_cli(&s.cfg, &["backup", "restore", "--tenant", "bc-a"]).await,
        0
    );
    let (_, l) = s
        .login("bc-a", &t.admin_email, kura_testkit::PASSWORD)
        .await;
    let tok = l["token"].as_str().unwrap().to_string();
    assert_eq!(
        download(tok.clone()).await.as_deref(),
        Some(&body[..]),
        "repaired"
    );

    // One flipped byte in the backup's blob copy: verification fails, and a restore of that
    // generation is refused — without --force because it failed verification, with --force
    // because the copy does not match the manifest — naming the file; nothing changes.
    s.clock.advance_secs(86_400);
    let g = s.services.run_backup(&|_| {}).await.unwrap();
    let copy = files_under(&s.cfg.data_dir.join("backups"))
        .into_iter()
        .find(|p| p.parent().is_some_and(|d| d.ends_with(&t.tenant_id)))
        .expect("blob copy");
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[50_000] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();
    let (ok, _) = s.services.verify_backup(&g.id).await.unwrap();
    assert!(!ok);
    // Make the restore need the copy: the live blob is gone.
    std::fs::remove_file(&live[0]).unwrap();
    let e = s
        .services
        .restore_backup(Some(&g.id), Some("bc-a"), false, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--force"), "{e}");
    assert_eq!(
        run_cli(
            &s.cfg,
            &[
                "backup",
                "restore",
                "--generation",
                &g.id,
                "--tenant",
                "bc-a"
            ]
        )
        .await,
        2
    );
    let e = s
        .services
        .restore_backup(Some(&g.id), Some("bc-a"), true, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("report.pdf"), "names the file: {e}");
    assert!(!live[0].exists(), "no altered copy was put in place");
    s.stop().await;
}
