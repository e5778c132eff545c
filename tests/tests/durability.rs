//! Durability: a disk that fills during a trial fails it as `disk_full` (naming the
//! file) and never leaves it running without a worker; a job whose final state
//! cannot be written keeps its slot until the write succeeds; an unusable
//! checkpoint is set aside and the trial restarts from epoch 1; failure messages
//! carry no terminal control sequences.
//!
//! The disk-full test mounts a small tmpfs as the state directory: it needs root
//! and says so when it skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use vov_proto::pb;
use vov_proto::pb::trainer_client::TrainerClient;
use vov_tests::{
    events, submit, tiny_spec, wait_for, wait_state, workers_of, Daemon, DaemonOptions,
};

const LONG: Duration = Duration::from_secs(180);
const CHECKPOINT: &str = "checkpoint.safetensors";

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it); `None`, with a
    /// printed reason, where mounting is not possible (not root).
    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir,
                _parent: parent,
            }),
            Ok(o) => {
                eprintln!(
                    "skipping: cannot mount a tmpfs (this test needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it open: detach it now, it goes when released.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Fills the file system holding `path` by writing `path` until the disk is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            assert_eq!(
                e.raw_os_error(),
                Some(28),
                "filling {}: {e}",
                path.display()
            );
            return;
        }
    }
}

/// Collects a job's events from the first until the stream ends, in a task.
fn watch(mut c: TrainerClient<Channel>, id: &str) -> JoinHandle<Vec<pb::JobEvent>> {
    let id = id.to_string();
    tokio::spawn(async move { events(&mut c, &id).await })
}

async fn slots_free(c: &mut TrainerClient<Channel>) -> u32 {
    c.host_info(pb::HostInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .slots_free
}

async fn serving(daemon: &Daemon) -> bool {
    let channel = Channel::from_shared(daemon.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    status == ServingStatus::Serving as i32
}

/// Polls until `path` exists.
async fn wait_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.is_file() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn state_of(event: &pb::JobEvent) -> Option<&pb::StateChange> {
    match &event.kind {
        Some(pb::job_event::Kind::State(s)) => Some(s),
        _ => None,
    }
}

fn get(job: &pb::Job) -> (i32, i32) {
    (job.state, job.failure)
}

/// Waits, with the disk full, until the trial has failed (false) or its final
/// state could not be written and it holds its slot without a worker (true).
async fn failed_or_held(daemon: &Daemon, c: &mut TrainerClient<Channel>, id: &str) -> bool {
    let deadline = Instant::now() + LONG;
    loop {
        let job = wait_for(c, id, LONG, |_| true).await;
        if job.state == pb::JobState::Failed as i32 {
            return false;
        }
        assert_eq!(job.state, pb::JobState::Running as i32, "{job:?}");
        if daemon
            .log_text()
            .contains("could not record the job's new state")
        {
            assert!(workers_of(daemon.pid()).is_empty(), "the worker is gone");
            assert_eq!(slots_free(c).await, 0, "the slot stays taken");
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "neither failed nor held: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tmpfs state directory whose log lives off it (so it stays readable).
fn small_state(size: &str) -> Option<(Tmpfs, tempfile::TempDir)> {
    let fs = Tmpfs::mount(size)?;
    let logs = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(logs.path().join("vovd.log"), fs.dir.join("vovd.log")).unwrap();
    Some((fs, logs))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_the_trial_as_disk_full_and_the_daemon_recovers() {
    let Some((fs, _logs)) = small_state("8m") else {
        return;
    };
    let daemon = Daemon::start_in(&fs.dir, DaemonOptions::default());
    let mut c = daemon.client().await;
    let spec = tiny_spec(4, 1024, 32);
    c.submit(submit("t-full", "d", spec.clone())).await.unwrap();
    let events = watch(c.clone(), "t-full");
    let checkpoint = fs.dir.join("checkpoints/t-full").join(CHECKPOINT);
    wait_file(&checkpoint, LONG).await;
    let filler = fs.dir.join("filler");
    fill(&filler);

    let held = failed_or_held(&daemon, &mut c, "t-full").await;
    assert!(serving(&daemon).await, "the daemon serves on a full disk");
    if held {
        // Still held a while later, however many retries went by.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let job = wait_for(&mut c, "t-full", LONG, |_| true).await;
        assert_eq!(job.state, pb::JobState::Running as i32, "{job:?}");
        assert_eq!(slots_free(&mut c).await, 0);
    }
    std::fs::remove_file(&filler).unwrap();

    let job = wait_state(&mut c, "t-full", pb::JobState::Failed, LONG).await;
    assert_eq!(
        get(&job),
        (
            pb::JobState::Failed as i32,
            pb::FailureClass::DiskFull as i32
        ),
        "{job:?}"
    );
    assert!(
        job.message.contains(&checkpoint.display().to_string())
            && job.message.contains("No space left on device"),
        "the message names the file: {}",
        job.message
    );
    assert!(!job.message.contains('\u{1b}'), "{:?}", job.message);
    let events = tokio::time::timeout(LONG, events)
        .await
        .expect("the watch ends once the final state is written")
        .unwrap();
    let last = events
        .last()
        .and_then(state_of)
        .expect("a final state event");
    assert_eq!(last.state, pb::JobState::Failed as i32, "{events:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "events in order without gaps: {seqs:?}"
    );
    eprintln!(
        "final state held back by the full disk: {held}; {} events",
        events.len()
    );

    assert_eq!(slots_free(&mut c).await, 1, "the slot is free again");
    c.submit(submit("t-after", "d", tiny_spec(1, 64, 16)))
        .await
        .unwrap();
    wait_state(&mut c, "t-after", pb::JobState::Succeeded, LONG).await;
    let again = c
        .submit(pb::SubmitRequest {
            retry: true,
            stop_after_epochs: 0,
            ..submit("t-full", "d", spec)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.created, "the failed trial is queued again");
    let job = wait_state(&mut c, "t-full", pb::JobState::Succeeded, LONG).await;
    assert!(job.result.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_while_its_final_write_waits_resumes_the_trial() {
    let Some((fs, _logs)) = small_state("8m") else {
        return;
    };
    let mut daemon = Daemon::start_in(&fs.dir, DaemonOptions::default());
    let mut c = daemon.client().await;
    c.submit(submit("t-held", "d", tiny_spec(4, 1024, 32)))
        .await
        .unwrap();
    let checkpoint = fs.dir.join("checkpoints/t-held").join(CHECKPOINT);
    wait_file(&checkpoint, LONG).await;
    let filler = fs.dir.join("filler");
    fill(&filler);
    if !failed_or_held(&daemon, &mut c, "t-held").await {
        eprintln!("skipping the rest: the final state fitted on the full disk");
        return;
    }
    daemon.kill9();
    std::fs::remove_file(&filler).unwrap();

    // The store still says running: the next start resumes it from its checkpoint.
    let daemon = daemon.restart();
    let mut c = daemon.client().await;
    let job = wait_state(&mut c, "t-held", pb::JobState::Succeeded, LONG).await;
    assert_eq!(job.attempt, 2, "{job:?}");
    let result = job.result.expect("result");
    assert!(result.resumed_from_epoch >= 1, "{result:?}");
    assert_eq!(result.history.len(), 4);
}

/// A way to spoil a checkpoint file.
type Spoil = fn(&Path);

fn garbage(path: &Path) {
    std::fs::write(path, b"\x00\x01 not a checkpoint \xff\xfe").unwrap();
}

fn truncate(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len / 2).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_checkpoint_is_set_aside_and_the_trial_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start_in(
        tmp.path(),
        DaemonOptions {
            slots: 2,
            ..DaemonOptions::default()
        },
    );
    let mut c = daemon.client().await;
    let breaks: [(&str, Spoil); 2] = [("t-garbage", garbage), ("t-truncated", truncate)];
    for (id, _) in breaks {
        c.submit(submit(id, "k", tiny_spec(3, 1024, 32)))
            .await
            .unwrap();
    }
    let ckpt = |id: &str| tmp.path().join("checkpoints").join(id).join(CHECKPOINT);
    for (id, _) in breaks {
        wait_file(&ckpt(id), LONG).await;
    }
    // A drain: the workers checkpoint and stop, the daemon exits.
    assert!(daemon.terminate().success());
    for (id, break_it) in breaks {
        break_it(&ckpt(id));
    }

    let daemon = daemon.restart();
    let mut c = daemon.client().await;
    for (id, _) in breaks {
        let job = wait_state(&mut c, id, pb::JobState::Succeeded, LONG).await;
        let result = job.result.expect("result");
        assert_eq!(result.resumed_from_epoch, 0, "{id} restarted from epoch 1");
        assert_eq!(result.history.len(), 3);
        let events = watch(c.clone(), id).await.unwrap();
        let warning = events
            .iter()
            .find_map(|e| match &e.kind {
                Some(pb::job_event::Kind::Warning(w)) if w.contains("is unreadable") => Some(w),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{id}: no warning about the checkpoint: {events:?}"));
        assert!(
            warning.contains(&ckpt(id).display().to_string())
                && warning.ends_with("; restarting from epoch 1"),
            "{warning}"
        );
        let moved = warning
            .split_once(": moved to ")
            .and_then(|(_, rest)| rest.split_once("; restarting"))
            .map(|(path, _)| PathBuf::from(path))
            .unwrap_or_else(|| panic!("{warning}"));
        assert!(moved.is_file(), "{} is kept", moved.display());
        assert!(
            moved.starts_with(tmp.path()),
            "kept in the state directory: {}",
            moved.display()
        );
        if id == "t-garbage" {
            assert_eq!(
                std::fs::read(&moved).unwrap(),
                b"\x00\x01 not a checkpoint \xff\xfe"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_workers_message_carries_its_stderr_without_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = DaemonOptions::default();
    // The worker logs each epoch on its stderr (coloured by its logger).
    opts.env.push(("VOVD_WORKER_LOG".into(), "info".into()));
    let daemon = Daemon::start_in(tmp.path(), opts);
    let mut c = daemon.client().await;
    c.submit(submit("t-loud", "s", tiny_spec(500, 256, 32)))
        .await
        .unwrap();
    wait_for(&mut c, "t-loud", LONG, |j| {
        j.progress.as_ref().is_some_and(|p| p.epoch >= 2)
    })
    .await;
    let workers = workers_of(daemon.pid());
    assert_eq!(workers.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(workers[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let job = wait_state(&mut c, "t-loud", pb::JobState::Failed, LONG).await;
    assert!(
        job.message.contains("stderr:") && job.message.contains("epoch done"),
        "the stderr tail is in the message: {:?}",
        job.message
    );
    assert!(
        !job.message
            .chars()
            .any(|ch| ch.is_control() && ch != '\n' && ch != '\t'),
        "no control characters: {:?}",
        job.message
    );
}
