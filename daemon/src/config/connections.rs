//! The connection keys: how many client connections the daemon holds, how long an
//! idle one may stay, and how dead peers are found.

use std::time::Duration;

use serde::Serialize;

use super::ConfigError;

/// Limits on client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConnectionLimits {
    /// Most client connections open at once (`max_connections`); further ones
    /// wait in the kernel's accept queue until one closes.
    pub max: usize,
    /// A connection with no call in progress for this long is closed, including
    /// one that never completes a handshake (`idle_timeout_secs`).
    #[serde(serialize_with = "super::secs")]
    pub idle_timeout: Duration,
    /// How often the daemon pings a connection's peer over HTTP/2 (`keepalive_secs`).
    #[serde(serialize_with = "super::secs")]
    pub keepalive: Duration,
    /// How long a ping may go unanswered before the connection is closed
    /// (`keepalive_timeout_secs`).
    #[serde(serialize_with = "super::secs")]
    pub keepalive_timeout: Duration,
}

/// The raw values of the connection keys.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawConnections {
    pub(super) max_connections: u32,
    pub(super) idle_timeout_secs: u64,
    pub(super) keepalive_secs: u64,
    pub(super) keepalive_timeout_secs: u64,
}

/// Longest idle, keepalive or keepalive timeout accepted: one day.
const MAX_SECS: u64 = 86_400;

fn secs_in_range(key: &'static str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 || value > MAX_SECS {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("must be between 1 and {MAX_SECS} seconds"),
        ));
    }
    Ok(Duration::from_secs(value))
}

impl ConnectionLimits {
    pub(super) fn validate(raw: RawConnections) -> Result<Self, ConfigError> {
        if raw.max_connections == 0 || raw.max_connections > 1_000_000 {
            return Err(ConfigError::invalid(
                "max_connections",
                raw.max_connections,
                "must be between 1 and 1000000",
            ));
        }
        Ok(ConnectionLimits {
            max: raw.max_connections as usize,
            idle_timeout: secs_in_range("idle_timeout_secs", raw.idle_timeout_secs)?,
            keepalive: secs_in_range("keepalive_secs", raw.keepalive_secs)?,
            keepalive_timeout: secs_in_range("keepalive_timeout_secs", raw.keepalive_timeout_secs)?,
        })
    }

    /// The keys as TOML lines, for `vovd check-config`.
    pub(super) fn to_toml(self) -> String {
        format!(
            "max_connections = {}\nidle_timeout_secs = {}\nkeepalive_secs = {}\nkeepalive_timeout_secs = {}\n",
            self.max,
            self.idle_timeout.as_secs(),
            self.keepalive.as_secs(),
            self.keepalive_timeout.as_secs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawConnections {
        RawConnections {
            max_connections: 10,
            idle_timeout_secs: 5,
            keepalive_secs: 6,
            keepalive_timeout_secs: 7,
        }
    }

    #[test]
    fn valid_values_pass_through() {
        let c = ConnectionLimits::validate(raw()).unwrap();
        assert_eq!(c.max, 10);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.keepalive, Duration::from_secs(6));
        assert_eq!(c.keepalive_timeout, Duration::from_secs(7));
        assert!(c.to_toml().contains("keepalive_timeout_secs = 7\n"));
    }

    #[test]
    fn zero_is_refused_naming_the_key() {
        type Spoil = fn(&mut RawConnections);
        let cases: [(&str, Spoil); 4] = [
            ("max_connections = 0", |r| r.max_connections = 0),
            ("idle_timeout_secs = 0", |r| r.idle_timeout_secs = 0),
            ("keepalive_secs = 0", |r| r.keepalive_secs = 0),
            ("keepalive_timeout_secs = 0", |r| {
                r.keepalive_timeout_secs = 0
            }),
        ];
        for (needle, spoil) in cases {
            let mut r = raw();
            spoil(&mut r);
            let err = ConnectionLimits::validate(r).unwrap_err().to_string();
            assert!(err.starts_with(needle), "{err}");
        }
    }
}
