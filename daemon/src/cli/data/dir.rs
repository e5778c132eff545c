//! The data directory the `vovd data` commands work on: the flag, else the
//! daemon configuration's `data_dir`, so that a fetch lands where `vovd serve`
//! reads.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;

use crate::cli::CliError;
use crate::config::{self, Sources};

/// Where the data sets live.
#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// Data root [default: the configuration's data_dir, /var/lib/vovd/data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Daemon configuration to read data_dir from [default: /etc/vovd/vovd.toml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl DataDirArgs {
    /// The data root: `--data-dir`, else the configuration's `data_dir`.
    pub fn resolve(&self) -> Result<PathBuf, CliError> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        let sources = Sources {
            file: Sources::default_file(self.config.clone()),
            env: std::env::vars().collect::<HashMap<_, _>>(),
            flags: Vec::new(),
        };
        config::load(&sources)
            .map(|c| c.data_dir)
            .map_err(|e| CliError::Config(e.to_string()))
    }
}
