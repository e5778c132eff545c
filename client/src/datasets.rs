//! Which data sets each host has: asked over `HostInfo` from the fleet, or read
//! from `vovd data list --json` for the local vovd that `vovctl sweep` would
//! start; and how a host's data set is written in a table cell or a fix line.
//!
//! The states are [`DatasetState`]'s names and the fix commands are the ones
//! the daemon reports: neither is written here.

use std::path::Path;
use std::process::Command;

use vov_proto::convert::dataset_report;
use vov_proto::pb;
use vov_spec::DatasetState;

use crate::backend::grpc::request;
use crate::hosts::{self, HostsConfig, HostsError};
use crate::local::{find_vovd, LocalError};

/// The row name of the local vovd's data sets.
pub const LOCAL: &str = "local";

/// One data set on one host, in the shape `vovd data list --json` prints.
pub use vov_spec::DatasetReport as HostDataset;

/// A host's data sets, or why it could not tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostData {
    /// The host's URL, or [`LOCAL`].
    pub host: String,
    /// Its data sets, or the error that kept it from answering.
    pub datasets: Result<Vec<HostDataset>, String>,
}

impl HostData {
    /// Whether the host answered and has `name` present.
    pub fn has(&self, name: &str) -> bool {
        self.datasets.as_ref().is_ok_and(|ds| {
            ds.iter()
                .any(|d| d.name == name && d.state == DatasetState::Present)
        })
    }

    /// The command that would give the host `name`, when it reported one.
    pub fn fix(&self, name: &str) -> Option<&str> {
        let ds = self.datasets.as_ref().ok()?;
        ds.iter()
            .find(|d| d.name == name && !d.fix.is_empty())
            .map(|d| d.fix.as_str())
    }
}

/// A table cell: `present 50000/10000` (`present` for an unbounded set),
/// `absent`, or `broken: <reason>`.
pub fn cell(d: &HostDataset) -> String {
    match d.state {
        DatasetState::Present if d.train_images == 0 && d.val_images == 0 => d.state.to_string(),
        DatasetState::Present => format!("{} {}/{}", d.state, d.train_images, d.val_images),
        DatasetState::Absent => d.state.to_string(),
        DatasetState::Broken => format!("{}: {}", d.state, d.detail),
    }
}

/// One line per data set a host lacks: `host URL: <fix>`.
pub fn fix_lines(hosts: &[HostData]) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|h| Some((h, h.datasets.as_ref().ok()?)))
        .flat_map(|(h, ds)| {
            ds.iter()
                .filter(|d| d.state != DatasetState::Present && !d.fix.is_empty())
                .map(move |d| format!("host {}: {}", h.host, d.fix))
        })
        .collect()
}

/// Every host of `cfg`, asked at once; in `cfg`'s order.
pub async fn ask_fleet(cfg: &HostsConfig) -> Result<Vec<HostData>, HostsError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, h) in hosts::connect(cfg)?.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut client = h.client.clone();
            let datasets = client
                .host_info(request(pb::HostInfoRequest {}))
                .await
                .map(|info| info.get_ref().datasets.iter().map(dataset_report).collect())
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()));
            (
                i,
                HostData {
                    host: h.url,
                    datasets,
                },
            )
        });
    }
    let mut answers: Vec<(usize, HostData)> = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    Ok(answers.into_iter().map(|(_, h)| h).collect())
}

/// The local data sets under `data_dir`, from `vovd data list --json` (the
/// `vovd` a local sweep would start; blocking).
pub fn ask_local(data_dir: &Path) -> HostData {
    HostData {
        host: LOCAL.into(),
        datasets: local_list(data_dir),
    }
}

fn local_list(data_dir: &Path) -> Result<Vec<HostDataset>, String> {
    let vovd = find_vovd().ok_or_else(|| LocalError::NotFound.to_string())?;
    let out = Command::new(&vovd)
        .args(["data", "list", "--json", "--data-dir"])
        .arg(data_dir)
        .output()
        .map_err(|e| format!("{}: {e}", vovd.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} data list: {}",
            vovd.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{} data list --json: {e}", vovd.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(name: &str, state: DatasetState, detail: &str, fix: &str) -> HostDataset {
        HostDataset {
            name: name.into(),
            state,
            train_images: if state == DatasetState::Present {
                50_000
            } else {
                0
            },
            val_images: if state == DatasetState::Present {
                10_000
            } else {
                0
            },
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    #[test]
    fn cells() {
        let present = ds("cifar10", DatasetState::Present, "/d/cifar10", "");
        assert_eq!(cell(&present), "present 50000/10000");
        let unbounded = HostDataset {
            train_images: 0,
            val_images: 0,
            ..present
        };
        assert_eq!(cell(&unbounded), "present");
        assert_eq!(
            cell(&ds("cifar10", DatasetState::Absent, "x", "f")),
            "absent"
        );
        assert_eq!(
            cell(&ds(
                "cifar10",
                DatasetState::Broken,
                "test_batch.bin: file is empty",
                "f"
            )),
            "broken: test_batch.bin: file is empty"
        );
    }

    #[test]
    fn fix_lines_and_lookups() {
        let a = HostData {
            host: "http://a:1".into(),
            datasets: Ok(vec![
                ds("cifar10", DatasetState::Present, "/d", ""),
                ds(
                    "fashion-mnist",
                    DatasetState::Broken,
                    "bad",
                    "vovd data fetch fashion-mnist --data-dir /d --force",
                ),
            ]),
        };
        let b = HostData {
            host: "http://b:1".into(),
            datasets: Err("Unavailable: refused".into()),
        };
        assert_eq!(
            fix_lines(&[a.clone(), b.clone()]),
            vec!["host http://a:1: vovd data fetch fashion-mnist --data-dir /d --force"]
        );
        assert!(a.has("cifar10") && !a.has("fashion-mnist") && !b.has("cifar10"));
        assert_eq!(a.fix("cifar10"), None);
        assert!(a.fix("fashion-mnist").unwrap().ends_with("--force"));
    }

    #[test]
    fn reads_vovd_data_list_json() {
        let text = r#"[{"name": "cifar10", "state": "absent", "train_images": 0,
            "val_images": 0, "detail": "not found under /d/cifar10",
            "fix": "vovd data fetch cifar10 --data-dir /d"}]"#;
        let rows: Vec<HostDataset> = serde_json::from_str(text).unwrap();
        assert_eq!(rows[0].state, DatasetState::Absent);
        assert_eq!(rows[0].fix, "vovd data fetch cifar10 --data-dir /d");
    }
}
