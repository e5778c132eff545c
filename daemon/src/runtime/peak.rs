//! This CPU's f32 peak: threads x clock x vector lanes x FMA pipes x 2 FLOPs
//! per fused multiply-add, read off `/proc/cpuinfo`, so that a benchmark can
//! say how much of the machine its kernels reach.
//!
//! The count assumes two FMA pipes per core, as on every recent x86 server
//! core. AMD's Zen 4 (family 25 with AVX-512) runs a 512-bit operation on its
//! 256-bit pipes in two halves, so its lanes per pipe are 8, not 16.

use serde::{Deserialize, Serialize};

/// FMA pipes per core assumed.
const FMA_PIPES: usize = 2;

/// The f32 peak of `threads` cores of this CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuPeak {
    /// Cores counted (the benchmark's threads).
    pub threads: usize,
    /// Clock in GHz (the kernel's reported frequency).
    pub ghz: f64,
    /// f32 lanes one FMA pipe handles per cycle.
    pub lanes: usize,
    /// FMA pipes per core.
    pub fma_pipes: usize,
    /// The widest vector extension seen (`avx512f`, `avx2`, `sse2`, `neon`).
    pub isa: String,
    /// threads x ghz x lanes x fma_pipes x 2.
    pub gflops: f64,
}

impl CpuPeak {
    /// The peak of `threads` cores of this machine's CPU, when its clock is
    /// known.
    pub fn detect(threads: usize) -> Option<Self> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        Self::from_cpuinfo(&cpuinfo, threads)
    }

    /// The peak that `cpuinfo` (the text of `/proc/cpuinfo`) describes.
    pub fn from_cpuinfo(cpuinfo: &str, threads: usize) -> Option<Self> {
        let mhz: f64 = field(cpuinfo, "cpu MHz")?.parse().ok()?;
        let flags: Vec<&str> = field(cpuinfo, "flags")
            .or_else(|| field(cpuinfo, "Features"))
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let has = |f: &str| flags.contains(&f);
        let amd_zen4 = field(cpuinfo, "vendor_id") == Some("AuthenticAMD")
            && field(cpuinfo, "cpu family") == Some("25");
        let (isa, lanes) = if has("avx512f") {
            ("avx512f", if amd_zen4 { 8 } else { 16 })
        } else if has("avx2") && has("fma") {
            ("avx2", 8)
        } else if has("asimd") {
            ("neon", 4)
        } else {
            ("sse2", 4)
        };
        let ghz = mhz / 1e3;
        Some(CpuPeak {
            threads,
            ghz,
            lanes,
            fma_pipes: FMA_PIPES,
            isa: isa.to_string(),
            gflops: threads as f64 * ghz * (lanes * FMA_PIPES * 2) as f64,
        })
    }
}

impl std::fmt::Display for CpuPeak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "f32 peak {:.1} GFLOP/s = {} cores x {:.2} GHz x {} lanes ({}) x {} FMA pipes x 2",
            self.gflops, self.threads, self.ghz, self.lanes, self.isa, self.fma_pipes
        )
    }
}

/// The value of the first `key : value` line of `cpuinfo`.
fn field<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN4: &str = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC\n\
                        cpu MHz\t\t: 2600.000\nflags\t\t: fpu sse2 avx fma avx2 avx512f\n";

    #[test]
    fn zen4_runs_avx512_on_256_bit_pipes() {
        let p = CpuPeak::from_cpuinfo(ZEN4, 2).unwrap();
        assert_eq!((p.lanes, p.isa.as_str()), (8, "avx512f"));
        assert!((p.gflops - 2.0 * 2.6 * 32.0).abs() < 1e-9, "{p}");
    }

    #[test]
    fn other_avx512_cores_have_16_lanes_and_avx2_8() {
        let intel = ZEN4
            .replace("AuthenticAMD", "GenuineIntel")
            .replace("25", "6");
        assert_eq!(CpuPeak::from_cpuinfo(&intel, 1).unwrap().lanes, 16);
        let avx2 = ZEN4.replace(" avx512f", "");
        let p = CpuPeak::from_cpuinfo(&avx2, 4).unwrap();
        assert_eq!((p.lanes, p.isa.as_str()), (8, "avx2"));
        assert!(
            p.to_string()
                .starts_with("f32 peak 332.8 GFLOP/s = 4 cores"),
            "{p}"
        );
    }

    #[test]
    fn no_clock_no_peak() {
        assert_eq!(CpuPeak::from_cpuinfo("flags : avx2 fma\n", 2), None);
    }
}
