//! The data directory the `vovd data` commands work on: the flag; else, on a
//! host with a daemon configuration (a file, or `VOVD__DATA_DIR`), its
//! `data_dir`, so that a fetch lands where `vovd serve` reads; else `./data`,
//! where `vovd train` and a local `vovctl sweep` read.

use std::path::PathBuf;

use clap::Args;

use crate::cli::CliError;
use crate::config::{self, Sources};

/// Where the data sets live.
#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// Data root [default: the daemon configuration's data_dir when there is one, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Daemon configuration to read data_dir from [default: /etc/vovd/vovd.toml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl DataDirArgs {
    /// The data root (see the module docs).
    pub fn resolve(&self) -> Result<PathBuf, CliError> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        let sources = Sources::of_process(self.config.clone(), Vec::new());
        if sources.file.is_none() && !sources.env.contains_key(&config::env_var("data_dir")) {
            return Ok(PathBuf::from(vov_spec::LOCAL_DATA_DIR));
        }
        config::load(&sources)
            .map(|c| c.data_dir)
            .map_err(|e| CliError::Config(e.to_string()))
    }
}
