//! `kura bench`: throughput of an authenticated small GET (session lookup + authorize +
//! access log) against the same process's bare `/healthz`, and audit appends per second —
//! every figure next to a baseline measured in the same run. Bounded in count; loopback only.

use crate::config::Config;
use anyhow::{bail, Context};
use clap::Args;
use kura_domain::clock::Stopwatch;
use kura_services::auth::SessionKind;
use kura_services::tenants::NewTenant;
use kura_services::RequestCtx;
use kura_store::audit::NewEvent;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Requests per measured route.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Audit events to append.
    #[arg(long, default_value_t = 5_000)]
    pub audit_events: usize,
    /// Size of the file for the upload/download benchmark, in MiB (0 skips it).
    #[arg(long, default_value_t = 1024)]
    pub file_mib: u64,
    /// Rounds of each file transfer (plain and encrypted alternate; the median counts).
    #[arg(long, default_value_t = 3)]
    pub file_rounds: usize,
    /// Database to benchmark against (default: a fresh SQLite file in a temp dir).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Also run dufs and copyparty (when installed: `cargo install dufs`, `pip install
    /// copyparty`; `bench/peers.sh` installs them): the same 1 KiB file downloaded, and the
    /// `--file-mib` file uploaded and downloaded, from each of them in the same rounds as
    /// Kura; prints Kura's ratios against them.
    #[arg(long)]
    pub peers: bool,
    /// Scale run instead of the request benchmarks: generate this many files straight into
    /// the database (a tenth in one project of the bench tenant, the rest spread over
    /// `--tenants` generated tenants) and compare listing, search and the console's project
    /// page with the same requests on 400 files before.
    #[arg(long, default_value_t = 0)]
    pub files: u64,
    /// Generated tenants for `--files` (one folder and one project each).
    #[arg(long, default_value_t = 10_000)]
    pub tenants: u64,
}

/// Sessions the authenticated load is spread over.
const BENCH_SESSIONS: usize = 8;

/// How a benchmark request authenticates.
#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
    /// Several sessions: load worker `i` uses the `i`-th (round robin), as many users would.
    Bearers(Arc<Vec<String>>),
}

impl Auth {
    /// The credentials of load worker `worker`.
    fn for_worker(&self, worker: usize) -> Auth {
        match self {
            Auth::Bearers(v) if !v.is_empty() => Auth::Bearer(v[worker % v.len()].clone()),
            other => other.clone(),
        }
    }

    /// A GET of `url` with these credentials.
    fn get(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        match self {
            Auth::None => client.get(url),
            Auth::Bearer(t) => client.get(url).bearer_auth(t),
            Auth::Basic(u, p) => client.get(url).basic_auth(u, Some(p)),
            Auth::Bearers(_) => self.for_worker(0).get(client, url),
        }
    }

    /// A PUT of `url` (an upload to a peer) with these credentials.
    fn put(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        match self {
            Auth::None => client.put(url),
            Auth::Bearer(t) => client.put(url).bearer_auth(t),
            Auth::Basic(u, p) => client.put(url).basic_auth(u, Some(p)),
            Auth::Bearers(_) => self.for_worker(0).put(client, url),
        }
    }
}

async fn hammer(
    client: &reqwest::Client,
    url: &str,
    auth: &Auth,
    n: usize,
    conc: usize,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let watch = Stopwatch::start();
    let mut tasks = Vec::new();
    for worker in 0..conc.max(1) {
        let client = client.clone();
        let url = url.to_string();
        let auth = auth.for_worker(worker);
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let res = auth.get(&client, &url).send().await?;
                if !res.status().is_success() {
                    bail!("{url} answered {}", res.status());
                }
                res.bytes().await?;
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await.context("bench worker")??;
    }
    Ok(n as f64 / watch.elapsed().as_secs_f64())
}

pub async fn run(base: &Config, args: BenchArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("kura-bench-{}", std::process::id()));
    let mut cfg = base.clone();
    cfg.listen = "127.0.0.1:0".into();
    cfg.data_dir = dir.clone();
    cfg.database_url = args.database_url.clone();
    cfg.database_schema = args
        .database_url
        .as_deref()
        .filter(|u| u.starts_with("postgres"))
        .map(|_| format!("kura_bench_{}", std::process::id()));
    cfg.bench_dir = Some(dir.join("plain"));
    // Throw-away data: an ephemeral master key, never the deployment's.
    cfg.master_key = Some(kura_crypto::keys::SecretKey::generate()?.to_hex());
    cfg.master_key_file = None;
    cfg.signing_key = Some(kura_crypto::keys::SecretKey::generate()?.to_hex());
    cfg.signing_key_file = None;
    cfg.jobs_poll_secs = 0;
    crate::private_data_dir(&dir.join("plain"))?;
    let store = crate::open_store(&cfg).await?;
    let running = crate::start(&cfg, store.clone(), None, false).await?;
    let s = running.services.clone();
    let ctx = RequestCtx::default();
    let password = "Quiet-Otter-Lantern-4711";
    let created = s
        .create_tenant(
            NewTenant {
                slug: "bench".into(),
                name: "Bench".into(),
                admin_email: "bench@example.jp".into(),
                admin_name: "Bench".into(),
                locale: "en".into(),
                time_zone: None,
            },
            &ctx,
        )
        .await?;
    let token = created
        .invitation_link
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let login = s
        .accept_invitation(&token, password, SessionKind::Api, &ctx)
        .await?;

    let base_url = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    if args.files > 0 {
        let cookie = format!(
            "{}={}",
            if cfg.secure_cookies {
                "__Host-kura_session"
            } else {
                "kura_session"
            },
            match s
                .login(
                    "bench",
                    "bench@example.jp",
                    password,
                    SessionKind::Console,
                    &ctx
                )
                .await?
            {
                kura_services::auth::LoginOutcome::Session(l) => l.token,
                _ => bail!("the bench user was asked for a second factor"),
            }
        );
        scale(&s, &store, &client, &base_url, &login.token, &cookie, &args).await?;
        return finish(running, &store, &cfg, &dir).await;
    }
    println!(
        "kura bench: {} requests per route, {} connections, backend {}",
        args.requests,
        args.concurrency,
        store.backend().name()
    );
    // Authenticated load comes from several sessions (each load worker keeps to one), as
    // from several users: one token would be the same session row on every request.
    let mut tokens = vec![login.token.clone()];
    for _ in 1..BENCH_SESSIONS {
        match s
            .login(
                "bench",
                "bench@example.jp",
                password,
                SessionKind::Api,
                &ctx,
            )
            .await?
        {
            kura_services::auth::LoginOutcome::Session(l) => tokens.push(l.token),
            _ => bail!("the bench user was asked for a second factor"),
        }
    }
    let bearer = Auth::Bearers(Arc::new(tokens));
    // Warm-up.
    hammer(
        &client,
        &format!("{base_url}/healthz"),
        &Auth::None,
        500,
        args.concurrency,
    )
    .await?;
    hammer(
        &client,
        &format!("{base_url}/api/v1/me"),
        &bearer,
        500,
        args.concurrency,
    )
    .await?;

    // A bare axum handler in this process, with none of Kura's middleware: the baseline for
    // Kura's own /healthz (request id, security headers, access log, metrics).
    let hello = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hello_url = format!("http://{}/", hello.local_addr()?);
    let hello_task = tokio::spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let _ = axum::serve(hello, app).await;
    });
    hammer(&client, &hello_url, &Auth::None, 500, args.concurrency).await?;

    // Three interleaved rounds; the medians are reported (load on this machine varies).
    let (mut bares, mut auths, mut hellos) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        hellos.push(
            hammer(
                &client,
                &hello_url,
                &Auth::None,
                args.requests,
                args.concurrency,
            )
            .await?,
        );
        let healthz = format!("{base_url}/healthz");
        bares.push(
            hammer(
                &client,
                &healthz,
                &Auth::None,
                args.requests,
                args.concurrency,
            )
            .await?,
        );
        let me = format!("{base_url}/api/v1/me");
        auths.push(hammer(&client, &me, &bearer, args.requests, args.concurrency).await?);
    }
    let bare = median(bares);
    let authed = median(auths);
    let hello = median(hellos);
    hello_task.abort();
    println!(
        "  bare axum handler, no middleware          {hello:>10.0} req/s   (baseline, median of 3)"
    );
    println!(
        "  bare GET /healthz                         {bare:>10.0} req/s   ratio {:.2} to the bare handler (goal >= 0.8)",
        bare / hello
    );
    println!("  authenticated GET /api/v1/me              {authed:>10.0} req/s   ratio {:.2} (goal >= 0.5)", authed / bare);
    let (batches, lookups) = store.session_lookup_batches();
    if batches > 0 {
        println!(
            "    (PostgreSQL: {lookups} session lookups checked in {batches} batches, {:.1} per batch)",
            lookups as f64 / batches as f64
        );
    }

    // The peers serve (and take uploads into) a directory of their own holding the same
    // 1 KiB file Kura serves.
    let peer_dir = dir.join("peers");
    let peers = if args.peers {
        std::fs::create_dir_all(&peer_dir)?;
        std::fs::write(peer_dir.join("f.bin"), peer_file())?;
        start_peers(&client, &peer_dir).await
    } else {
        Vec::new()
    };
    small_downloads(
        &running.services,
        &client,
        &base_url,
        &bearer,
        &args,
        bare,
        &peers,
    )
    .await?;

    login_flood(&client, &base_url, password, &running.services).await?;

    // Audit appends: one event per transaction (as a change records it), and the same number
    // in one transaction, to show the per-transaction cost.
    let tenant = created.tenant.id.clone();
    let event = |i: usize| {
        NewEvent::system(
            s.now(),
            "bench.event",
            i.to_string(),
            serde_json::json!({ "i": i }),
        )
    };
    let n = args.audit_events.max(1);
    // Baseline: one event per transaction, as a single change records it (at most 5,000).
    // Only the appends are timed, not building the events the caller hands over.
    let singles = n.min(5_000);
    let mut took = std::time::Duration::ZERO;
    for i in 0..singles {
        let ev = event(i);
        let watch = Stopwatch::start();
        let mut tx = store.tenant_tx(&tenant).await?;
        kura_store::audit::append(&mut tx, &tenant, ev).await?;
        tx.commit().await?;
        took += watch.elapsed();
    }
    let single = singles as f64 / took.as_secs_f64();
    // Batched: 1,000 events per transaction, one head update and multi-row INSERTs each.
    let mut took = std::time::Duration::ZERO;
    let mut i = 0;
    while i < n {
        let batch: Vec<NewEvent> = (i..(i + 1_000).min(n)).map(event).collect();
        i += batch.len();
        let watch = Stopwatch::start();
        kura_store::audit::append_many(&store, &tenant, batch).await?;
        took += watch.elapsed();
    }
    let batched = n as f64 / took.as_secs_f64();
    // The same batches from 4 callers at once, as concurrent requests and the job runner
    // append: the writer commits what is queued together (one sync for several batches).
    // The events are built before the clock starts, as above.
    let callers = 4;
    let mut work: Vec<Vec<Vec<NewEvent>>> = vec![Vec::new(); callers];
    let mut i = 0;
    while i < n {
        let batch: Vec<NewEvent> = (i..(i + 1_000).min(n)).map(event).collect();
        work[(i / 1_000) % callers].push(batch);
        i += 1_000;
    }
    let watch = Stopwatch::start();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|batches| {
            let (store, tenant) = (store.clone(), tenant.clone());
            tokio::spawn(async move {
                for batch in batches {
                    kura_store::audit::append_many(&store, &tenant, batch).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let concurrent = n as f64 / watch.elapsed().as_secs_f64();
    // SQLite's own ceiling on this machine: the same rows, table, pragmas and INSERT
    // with no hashing and no store (SQLite only).
    let ceiling = {
        let (store, tenant) = (store.clone(), tenant.as_str().to_string());
        tokio::task::spawn_blocking(move || {
            kura_store::generate::audit_insert_ceiling(&store, &tenant, n)
        })
        .await??
    };
    let watch = Stopwatch::start();
    let mut tx = store.tenant_read(&tenant).await?;
    let report = kura_store::audit::verify(&mut tx, &tenant, &[])
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(tx);
    let verify_db = report.events as f64 / watch.elapsed().as_secs_f64();
    // The chain check itself, in memory: one thread (baseline) against every core.
    let chain = {
        let mut prev = kura_crypto::GENESIS_HASH.to_string();
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let e = event(i);
            let rec = kura_crypto::AuditRecord {
                tenant_id: tenant.as_str().to_string(),
                seq: i as i64 + 1,
                at: e.at.0,
                actor_kind: e.actor_kind.into(),
                actor_id: e.actor_id,
                action: e.action,
                target_kind: None,
                target_id: e.target_id,
                result: e.result.into(),
                ip: e.ip,
                request_id: e.request_id,
                details: e.details,
                prev_hash: prev,
            };
            let h = rec.compute_hash();
            prev = h.clone();
            v.push((rec, h));
        }
        v
    };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let watch = Stopwatch::start();
    kura_crypto::chain::verify_parallel(&chain, 0, kura_crypto::GENESIS_HASH, 1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let verify_one = n as f64 / watch.elapsed().as_secs_f64();
    let watch = Stopwatch::start();
    kura_crypto::chain::verify_parallel(&chain, 0, kura_crypto::GENESIS_HASH, threads)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let verify_all = n as f64 / watch.elapsed().as_secs_f64();
    drop(chain);
    println!("  audit append, one per transaction   {single:>12.0} events/s   (baseline, {singles} events)");
    println!(
        "  audit append, batches of 1,000      {batched:>12.0} events/s   ({:.1}x the baseline; {n} events; goal >= 300,000 on SQLite)",
        batched / single
    );
    println!(
        "  audit append, batches of 1,000 from {callers} callers at once {concurrent:>7.0} events/s   ({:.1}x the baseline; {n} events; goal >= 300,000 on SQLite)",
        concurrent / single
    );
    if let Some(c) = ceiling {
        println!(
            "  SQLite alone: the same rows, 1,000 per transaction, synchronous=FULL, no hashing {c:.0} events/s   (Kura's batches {:.2} of it)",
            batched / c
        );
    }
    println!(
        "  audit verify from the database      {verify_db:>12.0} events/s   ({} events)",
        report.events
    );
    println!("  chain check in memory, 1 thread     {verify_one:>12.0} events/s   (baseline)");
    println!(
        "  chain check in memory, {threads} threads    {verify_all:>12.0} events/s   ({:.1}x; goal >= 1,000,000)",
        verify_all / verify_one
    );

    if args.file_mib > 0 {
        files(
            &running.services,
            &client,
            &base_url,
            &login.token,
            args.file_mib,
            args.file_rounds.max(1),
            &peers,
        )
        .await?;
    }
    drop(peers);

    finish(running, &store, &cfg, &dir).await
}

/// Stops the bench server and removes what it wrote: its PostgreSQL schema or its temp dir.
async fn finish(
    running: crate::Running,
    store: &kura_store::Store,
    cfg: &Config,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    running.stop().await?;
    store.close().await;
    if let (Some(url), Some(schema)) = (&cfg.database_url, &cfg.database_schema) {
        // The bench's own schema; its name is generated above, not user input.
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        conn.execute(sql.as_str()).await?;
    }
    // Blobs and the peers' files are written under the temp dir on either backend.
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Resident memory before, right after and three seconds after 200 password log-ins (8 at
/// a time): the Argon2 workspaces are reused during the flood and dropped after it.
async fn login_flood(
    client: &reqwest::Client,
    base: &str,
    password: &str,
    s: &kura_services::Services,
) -> anyhow::Result<()> {
    let before = rss_mib("VmRSS:");
    let next = Arc::new(AtomicUsize::new(0));
    let watch = Stopwatch::start();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, next) = (client.clone(), next.clone());
        let url = format!("{base}/api/v1/auth/login");
        let body = serde_json::json!({ "tenant": "bench", "email": "bench@example.jp", "password": password });
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < 200 {
                let res = client.post(&url).json(&body).send().await?;
                if !res.status().is_success() {
                    bail!("log-in answered {}", res.status());
                }
                res.bytes().await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await.context("log-in worker")??;
    }
    let rate = 200.0 / watch.elapsed().as_secs_f64();
    let during = rss_mib("VmRSS:");
    let held = s.hash_workspaces_held();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let after = rss_mib("VmRSS:");
    match (before, during, after) {
        (Some(b), Some(d), Some(a)) => println!(
            "  log-in flood (200 log-ins, 8 at a time, {rate:.0}/s): RSS {b:.0} MiB before, {d:.0} MiB right after ({held} hashing workspaces held), {a:.0} MiB 3 s later (goal: back near before)"
        ),
        _ => println!("  log-in flood: RSS not available on this platform"),
    }
    Ok(())
}

/// A memory line of /proc/self/status (Linux; e.g. `VmRSS:`, `VmHWM:`), in MiB.
fn rss_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Peak resident set size of this process since [`reset_peak_rss`] (or its start), from
/// /proc (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    rss_mib("VmHWM:")
}

/// Starts a new peak: the kernel sets this process's high-water mark to its current
/// resident size (`/proc/self/clear_refs`, value 5; Linux 4.0+). Returns whether it did, so
/// a peak that still counts the earlier phases (the log-in flood's hashing workspaces, the
/// audit events built in memory) is not printed as the transfers' own.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn body_of(mib: u64) -> reqwest::Body {
    let chunk = bytes::Bytes::from(
        (0..1024 * 1024)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let stream =
        futures_util::stream::iter((0..mib).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    reqwest::Body::wrap_stream(stream)
}

async fn drain(res: reqwest::Response) -> anyhow::Result<u64> {
    if !res.status().is_success() {
        bail!("download answered {}", res.status());
    }
    let mut res = res;
    let mut n = 0u64;
    while let Some(c) = res.chunk().await? {
        n += c.len() as u64;
    }
    Ok(n)
}

/// The 1 KiB file of the small-download benchmark.
fn peer_file() -> Vec<u8> {
    (0..1024).map(|i| (i % 251) as u8).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Upload and download of one large file over loopback HTTP, through the encrypted file
/// API and through the plain baseline route of the same process, `rounds` times each,
/// alternating (so that both see the same machine state); medians are reported.
async fn files(
    s: &kura_services::Services,
    client: &reqwest::Client,
    base: &str,
    token: &str,
    mib: u64,
    rounds: usize,
    peers: &[Peer],
) -> anyhow::Result<()> {
    let (_, [project]) = projects(s, token, "bench", ["bench"]).await?;
    let bytes = mib * 1024 * 1024;
    let mb = bytes as f64 / 1e6;
    println!("  file transfer of {mib} MiB over loopback HTTP (median of {rounds}):");
    let peak_reset = reset_peak_rss();
    let rss_at_start = rss_mib("VmRSS:").unwrap_or(0.0);

    let (mut plain_ups, mut digest_ups, mut enc_ups, mut plain_downs, mut enc_downs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut file_id = String::new();
    let (mut peer_ups, mut peer_downs) =
        (vec![Vec::new(); peers.len()], vec![Vec::new(); peers.len()]);
    // Every upload, Kura's or a peer's or the plain baseline's, writes a new file next to
    // the earlier rounds' (none overwrites or deletes one first: reusing a removed file's
    // page-cache pages made the baseline and the peers faster than any new upload can be).
    for round in 0..rounds {
        let w = Stopwatch::start();
        let res = client
            .post(format!("{base}/bench/plain"))
            .body(body_of(mib))
            .send()
            .await?;
        if res.status() != reqwest::StatusCode::CREATED {
            bail!("plain upload answered {}", res.status());
        }
        plain_ups.push(mb / w.elapsed().as_secs_f64());

        let w = Stopwatch::start();
        let res = client
            .post(format!("{base}/bench/plain?digest=true"))
            .body(body_of(mib))
            .send()
            .await?;
        if res.status() != reqwest::StatusCode::CREATED {
            bail!("plain upload answered {}", res.status());
        }
        digest_ups.push(mb / w.elapsed().as_secs_f64());

        let w = Stopwatch::start();
        let res = client
            .post(format!(
                "{base}/api/v1/projects/{}/files?name=big.bin",
                project.id
            ))
            .bearer_auth(token)
            .body(body_of(mib))
            .send()
            .await?;
        if res.status() != reqwest::StatusCode::CREATED {
            bail!("encrypted upload answered {}", res.status());
        }
        enc_ups.push(mb / w.elapsed().as_secs_f64());
        let v: serde_json::Value = res.json().await?;
        file_id = v["file"]["id"].as_str().unwrap_or_default().to_string();

        for (i, p) in peers.iter().enumerate() {
            let w = Stopwatch::start();
            let res = p
                .auth
                .put(client, &p.url(&format!("big-{}-{round}.bin", p.name)))
                .body(body_of(mib))
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("{} upload answered {}", p.name, res.status());
            }
            res.bytes().await?;
            peer_ups[i].push(mb / w.elapsed().as_secs_f64());
        }
    }
    for _ in 0..rounds {
        let w = Stopwatch::start();
        let n = drain(client.get(format!("{base}/bench/plain")).send().await?).await?;
        plain_downs.push(mb / w.elapsed().as_secs_f64());
        if n != bytes {
            bail!("plain download returned {n} bytes");
        }
        let w = Stopwatch::start();
        let n = drain(
            client
                .get(format!("{base}/api/v1/files/{file_id}/content"))
                .bearer_auth(token)
                .send()
                .await?,
        )
        .await?;
        enc_downs.push(mb / w.elapsed().as_secs_f64());
        if n != bytes {
            bail!("encrypted download returned {n} bytes");
        }
        for (i, p) in peers.iter().enumerate() {
            let w = Stopwatch::start();
            let last = format!("big-{}-{}.bin", p.name, rounds - 1);
            let n = drain(p.auth.get(client, &p.url(&last)).send().await?).await?;
            peer_downs[i].push(mb / w.elapsed().as_secs_f64());
            if n != bytes {
                bail!("{} download returned {n} bytes", p.name);
            }
        }
    }
    let digest_up = median(digest_ups);
    let (plain_up, enc_up, plain_down, enc_down) = (
        median(plain_ups),
        median(enc_ups),
        median(plain_downs),
        median(enc_downs),
    );
    println!("    upload   plain {plain_up:>8.0} MB/s   encrypted {enc_up:>8.0} MB/s   ratio {:.2} (goal >= 0.9)", enc_up / plain_up);
    println!("    upload   plain with the content SHA-256 the file service also computes {digest_up:>5.0} MB/s   ratio {:.2}", enc_up / digest_up);
    println!("    download plain {plain_down:>8.0} MB/s   encrypted {enc_down:>8.0} MB/s   ratio {:.2} (goal >= 0.9)", enc_down / plain_down);
    // The peers neither encrypt nor (on upload) sync to disk before answering; copyparty
    // sends files with sendfile(2).
    for (i, p) in peers.iter().enumerate() {
        let (up, down) = (
            median(std::mem::take(&mut peer_ups[i])),
            median(std::mem::take(&mut peer_downs[i])),
        );
        let goal = if p.name == "copyparty" { 0.6 } else { 1.0 };
        println!(
            "    {:<10} upload {up:>6.0} MB/s  Kura encrypted {:.2}x (goal >= 1);  download {down:>6.0} MB/s  Kura encrypted {:.2}x (goal >= {goal})",
            p.name,
            enc_up / up,
            enc_down / down
        );
    }
    match (peak_rss_mib(), peak_reset) {
        (Some(r), true) => println!(
            "    peak RSS of the whole process (server + client) during the transfers {r:.0} MiB, {rss_at_start:.0} MiB when they began (goal < 100 MiB)"
        ),
        (Some(r), false) => println!(
            "    peak RSS of the whole process (server + client) since it started {r:.0} MiB, earlier phases included (goal < 100 MiB during the transfers)"
        ),
        (None, _) => println!("    peak RSS: not available on this platform"),
    }
    Ok(())
}

/// A peer file server serving `dir` on a loopback port, stopped when dropped.
struct Peer {
    name: &'static str,
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`; files are at `/<name>`.
    base: String,
    auth: Auth,
}

impl Peer {
    fn url(&self, file: &str) -> String {
        format!("{}/{file}", self.base)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts dufs and copyparty (those installed) on `dir`, each with a password that may read
/// and upload, waiting until each serves `f.bin` from it.
async fn start_peers(client: &reqwest::Client, dir: &std::path::Path) -> Vec<Peer> {
    use std::process::{Command, Stdio};
    let mut peers = Vec::new();
    let pass = "bench-Peer-4711";
    let auth = Auth::Basic("bench".into(), pass.into());
    if let Ok(port) = free_port() {
        let child = Command::new("dufs")
            .arg(dir)
            .args(["-b", "127.0.0.1", "-p", &port.to_string(), "--allow-upload"])
            .arg("-a")
            .arg(format!("bench:{pass}@/:rw"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => peers.push(Peer {
                name: "dufs",
                child,
                base: format!("http://127.0.0.1:{port}"),
                auth: auth.clone(),
            }),
            Err(_) => println!("  dufs: not installed (cargo install dufs), skipped"),
        }
    }
    if let Ok(port) = free_port() {
        let child = Command::new("python3")
            .args(["-m", "copyparty", "-q", "-i", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-a", &format!("bench:{pass}"), "-v"])
            .arg(format!("{}::rw,bench", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(child) = child {
            peers.push(Peer {
                name: "copyparty",
                child,
                base: format!("http://127.0.0.1:{port}"),
                auth,
            });
        }
    }
    let mut up = Vec::new();
    for p in peers {
        let mut ok = false;
        for _ in 0..100 {
            if let Ok(r) = p.auth.get(client, &p.url("f.bin")).send().await {
                if r.status().is_success() {
                    ok = true;
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if ok {
            up.push(p);
        } else {
            println!(
                "  {}: did not serve the file (not installed? pip install copyparty), skipped",
                p.name
            );
        }
    }
    up
}

/// Authenticated 1 KiB downloads (session lookup, permission check, decryption, the audit
/// entry and usage counter through the group commit), against the bare `/healthz` of the
/// same process and, with `--peers`, against dufs and copyparty serving the same file with
/// a password — interleaved rounds, medians.
async fn small_downloads(
    s: &kura_services::Services,
    client: &reqwest::Client,
    base: &str,
    bearer: &Auth,
    args: &BenchArgs,
    bare: f64,
    peers: &[Peer],
) -> anyhow::Result<()> {
    let Auth::Bearer(token) = bearer.for_worker(0) else {
        bail!("small downloads need a session");
    };
    let token = token.as_str();
    let (_, [project]) = projects(s, token, "small", ["small"]).await?;
    let content = peer_file();
    let res = client
        .post(format!(
            "{base}/api/v1/projects/{}/files?name=f.bin",
            project.id
        ))
        .bearer_auth(token)
        .body(content.clone())
        .send()
        .await?;
    if res.status() != reqwest::StatusCode::CREATED {
        bail!("small upload answered {}", res.status());
    }
    let v: serde_json::Value = res.json().await?;
    let url = format!(
        "{base}/api/v1/files/{}/content",
        v["file"]["id"].as_str().unwrap_or_default()
    );
    let n = args.requests;
    hammer(client, &url, bearer, 500, args.concurrency).await?;
    let mut kura = Vec::new();
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    for _ in 0..3 {
        kura.push(hammer(client, &url, bearer, n, args.concurrency).await?);
        for (i, p) in peers.iter().enumerate() {
            theirs[i].push(hammer(client, &p.url("f.bin"), &p.auth, n, args.concurrency).await?);
        }
    }
    let kura = median(kura);
    println!(
        "  authenticated 1 KiB download              {kura:>10.0} req/s   ratio {:.2} to /healthz",
        kura / bare
    );
    for (p, v) in peers.iter().zip(theirs) {
        let theirs = median(v);
        println!(
            "    {:<10} same file with a password    {theirs:>10.0} req/s   Kura {:.2}x (goal >= 5)",
            p.name,
            kura / theirs
        );
    }
    Ok(())
}

/// A folder with the named projects in it, created as the bench user (whose context is
/// returned too).
async fn projects<const N: usize>(
    s: &kura_services::Services,
    token: &str,
    folder: &str,
    names: [&str; N],
) -> anyhow::Result<(
    kura_services::auth::AuthContext,
    [kura_store::workspace::Project; N],
)> {
    let auth = s.authenticate(token).await?;
    let ctx = RequestCtx::default();
    let folder = s
        .create_folder(&auth, folder, None, Default::default(), &ctx)
        .await?;
    let mut out = Vec::with_capacity(N);
    for name in names {
        out.push(
            s.create_project(&auth, &folder.id, name, Default::default(), &ctx)
                .await?,
        );
    }
    let out: [kura_store::workspace::Project; N] = out
        .try_into()
        .map_err(|_| anyhow::anyhow!("project count"))?;
    Ok((auth, out))
}

/// Median milliseconds of `n` sequential GETs of `url` (after one warm-up).
async fn timed_get(
    client: &reqwest::Client,
    url: &str,
    auth: &[(&str, &str)],
    n: usize,
) -> anyhow::Result<f64> {
    let get = || {
        let mut r = client.get(url);
        for (k, v) in auth {
            r = r.header(*k, *v);
        }
        r
    };
    let res = get().send().await?;
    if !res.status().is_success() {
        bail!("GET {url} answered {}", res.status());
    }
    drain(res).await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let watch = Stopwatch::start();
        drain(get().send().await?).await?;
        times.push(watch.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(times))
}

/// `kura bench --files N --tenants M`: listing, search and the console's project page on a
/// project of 400 files, then the same on a project of N/10 files with N files and M
/// tenants in the database; prints each ratio (large over small; goal <= 1.5).
async fn scale(
    s: &kura_services::Services,
    store: &kura_store::Store,
    client: &reqwest::Client,
    base: &str,
    token: &str,
    cookie: &str,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let (auth, [small, big]) = projects(s, token, "scale", ["small", "large"]).await?;
    let small_plan = kura_store::generate::Plan {
        tag: "small".into(),
        template: auth.tenant.id.clone(),
        big_project: small.id.clone(),
        big_files: 400,
        tenants: 0,
        spread_files: 0,
        needles: 3,
        now_ms: s.now().0,
    };
    kura_store::generate::fill(store, &small_plan, |_| {}).await?;
    let bearer = format!("Bearer {token}");
    let api = [("authorization", bearer.as_str())];
    let console = [("cookie", cookie)];
    let rounds = 15;
    // The cursor of the page after file `n` (by name).
    let cursor = |tag: &str, n: u64| {
        hex::encode(format!(
            "{}\0{}",
            kura_store::generate::file_name(n),
            kura_store::generate::big_file_id(tag, n)
        ))
    };
    let measure = |project: kura_domain::ProjectId, tag: &'static str, deep: u64| {
        let api = &api;
        let console = &console;
        async move {
            let list = format!("{base}/api/v1/projects/{project}/files?limit=50");
            let deep = format!("{list}&after={}", cursor(tag, deep));
            let by_update = format!("{list}&sort=updated&order=desc");
            let search = format!("{base}/api/v1/search?q=needle&limit=50");
            let search_common = format!("{base}/api/v1/search?q=report&limit=50");
            let page = format!("{base}/projects/{project}");
            anyhow::Ok([
                timed_get(client, &list, api, rounds).await?,
                timed_get(client, &deep, api, rounds).await?,
                timed_get(client, &by_update, api, rounds).await?,
                timed_get(client, &search, api, rounds).await?,
                timed_get(client, &search_common, api, rounds).await?,
                timed_get(client, &page, console, rounds).await?,
            ])
        }
    };
    let before = measure(small.id.clone(), "small", 50).await?;
    let big_files = (args.files / 10).max(1);
    let plan = kura_store::generate::Plan {
        tag: "big".into(),
        template: auth.tenant.id.clone(),
        big_project: big.id.clone(),
        big_files,
        tenants: args.tenants,
        spread_files: args.files.saturating_sub(big_files + 100),
        needles: 0,
        now_ms: s.now().0,
    };
    println!(
        "kura bench --files {} --tenants {}: generating ({} files in one project, {} spread over {} tenants), backend {}",
        args.files,
        args.tenants,
        plan.big_files,
        plan.spread_files,
        plan.tenants,
        store.backend().name()
    );
    let watch = Stopwatch::start();
    let last = std::cell::Cell::new(0u64);
    kura_store::generate::fill(store, &plan, |n| {
        if n / 250_000 > last.get() / 250_000 {
            println!("  … {n} rows");
        }
        last.set(n);
    })
    .await?;
    println!("  generated in {:.0} s", watch.elapsed().as_secs_f64());
    let after = measure(big.id.clone(), "big", big_files / 2).await?;
    let names = [
        "file list, first page of 50",
        "file list, page in the middle",
        "file list by update time",
        "name search, rare term",
        "name search, common term",
        "console project page",
    ];
    println!(
        "  median of {rounds} sequential requests: 400 files vs {big_files} files in the project ({} in the database)",
        args.files
    );
    for (i, name) in names.iter().enumerate() {
        println!(
            "  {name:<32} {:>8.2} ms vs {:>8.2} ms   ratio {:.2} (goal <= 1.5)",
            before[i],
            after[i],
            after[i] / before[i]
        );
    }
    Ok(())
}
