//! A real headless Chromium driven through WebDriver (Debian's `chromium` and
//! `chromium-driver`; `scripts/test.sh` installs them): chromedriver on a free
//! loopback port, a fresh profile and download directory per browser, and
//! everything it started killed when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tempfile::TempDir;

/// Where screenshots go: `target/ui-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the target directory")
        .to_path_buf();
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

fn chromedriver() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromedriver"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "chromedriver is not installed: the dashboard's tests drive a real Chromium. \
             Run them with scripts/test.sh (it installs Debian's chromium and chromium-driver), \
             or `apt-get install chromium chromium-driver`"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A headless Chromium session.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Stopper,
    profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of
    /// `width` x `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile directory");
        let mut cmd = Command::new(chromedriver());
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = cmd.spawn().expect("chromedriver starts");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().join("chrome").display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver at {url}: {e}"),
            }
        };
        Browser {
            client,
            driver: Stopper(driver),
            profile,
        }
    }

    /// Where its downloads land.
    pub fn downloads(&self) -> PathBuf {
        self.profile.path().join("downloads")
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits at most `within` until `script` returns something other than
    /// null or false, and returns it.
    pub async fn try_wait(&self, script: &str, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.eval(script).await;
            if !(v.is_null() || v == Value::Bool(false)) {
                return Some(v);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// [`Browser::try_wait`], failing the test with what the page reads when
    /// `what` does not happen.
    pub async fn wait_for(&self, what: &str, script: &str, within: Duration) -> Value {
        match self.try_wait(script, within).await {
            Some(v) => v,
            None => {
                let text = self
                    .eval("return document.body.innerText.slice(0, 3000)")
                    .await;
                panic!("timed out waiting for {what}; the page reads:\n{text}");
            }
        }
    }

    /// Clicks `css` until `effect` (a script) holds: a live page may redraw the
    /// element between the press and the release of a click, which then does
    /// nothing.
    pub async fn click_until(&self, css: &str, what: &str, effect: &str) -> Value {
        for _ in 0..10 {
            self.click(css).await;
            if let Some(v) = self.try_wait(effect, Duration::from_secs(2)).await {
                return v;
            }
        }
        self.wait_for(what, effect, Duration::from_secs(1)).await
    }

    /// Clicks `css` until the page asks for a confirmation, and accepts it.
    pub async fn click_and_confirm(&self, css: &str) {
        for _ in 0..10 {
            self.click(css).await;
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if self.client.accept_alert().await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("clicking {css} never asked for a confirmation");
    }

    /// Clicks the first element matching `css`, finding it again when the page
    /// redrew it between the finding and the click (a live page does).
    pub async fn click(&self, css: &str) {
        let mut last = String::new();
        for _ in 0..20 {
            let found = self.client.find(Locator::Css(css)).await;
            match found {
                Ok(el) => match el.click().await {
                    Ok(()) => return,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cannot click {css}: {last}");
    }

    /// Saves a screenshot of the window as `name`.png under
    /// [`screenshot_dir`]; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Waits for a finished download named `name` and returns its text.
    pub async fn downloaded(&self, name: &str, within: Duration) -> String {
        let path = self.downloads().join(name);
        let deadline = Instant::now() + within;
        while !path.is_file() {
            assert!(
                Instant::now() < deadline,
                "{} was not downloaded; the directory has {:?}",
                name,
                std::fs::read_dir(self.downloads())
                    .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::fs::read_to_string(&path).expect("the download reads")
    }

    /// Ends the session and the browser.
    pub async fn close(self) {
        let Browser {
            client,
            driver,
            profile,
        } = self;
        let _ = client.close().await;
        drop(driver);
        drop(profile);
    }
}

/// Kills chromedriver's process group (the browser with it) when dropped.
struct Stopper(Child);

impl Drop for Stopper {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Whether `path` is a PNG file.
pub fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

/// A plain HTTP/1.1 GET of `path` from `addr` with extra `headers`: the
/// status code and the body. For checking answers a browser would not show.
pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    http_request("GET", addr, path, headers)
}

/// [`http_get`] with another method (an empty body).
pub fn http_request(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("the dashboard accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let has_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    if !has_host {
        req += &format!("Host: {addr}\r\n");
    }
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (status, body)
}
