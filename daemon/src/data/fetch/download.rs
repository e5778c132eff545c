//! HTTP downloads that survive a cut connection: the bytes go to `NAME.part`,
//! an interrupted transfer continues from its length with a range request (in
//! the same run after a short pause, or in the next run), and only a complete
//! file is renamed to `NAME`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::ProgressBar;

use super::FetchError;

/// Consecutive failed attempts (no byte gained) before giving up.
pub const MAX_TRIES: u32 = 5;
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// What a download did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes of the complete file.
    pub bytes: u64,
    /// Bytes found from an earlier, interrupted run.
    pub resumed_from: u64,
    /// Range requests made after a cut within this run.
    pub retries: u32,
}

/// One attempt's end: done, or cut after some bytes (try again).
enum Attempt {
    Complete,
    Cut(String),
}

/// Downloads `url` to `dest` (through `dest.part`), resuming what is there.
pub fn download(url: &str, dest: &Path, bar: &ProgressBar) -> Result<Transfer, FetchError> {
    let part = part_path(dest);
    let resumed_from = std::fs::metadata(&part).map_or(0, |m| m.len());
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut transfer = Transfer {
        resumed_from,
        ..Transfer::default()
    };
    let mut failures = 0;
    let mut pause = FIRST_PAUSE;
    loop {
        let before = std::fs::metadata(&part).map_or(0, |m| m.len());
        let why = match attempt(&agent, url, &part, bar)? {
            Attempt::Complete => break,
            Attempt::Cut(why) => why,
        };
        let after = std::fs::metadata(&part).map_or(0, |m| m.len());
        failures = if after > before { 1 } else { failures + 1 };
        if failures >= MAX_TRIES {
            let what = if after == 0 {
                "nothing arrived; if this host has no internet, use --url (a site mirror) or \
                 --from (an archive copied in by hand)"
                    .to_string()
            } else {
                format!(
                    "{after} bytes kept in {}; run again to resume",
                    part.display()
                )
            };
            return Err(FetchError::Transfer {
                url: url.to_string(),
                reason: format!("{why} ({failures} tries without progress; {what})"),
            });
        }
        transfer.retries += 1;
        let next = if after == 0 {
            "retrying".to_string()
        } else {
            format!("resuming at {after} bytes")
        };
        bar.suspend(|| eprintln!("{url}: {why}; {next}"));
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_PAUSE);
    }
    transfer.bytes = std::fs::metadata(&part)
        .map_err(|e| FetchError::io(&part, e))?
        .len();
    std::fs::rename(&part, dest).map_err(|e| FetchError::io(dest, e))?;
    Ok(transfer)
}

/// `NAME.part` beside `dest`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// One request from the current length of `part`.
fn attempt(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    bar: &ProgressBar,
) -> Result<Attempt, FetchError> {
    let offset = std::fs::metadata(part).map_or(0, |m| m.len());
    let mut req = agent.get(url);
    if offset > 0 {
        req = req.set("Range", &format!("bytes={offset}-"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        // The part already holds the whole file, when the lengths agree.
        Err(ureq::Error::Status(416, r)) if offset > 0 => {
            if full_length(&r) == Some(offset) {
                return Ok(Attempt::Complete);
            }
            return start_again(part, "the kept part does not fit the server's file");
        }
        Err(ureq::Error::Status(code, r)) if code >= 500 || code == 429 => {
            return Ok(Attempt::Cut(format!("HTTP {code} {}", r.status_text())))
        }
        Err(ureq::Error::Status(code, r)) => {
            return Err(FetchError::Http {
                url: url.to_string(),
                status: code,
                reason: r.status_text().to_string(),
            })
        }
        Err(ureq::Error::Transport(t)) => {
            return Ok(Attempt::Cut(match t.message() {
                Some(m) => format!("{}: {m}", t.kind()),
                None => t.kind().to_string(),
            }))
        }
    };
    let (start, total) = match resp.status() {
        206 => content_range(&resp, url, offset)?,
        _ => (0, header_u64(&resp, "Content-Length")),
    };
    // A partial answer from 0 is the whole file; from elsewhere it cannot be joined.
    if start != 0 && start != offset {
        return start_again(part, &format!("asked from {offset}, answered from {start}"));
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(start > 0)
        .write(true)
        .truncate(start == 0)
        .open(part)
        .map_err(|e| FetchError::io(part, e))?;
    bar.set_length(total.unwrap_or(0));
    bar.set_position(start);
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut have = start;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Ok(Attempt::Cut(format!("transfer cut at {have} bytes: {e}"))),
        };
        file.write_all(&buf[..n])
            .map_err(|e| FetchError::io(part, e))?;
        have += n as u64;
        bar.set_position(have);
    }
    file.sync_all().map_err(|e| FetchError::io(part, e))?;
    match total {
        Some(t) if have < t => Ok(Attempt::Cut(format!("transfer cut at {have} of {t} bytes"))),
        Some(t) if have > t => {
            let _ = std::fs::remove_file(part);
            Err(FetchError::Transfer {
                url: url.to_string(),
                reason: format!("{have} bytes received, the server announced {t} (removed)"),
            })
        }
        _ => Ok(Attempt::Complete),
    }
}

fn header_u64(resp: &ureq::Response, name: &str) -> Option<u64> {
    resp.header(name).and_then(|v| v.trim().parse().ok())
}

/// Removes a part that cannot be resumed and asks for a fresh attempt.
fn start_again(part: &Path, why: &str) -> Result<Attempt, FetchError> {
    std::fs::remove_file(part).map_err(|e| FetchError::io(part, e))?;
    Ok(Attempt::Cut(format!("{why}; starting again")))
}

/// The `LEN` of a 416's `Content-Range: bytes */LEN`.
fn full_length(resp: &ureq::Response) -> Option<u64> {
    resp.header("Content-Range")?
        .trim()
        .strip_prefix("bytes */")?
        .parse()
        .ok()
}

/// `Content-Range: bytes START-END/TOTAL` of a 206: its start and total.
fn content_range(
    resp: &ureq::Response,
    url: &str,
    offset: u64,
) -> Result<(u64, Option<u64>), FetchError> {
    let bad = |why: &str| FetchError::Transfer {
        url: url.to_string(),
        reason: format!("partial answer to a range request from {offset}: {why}"),
    };
    let value = resp
        .header("Content-Range")
        .ok_or_else(|| bad("no Content-Range"))?;
    let spec = value
        .trim()
        .strip_prefix("bytes ")
        .ok_or_else(|| bad(value))?;
    let (range, total) = spec.split_once('/').ok_or_else(|| bad(value))?;
    let start: u64 = range
        .split_once('-')
        .and_then(|(s, _)| s.parse().ok())
        .ok_or_else(|| bad(value))?;
    Ok((start, total.parse().ok()))
}
