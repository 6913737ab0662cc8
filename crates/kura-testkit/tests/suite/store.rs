//! Store conformance: the same checks on SQLite and PostgreSQL.

use kura_domain::clock::Clock;
use kura_domain::{TenantId, Timestamp};
use kura_store::workspace;
use kura_store::{StoreError, SYSTEM_TENANT};
use kura_testkit::{raw_sql, Backend, TestServer};

use kura_testkit::folder_row as folder;

kura_testkit::per_backend!(conformance);
async fn conformance(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let store = &s.services.store;
    let a = s.create_tenant("tenant-a").await;
    let bt = s.create_tenant("tenant-b").await;
    let ta = TenantId::from_string(&a.tenant_id);
    let tb = TenantId::from_string(&bt.tenant_id);

    // Migrations are idempotent.
    assert!(store.migrate().await.unwrap().is_empty());
    assert_eq!(
        store.current_version().await.unwrap(),
        kura_store::schema_version()
    );

    // A transaction opened for A refuses to touch B (before any SQL runs).
    let mut tx = store.tenant_tx(&ta).await.unwrap();
    assert!(matches!(
        workspace::list_folders(&mut tx, &tb).await,
        Err(StoreError::ScopeViolation)
    ));
    assert!(matches!(
        workspace::insert_folder(&mut tx, &tb, &folder("x")).await,
        Err(StoreError::ScopeViolation)
    ));
    assert!(matches!(
        kura_store::tenants::find_by_slug(&mut tx, "tenant-b").await,
        Err(StoreError::ScopeViolation)
    ));
    drop(tx);

    // Dropping a transaction rolls it back; committing keeps it.
    let mut tx = store.tenant_tx(&ta).await.unwrap();
    workspace::insert_folder(&mut tx, &ta, &folder("rolled back"))
        .await
        .unwrap();
    drop(tx);
    let mut tx = store.tenant_tx(&ta).await.unwrap();
    assert!(workspace::list_folders(&mut tx, &ta)
        .await
        .unwrap()
        .is_empty());
    workspace::insert_folder(&mut tx, &ta, &folder("kept"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.tenant_read(&ta).await.unwrap();
    assert_eq!(
        workspace::list_folders(&mut tx, &ta).await.unwrap().len(),
        1
    );
    drop(tx);

    // Unique constraints become conflicts.
    let mut tx = store.tenant_tx(&ta).await.unwrap();
    let dup = kura_store::users::User {
        id: kura_domain::UserId::generate(),
        tenant_id: ta.clone(),
        email: a.admin_email.clone(),
        display_name: "dup".into(),
        locale: None,
        status: kura_domain::user::UserStatus::Invited,
        kind: kura_domain::user::UserKind::Person,
        password_hash: None,
        created_at: Timestamp(1),
    };
    assert!(matches!(
        kura_store::users::insert(&mut tx, &dup).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);

    // Row-level security (PostgreSQL): inside A's transaction, even SQL without a tenant
    // filter sees and changes only A's rows, and cannot write B's.
    if b == Backend::Postgres {
        let mut tx = store.tenant_tx(&ta).await.unwrap();
        let visible = tx
            .execute_raw("UPDATE users SET updated_at = updated_at")
            .await
            .unwrap();
        assert_eq!(visible, 1, "RLS must hide tenant B's users");
        let visible = tx
            .execute_raw("UPDATE tenants SET updated_at = updated_at")
            .await
            .unwrap();
        assert_eq!(visible, 1);
        let sql = format!(
            "INSERT INTO folders (id, tenant_id, name, created_at, updated_at) VALUES ('x', '{}', 'evil', 0, 0)",
            tb.as_str()
        );
        assert!(
            tx.execute_raw(&sql).await.is_err(),
            "RLS must refuse writing B's rows"
        );
        drop(tx);
        let mut tx = store.system_read().await.unwrap();
        let all = tx
            .execute_raw("UPDATE users SET updated_at = updated_at")
            .await
            .unwrap();
        assert_eq!(all, 2, "system transactions see every tenant");
    }

    // A database newer than this binary is refused.
    raw_sql(
        &s.cfg,
        "INSERT INTO kura_schema (version, name, applied_at) VALUES (999, 'future', 0)",
    )
    .await;
    assert!(matches!(
        store.migrate().await,
        Err(StoreError::SchemaTooNew { found: 999, .. })
    ));
    raw_sql(&s.cfg, "DELETE FROM kura_schema WHERE version = 999").await;

    // The system chain exists for operator events and verifies.
    let mut tx = store.system_read().await.unwrap();
    let chains = kura_store::audit::chain_tenants(&mut tx).await.unwrap();
    assert!(chains.contains(&ta) && chains.contains(&tb));
    let r = kura_store::audit::verify(&mut tx, &TenantId::from_string(SYSTEM_TENANT), &[])
        .await
        .unwrap();
    assert!(r.is_ok());
    drop(tx);
    s.stop().await;
}

kura_testkit::per_backend!(concurrent_writes_commit_together_and_fail_alone);
/// Many concurrent write transactions: each acknowledged one is visible to a new reader the
/// moment `commit` returns; one that fails (a duplicate key) or is dropped takes nothing
/// else with it. On SQLite they are committed in shared batches (group commit), so there
/// are fewer commits than transactions.
async fn concurrent_writes_commit_together_and_fail_alone(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    let store = s.services.store.clone();
    let a = s.create_tenant("tenant-a").await;
    let ta = TenantId::from_string(&a.tenant_id);
    let dup = folder("taken");
    let mut tx = store.tenant_tx(&ta).await.unwrap();
    workspace::insert_folder(&mut tx, &ta, &dup).await.unwrap();
    tx.commit().await.unwrap();
    let (before, _) = store.write_batches().await;

    let mut tasks = Vec::new();
    for i in 0..240usize {
        let (store, ta, dup) = (store.clone(), ta.clone(), dup.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("f{i:03}");
            let mut tx = store.tenant_tx(&ta).await.unwrap();
            workspace::insert_folder(&mut tx, &ta, &folder(&name))
                .await
                .unwrap();
            match i % 8 {
                // A statement fails: the caller gives up, its own insert goes too.
                0 => {
                    assert!(workspace::insert_folder(&mut tx, &ta, &dup).await.is_err());
                    drop(tx);
                    None
                }
                // Dropped without committing.
                1 => {
                    drop(tx);
                    None
                }
                _ => {
                    tx.commit().await.unwrap();
                    // Acknowledged: a reader on another connection sees it now.
                    let mut r = store.tenant_read(&ta).await.unwrap();
                    let names: Vec<String> = workspace::list_folders(&mut r, &ta)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|f| f.name)
                        .collect();
                    assert!(names.contains(&name), "{name} not visible after commit");
                    Some(name)
                }
            }
        }));
    }
    let mut kept = vec!["taken".to_string()];
    for t in tasks {
        kept.extend(t.await.unwrap());
    }
    kept.sort();
    let mut tx = store.tenant_read(&ta).await.unwrap();
    let mut names: Vec<String> = workspace::list_folders(&mut tx, &ta)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    drop(tx);
    names.sort();
    assert_eq!(names, kept);
    assert_eq!(kept.len(), 1 + 240 * 6 / 8);
    if b == Backend::Sqlite {
        let (after, units) = store.write_batches().await;
        let batches = after - before;
        assert!(
            batches < 180,
            "180 committed transactions took {batches} commits ({units} units in all)"
        );
    }
    // The writer is idle again: a write from another connection (another process) is not
    // blocked by a batch left open.
    if b == Backend::Sqlite {
        let mut tx = store.tenant_tx(&ta).await.unwrap();
        workspace::insert_folder(&mut tx, &ta, &folder("last"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        raw_sql(&s.cfg, "UPDATE folders SET name = name WHERE name = 'last'").await;
    }
}

kura_testkit::per_backend!(concurrent_records_commit_together_and_fail_alone);
/// The bookkeeping of reads (a download's usage counter and audit entries) from many
/// concurrent callers: written in shared batches (fewer batches than records), each
/// caller answered once its record is durable and readable, every tenant's chain intact
/// and in order; a tenant whose records fail (a trigger refuses its audit rows) fails
/// alone — the others in the same batches are kept, and nothing of its records stays.
async fn concurrent_records_commit_together_and_fail_alone(b: kura_testkit::Backend) {
    use kura_store::records::{record, Record};
    use kura_store::usage::Delta;
    let s = TestServer::start(b).await;
    let store = s.services.store.clone();
    let mut tenants = Vec::new();
    for n in ["rec-a", "rec-b", "rec-c"] {
        tenants.push(s.create_tenant(n).await);
    }
    let ids: Vec<TenantId> = tenants
        .iter()
        .map(|t| TenantId::from_string(&t.tenant_id))
        .collect();
    let refused = ids[2].as_str().to_string();
    kura_testkit::refuse_audit_rows(&s.cfg, &refused).await;
    let usage = |t: TenantId| {
        let store = store.clone();
        async move {
            let mut tx = store.tenant_read(&t).await.unwrap();
            kura_store::usage::get(&mut tx, &t).await.unwrap()
        }
    };
    let before: Vec<_> = futures_util::future::join_all(ids.iter().cloned().map(usage)).await;
    let (batches_before, _) = store.record_batches();

    let n = 300usize;
    let mut tasks = Vec::new();
    for i in 0..n {
        let (store, t) = (store.clone(), ids[i % 3].clone());
        let ev = kura_store::audit::NewEvent::system(
            s.clock.now(),
            "record.test",
            i.to_string(),
            serde_json::json!({ "i": i }),
        );
        tasks.push(tokio::spawn(async move {
            let r = record(
                &store,
                Record {
                    tenant: t.clone(),
                    usage: Delta::download(10 + i as i64),
                    events: vec![ev],
                },
            )
            .await;
            if r.is_ok() {
                // Acknowledged: a new reader sees it now.
                let mut tx = store.tenant_read(&t).await.unwrap();
                let last = kura_store::audit::list(&mut tx, &t, None, 1000)
                    .await
                    .unwrap();
                assert!(
                    last.iter()
                        .any(|e| e.record.target_id.as_deref() == Some(&*i.to_string())),
                    "record {i} not visible after it was acknowledged"
                );
            }
            r.is_ok()
        }));
    }
    let mut ok = [0usize; 3];
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap() {
            ok[i % 3] += 1;
        }
    }
    assert_eq!(ok, [n / 3, n / 3, 0], "the refused tenant failed alone");
    let (batches_after, _) = store.record_batches();
    let batches = batches_after - batches_before;
    assert!(batches < n as u64, "{n} records took {batches} batches");

    let after: Vec<_> = futures_util::future::join_all(ids.iter().cloned().map(usage)).await;
    for k in 0..3 {
        let (want_n, want_bytes) = if k == 2 {
            (0, 0)
        } else {
            let mine = (0..n).filter(|i| i % 3 == k);
            (n as i64 / 3, mine.map(|i| 10 + i as i64).sum::<i64>())
        };
        assert_eq!(
            after[k].downloads - before[k].downloads,
            want_n,
            "tenant {k}"
        );
        assert_eq!(
            after[k].download_bytes - before[k].download_bytes,
            want_bytes,
            "tenant {k}"
        );
    }
    for (k, t) in tenants.iter().enumerate() {
        let (st, v) = s.get("/api/v1/audit/verify", &t.admin_token).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["ok"], true, "chain of tenant {k}: {v}");
        let tid = &ids[k];
        let mut tx = store.tenant_read(tid).await.unwrap();
        let evs = kura_store::audit::list(&mut tx, tid, None, 1000)
            .await
            .unwrap();
        let mine: Vec<i64> = evs
            .iter()
            .filter(|e| e.record.action == "record.test")
            .map(|e| e.record.seq)
            .collect();
        assert_eq!(mine.len(), if k == 2 { 0 } else { n / 3 }, "tenant {k}");
    }
    // The refused tenant records again once nothing refuses it.
    kura_testkit::allow_audit_rows(&s.cfg).await;
    record(
        &store,
        Record {
            tenant: ids[2].clone(),
            usage: Delta::download(7),
            events: vec![kura_store::audit::NewEvent::system(
                s.clock.now(),
                "record.test",
                "again".into(),
                serde_json::json!({}),
            )],
        },
    )
    .await
    .unwrap();
    let last = usage(ids[2].clone()).await;
    assert_eq!(last.downloads - before[2].downloads, 1);
    let (_, v) = s.get("/api/v1/audit/verify", &tenants[2].admin_token).await;
    assert_eq!(v["ok"], true, "{v}");
}

/// SQLite: committed log frames are copied back into the database file by the background
/// checkpointer (not by whichever commit crosses SQLite's default 4 MiB line), and the
/// data stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("walco").await;
    let tid = TenantId::from_string(&t.tenant_id);
    let store = &s.services.store;
    let before = store.wal_checkpoints();
    let ev = |i: usize| {
        kura_store::audit::NewEvent::system(
            s.clock.now(),
            "wal.event",
            i.to_string(),
            serde_json::json!({ "i": i }),
        )
    };
    kura_store::audit::append_many(store, &tid, (0..3000).map(ev).collect())
        .await
        .unwrap();
    // Bounded wait (the checkpointer runs every 200 ms): not a timing assertion.
    for _ in 0..200 {
        if store.wal_checkpoints() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        store.wal_checkpoints() > before,
        "a background checkpoint ran"
    );
    let (_, v) = s.get("/api/v1/audit/verify", &t.admin_token).await;
    assert_eq!(v["ok"], true, "{v}");
    s.stop().await;
}

/// SQLite: the session lookup of every request and a download's file lookup are read in
/// place (no sqlx thread hop) and see every acknowledged change at once — a trashed file,
/// a new grant, a log-out, a frozen user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_session_and_file_lookups_are_read_in_place_and_see_changes_at_once() {
    use kura_testkit::StatusCode;
    let s = TestServer::start(Backend::Sqlite).await;
    let t = s.create_tenant("inplace").await;
    let before = s.services.store.in_place_reads();
    let (st, me) = s.get("/api/v1/me", &t.admin_token).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert!(
        s.services.store.in_place_reads() > before,
        "the lookup was answered in place"
    );
    let grants = me["grants"].as_array().map_or(0, Vec::len);
    // A download's file, project, folders and version are read in place too; a file in
    // the trash is not downloadable (the ordinary path says so).
    let project = s.project(&t.admin_token, "P").await;
    let (st, up) = s
        .upload(&t.admin_token, &project, "a.txt", b"in place".to_vec())
        .await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let file = up["file"]["id"].as_str().unwrap_or_default().to_string();
    let before = s.services.store.in_place_reads();
    let (st, body) = s.download(&t.admin_token, &file).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body.as_ref(), b"in place");
    assert!(
        s.services.store.in_place_reads() >= before + 2,
        "session and file read in place"
    );
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/api/v1/files/{file}"),
            Some(&t.admin_token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .get(&format!("/api/v1/files/{file}/content"), &t.admin_token)
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "a trashed file is not downloaded"
    );
    // A member with a session, then a project grant: the next request carries it.
    let (member_id, member_token) = s
        .add_user(
            &t.admin_token,
            "m@inplace.example.jp",
            "member",
            serde_json::json!({ "type": "tenant" }),
        )
        .await;
    let (st, m) = s.get("/api/v1/me", &member_token).await;
    assert_eq!(st, StatusCode::OK, "{m}");
    let member_grants = m["grants"].as_array().map_or(0, Vec::len);
    let (st, folder) = s
        .post(
            "/api/v1/folders",
            &t.admin_token,
            serde_json::json!({ "name": "F" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{folder}");
    let (st, g) = s
        .post(
            &format!("/api/v1/users/{member_id}/grants"),
            &t.admin_token,
            serde_json::json!({ "role": "admin", "scope": { "type": "folder", "id": folder["id"] } }),
        )
        .await;
    assert!(st.is_success(), "{st} {g}");
    let (_, m) = s.get("/api/v1/me", &member_token).await;
    assert_eq!(
        m["grants"].as_array().map_or(0, Vec::len),
        member_grants + 1,
        "{m}"
    );
    // Frozen: refused at once.
    let (st, _) = s
        .post(
            &format!("/api/v1/users/{member_id}/freeze"),
            &t.admin_token,
            serde_json::json!({}),
        )
        .await;
    assert!(st.is_success(), "{st}");
    let (st, _) = s.get("/api/v1/me", &member_token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Logged out: refused at once.
    let (st, _) = s
        .post("/api/v1/auth/logout", &t.admin_token, serde_json::json!({}))
        .await;
    assert!(st.is_success(), "{st}");
    let (st, _) = s.get("/api/v1/me", &t.admin_token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(grants >= 1);
    s.stop().await;
}

/// PostgreSQL: the session lookup function reads across tenants for its own statement only.
/// As `kura_app` (bound by row-level security) nothing is visible outside a transaction
/// that set the scope; the function finds the sessions asked for (of two tenants, in one
/// statement) and nothing else; afterwards nothing is visible again and the setting is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lookup_function_is_scoped_to_its_statement() {
    use sqlx::{Connection, Row};
    if !kura_testkit::backend_enabled(Backend::Postgres) {
        return;
    }
    let s = TestServer::start(Backend::Postgres).await;
    let a = s.create_tenant("lookup").await;
    let b = s.create_tenant("lookupb").await;
    for t in [&a, &b] {
        let (st, _) = s.get("/api/v1/me", &t.admin_token).await;
        assert_eq!(st, kura_testkit::StatusCode::OK);
    }
    // A second session of a's admin, not asked for below.
    let (st, _) = s
        .login("lookup", &a.admin_email, kura_testkit::PASSWORD)
        .await;
    assert_eq!(st, kura_testkit::StatusCode::OK);
    let schema = s.cfg.database_schema.clone().unwrap();
    let mut c = sqlx::PgConnection::connect(&s.cfg.database_url())
        .await
        .unwrap();
    sqlx::raw_sql(&format!("SET search_path TO {schema}"))
        .execute(&mut c)
        .await
        .unwrap();
    let hash = |token: &str| kura_crypto::token::hash(token);
    let (ha, hb) = (hash(&a.admin_token), hash(&b.admin_token));
    sqlx::raw_sql("SET ROLE kura_app")
        .execute(&mut c)
        .await
        .unwrap();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    assert_eq!(
        count("SELECT count(*) FROM sessions")
            .fetch_one(&mut c)
            .await
            .unwrap(),
        0
    );
    let rows = sqlx::query("SELECT * FROM kura_session_lookup_many($1)")
        .bind(format!("{ha} {hb} 00ff"))
        .fetch_all(&mut c)
        .await
        .unwrap();
    let mut found: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.get("id"), r.get("tenant_id")))
        .collect();
    found.dedup();
    let mut want = vec![(ha.clone(), a.tenant_id.clone()), (hb, b.tenant_id.clone())];
    want.sort();
    assert_eq!(found, want, "exactly the two sessions asked for, grouped");
    assert!(sqlx::query("SELECT * FROM kura_session_lookup_many($1)")
        .bind("no such hash")
        .fetch_all(&mut c)
        .await
        .unwrap()
        .is_empty());
    let after: Option<String> = sqlx::query_scalar("SELECT current_setting('kura.system', true)")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_ne!(after.as_deref(), Some("on"));
    assert_eq!(
        count("SELECT count(*) FROM sessions")
            .fetch_one(&mut c)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM users")
            .fetch_one(&mut c)
            .await
            .unwrap(),
        0
    );
}

/// PostgreSQL: concurrent requests share session lookup statements, each gets its own
/// user (never another's, across tenants), and a change committed before the requests
/// (a user frozen by another connection) is seen by every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_session_lookups_share_statements() {
    use kura_testkit::StatusCode;
    if !kura_testkit::backend_enabled(Backend::Postgres) {
        return;
    }
    let s = TestServer::start(Backend::Postgres).await;
    let a = s.create_tenant("batcha").await;
    let b = s.create_tenant("batchb").await;
    let mut users: Vec<(String, String, String)> = vec![
        (
            a.admin_id.clone(),
            a.admin_email.clone(),
            a.admin_token.clone(),
        ),
        (
            b.admin_id.clone(),
            b.admin_email.clone(),
            b.admin_token.clone(),
        ),
    ];
    for i in 0..3 {
        let email = format!("m{i}@batcha.example.jp");
        let (id, token) = s
            .add_user(
                &a.admin_token,
                &email,
                "member",
                serde_json::json!({ "type": "tenant" }),
            )
            .await;
        users.push((id, email, token));
    }
    let round = |frozen: Option<String>| {
        let users = users.clone();
        let s = &s;
        async move {
            let calls = (0..200).map(|i| {
                let (id, email, token) = users[i % users.len()].clone();
                async move {
                    let (st, me) = s.get("/api/v1/me", &token).await;
                    (id, email, st, me)
                }
            });
            for (id, email, st, me) in futures_util::future::join_all(calls).await {
                if Some(&id) == frozen.as_ref() {
                    assert_eq!(st, StatusCode::UNAUTHORIZED, "a frozen user was served");
                } else {
                    assert_eq!(st, StatusCode::OK, "{me}");
                    assert_eq!(
                        me["user"]["email"],
                        email.as_str(),
                        "another user's session"
                    );
                }
            }
        }
    };
    let (statements, lookups) = s.services.store.session_lookup_batches();
    round(None).await;
    let (statements2, lookups2) = s.services.store.session_lookup_batches();
    assert!(
        lookups2 - lookups >= 200,
        "every request looked its session up"
    );
    assert!(
        statements2 - statements < lookups2 - lookups,
        "concurrent lookups shared statements ({} for {})",
        statements2 - statements,
        lookups2 - lookups
    );
    let frozen = users[3].0.clone();
    raw_sql(
        &s.cfg,
        &format!("UPDATE users SET status = 'frozen' WHERE id = '{frozen}'"),
    )
    .await;
    round(Some(frozen)).await;
    assert_eq!(
        s.get("/api/v1/me", "not-a-token").await.0,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

/// SQLite: repeated session lookups are answered from memory, and a change to anything a
/// lookup reads — made through the server or by another connection, as another process
/// (the CLI, sqlite3) would — is in force for the very next request, with no wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_session_cache_follows_every_change_at_once() {
    use kura_testkit::{StatusCode, PASSWORD};
    let s = TestServer::start(Backend::Sqlite).await;
    let store = &s.services.store;
    assert!(store.session_cache_live());
    let t = s.create_tenant("sqcache").await;
    let (member_id, member) = s
        .add_user(
            &t.admin_token,
            "kato@sqcache.example.jp",
            "member",
            serde_json::json!({ "type": "tenant" }),
        )
        .await;
    let before = store.session_cache_hits();
    for _ in 0..3 {
        assert_eq!(s.get("/api/v1/me", &member).await.0, StatusCode::OK);
    }
    assert!(
        store.session_cache_hits() >= before + 2,
        "lookups were cached"
    );
    // A last-use write keeps the entries.
    assert!(s.services.flush_touches().await);
    let before = store.session_cache_hits();
    assert_eq!(s.get("/api/v1/me", &member).await.0, StatusCode::OK);
    assert_eq!(
        store.session_cache_hits(),
        before + 1,
        "kept after a last-use write"
    );

    // Changed by another connection: seen by the next request.
    raw_sql(
        &s.cfg,
        &format!("UPDATE users SET display_name = '加藤 改' WHERE id = '{member_id}'"),
    )
    .await;
    let (st, me) = s.get("/api/v1/me", &member).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["user"]["display_name"], "加藤 改", "{me}");
    raw_sql(
        &s.cfg,
        &format!("UPDATE users SET status = 'frozen' WHERE id = '{member_id}'"),
    )
    .await;
    assert_eq!(
        s.get("/api/v1/me", &member).await.0,
        StatusCode::UNAUTHORIZED,
        "a user frozen by another connection was still served"
    );

    // Logged out through the server: refused at once.
    let (st, l) = s.login("sqcache", &t.admin_email, PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{l}");
    let second = l["token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(s.get("/api/v1/me", &second).await.0, StatusCode::OK);
    }
    let (st, _) = s
        .post("/api/v1/auth/logout", &second, serde_json::json!({}))
        .await;
    assert!(st.is_success());
    assert_eq!(
        s.get("/api/v1/me", &second).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The admin's first session is still good (looked up again).
    assert_eq!(s.get("/api/v1/me", &t.admin_token).await.0, StatusCode::OK);
    s.stop().await;
}

/// PostgreSQL, two nodes on one database, each keeping session lookups in memory: a change
/// made on one node (a freeze, a log-out) is refused by the other at its next request;
/// a session used only on node A stays alive on node B although B's kept copy shows an
/// older last use (B asks the database before ending it), and a session idle past the
/// limit on both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kept_sessions_follow_other_nodes() {
    use kura_testkit::{StatusCode, PASSWORD};
    if !kura_testkit::backend_enabled(Backend::Postgres) {
        return;
    }
    let a = TestServer::start(Backend::Postgres).await;
    let b = TestServer::start_with(a.cfg.clone(), Backend::Postgres).await;
    assert!(b.services.store.session_cache_live());
    let t = a.create_tenant("twonode").await;
    let (member_id, member) = a
        .add_user(
            &t.admin_token,
            "sato@twonode.example.jp",
            "member",
            serde_json::json!({ "type": "tenant" }),
        )
        .await;
    let advance = |secs: i64| {
        a.clock.advance_secs(secs);
        b.clock.advance_secs(secs);
    };
    // B keeps the member's lookup.
    for _ in 0..3 {
        assert_eq!(b.get("/api/v1/me", &member).await.0, StatusCode::OK);
    }
    let hits = b.services.store.session_cache_hits();
    assert_eq!(b.get("/api/v1/me", &member).await.0, StatusCode::OK);
    assert!(
        b.services.store.session_cache_hits() > hits,
        "B serves from memory"
    );

    // Used on A only for 25 minutes (A writes the last use), then 10 more minutes pass:
    // by B's copy the session has been idle 35 minutes (the limit is 30), by the
    // database 10.
    advance(25 * 60);
    assert_eq!(a.get("/api/v1/me", &member).await.0, StatusCode::OK);
    assert!(a.services.flush_touches().await);
    advance(10 * 60);
    let (st, me) = b.get("/api/v1/me", &member).await;
    assert_eq!(st, StatusCode::OK, "B ended a session A kept alive: {me}");
    assert_eq!(a.get("/api/v1/me", &member).await.0, StatusCode::OK);

    // Really idle past the limit: refused on B (and so on A).
    advance(31 * 60);
    assert_eq!(
        b.get("/api/v1/me", &member).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        a.get("/api/v1/me", &member).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Fresh sessions (the admin's first one idled out too); the member's is kept by B and
    // frozen through A: B refuses it at once.
    let login = |email: &'static str| async {
        let (st, l) = a.login("twonode", email, PASSWORD).await;
        assert_eq!(st, StatusCode::OK, "{l}");
        l["token"].as_str().unwrap().to_string()
    };
    let admin = login("owner@twonode.example.jp").await;
    let second = login("sato@twonode.example.jp").await;
    for _ in 0..2 {
        assert_eq!(b.get("/api/v1/me", &second).await.0, StatusCode::OK);
    }
    let (st, body) = a
        .post(
            &format!("/api/v1/users/{member_id}/freeze"),
            &admin,
            serde_json::json!({}),
        )
        .await;
    assert!(st.is_success(), "{st} {body}");
    assert_eq!(
        b.get("/api/v1/me", &second).await.0,
        StatusCode::UNAUTHORIZED,
        "a user frozen on A was still served by B"
    );

    // The admin logs out on A; B refuses the token at once.
    for _ in 0..2 {
        assert_eq!(b.get("/api/v1/me", &admin).await.0, StatusCode::OK);
    }
    let (st, _) = a
        .post("/api/v1/auth/logout", &admin, serde_json::json!({}))
        .await;
    assert!(st.is_success());
    assert_eq!(
        b.get("/api/v1/me", &admin).await.0,
        StatusCode::UNAUTHORIZED
    );
    b.stop().await;
    a.stop().await;
}
