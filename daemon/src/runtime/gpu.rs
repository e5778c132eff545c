//! GPUs: discovery (count, names, memory, driver and CUDA versions), device
//! labels (`cpu`, `cuda:N`) and opening the device a label names.
//!
//! Discovery asks `nvidia-smi`, which comes with the driver, so a daemon can
//! describe its GPUs even before touching CUDA. A worker process is started with
//! `CUDA_VISIBLE_DEVICES=N` and so can only ever see its own GPU; [`open`] maps
//! the label's physical index to the ordinal CUDA gives it under that variable.

use std::process::Command;

use candle_core::Device;
use thiserror::Error;

/// A GPU of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// Physical index, as `nvidia-smi` and `CUDA_VISIBLE_DEVICES` count.
    pub index: usize,
    /// Product name.
    pub name: String,
    /// Device memory in bytes.
    pub memory_bytes: u64,
    /// Driver version.
    pub driver: String,
}

/// A device a trial runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceLabel {
    /// The CPU.
    Cpu,
    /// GPU N (physical index).
    Cuda(usize),
}

/// A device could not be named or opened.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// The label is neither `cpu` nor `cuda:N`.
    #[error("device {0:?}: expected cpu or cuda:N")]
    BadLabel(String),
    /// The build has no CUDA support.
    #[error("{0} needs a vovd built with --features cuda (this build is CPU-only)")]
    NotCompiled(String),
    /// `CUDA_VISIBLE_DEVICES` hides the GPU.
    #[error("cuda:{index} is not visible to this process (CUDA_VISIBLE_DEVICES={visible})")]
    Hidden {
        /// The physical index.
        index: usize,
        /// The variable's value.
        visible: String,
    },
    /// CUDA refused.
    #[error("opening cuda:{index}: {message}")]
    Open {
        /// The physical index.
        index: usize,
        /// CUDA's error.
        message: String,
    },
}

impl std::str::FromStr for DeviceLabel {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "cpu" => Ok(DeviceLabel::Cpu),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceLabel::Cuda)
                .ok_or_else(|| DeviceError::BadLabel(s.to_string())),
        }
    }
}

impl std::fmt::Display for DeviceLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceLabel::Cpu => write!(f, "cpu"),
            DeviceLabel::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether this build can run on CUDA GPUs.
pub const fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// The CUDA ordinal of physical GPU `index` given `CUDA_VISIBLE_DEVICES`
/// (`None`: unset, every GPU visible in physical order).
pub fn ordinal(index: usize, visible: Option<&str>) -> Result<usize, DeviceError> {
    let Some(visible) = visible else {
        return Ok(index);
    };
    visible
        .split(',')
        .position(|v| v.trim().parse::<usize>().ok() == Some(index))
        .ok_or_else(|| DeviceError::Hidden {
            index,
            visible: visible.to_string(),
        })
}

/// Opens the device a label names.
pub fn open(label: DeviceLabel) -> Result<Device, DeviceError> {
    let DeviceLabel::Cuda(index) = label else {
        return Ok(Device::Cpu);
    };
    if !cuda_compiled() {
        return Err(DeviceError::NotCompiled(label.to_string()));
    }
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let ordinal = ordinal(index, visible.as_deref())?;
    open_cuda(label, index, ordinal)
}

/// Opens the device a label names, counting GPUs as this process sees them:
/// `cuda:N` is CUDA's ordinal N, the Nth GPU of `CUDA_VISIBLE_DEVICES` (what a
/// batch-system task wants, whose GPUs the scheduler picked).
pub fn open_visible(label: DeviceLabel) -> Result<Device, DeviceError> {
    match label {
        DeviceLabel::Cpu => Ok(Device::Cpu),
        DeviceLabel::Cuda(n) => open_cuda(label, n, n),
    }
}

fn open_cuda(label: DeviceLabel, index: usize, ordinal: usize) -> Result<Device, DeviceError> {
    if !cuda_compiled() {
        return Err(DeviceError::NotCompiled(label.to_string()));
    }
    Device::new_cuda(ordinal).map_err(|e| DeviceError::Open {
        index,
        message: e.to_string(),
    })
}

/// The GPUs `nvidia-smi` reports (none when it is absent or fails).
pub fn discover() -> Vec<Gpu> {
    Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total,driver_version",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| parse_query(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

/// Parses `nvidia-smi --query-gpu=index,name,memory.total,driver_version` CSV.
pub fn parse_query(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let [index, name, mib, driver] = f.as_slice() else {
                return None;
            };
            Some(Gpu {
                index: index.parse().ok()?,
                name: name.to_string(),
                memory_bytes: mib.parse::<u64>().ok()? * 1024 * 1024,
                driver: driver.to_string(),
            })
        })
        .collect()
}

/// The CUDA version the driver supports, from `nvidia-smi`'s banner.
pub fn driver_cuda_version() -> Option<String> {
    let out = Command::new("nvidia-smi").output().ok()?;
    parse_cuda_version(&String::from_utf8_lossy(&out.stdout))
}

/// Finds `CUDA Version: X.Y` in `nvidia-smi`'s banner.
pub fn parse_cuda_version(banner: &str) -> Option<String> {
    let rest = banner.split("CUDA Version:").nth(1)?;
    rest.split_whitespace()
        .next()
        .map(|v| v.trim_end_matches('|').to_string())
}

/// The device of each slot: one per GPU on a GPU host (those in `devices`, or
/// every GPU found when `devices` is empty and the build has CUDA), else `slots`
/// CPU slots.
pub fn plan_slots(
    slots: usize,
    devices: &[usize],
    found: &[Gpu],
    compiled: bool,
) -> Result<Vec<DeviceLabel>, DeviceError> {
    if devices.is_empty() {
        if compiled && !found.is_empty() {
            return Ok(found.iter().map(|g| DeviceLabel::Cuda(g.index)).collect());
        }
        return Ok(vec![DeviceLabel::Cpu; slots]);
    }
    let labels: Vec<DeviceLabel> = devices.iter().map(|&i| DeviceLabel::Cuda(i)).collect();
    if !compiled {
        return Err(DeviceError::NotCompiled(format!("devices = {devices:?}")));
    }
    if let Some(missing) = devices
        .iter()
        .find(|&&i| !found.is_empty() && !found.iter().any(|g| g.index == i))
    {
        return Err(DeviceError::Open {
            index: *missing,
            message: format!("no such GPU (found {})", found.len()),
        });
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_reject_junk() {
        for s in ["cpu", "cuda:0", "cuda:7"] {
            assert_eq!(s.parse::<DeviceLabel>().unwrap().to_string(), s);
        }
        for s in ["gpu", "cuda:", "cuda:x", "cuda0", ""] {
            assert!(s.parse::<DeviceLabel>().is_err(), "{s}");
        }
    }

    #[test]
    fn ordinals_follow_cuda_visible_devices() {
        assert_eq!(ordinal(3, None).unwrap(), 3);
        assert_eq!(ordinal(3, Some("3")).unwrap(), 0);
        assert_eq!(ordinal(2, Some("0, 2")).unwrap(), 1);
        let err = ordinal(1, Some("0")).unwrap_err().to_string();
        assert!(err.contains("CUDA_VISIBLE_DEVICES=0"), "{err}");
    }

    #[test]
    fn cpu_opens_and_cuda_needs_the_feature() {
        assert!(open(DeviceLabel::Cpu).unwrap().is_cpu());
        if !cuda_compiled() {
            let err = open(DeviceLabel::Cuda(0)).unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }

    #[test]
    fn slots_follow_devices_and_discovery() {
        let found = parse_query("0, A, 1, 1\n1, B, 1, 1\n");
        assert_eq!(
            plan_slots(3, &[], &[], true).unwrap(),
            vec![DeviceLabel::Cpu; 3]
        );
        assert_eq!(plan_slots(2, &[], &found, false).unwrap().len(), 2);
        assert_eq!(
            plan_slots(1, &[], &found, true).unwrap(),
            vec![DeviceLabel::Cuda(0), DeviceLabel::Cuda(1)]
        );
        assert_eq!(
            plan_slots(1, &[1], &found, true).unwrap(),
            vec![DeviceLabel::Cuda(1)]
        );
        assert!(plan_slots(1, &[4], &found, true).is_err());
        let err = plan_slots(1, &[0], &found, false).unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    #[test]
    fn nvidia_smi_output_parses() {
        let gpus = parse_query(
            "0, NVIDIA H100 80GB HBM3, 81559, 580.65.06\n1, NVIDIA H100 80GB HBM3, 81559, 580.65.06\n",
        );
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[1].index, 1);
        assert_eq!(gpus[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(gpus[0].memory_bytes, 81559 * 1024 * 1024);
        assert_eq!(gpus[0].driver, "580.65.06");
        assert!(parse_query("garbage\n").is_empty());
        let banner =
            "| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0     |";
        assert_eq!(parse_cuda_version(banner).as_deref(), Some("13.0"));
        assert_eq!(parse_cuda_version("no gpu"), None);
    }
}
