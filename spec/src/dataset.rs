//! A data set as a host reports it: the one shape `vovd data list --json` prints
//! and `vovctl data` reads (and `HostInfo`'s `DatasetInfo` converts to).

use serde::{Deserialize, Serialize};

use crate::DatasetState;

/// One data set on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetReport {
    /// Its name (`cifar10`, ...).
    pub name: String,
    /// Present, absent or broken.
    pub state: DatasetState,
    /// Training images (0 when unbounded or not present).
    pub train_images: u64,
    /// Validation images (0 when unbounded or not present).
    pub val_images: u64,
    /// Where it is read from, or why it is not usable.
    pub detail: String,
    /// The command that installs or repairs it on that host; empty when present.
    pub fix: String,
}
