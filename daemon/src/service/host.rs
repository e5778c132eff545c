//! What `HostInfo` reports: hardware, devices and model presets, which do not
//! change while the daemon runs (their parameter counts are computed once), and
//! the data sets, checked again on every call so that one fetched while the
//! daemon runs shows at once.

use std::path::Path;

use vov_proto::pb;

use crate::data::availability::{self, Availability};
use crate::jobs::convert;
use vov_spec::Preset;

use crate::model::preset_count;
use crate::runtime::fingerprint::Fingerprint;
use crate::runtime::gpu::Gpu;

/// The static part of a host's description (data sets are [`datasets`]).
#[derive(Debug, Clone)]
pub struct HostStatic {
    /// Host name.
    pub hostname: String,
    /// Fingerprint of one slot.
    pub fingerprint: pb::Fingerprint,
    /// Devices.
    pub devices: Vec<pb::Device>,
    /// Model presets.
    pub models: Vec<pb::ModelInfo>,
}

/// This machine's host name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn memory_bytes() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn models() -> Vec<pb::ModelInfo> {
    Preset::ALL
        .iter()
        .filter_map(|&preset| {
            let count = preset_count(preset).ok()?;
            Some(pb::ModelInfo {
                name: preset.to_string(),
                family: preset.family().to_string(),
                params: count.total as u64,
                trainable: count.trainable as u64,
            })
        })
        .collect()
}

/// Gathers the static description (blocking: it builds every preset once).
/// `gpus` are the GPUs offered as slots (none on a CPU host).
pub fn gather(threads_per_slot: usize, gpus: &[Gpu]) -> HostStatic {
    let label = gpus
        .first()
        .map_or_else(|| "cpu".to_string(), |g| format!("cuda:{}", g.index));
    let fp = Fingerprint::detect(&label, None, threads_per_slot);
    let mut devices: Vec<pb::Device> = gpus
        .iter()
        .map(|g| pb::Device {
            index: g.index as u32,
            kind: "cuda".into(),
            name: g.name.clone(),
            memory_bytes: g.memory_bytes,
        })
        .collect();
    if devices.is_empty() {
        devices.push(pb::Device {
            index: 0,
            kind: "cpu".into(),
            name: fp.cpu_model.clone(),
            memory_bytes: memory_bytes(),
        });
    }
    HostStatic {
        hostname: hostname(),
        fingerprint: convert::fingerprint(&fp),
        devices,
        models: models(),
    }
}

/// A data set as `HostInfo` reports it.
pub fn dataset_info(a: &Availability) -> pb::DatasetInfo {
    pb::DatasetInfo {
        name: a.name.to_string(),
        available: a.available(),
        train_images: a.train_images,
        val_images: a.val_images,
        detail: a.detail.clone(),
        state: pb::DatasetState::from(a.state) as i32,
        fix: a.fix.clone().unwrap_or_default(),
    }
}

/// Every data set under `data_dir` as it is now (blocking: it reads the files).
pub fn datasets(data_dir: &Path) -> Vec<pb::DatasetInfo> {
    availability::check_all(data_dir)
        .iter()
        .map(dataset_info)
        .collect()
}
