//! The contract lifecycle: termination, the export that keeps every file, deletion and crypto-
//! shredding with a certificate.

use super::backups::files_under;
use kura_testkit::{run_cli, StatusCode, TestServer};
use serde_json::json;

kura_testkit::per_backend!(termination_locks_deletes_and_crypto_shreds_with_a_certificate);
/// Termination: locked at once; 30 days later the data is deleted; 7 days after that the
/// keys are destroyed in the vault and in every backup generation (its backup can no
/// longer be restored), and a signed deletion certificate verifies — altered, it does not.
/// Another tenant is untouched throughout. The clock is driven; nothing sleeps.
async fn termination_locks_deletes_and_crypto_shreds_with_a_certificate(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let gone = s.create_tenant("bye-co").await;
    let stay = s.create_tenant("stay-co").await;
    let (_, f) = s
        .post("/api/v1/folders", &gone.admin_token, json!({ "name": "f" }))
        .await;
    let (_, p) = s
        .post(
            "/api/v1/projects",
            &gone.admin_token,
            json!({ "name": "p", "folder_id": f["id"] }),
        )
        .await;
    let res = s
        .client
        .post(format!(
            "{}/api/v1/projects/{}/files?name=a.txt",
            s.base,
            p["id"].as_str().unwrap()
        ))
        .bearer_auth(&gone.admin_token)
        .body("最後のデータ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(run_cli(&s.cfg, &["backup", "run"]).await, 0);

    // (On the server's own clock, which the test drives; the CLI runs on the real one.)
    let (_, link) = s
        .services
        .operator_terminate_tenant("bye-co", &Default::default())
        .await
        .unwrap();
    // The contract admin is mailed the export link.
    let mails = s.services.mail_outbox(20).await.unwrap();
    let tx = s.services.store.system_read().await.unwrap();
    drop(tx);
    assert!(mails
        .iter()
        .any(|m| m.to == gone.admin_email && m.body.contains(&link)));
    let link = link.replace("http://localhost", "http://127.0.0.1");
    let tar = s.client.get(&link).send().await.unwrap();
    assert_eq!(tar.status(), StatusCode::OK);
    let tar = tar.bytes().await.unwrap();
    let members = untar(&tar);
    // GNU tar reads it too.
    let tar_file = kura_testkit::temp_path("export.tar");
    std::fs::write(&tar_file, &tar).unwrap();
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar_file)
        .output()
        .expect("tar");
    assert!(listing.status.success(), "{listing:?}");
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert!(listing.contains("kura-export/metadata.json"), "{listing}");
    assert_eq!(listing.lines().count(), members.len());
    let _ = std::fs::remove_file(&tar_file);
    let get = |suffix: &str| {
        members
            .iter()
            .find(|(n, _)| n.ends_with(suffix))
            .unwrap_or_else(|| {
                panic!(
                    "{suffix} in {:?}",
                    members.iter().map(|m| &m.0).collect::<Vec<_>>()
                )
            })
            .1
            .clone()
    };
    assert_eq!(String::from_utf8(get("/a.txt")).unwrap(), "最後のデータ");
    let meta = String::from_utf8(get("metadata.json")).unwrap();
    assert!(meta.contains(&gone.admin_email) && !meta.contains("password_hash"));
    let audit = get("audit.jsonl");
    kura_crypto::export::verify_export(
        std::io::Cursor::new(audit),
        &s.services.signing.public_key_hex(),
    )
    .unwrap();
    assert!(String::from_utf8(get("access.csv"))
        .unwrap()
        .starts_with("time,"));
    assert_eq!(
        s.get("/api/v1/folders", &gone.admin_token).await.0,
        StatusCode::UNAUTHORIZED,
        "sessions end at once"
    );
    assert_eq!(
        s.login("bye-co", &gone.admin_email, kura_testkit::PASSWORD)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "no log-in"
    );
    assert_eq!(
        run_cli(
            &s.cfg,
            &["tenant", "terminate", "--slug", "bye-co", "--yes"]
        )
        .await,
        2
    );

    // Not yet: 29 days on, nothing is deleted.
    s.clock.advance_secs(29 * 86_400);
    assert_eq!(s.services.advance_lifecycles().await.unwrap(), 0);
    let tid = kura_domain::TenantId::from_string(gone.tenant_id.clone());
    let count = |table: &'static str| {
        let s = &s;
        let tid = tid.clone();
        async move {
            let mut tx = s.services.store.system_read().await.unwrap();
            kura_store::backup::count_rows(&mut tx, &tid).await.unwrap()[table]
        }
    };
    assert_eq!(count("files").await, 1);
    // Day 30: the data goes (rows and blobs); the keys stay for now.
    s.clock.advance_secs(86_400);
    assert_eq!(s.services.advance_lifecycles().await.unwrap(), 1);
    for table in ["files", "file_versions", "users", "folders", "audit_events"] {
        assert_eq!(count(table).await, 0, "{table}");
    }
    assert!(s
        .services
        .blobs
        .list_all()
        .await
        .unwrap()
        .iter()
        .all(|o| o.tenant != gone.tenant_id));
    assert!(s.services.deletion_certificate("bye-co").await.is_err());
    assert_eq!(
        s.client.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "the export link ends with the data"
    );
    // Day 37: the keys go, everywhere.
    s.clock.advance_secs(7 * 86_400);
    assert_eq!(s.services.advance_lifecycles().await.unwrap(), 1);
    let mut tx = s.services.store.system_read().await.unwrap();
    assert!(kura_store::keys::current(&mut tx, &tid)
        .await
        .unwrap()
        .is_none());
    drop(tx);
    for f in files_under(&s.cfg.data_dir.join("backups")) {
        if f.ends_with("vault") {
            let v = std::fs::read_to_string(&f).unwrap();
            assert!(
                !v.contains(&gone.tenant_id),
                "{} still holds its keys",
                f.display()
            );
        }
    }
    assert_ne!(
        run_cli(&s.cfg, &["backup", "restore", "--tenant", "bye-co"]).await,
        0,
        "its backup copies cannot be restored"
    );
    // The backup still verifies for everyone else.
    let g = s.services.list_backups().await.unwrap()[0].id.clone();
    let (ok, detail) = s.services.verify_backup(&g).await.unwrap();
    assert!(ok, "{detail}");
    assert!(detail.contains("crypto-shredded"), "{detail}");
    // The certificate: signed, verifiable, readable; altered, it fails.
    let cert = s.services.deletion_certificate("bye-co").await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&cert).unwrap();
    assert_eq!(v["certificate"]["slug"], "bye-co");
    assert!(v["certificate"]["data_deleted"]["blobs"].as_i64().unwrap() >= 1);
    assert!(!v["certificate"]["backup_generations_shredded"]
        .as_array()
        .unwrap()
        .is_empty());
    let dir = kura_testkit::temp_path("cert");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cert.json");
    std::fs::write(&path, &cert).unwrap();
    let pk = s.services.signing.public_key_hex();
    let verify = |p: &std::path::Path| {
        let cfg = s.cfg.clone();
        let p = p.to_str().unwrap().to_string();
        let pk = pk.clone();
        async move { run_cli(&cfg, &["certificate", "verify", &p, "--public-key", &pk]).await }
    };
    assert_eq!(verify(&path).await, 0);
    let forged = dir.join("forged.json");
    std::fs::write(&forged, cert.replace("bye-co", "byeco")).unwrap();
    assert_eq!(verify(&forged).await, 1);
    let ja = kura_services::lifecycle::render_certificate(&v, "ja");
    assert!(
        ja.contains("データ削除証明書") && ja.contains("bye-co"),
        "{ja}"
    );
    // A document to file: times in the tenant's zone with 年月日, what was deleted in
    // words, the signing key's id, how to verify; no raw table names, no localhost.
    assert!(
        ja.contains("年") && ja.contains("月") && ja.contains("(Asia/Tokyo)"),
        "{ja}"
    );
    assert!(ja.contains("ファイル: 1 件"), "{ja}");
    assert!(
        !ja.contains("file_versions") && !ja.contains("audit_events"),
        "{ja}"
    );
    assert!(ja.contains(v["key_id"].as_str().unwrap()), "{ja}");
    assert!(ja.contains("kura certificate verify"), "{ja}");
    assert!(!ja.contains("localhost"), "{ja}");
    let en = kura_services::lifecycle::render_certificate(&v, "en");
    assert!(
        en.contains("files: 1") && en.contains("Issued by: Kura"),
        "{en}"
    );
    assert_eq!(
        run_cli(
            &s.cfg,
            &[
                "tenant",
                "certificate",
                "--slug",
                "bye-co",
                "--format",
                "en"
            ]
        )
        .await,
        0
    );
    let _ = std::fs::remove_dir_all(&dir);
    // The other tenant never noticed (a fresh session: weeks have passed).
    let (st, l) = s
        .login("stay-co", &stay.admin_email, kura_testkit::PASSWORD)
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    let (st, _) = s.get("/api/v1/folders", l["token"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        run_cli(&s.cfg, &["audit", "verify", "--tenant", "stay-co"]).await,
        0
    );
    s.stop().await;
}

/// The members of a tar archive (name, bytes), read by hand from the ustar headers.
fn untar(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= data.len() {
        let h = &data[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size_text = String::from_utf8_lossy(&h[124..135]).to_string();
        let size = usize::from_str_radix(size_text.trim_matches(char::from(0)).trim(), 8).unwrap();
        // The header checksum: the sum of its bytes with the checksum field as spaces.
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        let stored = String::from_utf8_lossy(&h[148..154]).to_string();
        assert_eq!(
            u32::from_str_radix(stored.trim(), 8).unwrap(),
            sum,
            "{name}"
        );
        at += 512;
        out.push((name, data[at..at + size].to_vec()));
        at += size.div_ceil(512) * 512;
    }
    out
}

kura_testkit::per_backend!(termination_export_keeps_every_file_and_version);
/// The termination export loses nothing: same-named files in several projects (uploaded
/// within the same minute), two projects of one name in one folder, a name over 100 bytes,
/// a name that would climb out of the archive, and every version — each extracts with GNU
/// tar to its own path with its own bytes, and files.json names exactly those paths.
async fn termination_export_keeps_every_file_and_version(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let t = s.create_tenant("many-co").await;
    let tok = &t.admin_token;
    let (_, f) = s
        .post("/api/v1/folders", tok, json!({ "name": "営業部" }))
        .await;
    let (_, sub) = s
        .post(
            "/api/v1/folders",
            tok,
            json!({ "name": "2026年度", "parent_id": f["id"] }),
        )
        .await;
    let mut projects = Vec::new();
    for (name, folder) in [("見積", &f), ("見積", &f), ("契約", &sub)] {
        let (st, p) = s
            .post(
                "/api/v1/projects",
                tok,
                json!({ "name": name, "folder_id": folder["id"] }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{p}");
        projects.push(p["id"].as_str().unwrap().to_string());
    }
    let long = format!("{}.txt", "長い名前のファイル".repeat(6)); // > 100 bytes
    let mut expected: Vec<(String, Vec<u8>)> = Vec::new(); // (name, content) per version
    for (i, p) in projects.iter().enumerate() {
        for v in 1..=2 {
            let body = format!("quote {i} version {v}").into_bytes();
            let (st, _) = s.upload(tok, p, "quote.txt", body.clone()).await;
            assert_eq!(st, StatusCode::CREATED);
            expected.push(("quote.txt".into(), body));
        }
    }
    let (st, _) = s.upload(tok, &projects[2], &long, b"long".to_vec()).await;
    assert_eq!(st, StatusCode::CREATED);
    expected.push((long.clone(), b"long".to_vec()));

    let (_, link) = s
        .services
        .operator_terminate_tenant("many-co", &Default::default())
        .await
        .unwrap();
    let link = link.replace("http://localhost", "http://127.0.0.1");
    let tar = s
        .client
        .get(&link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = kura_testkit::temp_path("export-x");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("export.tar"), &tar).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-xf")
        .arg("export.tar")
        .current_dir(&dir)
        .output()
        .expect("tar");
    assert!(out.status.success(), "{b:?}: {out:?}");
    let index: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("kura-export/files.json")).unwrap())
            .unwrap();
    assert_eq!(index.len(), expected.len(), "{b:?}: {index:#?}");
    let mut paths = std::collections::HashSet::new();
    let mut contents = Vec::new();
    for e in &index {
        let path = e["path"].as_str().unwrap();
        assert!(paths.insert(path.to_lowercase()), "{b:?}: {path} twice");
        assert!(!path.contains(".."), "{path}");
        let bytes = std::fs::read(dir.join(path))
            .unwrap_or_else(|err| panic!("{b:?}: {path} not extracted: {err}"));
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        assert_eq!(e["sha256"], sha, "{b:?}: {path}");
        contents.push((e["name"].as_str().unwrap().to_string(), bytes));
    }
    let mut want = expected.clone();
    want.sort();
    contents.sort();
    assert_eq!(contents, want, "{b:?}");
    // The structure is there: folders, project, name; old versions beside.
    assert!(
        paths.contains("kura-export/files/営業部/2026年度/契約/quote.txt"),
        "{paths:?}"
    );
    assert!(
        paths.contains("kura-export/versions/営業部/2026年度/契約/quote.txt/v1"),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with(&long.to_lowercase())),
        "{paths:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
}
