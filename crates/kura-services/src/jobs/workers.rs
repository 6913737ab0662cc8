//! This node's background workers: one per each-node job and one that runs the cluster jobs
//! that are due. Every worker has a status and stops cooperatively: on [`Background::stop`]
//! the round in hand finishes (a cluster job records its outcome) and no new one starts.

use super::{job_list, Job, Schedule};
use crate::Services;
use kura_domain::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a worker has done so far (this node, since it started).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The job's name; `jobs` for the worker that runs the cluster jobs.
    pub name: String,
    /// Rounds finished.
    pub rounds: u64,
    /// Rounds that failed.
    pub failures: u64,
    /// When the last round finished.
    pub last_round_at: Option<Timestamp>,
    /// The last failure's message, until a round succeeds.
    pub last_error: Option<String>,
    /// A round is under way.
    pub busy: bool,
}

/// The running workers of this node.
pub struct Background {
    stop: watch::Sender<bool>,
    workers: Vec<(Arc<Mutex<WorkerStatus>>, JoinHandle<()>)>,
}

impl Background {
    /// Starts the workers: every each-node job of [`job_list`], and — when `poll` is given —
    /// the runner of cluster jobs, which registers them and runs what is due every `poll`.
    pub fn start(services: &Services, node: &str, poll: Option<Duration>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut workers = Vec::new();
        for job in job_list(services) {
            if let Schedule::EachNode { every } = job.schedule {
                workers.push(spawn_worker(
                    job.name,
                    every,
                    stopped.clone(),
                    services.clone(),
                    move |s, _stop| run_each_node(s, job),
                ));
            }
        }
        if let Some(every) = poll {
            let node = node.to_string();
            let registered = Arc::new(std::sync::atomic::AtomicBool::new(false));
            workers.push(spawn_worker(
                "jobs",
                every,
                stopped,
                services.clone(),
                move |s, stop| {
                    let node = node.clone();
                    let registered = registered.clone();
                    Box::pin(async move {
                        use std::sync::atomic::Ordering;
                        if !registered.load(Ordering::Relaxed) {
                            s.ensure_jobs().await?;
                            registered.store(true, Ordering::Relaxed);
                        }
                        Ok(match s.run_due_jobs(&node, &stop).await? {
                            0 => String::new(),
                            n => format!("ran {n} due jobs on {node}"),
                        })
                    })
                },
            ));
        }
        Background { stop, workers }
    }

    /// Every worker's status.
    pub fn status(&self) -> Vec<WorkerStatus> {
        self.workers
            .iter()
            .map(|(s, _)| s.lock().map(|s| s.clone()).unwrap_or_default())
            .collect()
    }

    /// Asks every worker to stop and waits for them: a round in hand finishes.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (_, handle) in self.workers {
            let _ = handle.await;
        }
    }
}

fn run_each_node(s: Services, job: Job) -> super::JobFuture<'static> {
    Box::pin(async move { (job.run)(&s).await })
}

/// A worker: a round every `every` (the first at once) until `stop` turns true.
fn spawn_worker<F>(
    name: &'static str,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    services: Services,
    mut round: F,
) -> (Arc<Mutex<WorkerStatus>>, JoinHandle<()>)
where
    F: FnMut(Services, watch::Receiver<bool>) -> super::JobFuture<'static> + Send + 'static,
{
    let status = Arc::new(Mutex::new(WorkerStatus {
        name: name.to_string(),
        ..WorkerStatus::default()
    }));
    let shared = status.clone();
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            set(&shared, |st| st.busy = true);
            let outcome = round(services.clone(), stop.clone()).await;
            let now = services.now();
            match &outcome {
                Ok(line) if line.is_empty() => {}
                Ok(line) => tracing::info!(worker = name, "{line}"),
                Err(e) => tracing::warn!(worker = name, error = %e, "round failed; retrying later"),
            }
            set(&shared, |st| {
                st.busy = false;
                st.rounds += 1;
                st.last_round_at = Some(now);
                match &outcome {
                    Ok(_) => st.last_error = None,
                    Err(e) => {
                        st.failures += 1;
                        st.last_error = Some(e.to_string());
                    }
                }
            });
        }
    });
    (status, handle)
}

fn set(status: &Mutex<WorkerStatus>, f: impl FnOnce(&mut WorkerStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s)
    }
}
