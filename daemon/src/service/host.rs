//! What `HostInfo` reports that does not change while the daemon runs: hardware,
//! devices, data sets and model presets (their parameter counts are computed once).

use std::path::Path;

use vov_proto::pb;

use crate::data::{availability, DatasetName};
use crate::jobs::convert;
use vov_spec::Preset;

use crate::model::preset_count;
use crate::runtime::fingerprint::Fingerprint;
use crate::runtime::gpu::Gpu;

/// The static part of a host's description.
#[derive(Debug, Clone)]
pub struct HostStatic {
    /// Host name.
    pub hostname: String,
    /// Fingerprint of one slot.
    pub fingerprint: pb::Fingerprint,
    /// Devices.
    pub devices: Vec<pb::Device>,
    /// Data sets.
    pub datasets: Vec<pb::DatasetInfo>,
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
pub fn gather(data_dir: &Path, threads_per_slot: usize, gpus: &[Gpu]) -> HostStatic {
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
    let datasets = DatasetName::ALL
        .iter()
        .map(|&name| {
            let a = availability::check(name, data_dir);
            pb::DatasetInfo {
                name: name.to_string(),
                available: a.available,
                train_images: a.train_images,
                val_images: a.val_images,
                detail: a.detail,
            }
        })
        .collect();
    HostStatic {
        hostname: hostname(),
        fingerprint: convert::fingerprint(&fp),
        devices,
        datasets,
        models: models(),
    }
}
