//! Hardware fingerprint stored with every timing, so that reports never compare
//! figures from different machines without saying so.

use serde::{Deserialize, Serialize};

/// What a timing depends on: the processor, the accelerator, the threads used and
/// the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Short stable hash of every field below; equal ids mean comparable timings.
    pub id: String,
    /// CPU model name as the kernel reports it.
    pub cpu_model: String,
    /// Physical CPU cores of the host.
    pub cpu_cores: usize,
    /// Logical CPUs this process may run on.
    pub cpu_threads: usize,
    /// Threads the compute kernels used.
    pub threads: usize,
    /// Device the trial ran on (`cpu` or `cuda:N`).
    pub device: String,
    /// Human-readable device name (the CPU model on a CPU host, the GPU name on a GPU).
    pub device_name: String,
    /// Compile-time features that change kernel speed (`avx2`, `fma`, `cuda`, ...).
    pub build_features: Vec<String>,
    /// Operating system and architecture.
    pub platform: String,
    /// Version of the vovd build that measured.
    pub vovd_version: String,
    /// GPU driver version (empty on a CPU).
    #[serde(default)]
    pub gpu_driver: String,
    /// CUDA version the GPU driver supports (empty on a CPU).
    #[serde(default)]
    pub cuda_version: String,
}

impl Fingerprint {
    /// Fingerprint of this host for a trial on `device` (named `device_name`) using
    /// `threads` compute threads.
    pub fn detect(device: &str, device_name: Option<&str>, threads: usize) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpu_model(&cpuinfo).unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let mut fp = Fingerprint {
            id: String::new(),
            cpu_cores: physical_cores(&cpuinfo).unwrap_or_else(super::threads::available),
            cpu_threads: super::threads::available(),
            threads,
            device: device.to_string(),
            device_name: device_name.map_or_else(|| cpu_model.clone(), str::to_string),
            cpu_model,
            build_features: build_features(),
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            vovd_version: env!("CARGO_PKG_VERSION").to_string(),
            gpu_driver: String::new(),
            cuda_version: String::new(),
        };
        if let Ok(super::gpu::DeviceLabel::Cuda(index)) = device.parse() {
            let gpu = super::gpu::discover()
                .into_iter()
                .find(|g| g.index == index);
            if let Some(gpu) = gpu {
                if device_name.is_none() {
                    fp.device_name = gpu.name;
                }
                fp.gpu_driver = gpu.driver;
            }
            fp.cuda_version = super::gpu::driver_cuda_version().unwrap_or_default();
        }
        fp.id = fp.compute_id();
        fp
    }

    /// The hash behind [`Fingerprint::id`]: what changes a timing. That is the CPU
    /// model, the threads used, the kind and model of the device but not its index
    /// (identical GPUs at `cuda:0` and `cuda:1` measure alike), the build features,
    /// the platform, the GPU driver and CUDA version, and the vovd version (timings
    /// of different builds are never averaged together).
    pub fn compute_id(&self) -> String {
        let kind = self
            .device
            .split_once(':')
            .map_or(self.device.as_str(), |(kind, _)| kind);
        let mut key = format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.cpu_model,
            self.threads,
            kind,
            self.device_name,
            self.build_features.join(","),
            self.platform,
            self.vovd_version
        );
        if !self.gpu_driver.is_empty() || !self.cuda_version.is_empty() {
            key += &format!("|{}|{}", self.gpu_driver, self.cuda_version);
        }
        format!("{:016x}", super::seed::tag(&key))[..12].to_string()
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| {
            l.starts_with("model name") || l.starts_with("Model") || l.starts_with("cpu model")
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn physical_cores(cpuinfo: &str) -> Option<usize> {
    let mut cores = std::collections::BTreeSet::new();
    let mut physical = String::new();
    for line in cpuinfo.lines() {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "physical id" => physical = v.trim().to_string(),
                "core id" => {
                    cores.insert((physical.clone(), v.trim().to_string()));
                }
                _ => {}
            }
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// Compile-time features of this build that matter for speed.
pub fn build_features() -> Vec<String> {
    let flags = [
        ("avx", cfg!(target_feature = "avx")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("f16c", cfg!(target_feature = "f16c")),
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("neon", cfg!(target_feature = "neon")),
        ("mkl", candle_core::utils::has_mkl()),
        ("cuda", candle_core::utils::cuda_is_available()),
        ("cudnn", cfg!(feature = "cudnn")),
        ("release", !cfg!(debug_assertions)),
    ];
    flags
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| (*name).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str =
        "processor\t: 0\nmodel name\t: Test CPU @ 3GHz\nphysical id\t: 0\ncore id\t: 0\n\n\
processor\t: 1\nmodel name\t: Test CPU @ 3GHz\nphysical id\t: 0\ncore id\t: 0\n\n\
processor\t: 2\nmodel name\t: Test CPU @ 3GHz\nphysical id\t: 0\ncore id\t: 1\n";

    #[test]
    fn parses_cpuinfo() {
        assert_eq!(cpu_model(CPUINFO).as_deref(), Some("Test CPU @ 3GHz"));
        assert_eq!(physical_cores(CPUINFO), Some(2));
    }

    #[test]
    fn id_tracks_threads() {
        let a = Fingerprint::detect("cpu", None, 1);
        let b = Fingerprint::detect("cpu", None, 2);
        assert_eq!(a.id, a.compute_id());
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 12);
    }

    fn gpu(device: &str) -> Fingerprint {
        let mut fp = Fingerprint {
            id: String::new(),
            cpu_model: "Test CPU".into(),
            cpu_cores: 16,
            cpu_threads: 32,
            threads: 4,
            device: device.into(),
            device_name: "NVIDIA H100 80GB HBM3".into(),
            build_features: vec!["avx2".into(), "cuda".into()],
            platform: "linux-x86_64".into(),
            vovd_version: "0.1.0".into(),
            gpu_driver: "550.54".into(),
            cuda_version: "12.4".into(),
        };
        fp.id = fp.compute_id();
        fp
    }

    #[test]
    fn id_ignores_the_device_index_but_not_threads_or_version() {
        let (a, b) = (gpu("cuda:0"), gpu("cuda:1"));
        assert_eq!(
            a.id, b.id,
            "the same GPU model in another slot measures alike"
        );
        let mut other = gpu("cuda:0");
        other.device_name = "NVIDIA A100-SXM4-40GB".into();
        assert_ne!(a.id, other.compute_id());
        let mut threads = gpu("cuda:0");
        threads.threads = 8;
        assert_ne!(a.id, threads.compute_id());
        let mut version = gpu("cuda:0");
        version.vovd_version = "0.2.0".into();
        assert_ne!(a.id, version.compute_id());
        let cpu = Fingerprint {
            device: "cpu".into(),
            ..gpu("cuda:0")
        };
        assert_ne!(a.id, cpu.compute_id());
    }
}
