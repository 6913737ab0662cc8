//! The blob-store conformance suite: the same checks on the local directory and on a real
//! S3-compatible server (moto on loopback). What the file service relies on: a blob is
//! visible only once committed, reads return exactly the bytes and ranges written, a write
//! dropped before commit leaves nothing, deletes are idempotent, listing finds every object.

use kura_domain::TenantId;
use kura_store::blobs::{BlobReader, Blobs};
use kura_testkit::{test_config, use_s3, Backend, Storage};

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

async fn read_all(mut r: BlobReader) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 100_003];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

async fn blobs_on(storage: Storage) -> (Blobs, kura::config::Config) {
    let mut cfg = test_config(Backend::Sqlite);
    if storage == Storage::S3 {
        use_s3(&mut cfg).await;
    }
    let b = cfg.blobs().unwrap();
    b.check().await.unwrap();
    (b, cfg)
}

async fn put(b: &Blobs, t: &TenantId, id: &str, data: &[u8], piece: usize) {
    let mut w = b.create(t, id).await.unwrap();
    for p in data.chunks(piece.max(1)) {
        w.write(p).await.unwrap();
    }
    assert_eq!(w.written(), data.len() as u64);
    w.commit().await.unwrap();
}

kura_testkit::per_storage!(blob_store_conformance);
async fn blob_store_conformance(storage: kura_testkit::Storage) {
    let (b, cfg) = blobs_on(storage).await;
    let t1 = TenantId::from_string(kura_domain::ids::new_id());
    let t2 = TenantId::from_string(kura_domain::ids::new_id());
    assert!(b.list_all().await.unwrap().is_empty(), "{storage:?}: empty");

    // Round trips: empty, small, and large enough for a multipart upload on S3
    // (parts of 8 MiB, two in flight), written in uneven pieces.
    let cases: [(usize, usize); 4] = [
        (0, 1),
        (1, 1),
        (70_001, 4_096),
        (20 * 1024 * 1024 + 17, 1_000_003),
    ];
    let mut ids = Vec::new();
    for (i, (n, piece)) in cases.iter().enumerate() {
        let id = kura_domain::ids::new_id();
        let data = pattern(*n, i as u8);
        put(&b, &t1, &id, &data, *piece).await;
        let got = read_all(b.read_range(&t1, &id, 0, None).await.unwrap()).await;
        assert!(got == data, "{storage:?}: {n} bytes read back differ");
        ids.push((id, data));
    }

    // Ranges: from the start, the middle, to the end, across a part boundary, empty.
    let (big_id, big) = &ids[3];
    let part = 8 * 1024 * 1024u64;
    for (s, e) in [
        (0u64, Some(10u64)),
        (12_345, Some(99_999)),
        (part - 5, Some(part + 5)),
        (big.len() as u64 - 7, None),
        (big.len() as u64 - 7, Some(big.len() as u64)),
        (42, Some(42)),
    ] {
        let got = read_all(b.read_range(&t1, big_id, s, e).await.unwrap()).await;
        let want = &big[s as usize..e.map(|e| e as usize).unwrap_or(big.len())];
        assert!(got == want, "{storage:?}: range {s}..{e:?}");
    }
    let mut r = b.read_range(&t1, big_id, 0, Some(16)).await.unwrap();
    let mut exact = [0u8; 16];
    r.read_exact(&mut exact).await.unwrap();
    assert_eq!(&exact[..], &big[..16]);
    let mut more = [0u8; 1];
    assert_eq!(
        r.read(&mut more).await.unwrap(),
        0,
        "a range ends where asked"
    );

    // A write dropped before commit leaves nothing — small (buffered) or large (an
    // S3 multipart upload in progress, which is aborted).
    for n in [1_000usize, 17 * 1024 * 1024] {
        let id = kura_domain::ids::new_id();
        let mut w = b.create(&t1, &id).await.unwrap();
        w.write(&pattern(n, 9)).await.unwrap();
        drop(w);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            b.list_all().await.unwrap().iter().all(|l| l.name != id),
            "{storage:?}: an uncommitted {n}-byte write is not listed"
        );
        let missing = b.read_range(&t1, &id, 0, None).await;
        let err = match missing {
            Ok(r) => read_all_err(r).await,
            Err(e) => e,
        };
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{storage:?}");
    }

    // Listing: every committed object with its tenant; other tenants are separate.
    let other = kura_domain::ids::new_id();
    put(&b, &t2, &other, b"tenant two", 3).await;
    let listed = b.list_all().await.unwrap();
    assert_eq!(listed.len(), ids.len() + 1, "{storage:?}: {listed:?}");
    for (id, _) in &ids {
        assert!(listed
            .iter()
            .any(|l| &l.name == id && l.tenant == t1.as_str() && !l.is_temp()));
    }
    let l2 = listed.iter().find(|l| l.name == other).unwrap();
    assert_eq!(l2.tenant, t2.as_str());
    assert!(l2.modified > 0);
    assert_eq!(
        b.read_range(&t1, &other, 0, None)
            .await
            .err()
            .map(|e| e.kind())
            .unwrap_or(std::io::ErrorKind::Other),
        std::io::ErrorKind::NotFound,
        "{storage:?}: a blob is found only under its own tenant"
    );

    // Deletes: idempotent; remove_listed removes exactly the listed object.
    b.delete(&t1, &ids[0].0).await.unwrap();
    b.delete(&t1, &ids[0].0).await.unwrap();
    b.remove_listed(l2).await.unwrap();
    let left: Vec<String> = b
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(left.len(), ids.len() - 1, "{storage:?}");
    assert!(!left.contains(&ids[0].0) && !left.contains(&other));

    // Names that could escape the layout are refused before any I/O.
    for bad in ["../x", "a/b", "", "x y", ".hidden"] {
        assert!(b.create(&t1, bad).await.is_err(), "{storage:?}: {bad:?}");
        assert!(b.read_range(&t1, bad, 0, None).await.is_err());
    }
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

async fn read_all_err(mut r: BlobReader) -> std::io::Error {
    let mut buf = [0u8; 64];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return std::io::Error::other("read succeeded"),
            Ok(_) => {}
            Err(e) => return e,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_s3_fails_start_and_readiness() {
    // Misconfigured storage is reported at start, not at the first upload.
    let mut cfg = test_config(Backend::Sqlite);
    cfg.storage = "s3".into();
    let err = cfg
        .blobs()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(err.contains("s3_bucket"), "{err}");
    cfg.storage = "nfs".into();
    assert!(cfg.blobs().is_err());

    cfg.storage = "s3".into();
    cfg.s3_bucket = Some("kura".into());
    cfg.s3_allow_http = true;
    cfg.s3_access_key_id = Some("x".into());
    cfg.s3_secret_access_key = Some("y".into());
    // A closed loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.s3_endpoint = Some(format!("http://127.0.0.1:{port}"));
    let store = kura::open_store(&cfg).await.unwrap();
    let started = kura::start(&cfg, store, None, false).await;
    let err = started.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("blob storage"), "{err}");
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}
