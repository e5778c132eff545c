//! Log setup shared by every `vovd` subcommand: lines on stderr, filtered by
//! `RUST_LOG`, coloured only when stderr is a terminal and `NO_COLOR` is unset
//! (files and the journal get plain text).

use std::io::IsTerminal;

use crate::config::LogFormat;

/// Whether log lines may carry ANSI colour codes: stderr is a terminal and
/// `NO_COLOR` (<https://no-color.org>) is unset or empty.
pub(super) fn colour() -> bool {
    colour_for(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour_for(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the subscriber: `default_level` unless `RUST_LOG` says otherwise.
pub(super) fn init(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        use std::ffi::OsStr;
        assert!(colour_for(true, None));
        assert!(colour_for(true, Some(OsStr::new(""))));
        assert!(!colour_for(true, Some(OsStr::new("1"))));
        assert!(!colour_for(false, None));
    }
}
