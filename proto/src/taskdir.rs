//! The files of a trial run as a batch task (a Slurm array task): what `vovctl`
//! writes before it submits, and what `vovd task` writes while it runs. This module
//! is the one definition of that layout, read and written by both sides.
//!
//! Under a work directory on a filesystem every node shares:
//!
//! ```text
//! WORK/trials/ID/request.pb     the SubmitRequest (trial id, sweep id, resolved spec)
//! WORK/trials/ID/attempt        the attempt number vovctl submitted last, as text
//! WORK/trials/ID/events.pb      JobEvents, length-delimited, seq from 1 without gaps
//! WORK/trials/ID/result-N.pb    the final Job of attempt N (written once, atomically)
//! WORK/trials/ID/job            the batch job of the last attempt: `JOB ATTEMPT` (vovctl)
//! WORK/trials/ID/checkpoint/    the trial's checkpoint, resumed by a requeued run
//! WORK/trials/ID/weights.safetensors  the weights its keep_weights asks for
//! WORK/trials/ID/log/           the batch system's stdout and stderr of each run
//! ```
//!
//! Every write that another process may read half-done is made atomic: whole files
//! go to a temporary name and are renamed over the real one, and event appends hold
//! an exclusive lock on the log and skip a torn tail left by a killed writer.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::pb;

/// The trials' folder under a work directory.
pub const TRIALS: &str = "trials";

/// One trial's folder under a work directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialDir {
    root: PathBuf,
}

impl TrialDir {
    /// Trial `trial_id`'s folder under `work_dir`.
    pub fn new(work_dir: &Path, trial_id: &str) -> Self {
        TrialDir {
            root: work_dir.join(TRIALS).join(trial_id),
        }
    }

    /// A trial folder given by its path.
    pub fn at(root: PathBuf) -> Self {
        TrialDir { root }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The submit request: trial id, sweep id and resolved spec.
    pub fn request(&self) -> PathBuf {
        self.root.join("request.pb")
    }

    /// The attempt number last submitted.
    pub fn attempt(&self) -> PathBuf {
        self.root.join("attempt")
    }

    /// The event log.
    pub fn events(&self) -> PathBuf {
        self.root.join("events.pb")
    }

    /// The final job of attempt `attempt`.
    pub fn result(&self, attempt: u32) -> PathBuf {
        self.root.join(format!("result-{attempt}.pb"))
    }

    /// The batch job of the last attempt submitted, as the batch system names it
    /// (a Slurm array task `123_4`), and that attempt: `JOB ATTEMPT`.
    pub fn batch_job(&self) -> PathBuf {
        self.root.join("job")
    }

    /// The checkpoint folder.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    /// The kept weights (the spec's `keep_weights`).
    pub fn weights(&self) -> PathBuf {
        self.root.join("weights.safetensors")
    }

    /// The batch system's logs.
    pub fn logs(&self) -> PathBuf {
        self.root.join("log")
    }

    /// Writes the request and the attempt number (creating the folders).
    pub fn prepare(&self, request: &pb::SubmitRequest, attempt: u32) -> io::Result<()> {
        std::fs::create_dir_all(self.logs())?;
        write_atomically(&self.request(), &request.encode_to_vec())?;
        write_atomically(&self.attempt(), format!("{attempt}\n").as_bytes())
    }

    /// The submit request.
    pub fn read_request(&self) -> io::Result<pb::SubmitRequest> {
        read_request_at(&self.request())
    }

    /// The attempt number last submitted (0 when none was).
    pub fn read_attempt(&self) -> io::Result<u32> {
        match std::fs::read_to_string(self.attempt()) {
            Ok(text) => text.trim().parse().map_err(|e| invalid(&self.attempt(), e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Writes attempt `job.attempt`'s final job unless one is there already;
    /// returns whether this call wrote it.
    pub fn write_result(&self, job: &pb::Job) -> io::Result<bool> {
        let path = self.result(job.attempt);
        if path.exists() {
            return Ok(false);
        }
        write_atomically(&path, &job.encode_to_vec())?;
        Ok(true)
    }

    /// Attempt `attempt`'s final job, if it has one.
    pub fn read_result(&self, attempt: u32) -> io::Result<Option<pb::Job>> {
        let path = self.result(attempt);
        match std::fs::read(&path) {
            Ok(bytes) => pb::Job::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| invalid(&path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first successful final job of any attempt up to `last`, else the final
    /// job of `last` itself.
    pub fn best_result(&self, last: u32) -> io::Result<Option<pb::Job>> {
        for attempt in 1..=last {
            if let Some(job) = self.read_result(attempt)? {
                if job.state == pb::JobState::Succeeded as i32 {
                    return Ok(Some(job));
                }
            }
        }
        self.read_result(last)
    }

    /// Appends an event of kind `kind` to the log, numbered after the last one,
    /// under an exclusive lock; returns it. `unless` sees the events already there
    /// and may refuse the append (returns `None`), e.g. when a final state is
    /// already logged.
    pub fn append_event(
        &self,
        kind: pb::job_event::Kind,
        unix_ms: i64,
        unless: impl FnOnce(&[pb::JobEvent]) -> bool,
    ) -> io::Result<Option<pb::JobEvent>> {
        let path = self.events();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.lock()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (events, whole) = decode_events(&bytes);
        if unless(&events) {
            return Ok(None);
        }
        let trial_id = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let event = pb::JobEvent {
            trial_id,
            seq: events.last().map_or(1, |e| e.seq + 1),
            unix_ms,
            kind: Some(kind),
        };
        // Drop a torn record a killed writer left, then append.
        file.set_len(whole as u64)?;
        file.seek(SeekFrom::Start(whole as u64))?;
        file.write_all(&event.encode_length_delimited_to_vec())?;
        file.sync_data()?;
        Ok(Some(event))
    }

    /// The logged events with `seq >= from_seq` (none when there is no log yet).
    pub fn read_events(&self, from_seq: u64) -> io::Result<Vec<pb::JobEvent>> {
        let (events, _) = self.read_events_at(0)?;
        Ok(events.into_iter().filter(|e| e.seq >= from_seq).collect())
    }

    /// The whole events logged from byte `offset` on (a record boundary: 0, or
    /// an offset this returned), and the offset after the last of them, so a
    /// follower reads each record once.
    pub fn read_events_at(&self, offset: u64) -> io::Result<(Vec<pb::JobEvent>, u64)> {
        let mut file = match File::open(self.events()) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (events, whole) = decode_events(&bytes);
        Ok((events, offset + whole as u64))
    }
}

/// A submit request written as [`TrialDir::prepare`] writes it, read from `path`
/// (a task may be handed its request file by path).
pub fn read_request_at(path: &Path) -> io::Result<pb::SubmitRequest> {
    let bytes = std::fs::read(path)?;
    pb::SubmitRequest::decode(bytes.as_slice()).map_err(|e| invalid(path, e))
}

/// The whole events at the start of `bytes`, and how many bytes they take (a torn
/// or corrupt tail is left out).
fn decode_events(mut bytes: &[u8]) -> (Vec<pb::JobEvent>, usize) {
    let total = bytes.len();
    let mut events = Vec::new();
    while !bytes.is_empty() {
        let mut rest = bytes;
        match pb::JobEvent::decode_length_delimited(&mut rest) {
            Ok(e) => {
                events.push(e);
                bytes = rest;
            }
            Err(_) => break,
        }
    }
    (events, total - bytes.len())
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {e}", path.display()),
    )
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced
/// and renamed, so a reader sees the old file or the whole new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::job_event::Kind;

    fn dir() -> (tempfile::TempDir, TrialDir) {
        let tmp = tempfile::tempdir().unwrap();
        let d = TrialDir::new(tmp.path(), "t1");
        std::fs::create_dir_all(d.root()).unwrap();
        (tmp, d)
    }

    #[test]
    fn events_are_numbered_in_order_and_a_torn_tail_is_dropped() {
        let (_tmp, d) = dir();
        let never = |_: &[pb::JobEvent]| false;
        d.append_event(Kind::Warning("a".into()), 1, never).unwrap();
        d.append_event(Kind::Warning("b".into()), 2, never).unwrap();
        // A writer killed mid-record leaves part of one behind.
        let mut f = OpenOptions::new().append(true).open(d.events()).unwrap();
        f.write_all(&[0x40, 0x08, 0x01]).unwrap();
        assert_eq!(d.read_events(1).unwrap().len(), 2);
        let third = d
            .append_event(Kind::Warning("c".into()), 3, never)
            .unwrap()
            .unwrap();
        assert_eq!(third.seq, 3);
        assert_eq!(third.trial_id, "t1");
        let seqs: Vec<u64> = d.read_events(2).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [2, 3]);
        let (first, at) = d.read_events_at(0).unwrap();
        assert_eq!(first.len(), 3);
        assert!(d.read_events_at(at).unwrap().0.is_empty());
        let refused = d
            .append_event(Kind::Warning("d".into()), 4, |es| es.len() == 3)
            .unwrap();
        assert!(refused.is_none());
    }

    #[test]
    fn a_result_is_written_once_and_the_first_success_wins() {
        let (_tmp, d) = dir();
        let failed = pb::Job {
            attempt: 1,
            state: pb::JobState::Failed as i32,
            ..Default::default()
        };
        let ok = |message: &str| pb::Job {
            attempt: 2,
            state: pb::JobState::Succeeded as i32,
            message: message.into(),
            ..Default::default()
        };
        assert!(d.write_result(&failed).unwrap());
        assert!(d.write_result(&ok("first")).unwrap());
        assert!(!d.write_result(&ok("second")).unwrap());
        assert_eq!(d.best_result(3).unwrap().unwrap().message, "first");
        assert_eq!(d.best_result(1).unwrap().unwrap().attempt, 1);
        assert!(d.read_result(3).unwrap().is_none());
    }

    #[test]
    fn the_request_and_attempt_round_trip() {
        let (_tmp, d) = dir();
        assert_eq!(d.read_attempt().unwrap(), 0);
        let req = pb::SubmitRequest {
            trial_id: "t1".into(),
            sweep_id: "s".into(),
            ..Default::default()
        };
        d.prepare(&req, 2).unwrap();
        assert_eq!(d.read_request().unwrap(), req);
        assert_eq!(d.read_attempt().unwrap(), 2);
        assert!(d.logs().is_dir());
        assert_eq!(read_request_at(&d.request()).unwrap(), req);
    }

    #[test]
    fn a_request_that_is_not_one_is_invalid_data() {
        let (_tmp, d) = dir();
        std::fs::write(d.request(), [0xff, 0xff, 0xff]).unwrap();
        let err = read_request_at(&d.request()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("request.pb"), "{err}");
    }
}
