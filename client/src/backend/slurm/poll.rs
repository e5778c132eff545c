//! Polite polling: one `squeue` call per poll for every array of the sweeps this
//! backend follows, every `poll_secs`, and none while nobody follows a trial.
//! Watchers read the latest answer; nothing asks Slurm per task.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::command::Commands;
use super::lock;
use super::parse::squeue::{parse_squeue, SQUEUE_FORMAT};
use super::parse::state::JobState;

/// One `squeue` answer.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the call was started: every job that ended before it is absent or
    /// shows a final state.
    pub started: Instant,
    /// State of each array task, by (array job id, task id).
    pub tasks: HashMap<(u64, u32), JobState>,
    /// The job names it asked for: it says nothing of other arrays.
    pub names: BTreeSet<String>,
}

/// The poller shared by a backend's watchers.
#[derive(Debug)]
pub struct Poller {
    commands: Arc<Commands>,
    every: Duration,
    names: Mutex<BTreeSet<String>>,
    latest: Mutex<Option<Arc<Snapshot>>>,
    interest: AtomicUsize,
    wake: Notify,
}

/// Keeps the poller polling while it lives.
#[derive(Debug)]
pub struct Interest(Arc<Poller>);

impl Drop for Interest {
    fn drop(&mut self) {
        self.0.interest.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Poller {
    /// A poller calling `squeue` every `every`; [`run`](Self::run) is its loop.
    pub fn new(commands: Arc<Commands>, every: Duration) -> Arc<Self> {
        Arc::new(Poller {
            commands,
            every,
            names: Mutex::new(BTreeSet::new()),
            latest: Mutex::new(None),
            interest: AtomicUsize::new(0),
            wake: Notify::new(),
        })
    }

    /// Follows the arrays named `job_name` too.
    pub fn follow(&self, job_name: &str) {
        lock(&self.names).insert(job_name.to_string());
    }

    /// Polls while the returned guard lives (and others like it).
    pub fn interest(self: &Arc<Self>) -> Interest {
        self.interest.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
        Interest(self.clone())
    }

    /// The latest answer, if any came yet.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        lock(&self.latest).clone()
    }

    /// The polling loop; runs until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            while self.interest.load(Ordering::SeqCst) == 0 {
                let woken = self.wake.notified();
                if self.interest.load(Ordering::SeqCst) > 0 {
                    break;
                }
                woken.await;
            }
            match self.poll().await {
                Ok(snapshot) => {
                    failures = 0;
                    *lock(&self.latest) = Some(Arc::new(snapshot));
                }
                Err(e) => {
                    failures += 1;
                    if failures.is_power_of_two() {
                        tracing::warn!("squeue failed ({failures} times in a row): {e}");
                    }
                }
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// Asks now, once (a warning when it fails), unless an answer is newer than
    /// the poll interval.
    pub async fn refresh(&self) {
        let fresh = self
            .latest()
            .is_some_and(|s| s.started.elapsed() < self.every);
        if fresh {
            return;
        }
        match self.poll().await {
            Ok(snapshot) => *lock(&self.latest) = Some(Arc::new(snapshot)),
            Err(e) => tracing::warn!("squeue failed: {e}"),
        }
    }

    async fn poll(&self) -> Result<Snapshot, String> {
        let names = lock(&self.names).clone();
        let started = Instant::now();
        if names.is_empty() {
            return Ok(Snapshot {
                started,
                tasks: HashMap::new(),
                names,
            });
        }
        let args = squeue_args(&names.iter().cloned().collect::<Vec<_>>());
        let out = self
            .commands
            .run("squeue", &args)
            .await
            .map_err(|e| e.to_string())?;
        let tasks = parse_squeue(&out).map_err(|e| e.to_string())?;
        Ok(Snapshot {
            started,
            tasks: tasks
                .into_iter()
                .map(|t| ((t.job, t.task.unwrap_or(0)), t.state))
                .collect(),
            names,
        })
    }
}

/// The one `squeue` call of a poll: this user's jobs of these names, every state
/// (finished tasks stay listed for the cluster's `MinJobAge`), one line a task.
pub fn squeue_args(names: &[String]) -> Vec<String> {
    [
        "--noheader",
        "--array",
        "--me",
        "--states=all",
        &format!("--name={}", names.join(",")),
        &format!("--format={SQUEUE_FORMAT}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
