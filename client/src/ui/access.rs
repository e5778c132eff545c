//! Who may read the dashboard. Without a token file it listens on loopback only
//! and answers only requests addressed to a loopback name (a page elsewhere
//! cannot reach it through DNS rebinding). With one, every request carries the
//! token as a bearer or the cookie of a session opened by the one-time login
//! link printed at start.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{AppState, UiError};

/// The session cookie's name.
const COOKIE: &str = "vov_session";

/// The path of the one-time login link.
pub(crate) const LOGIN_PATH: &str = "/login";

/// The dashboard's access rule.
pub(crate) struct Access {
    /// The bearer token, when a token file was given.
    token: Option<String>,
    /// The one-time login key, until it is used.
    once: Mutex<Option<String>>,
    /// Sessions opened by the login link.
    sessions: Mutex<HashSet<String>>,
}

fn random_key() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Access {
    /// The rule for serving on `listen`: a token file is required unless it is a
    /// loopback address.
    pub(crate) fn new(listen: SocketAddr, token_file: Option<&Path>) -> Result<Self, UiError> {
        let token = match token_file {
            None if !listen.ip().is_loopback() => return Err(UiError::Exposed(listen)),
            None => None,
            Some(path) => Some(read_token(path)?),
        };
        Ok(Access {
            once: Mutex::new(token.as_ref().map(|_| random_key())),
            token,
            sessions: Mutex::new(HashSet::new()),
        })
    }

    /// The one-time login key, while unused.
    pub(crate) fn login_key(&self) -> Option<String> {
        self.once.lock().ok()?.clone()
    }

    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(given.as_bytes().ct_eq(token.as_bytes()))
    }

    fn session_ok(&self, headers: &HeaderMap) -> bool {
        let Some(id) = cookie(headers, COOKIE) else {
            return false;
        };
        self.sessions.lock().is_ok_and(|s| s.contains(id))
    }

    /// Uses the one-time key: a new session id when `key` is it.
    fn redeem(&self, key: &str) -> Option<String> {
        let mut once = self.once.lock().ok()?;
        let valid = once
            .as_ref()
            .is_some_and(|k| bool::from(k.as_bytes().ct_eq(key.as_bytes())));
        if !valid {
            return None;
        }
        *once = None;
        let id = random_key();
        self.sessions.lock().ok()?.insert(id.clone());
        Some(id)
    }
}

fn read_token(path: &Path) -> Result<String, UiError> {
    let bad = |message: String| UiError::Token {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let token = text.trim().to_string();
    if token.len() < 16 {
        return Err(bad(format!(
            "the token has {} characters; use at least 16 (e.g. `openssl rand -hex 32 > {}`)",
            token.len(),
            path.display()
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("the token has characters a header cannot carry".into()));
    }
    Ok(token)
}

/// A cookie's value from the request headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the Host header names this machine's loopback (any port).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn refuse(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_string(),
    )
        .into_response()
}

/// The middleware every request passes.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let access = &state.access;
    let headers = req.headers();
    if access.token.is_none() {
        if !loopback_host(headers) {
            return refuse(
                StatusCode::FORBIDDEN,
                "this dashboard answers only requests to localhost or 127.0.0.1 (it has no token)\n",
            );
        }
        return next.run(req).await;
    }
    if req.uri().path() == LOGIN_PATH || access.bearer_ok(headers) || access.session_ok(headers) {
        return next.run(req).await;
    }
    refuse(
        StatusCode::UNAUTHORIZED,
        "log in with the one-time link vovctl printed when it started, or send \
         `Authorization: Bearer <the token in --ui-token-file>`\n",
    )
}

/// The login link's query.
#[derive(Debug, Deserialize)]
pub(crate) struct Login {
    once: String,
}

/// `GET /login?once=KEY`: opens a session once, then the key is spent.
pub(crate) async fn login(State(state): State<AppState>, Query(q): Query<Login>) -> Response {
    match state.access.redeem(&q.once) {
        Some(id) => (
            [(
                header::SET_COOKIE,
                format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"),
            )],
            Redirect::to("/"),
        )
            .into_response(),
        None => refuse(
            StatusCode::UNAUTHORIZED,
            "this login link was used already or is wrong: start vovctl again for a new one, \
             or send `Authorization: Bearer <token>`\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_loopback_names_pass_without_a_token() {
        for ok in ["127.0.0.1:8040", "localhost:1", "[::1]:80", "LOCALHOST"] {
            assert!(loopback_host(&headers(&[(header::HOST, ok)])), "{ok}");
        }
        for bad in ["evil.example:8040", "10.0.0.1:8040", "127.0.0.1.evil:80"] {
            assert!(!loopback_host(&headers(&[(header::HOST, bad)])), "{bad}");
        }
        assert!(!loopback_host(&HeaderMap::new()));
    }

    #[test]
    fn a_public_address_needs_a_token_file() {
        let any: SocketAddr = "0.0.0.0:8040".parse().unwrap();
        assert!(matches!(Access::new(any, None), Err(UiError::Exposed(_))));
        assert!(Access::new("127.0.0.1:0".parse().unwrap(), None).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        let e = Access::new(any, Some(&short)).err().unwrap().to_string();
        assert!(e.contains("at least 16"), "{e}");
    }

    #[test]
    fn the_login_key_opens_one_session_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
        let a = Access::new("0.0.0.0:1".parse().unwrap(), Some(&file)).unwrap();
        let key = a.login_key().unwrap();
        assert!(a.redeem("wrong").is_none());
        let id = a.redeem(&key).unwrap();
        assert!(a.redeem(&key).is_none(), "the key is spent");
        assert!(a.login_key().is_none());
        let with_cookie = headers(&[(header::COOKIE, &format!("x=1; {COOKIE}={id}"))]);
        assert!(a.session_ok(&with_cookie));
        assert!(!a.session_ok(&headers(&[(header::COOKIE, "vov_session=nope")])));
        let bearer = headers(&[(header::AUTHORIZATION, "Bearer 0123456789abcdef0123")]);
        assert!(a.bearer_ok(&bearer));
        assert!(!a.bearer_ok(&headers(&[(header::AUTHORIZATION, "Bearer 0123")])));
    }
}
