//! The web dashboard in a real headless Chromium: a live sweep's rows and an
//! epoch advancing without a reload, a trial's page and curve, the CSV download
//! against `vovctl report --format csv`, cancel buttons, the access rules
//! (loopback, token, one-time login link), and a store of 1,000 trials x 100
//! epochs staying responsive. Every test saves screenshots under
//! `target/ui-screenshots/`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use prost::Message;
use serde_json::Value;
use tempfile::TempDir;
use vov_proto::pb;
use vov_tests::browser::{http_get, is_png, Browser};
use vov_tests::cli::{finish, hosts_arg, read_until, run, spawn_sweep, sweep_file, vovctl};
use vov_tests::{Daemon, DaemonOptions};

const WAIT: Duration = Duration::from_secs(60);

/// Starts `vovctl ui --listen ADDR --store STORE EXTRA...` and returns it with
/// the address it printed.
fn spawn_ui(home: &Path, store: &Path, listen: &str, extra: &[&str]) -> (Reaped, String) {
    let mut child = vovctl(home)
        .args(["ui", "--listen", listen, "--store"])
        .arg(store)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("vovctl ui starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("vovctl ui prints its address");
    assert!(line.starts_with("http://"), "{line:?}");
    (Reaped(child), line.trim().to_string())
}

/// A child process killed when dropped, so that a failing test leaves none
/// behind (one holding the test's output open would keep the harness waiting).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills a process by id when dropped, unless disarmed (after it was reaped).
struct KillOnDrop(Option<u32>);

impl KillOnDrop {
    fn of(child: &Child) -> Self {
        KillOnDrop(Some(child.id()))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// The number of rows in the trial table (an expression).
const ROWS: &str = "document.querySelectorAll('table.trials tbody tr').length";

/// `[trial, epoch cell]` of the first running row that finished an epoch and
/// has more to run (not one measuring its inference after the last).
const RUNNING: &str =
    "const r = [...document.querySelectorAll('table.trials tbody tr[data-state=running]')]
    .find(r => { const [e, n] = r.querySelector('[data-col=epoch]').textContent.split('/').map(Number);
                 return e > 0 && e < n; });
  return r ? [r.dataset.trial, r.querySelector('[data-col=epoch]').textContent] : null";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_sweep_in_a_real_browser() {
    let tmp = TempDir::new().unwrap();
    let daemon = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let file = sweep_file(tmp.path(), "live", 6, 256, &[1e-3, 1e-2]);
    let store = tmp.path().join("r.db");
    let mut sweep = spawn_sweep(
        tmp.path(),
        &file,
        &store,
        &hosts_arg(&[&daemon]),
        &[
            "--ui",
            "127.0.0.1:0",
            "--set",
            "measure=[\"batch1\", \"batch32\"]",
        ],
    );
    let guard = KillOnDrop::of(&sweep);
    let ui = read_until(&mut sweep, |e| e["event"] == "ui");
    let url = ui["url"].as_str().unwrap().to_string();
    assert!(url.ends_with("/sweeps/live"), "{url}");
    let browser = Browser::start(1280, 900).await;
    browser.goto(&url).await;
    browser
        .wait_for("every trial row", &format!("return {ROWS} === 4"), WAIT)
        .await;
    browser.eval("window.__same_page = true; return 1").await;
    let first = browser.wait_for("a running trial", RUNNING, WAIT).await;
    let (trial, epoch) = (first[0].as_str().unwrap(), first[1].as_str().unwrap());
    let advanced = format!(
        "const r = document.querySelector('table.trials tr[data-trial=\"{trial}\"]');
         const e = r.querySelector('[data-col=epoch]').textContent;
         return parseInt(e) > parseInt('{epoch}') ? e : null"
    );
    let later = browser
        .wait_for("the epoch to advance", &advanced, WAIT)
        .await;
    eprintln!("trial {trial}: epoch {epoch} -> {later} without a reload");
    assert_eq!(
        browser.eval("return window.__same_page === true").await,
        Value::Bool(true),
        "the page was not reloaded"
    );
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('button.cancel, button[data-cancel], button.cancel-sweep').length")
            .await,
        serde_json::json!(0),
        "read-only by default: no cancel buttons"
    );
    browser.screenshot("sweep-live").await;

    // The trial's own page draws its curve from its epochs.
    browser
        .click_until(
            &format!("a[href=\"/trials/{trial}\"]"),
            "the trial's page",
            "return location.pathname.startsWith('/trials/')",
        )
        .await;
    browser
        .wait_for(
            "the trial's curve",
            "return document.querySelectorAll('#curve polyline').length >= 2 && \
             document.querySelector('#curve polyline').getAttribute('points').length > 0",
            WAIT,
        )
        .await;
    let spec = browser
        .eval("return document.querySelector('pre.spec').textContent")
        .await;
    assert!(spec.as_str().unwrap().contains("vovnet-27-slim"), "{spec}");
    let events = browser
        .eval("return document.querySelector('.events').innerText")
        .await;
    assert!(events.as_str().unwrap().contains("running"), "{events}");
    browser.screenshot("trial").await;

    let (_, code) = finish(sweep);
    guard.disarm();
    assert_eq!(code, Some(0));
    // The page got the last state and word that the sweep's vovctl ended.
    browser
        .wait_for(
            "the last update",
            "return document.getElementById('live').textContent === 'ended' && \
             !!document.querySelector('.head .badge.s-succeeded')",
            WAIT,
        )
        .await;

    // Later, `vovctl ui` serves the same store; its CSV is the report's.
    let (ui, base) = spawn_ui(tmp.path(), &store, "127.0.0.1:0", &[]);
    browser.goto(&format!("{base}sweeps/live")).await;
    browser
        .wait_for(
            "the finished sweep",
            "return document.querySelectorAll('table.trials tr[data-state=succeeded]').length === 4 \
             && document.querySelectorAll('.curves polyline').length === 4 \
             && document.querySelectorAll('table.published tbody tr').length === 4 \
             && document.querySelectorAll('.scatter circle').length === 4",
            WAIT,
        )
        .await;
    // The whole page, for the README.
    browser.client.set_window_size(1280, 1500).await.unwrap();
    browser.screenshot("sweep").await;
    browser.click("a[href$=\"/download/report.csv\"]").await;
    let csv = browser.downloaded("live-report.csv", WAIT).await;
    let report = run(vovctl(tmp.path())
        .args(["report", "live", "--format", "csv", "--store"])
        .arg(&store));
    assert_eq!(csv, String::from_utf8(report.stdout).unwrap());
    browser.close().await;
    drop(ui);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_buttons_cancel_like_vovctl_cancel() {
    let tmp = TempDir::new().unwrap();
    let daemon = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let file = sweep_file(tmp.path(), "stop", 200, 256, &[1e-3]);
    let store = tmp.path().join("r.db");
    let mut sweep = spawn_sweep(
        tmp.path(),
        &file,
        &store,
        &hosts_arg(&[&daemon]),
        &["--ui", "127.0.0.1:0", "--allow-cancel"],
    );
    let guard = KillOnDrop::of(&sweep);
    let ui = read_until(&mut sweep, |e| e["event"] == "ui");
    let browser = Browser::start(1280, 900).await;
    browser.goto(ui["url"].as_str().unwrap()).await;
    let running = browser
        .wait_for(
            "a running trial",
            "const r = document.querySelector('table.trials tr[data-state=running]'); \
             return r && r.querySelector('button[data-cancel]') ? r.dataset.trial : null",
            WAIT,
        )
        .await;
    let trial = running.as_str().unwrap();
    // A cancel without the page's header (a form on another site) is refused.
    let addr = host_port(ui["url"].as_str().unwrap());
    let (status, _) =
        vov_tests::browser::http_request("POST", &addr, &format!("/api/cancel/{trial}"), &[]);
    assert_eq!(status, 403);
    browser
        .click_and_confirm(&format!("button[data-cancel=\"{trial}\"]"))
        .await;
    browser
        .wait_for(
            "the trial cancelled",
            &format!("return document.querySelector('table.trials tr[data-trial=\"{trial}\"]').dataset.state === 'cancelled'"),
            WAIT,
        )
        .await;
    browser.screenshot("sweep-cancelled-trial").await;
    // The rest of the sweep, from its button.
    browser.click_and_confirm("button.cancel-sweep").await;
    let (_, code) = finish(sweep);
    guard.disarm();
    assert_eq!(code, Some(1), "a cancelled sweep exits 1");
    let rows = vov_tests::cli::store_rows(tmp.path(), &store, "stop");
    assert!(rows.iter().all(|r| r["state"] == "cancelled"), "{rows:?}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_loopback_only_unless_a_token_guards_it() {
    let tmp = TempDir::new().unwrap();
    let home = tmp.path();
    let store = tmp.path().join("r.db");
    let file = sweep_file(tmp.path(), "dry", 1, 32, &[1e-3]);
    // A store with one sweep in it: registered, nothing run.
    vovctl::store::ResultsStore::open(&store)
        .unwrap()
        .register(
            "dry",
            &file.display().to_string(),
            &vovctl::sweep::load(&file, &[] as &[String]).unwrap().trials,
        )
        .unwrap();

    for args in [
        vec!["ui", "--listen", "0.0.0.0:0"],
        vec!["sweep", file.to_str().unwrap(), "--ui", "0.0.0.0:0"],
    ] {
        let out = run(vovctl(home).args(&args).arg("--store").arg(&store));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--ui-token-file"), "{err}");
    }

    // Loopback: no login, but only for requests addressed to loopback.
    let (open, base) = spawn_ui(home, &store, "127.0.0.1:0", &[]);
    let addr = host_port(&base);
    assert_eq!(http_get(&addr, "/api/sweeps", &[]).0, 200);
    let (status, _) = http_get(&addr, "/api/sweeps", &[("Host", "attacker.example:80")]);
    assert_eq!(status, 403, "a rebound name is refused");
    let (status, _) = http_get(&addr, "/api/cancel/dry", &[]);
    assert_eq!(status, 404, "read-only: no cancel without --allow-cancel");
    drop(open);

    // A token: bearer or the one-time link, on any address.
    let token = tmp.path().join("token");
    std::fs::write(&token, "s3cret-s3cret-s3cret-0123\n").unwrap();
    let (guarded, login) = spawn_ui(
        home,
        &store,
        "0.0.0.0:0",
        &["--ui-token-file", token.to_str().unwrap()],
    );
    assert!(login.contains("/login?once="), "{login}");
    let port = host_port(&login).rsplit(':').next().unwrap().to_string();
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(http_get(&addr, "/api/sweeps", &[]).0, 401);
    let bearer = [("Authorization", "Bearer s3cret-s3cret-s3cret-0123")];
    let (status, body) = http_get(&addr, "/api/sweeps", &bearer);
    assert_eq!(status, 200);
    assert!(body.contains("\"dry\""), "{body}");
    let link = format!(
        "http://{addr}/login?once={}",
        login.rsplit('=').next().unwrap()
    );
    let browser = Browser::start(1280, 800).await;
    browser.goto(&link).await;
    browser
        .wait_for(
            "the sweeps after logging in",
            "return location.pathname === '/' && !!document.querySelector('#sweeps tr[data-sweep=dry]')",
            WAIT,
        )
        .await;
    browser.screenshot("sweeps").await;
    browser.close().await;
    assert_eq!(
        http_get(&addr, &link[link.find("/login").unwrap()..], &[]).0,
        401,
        "the link is spent"
    );
    drop(guarded);
}

/// A result of `epochs` epochs whose accuracy rises with `skill`.
fn result(epochs: u32, skill: f64, fingerprint: &pb::Fingerprint) -> pb::TrialResult {
    let history: Vec<pb::EpochMetrics> = (1..=epochs)
        .map(|e| {
            let acc = skill * (1.0 - (-(f64::from(e)) / 20.0).exp());
            pb::EpochMetrics {
                epoch: e,
                train_acc: (acc + 0.05).min(1.0),
                val_acc: acc,
                train_loss: 2.3 * (1.0 - acc),
                val_loss: 2.4 * (1.0 - acc),
                epoch_s: 1.5,
                ..Default::default()
            }
        })
        .collect();
    let max = history.iter().map(|m| m.val_acc).fold(0.0, f64::max);
    pb::TrialResult {
        model: "vovnet-27-slim".into(),
        params: 3_000_000,
        max_val_acc: max,
        max_val_acc_epoch: epochs,
        final_val_acc: max,
        train_s_per_epoch: Some(1.5),
        batch1: Some(pb::Batch1Timing {
            total_s: 20.0 * skill,
            p50_ms: 2.0 * skill,
            p99_ms: 3.0 * skill,
            ..Default::default()
        }),
        fingerprint: Some(fingerprint.clone()),
        history,
        ..Default::default()
    }
}

/// A store holding a sweep of `lrs x wds` trials of 100 epochs: most finished,
/// some running (their epochs in the epochs table), some failed, some pending.
fn big_store(dir: &Path, name: &str, lrs: usize, wds: usize) -> std::path::PathBuf {
    let lr: Vec<String> = (0..lrs).map(|i| format!("{}e-4", i + 1)).collect();
    let wd: Vec<String> = (0..wds).map(|i| format!("{i}e-5")).collect();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\n[base]\nmodel = \"vovnet-27-slim\"\ndataset = \"synthetic\"\nepochs = 100\n\
             [grid]\nlr = [{}]\nweight_decay = [{}]\n",
            lr.join(", "),
            wd.join(", ")
        ),
    )
    .unwrap();
    let store = dir.join("big.db");
    let trials = vovctl::sweep::load(&file, &[] as &[String]).unwrap().trials;
    vovctl::store::ResultsStore::open(&store)
        .unwrap()
        .register(name, &file.display().to_string(), &trials)
        .unwrap();
    let fp = pb::Fingerprint {
        id: "fp1".into(),
        cpu_model: "Test CPU".into(),
        threads: 8,
        device: "cpu".into(),
        device_name: "Test CPU".into(),
        vovd_version: "0.1.0".into(),
        ..Default::default()
    };
    let mut db = rusqlite::Connection::open(&store).unwrap();
    let tx = db.transaction().unwrap();
    for (i, t) in trials.iter().enumerate() {
        let skill = 0.5 + 0.45 * ((i * 7919) % 1000) as f64 / 1000.0;
        match i % 20 {
            0 => {
                tx.execute(
                    "UPDATE trials SET state = 'failed', failure = 'oom', message = 'out of memory', host = 'http://gpu1:7070', attempt = 2 WHERE trial_id = ?1",
                    [&t.id],
                )
                .unwrap();
            }
            1 => {}
            2 | 3 => {
                for e in result(40, skill, &fp).history {
                    tx.execute(
                        "INSERT INTO epochs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                        rusqlite::params![
                            t.id,
                            e.epoch,
                            e.train_loss,
                            e.train_acc,
                            e.val_loss,
                            e.val_acc,
                            e.epoch_s
                        ],
                    )
                    .unwrap();
                }
                tx.execute(
                    "UPDATE trials SET state = 'running', host = 'http://gpu2:7070', attempt = 1, epoch = 40 WHERE trial_id = ?1",
                    [&t.id],
                )
                .unwrap();
            }
            _ => {
                let r = result(100, skill, &fp);
                tx.execute(
                    "UPDATE trials SET state = 'succeeded', result = ?2, fingerprint = 'fp1', host = 'http://gpu1:7070', attempt = 1, epoch = 100 WHERE trial_id = ?1",
                    rusqlite::params![t.id, r.encode_to_vec()],
                )
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_trials_of_a_hundred_epochs_stay_responsive() {
    let tmp = TempDir::new().unwrap();
    let store = big_store(tmp.path(), "big", 100, 10);
    let (ui, base) = spawn_ui(tmp.path(), &store, "127.0.0.1:0", &[]);
    let browser = Browser::start(1280, 900).await;
    browser.goto(&format!("{base}sweeps/big")).await;
    browser
        .wait_for(
            "1,000 rows and the curves of the 900 trials with epochs",
            &format!("return {ROWS} === 1000 && document.querySelectorAll('.curves polyline').length === 900"),
            Duration::from_secs(120),
        )
        .await;
    let paint = browser
        .eval(
            "const p = performance.getEntriesByName('first-contentful-paint')[0]; \
             return [p ? p.startTime : null, window.vov.timings.table_ms, window.vov.timings.curves_ms]",
        )
        .await;
    browser.screenshot("big-sweep").await;
    browser.click("th[data-key=val_acc]").await;
    browser.click("th[data-key=val_acc]").await;
    let sort = browser
        .wait_for(
            "the sort",
            "return window.vov.timings.sort_paint_ms != null && [window.vov.timings.sort_ms, window.vov.timings.sort_paint_ms]",
            WAIT,
        )
        .await;
    let top = browser
        .eval(
            "return [...document.querySelectorAll('table.trials tbody tr')].slice(0, 3) \
             .map(r => parseFloat(r.querySelector('[data-col=val_acc]').textContent))",
        )
        .await;
    let top: Vec<f64> = serde_json::from_value(top).unwrap();
    assert!(
        top[0] >= top[1] && top[1] >= top[2],
        "sorted descending: {top:?}"
    );
    let figures = serde_json::json!({
        "first_contentful_paint_ms": paint[0],
        "trial_table_ms": paint[1],
        "curves_ms": paint[2],
        "sort_ms": sort[0],
        "sort_to_next_frame_ms": sort[1],
    });
    eprintln!("1,000 trials x 100 epochs: {figures}");
    std::fs::write(
        vov_tests::browser::screenshot_dir().join("big-sweep.json"),
        figures.to_string(),
    )
    .unwrap();

    // On a phone the page does not scroll sideways: wide tables scroll in place.
    browser.client.set_window_size(390, 844).await.unwrap();
    let wide = browser
        .eval("return document.documentElement.scrollWidth - window.innerWidth")
        .await;
    assert!(
        wide.as_f64().unwrap() <= 1.0,
        "the page is {wide} px too wide"
    );
    let phone = browser.screenshot("big-sweep-phone").await;
    assert!(is_png(&phone));
    browser.close().await;
    drop(ui);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sweeps_side_by_side() {
    let tmp = TempDir::new().unwrap();
    let a = big_store(tmp.path(), "a", 5, 2);
    // A second sweep in the same store.
    let file = tmp.path().join("b.toml");
    std::fs::write(
        &file,
        "name = \"b\"\n[base]\nmodel = \"vovnet-39\"\ndataset = \"synthetic\"\nepochs = 3\n[grid]\nlr = [0.1, 0.01]\n",
    )
    .unwrap();
    vovctl::store::ResultsStore::open(&a)
        .unwrap()
        .register(
            "b",
            "b.toml",
            &vovctl::sweep::load(&file, &[] as &[String]).unwrap().trials,
        )
        .unwrap();
    let (ui, base) = spawn_ui(tmp.path(), &a, "127.0.0.1:0", &[]);
    let browser = Browser::start(1280, 900).await;
    browser.goto(&base).await;
    browser
        .wait_for(
            "both sweeps",
            "return document.querySelectorAll('#sweeps tr[data-sweep]').length === 2",
            WAIT,
        )
        .await;
    browser.click("input[data-sweep=a]").await;
    browser.click("input[data-sweep=b]").await;
    browser.click("#compare").await;
    let columns = browser
        .wait_for(
            "two columns",
            "const c = [...document.querySelectorAll('.compare .column')]; \
             return c.length === 2 && c[0].querySelectorAll('table.published tbody tr').length > 0 \
               && c[0].querySelectorAll('.curves polyline').length > 0 \
               && c.map(x => x.dataset.sweep)",
            WAIT,
        )
        .await;
    assert_eq!(columns, serde_json::json!(["a", "b"]));
    assert_eq!(
        browser.eval("return location.search").await,
        serde_json::json!("?sweeps=a,b")
    );
    browser.screenshot("compare").await;

    // More sweeps than a browser opens connections to one server: one stream
    // keeps every column live.
    let names = ["a", "b", "c", "d", "e", "f", "g"];
    {
        let mut store = vovctl::store::ResultsStore::open(&a).unwrap();
        let trials = vovctl::sweep::load(&file, &[] as &[String]).unwrap().trials;
        for n in &names[2..] {
            store.register(n, "b.toml", &trials).unwrap();
        }
    }
    browser
        .goto(&format!("{base}compare?sweeps={}", names.join(",")))
        .await;
    browser
        .wait_for(
            "seven live columns",
            "const c = [...document.querySelectorAll('.compare .column')]; \
             return c.length === 7 && c.every(x => x.querySelector('.summary p')) \
               && document.getElementById('live').textContent === 'live'",
            WAIT,
        )
        .await;
    let (status, _) = http_get(&host_port(&base), "/api/sweeps", &[]);
    assert_eq!(
        status, 200,
        "the server still answers with every column open"
    );
    browser.close().await;
    drop(ui);
}
