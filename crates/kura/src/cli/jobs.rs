//! `kura jobs`: list the scheduled jobs and their runs, run what is due.

use super::*;

#[derive(Subcommand, Debug)]
pub enum JobsCmd {
    /// Every job: interval, next due time, lease, last outcome, runs and failures; then the
    /// newest runs.
    List {
        #[arg(long, default_value_t = 10)]
        runs: i64,
    },
    /// Run the due jobs once from this process (as a node named `cli`), then exit.
    Run,
}

pub(super) async fn run(cfg: &Config, cmd: JobsCmd) -> anyhow::Result<i32> {
    match cmd {
        JobsCmd::List { runs } => {
            let s = services(cfg).await?;
            s.ensure_jobs().await?;
            let show = |t: Option<kura_domain::Timestamp>| {
                t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into())
            };
            for j in s.list_jobs().await? {
                println!(
                    "{:<18} every {:>6}s  next {}  lease {}  last {} {} on {}  runs {}  failures {}",
                    j.name,
                    j.every_secs,
                    j.next_due.to_rfc3339(),
                    j.lease_owner.as_deref().unwrap_or("-"),
                    j.last_status.as_deref().unwrap_or("never"),
                    show(j.last_finished),
                    j.last_node.as_deref().unwrap_or("-"),
                    j.runs,
                    j.failures
                );
                if let Some(e) = &j.last_error {
                    println!("{:<18} last error: {e}", "");
                }
            }
            for r in s.job_runs(None, runs).await? {
                println!(
                    "  run {:<18} due {}  {:<8} on {}{}",
                    r.name,
                    r.due_at.to_rfc3339(),
                    r.status,
                    r.node,
                    r.error.map(|e| format!(": {e}")).unwrap_or_default()
                );
            }
            Ok(0)
        }
        JobsCmd::Run => {
            let s = services(cfg).await?;
            s.ensure_jobs().await?;
            let (_keep, stop) = tokio::sync::watch::channel(false);
            let n = s.run_due_jobs("cli", &stop).await?;
            println!("ran {n} due jobs");
            Ok(0)
        }
    }
}
