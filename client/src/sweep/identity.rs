//! Trial identity and seeds, from the fully resolved configuration.
//!
//! A configuration's canonical text lists every key (defaults included) in name
//! order, so the same trial gets the same id whatever the file's layout. The trial
//! id hashes that text with the seed and the repeat index; the seed derives from
//! the sweep seed, the configuration and the repeat index.

use sha2::{Digest, Sha256};

use super::file::Config;

/// `key=value` lines in key order: the configuration's canonical form.
pub fn canonical(config: &Config) -> String {
    config
        .iter()
        .map(|(k, s)| format!("{k}={}\n", s.value))
        .collect()
}

fn hex(bytes: &[u8], chars: usize) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..chars].to_string()
}

/// Short hash of a configuration (repeats of it share it).
pub fn config_id(config: &Config) -> String {
    hex(&Sha256::digest(canonical(config).as_bytes()), 12)
}

/// The seed of repeat `repeat` of configuration `config_id` in a sweep seeded `sweep_seed`.
pub fn seed(sweep_seed: u64, config_id: &str, repeat: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(b"vov-seed\n");
    h.update(sweep_seed.to_le_bytes());
    h.update(config_id.as_bytes());
    h.update(repeat.to_le_bytes());
    let d = h.finalize();
    // Keep seeds within i64 so they survive every store and wire format unchanged.
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) >> 1
}

/// The trial id: a hash of the resolved configuration, its seed and repeat index.
pub fn trial_id(config: &Config, seed: u64, repeat: u32) -> String {
    let text = format!("{}seed={seed}\nrepeat={repeat}\n", canonical(config));
    format!("t{}", hex(&Sha256::digest(text.as_bytes()), 16))
}
