//! The daemon under hostile connections and input: a flood of idle connections
//! under a low open-files limit, connections past `max_connections`, an oversized
//! request, logs written to a file, a corrupt job store, and the connection keys.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use vov_proto::pb;
use vov_tests::{bin, submit, tiny_spec, Daemon, DaemonOptions};

/// Options with extra `VOVD__*` settings.
fn with_env(extra: &[(&str, &str)]) -> DaemonOptions {
    let mut opts = DaemonOptions::default();
    opts.env
        .extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    opts
}

/// A fresh connection's health check, within `within`.
async fn health(addr: SocketAddr, within: Duration) -> Result<ServingStatus, String> {
    let check = async {
        let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(within)
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map_err(|e| format!("check: {e}"))?;
        Ok(response.into_inner().status())
    };
    tokio::time::timeout(within, check)
        .await
        .map_err(|_| format!("no health answer within {within:?}"))?
}

/// Opens `n` TCP connections that never send a byte.
fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect()
}

/// Whether the daemon has closed `stream` (EOF or reset); false while it is open.
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Polls until at least `want` of `streams` are closed by the daemon, or `deadline`.
async fn wait_closed(streams: &mut [TcpStream], want: usize, deadline: Duration) -> usize {
    let end = Instant::now() + deadline;
    let mut closed = vec![false; streams.len()];
    loop {
        for (s, c) in streams.iter_mut().zip(closed.iter_mut()) {
            *c = *c || closed_by_peer(s);
        }
        let n = closed.iter().filter(|c| **c).count();
        if n >= want || Instant::now() > end {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU seconds (user + system) `pid` has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("daemon stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // After the command: state is field 3, utime and stime are fields 14 and 15.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let out = Command::new("getconf").arg("CLK_TCK").output();
    let hz = out
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks as f64 / hz
}

/// Lets this test process hold the connections it opens.
fn raise_own_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < 4096 && hard > soft {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(4096), hard);
    }
}

/// A `vovd serve` started under `prlimit --nofile=N:N`.
struct Limited {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Limited {
    fn start(dir: &Path, nofile: u32, env: &[(&str, &str)]) -> Limited {
        let log = dir.join("vovd.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg(bin("vovd"))
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .envs(env.iter().copied())
            .env("VOVD__THREADS_PER_SLOT", "1")
            .env("VOVD__LAME_DUCK_MS", "0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("prlimit starts");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("read stdout");
        let Some(addr) = line.trim().strip_prefix("vovd listening on ") else {
            let _ = child.wait();
            panic!(
                "vovd did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Limited {
            addr: addr.parse().expect("address"),
            child,
            log,
        }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prlimit_missing() -> bool {
    let missing = Command::new("prlimit").arg("--version").output().is_err();
    if missing {
        println!("skipped: prlimit (util-linux) is not installed");
    }
    missing
}

#[tokio::test]
async fn idle_flood_under_a_low_fd_limit_costs_little_and_is_closed() {
    if prlimit_missing() {
        return;
    }
    raise_own_nofile();
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Limited::start(tmp.path(), 256, &[("VOVD__IDLE_TIMEOUT_SECS", "2")]);
    let pid = daemon.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 256 ")),
        "{limits}"
    );

    let mut flood = idle_connections(daemon.addr, 300);
    let (cpu0, t0) = (cpu_secs(pid), Instant::now());
    let status = health(daemon.addr, Duration::from_secs(10)).await;
    assert_eq!(status, Ok(ServingStatus::Serving), "during the flood");
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(t0.elapsed())).await;
    let share = (cpu_secs(pid) - cpu0) / t0.elapsed().as_secs_f64();
    println!("daemon CPU during the flood: {share:.3} of a core");
    assert!(share < 0.5, "the daemon used {share:.2} of a core");

    let all = flood.len();
    let closed = wait_closed(&mut flood, all, Duration::from_secs(20)).await;
    assert_eq!(
        closed,
        all,
        "idle connections left open; log: {}",
        std::fs::read_to_string(&daemon.log).unwrap_or_default()
    );
    let status = health(daemon.addr, Duration::from_secs(10)).await;
    assert_eq!(status, Ok(ServingStatus::Serving), "after the flood");
}

#[tokio::test]
async fn past_max_connections_the_idlest_connection_makes_room() {
    raise_own_nofile();
    let tmp = tempfile::tempdir().unwrap();
    // The idle timeout is far away: only making room can let the check through.
    let daemon = Daemon::start_in(
        tmp.path(),
        with_env(&[
            ("VOVD__MAX_CONNECTIONS", "8"),
            ("VOVD__IDLE_TIMEOUT_SECS", "600"),
        ]),
    );
    let mut flood = idle_connections(daemon.addr, 20);
    let status = health(daemon.addr, Duration::from_secs(10)).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
    let closed = wait_closed(&mut flood, 13, Duration::from_secs(10)).await;
    assert!(closed >= 13, "only {closed} of 20 idle connections closed");
    assert!(closed < 20, "every idle connection closed: {closed}");
}

#[tokio::test]
async fn a_running_watch_outlives_the_idle_timeout_and_idle_clients_reconnect() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), with_env(&[("VOVD__IDLE_TIMEOUT_SECS", "1")]));
    let mut client = daemon.client().await;
    client
        .submit(submit("t-long", "", tiny_spec(1000, 256, 32)))
        .await
        .unwrap();
    let mut stream = client
        .watch(pb::WatchRequest {
            trial_id: "t-long".into(),
            from_seq: 1,
        })
        .await
        .unwrap()
        .into_inner();
    // Three idle timeouts pass while the stream is open: it must stay open.
    let until = Instant::now() + Duration::from_secs(3);
    let mut events = 0;
    while let Ok(next) = tokio::time::timeout_at(until.into(), stream.next()).await {
        let event = next.expect("the stream ended early").expect("event");
        assert!(event.seq > 0);
        events += 1;
    }
    assert!(events > 0, "no events in 3 s");
    drop(stream);
    // The client's connection is now idle past the timeout; its next call works.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let cancel = client
        .cancel(pb::CancelRequest {
            trial_id: "t-long".into(),
        })
        .await;
    assert!(cancel.is_ok(), "{cancel:?}");
}

#[tokio::test]
async fn an_oversized_request_is_resource_exhausted() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut client = daemon.client().await;
    let huge = "x".repeat(10 * 1024 * 1024);
    let err = client
        .submit(submit(&huge, "sweep", tiny_spec(1, 64, 32)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("65536"), "{err}");
    // Normal requests still work on a fresh connection.
    let status = health(daemon.addr, Duration::from_secs(10)).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
}

#[tokio::test]
async fn logs_written_to_a_file_carry_no_colour_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let status = health(daemon.addr, Duration::from_secs(10)).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
    // Let the dropped client close its connection before this thread blocks.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(daemon.terminate().success());
    let log = daemon.log_text();
    assert!(log.contains("serving") && log.contains("stopped"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour codes in the log file: {log:?}"
    );
}

/// Waits up to `deadline` for `child` to exit, killing it after.
fn wait_exit(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_corrupt_store_fails_the_start_naming_the_file_and_never_says_listening() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("jobs.sqlite");
    std::fs::write(&store, vec![0x5a; 8192]).unwrap();
    let mut child = Command::new(bin("vovd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(tmp.path())
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("vovd exits");
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{status}: {stderr}");
    assert!(!stdout.contains("vovd listening on"), "{stdout}");
    assert!(
        stderr.contains(&store.display().to_string()),
        "the error does not name {}: {stderr}",
        store.display()
    );
}

#[test]
fn connection_keys_are_shown_and_checked() {
    let out = Command::new(bin("vovd"))
        .arg("check-config")
        .env("VOVD__IDLE_TIMEOUT_SECS", "7")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "max_connections = 1024",
        "idle_timeout_secs = 7",
        "keepalive_secs = 60",
        "keepalive_timeout_secs = 20",
    ] {
        assert!(text.contains(line), "{line} missing in {text}");
    }
    let tmp = tempfile::tempdir().unwrap();
    for (key, bad) in [
        ("max_connections", "0"),
        ("max_connections", "\"many\""),
        ("idle_timeout_secs", "0"),
        ("keepalive_secs", "0"),
        ("keepalive_timeout_secs", "100000"),
    ] {
        let file = tmp.path().join("vovd.toml");
        std::fs::write(&file, format!("{key} = {bad}\n")).unwrap();
        let out = Command::new(bin("vovd"))
            .args(["check-config", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{key} = {bad}: {err}");
        assert!(err.contains(key), "{key} = {bad}: {err}");
    }
}
