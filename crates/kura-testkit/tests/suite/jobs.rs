//! The job runner: each due time runs once across nodes and processes, and survives a clock
//! going back.

use kura_testkit::{backends, run_cli, test_config, TestServer};
use serde_json::json;
use std::time::Duration;

async fn checkpoint_runs(s: &TestServer) -> Vec<kura_store::jobs::Run> {
    s.services
        .job_runs(Some("audit.checkpoint"), 1000)
        .await
        .unwrap()
}

kura_testkit::per_backend!(jobs_run_once_across_two_nodes);
/// Two nodes on one database, each polling every second: every due time of a job runs
/// exactly once, whichever node gets it.
async fn jobs_run_once_across_two_nodes(b: kura_testkit::Backend) {
    let mut cfg = test_config(b);
    cfg.jobs_poll_secs = 1;
    cfg.audit_checkpoint_interval_secs = 60;
    cfg.node_name = Some("node-a".into());
    let a = TestServer::start_with(cfg.clone(), b).await;
    cfg.node_name = Some("node-b".into());
    let node_b = TestServer::start_with(cfg.clone(), b).await;
    let t = a.create_tenant("jobco").await;
    let rounds = 5;
    for round in 0..=rounds {
        if round > 0 {
            // New audit events, then the next due time on both nodes' clocks.
            a.post(
                "/api/v1/folders",
                &t.admin_token,
                json!({ "name": format!("f{round}") }),
            )
            .await;
            a.clock.advance_secs(60);
            node_b.clock.advance_secs(60);
        }
        let mut seen = 0;
        for _ in 0..100 {
            seen = checkpoint_runs(&a)
                .await
                .iter()
                .filter(|r| r.status == "ok")
                .count();
            if seen > round {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, round + 1, "{b:?}: round {round}");
    }
    // Let both nodes poll a few more times: nothing more is due, nothing more runs.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let runs = checkpoint_runs(&a).await;
    assert_eq!(runs.len(), rounds + 1, "{b:?}: {runs:?}");
    let mut due: Vec<i64> = runs.iter().map(|r| r.due_at.0).collect();
    due.sort();
    due.dedup();
    assert_eq!(due.len(), rounds + 1, "each due time once");
    let nodes: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.node.as_str()).collect();
    assert!(
        nodes.iter().all(|n| *n == "node-a" || *n == "node-b"),
        "{nodes:?}"
    );
    // Each run checkpointed the chain that had moved; all signatures check out.
    let tid = kura_domain::TenantId::from_string(t.tenant_id.clone());
    let mut tx = a.services.store.tenant_read(&tid).await.unwrap();
    let cps = kura_store::audit::checkpoints_between(&mut tx, &tid, 0, i64::MAX)
        .await
        .unwrap();
    drop(tx);
    // (The first run may come before the tenant existed.)
    assert!(cps.len() >= rounds, "{b:?}: {cps:?}");
    assert!(cps.iter().all(|c| a.services.checkpoint_is_genuine(c)));
    // The operator sees the jobs and their runs.
    assert_eq!(run_cli(&a.cfg, &["jobs", "list"]).await, 0);
    node_b.stop().await;
    a.stop().await;
}

/// Two `kura serve` processes on one PostgreSQL database, each polling for jobs every
/// second with a job due every second: every run is recorded once, and the runs the two
/// processes log add up to exactly the recorded ones (nothing ran twice or unrecorded);
/// when one process dies, the other carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_kura_processes_run_each_due_job_once() {
    if !backends().contains(&kura_testkit::Backend::Postgres) {
        return;
    }
    let bin = crate::kura_binary();

    let b = kura_testkit::Backend::Postgres;
    let s = TestServer::start(b).await; // creates and migrates the schema
    let t = s.create_tenant("procco").await;
    let dir = kura_testkit::temp_path("two-nodes");
    std::fs::create_dir_all(&dir).unwrap();
    let mut nodes = Vec::new();
    for name in ["proc-a", "proc-b"] {
        let file = dir.join(format!("{name}.toml"));
        let toml = format!(
            "{}listen = \"127.0.0.1:0\"\njobs_poll_secs = 1\naudit_checkpoint_interval_secs = 1\nnode_name = \"{name}\"\nreencrypt_interval_secs = 0\n",
            kura_testkit::toml_of(&s.cfg)
        );
        std::fs::write(&file, toml).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = std::process::Command::new(&bin)
            .args(["--config", file.to_str().unwrap(), "serve"])
            .env("KURA_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        nodes.push(child);
    }
    // Audit events keep arriving while both nodes run jobs for a while; then the first node
    // dies and the other carries on alone (after the dead node's lease, if it died holding
    // one).
    let post = |name: String| {
        let s = &s;
        let tok = t.admin_token.clone();
        async move {
            s.post("/api/v1/folders", &tok, json!({ "name": name }))
                .await;
        }
    };
    for i in 0..8 {
        post(format!("p{i}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = nodes[0].kill();
    let _ = nodes[0].wait();
    let killed_at = s
        .services
        .job_runs(Some("audit.checkpoint"), 10_000)
        .await
        .unwrap()
        .len();
    for i in 0..60 {
        post(format!("q{i}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let runs = s
            .services
            .job_runs(Some("audit.checkpoint"), 10_000)
            .await
            .unwrap();
        if runs.len() >= killed_at + 2 {
            break;
        }
    }
    for mut n in nodes {
        let _ = n.kill();
        let _ = n.wait();
    }
    let runs = s
        .services
        .job_runs(Some("audit.checkpoint"), 10_000)
        .await
        .unwrap();
    assert!(runs.len() >= 3, "{runs:?}");
    let per_node = |n: &str| runs.iter().filter(|r| r.node == n).count();
    assert!(
        per_node("proc-a") + per_node("proc-b") == runs.len(),
        "{runs:?}"
    );
    let mut due: Vec<i64> = runs.iter().map(|r| r.due_at.0).collect();
    due.sort();
    due.dedup();
    assert_eq!(due.len(), runs.len(), "each due time once");
    // What the processes say they did equals what was recorded.
    let logged: usize = ["proc-a", "proc-b"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.join(format!("{n}.log")))
                .unwrap()
                .lines()
                .filter(|l| l.contains("job done") && l.contains("audit.checkpoint"))
                .count()
        })
        .sum();
    // (A node killed between its log line and recording the outcome leaves one `running`.)
    let finished = runs.iter().filter(|r| r.status == "ok").count();
    assert!(
        finished <= logged && logged <= runs.len(),
        "{logged} logged, {runs:?}"
    );
    // After the kill, only the survivor ran (its log's end shown if not: a survivor that
    // never ran once failed once under a loaded full run).
    let after_kill = runs.len() - killed_at;
    let survivor_log = std::fs::read_to_string(dir.join("proc-b.log")).unwrap_or_default();
    let tail: Vec<&str> = survivor_log.lines().rev().take(40).collect();
    assert!(
        after_kill >= 2,
        "{runs:?}\nproc-b's log, newest first:\n{}",
        tail.join("\n")
    );
    assert!(
        runs[..after_kill].iter().all(|r| r.node == "proc-b"),
        "{runs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
}

kura_testkit::per_backend!(jobs_survive_a_clock_going_back);
/// A clock that jumps backwards (by more than a job's interval and a margin) does not stall
/// the jobs until it catches up: they are rescheduled and run again.
async fn jobs_survive_a_clock_going_back(b: kura_testkit::Backend) {
    let s = TestServer::start(b).await;
    s.create_tenant("clockco").await;
    s.services.ensure_jobs().await.unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    assert!(s.services.run_due_jobs("test", &stop).await.unwrap() >= 4);
    let before = s
        .services
        .job_runs(Some("status.probe"), 100)
        .await
        .unwrap()
        .len();
    // Three hours back.
    s.clock.advance_secs(-3 * 3600);
    s.clock.advance_secs(61);
    s.services.run_due_jobs("test", &stop).await.unwrap();
    let after = s
        .services
        .job_runs(Some("status.probe"), 100)
        .await
        .unwrap()
        .len();
    assert_eq!(after, before + 1, "{b:?}: the minute job ran again");
    let purge = s.services.job_runs(Some("logs.purge"), 100).await.unwrap();
    assert_eq!(
        purge.len(),
        2,
        "{b:?}: the hourly job did not wait three hours"
    );
    s.stop().await;
}

kura_testkit::per_backend!(background_work_is_one_list_of_jobs_with_status_and_cooperative_stop);
/// Background work in one model: every job (cluster-wide or on each node) is a value in one
/// list; a node's workers report a status; a stop lets the round in hand finish and then
/// every worker ends.
async fn background_work_is_one_list_of_jobs_with_status_and_cooperative_stop(
    b: kura_testkit::Backend,
) {
    use kura_services::jobs::{job_list, Background, Schedule};
    let mut cfg = test_config(b);
    cfg.reencrypt_interval_secs = 1;
    let s = TestServer::start_with(cfg, b).await;
    let list = job_list(&s.services);
    let names: Vec<&str> = list.iter().map(|j| j.name).collect();
    for n in [
        "audit.checkpoint",
        "logs.purge",
        "usage.rollup",
        "lifecycle.run",
        "blobs.sweep",
        "keys.reencrypt",
    ] {
        assert!(names.contains(&n), "{b:?}: {n} missing from {names:?}");
    }
    // No SMTP server configured: no mail worker (the outbox keeps the mail).
    assert!(!names.contains(&"mail.deliver"), "{names:?}");
    let each_node: Vec<&str> = list
        .iter()
        .filter(|j| matches!(j.schedule, Schedule::EachNode { .. }))
        .map(|j| j.name)
        .collect();
    assert_eq!(each_node, vec!["keys.reencrypt"]);

    let bg = Background::start(&s.services, "bg-node", Some(Duration::from_millis(200)));
    let mut waited = 0;
    loop {
        let st = bg.status();
        let rounds = |n: &str| st.iter().find(|w| w.name == n).map_or(0, |w| w.rounds);
        if rounds("jobs") >= 1 && rounds("keys.reencrypt") >= 1 {
            let mut seen: Vec<&str> = st.iter().map(|w| w.name.as_str()).collect();
            seen.sort_unstable();
            assert_eq!(seen, vec!["jobs", "keys.reencrypt"], "{b:?}");
            for w in &st {
                assert_eq!(w.failures, 0, "{b:?}: {w:?}");
                assert!(w.last_error.is_none() && w.last_round_at.is_some(), "{w:?}");
            }
            break;
        }
        assert!(waited < 300, "{b:?}: workers did not run: {st:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    // The cluster jobs this node ran are recorded under its name, once per due time.
    let runs = s.services.job_runs(None, 100).await.unwrap();
    let ours: Vec<&str> = runs
        .iter()
        .filter(|r| r.node == "bg-node")
        .map(|r| r.name.as_str())
        .collect();
    assert!(ours.contains(&"audit.checkpoint"), "{b:?}: {runs:?}");
    let mut unique = ours.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ours.len(),
        "{b:?}: a due time ran twice: {ours:?}"
    );
    // Stop: every worker ends (the round in hand finishes first).
    tokio::time::timeout(Duration::from_secs(60), bg.stop())
        .await
        .expect("the workers stop");
    s.stop().await;
}
