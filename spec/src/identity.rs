//! Trial identity and seeds.
//!
//! A spec's canonical form lists `key=value` lines in key-name order: every key of
//! the first key set that has a value (defaults included, as ids were first
//! defined) and every later key only where it differs from its default, so adding
//! a key with a default keeps every existing id; keys outside the identity
//! (`keep_weights`) never appear. The trial id hashes that text with
//! the seed and the repeat index; the seed derives from the sweep seed, the
//! configuration and the repeat index. The golden ids in the tests pin all of it.

use sha2::{Digest, Sha256};

use crate::keys::{KeyDef, KEYS};
use crate::trial::TrialSpec;

fn in_canonical(k: &KeyDef, spec: &TrialSpec) -> Option<String> {
    if !k.identity {
        return None;
    }
    let v = (k.get)(spec)?;
    if k.since > 1 && Some(&v) == k.default_value().as_ref() {
        return None;
    }
    Some(format!("{}={v}\n", k.name))
}

/// The canonical form of a spec's configuration (its seed left out).
pub fn canonical(spec: &TrialSpec) -> String {
    let mut keys: Vec<&KeyDef> = KEYS.iter().collect();
    keys.sort_by_key(|k| k.name);
    keys.into_iter()
        .filter_map(|k| in_canonical(k, spec))
        .collect()
}

fn hex(bytes: &[u8], chars: usize) -> String {
    crate::digest::hex(bytes)[..chars].to_string()
}

/// Short hash of a configuration: its repeats share it, and local and collected
/// results group by it.
pub fn config_id(spec: &TrialSpec) -> String {
    hex(&Sha256::digest(canonical(spec).as_bytes()), 12)
}

/// The seed of repeat `repeat` of configuration `config_id` in a sweep seeded
/// `sweep_seed`.
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

/// The trial id: a hash of the canonical form, the spec's seed and the repeat index.
pub fn trial_id(spec: &TrialSpec, repeat: u32) -> String {
    let text = format!("{}seed={}\nrepeat={repeat}\n", canonical(spec), spec.seed);
    format!("t{}", hex(&Sha256::digest(text.as_bytes()), 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{Augmentation, Preset, WdMode};

    fn spec(model: Preset) -> TrialSpec {
        let mut s = TrialSpec::new(model);
        s.seed = seed(0, &config_id(&s), 0);
        s
    }

    /// Ids of the first key set, as vovctl 0.1.0 (before the spec crate) computed
    /// them for the same trials (`vovctl sweep --dry-run`, sweep seed 0, repeat 0):
    /// they must never change, or finished trials would run again.
    #[test]
    fn golden_ids() {
        let s = TrialSpec::new(Preset::Vovnet27Slim);
        assert_eq!(
            canonical(&s),
            "augmentation=standard\nbatch_size=128\nbn_momentum=0.99\ndataset=cifar10\ndevice=any\n\
             epochs=100\nlr=0.001\nmeasure=[batch1,batch32]\nmodel=vovnet-27-slim\nmomentum=0.9\n\
             nesterov=false\noptimizer=adam\nweight_decay=0.0\n"
        );
        let cases: Vec<(TrialSpec, &str, &str)> = vec![
            (
                spec(Preset::Vovnet27Slim),
                "01fda70d0fbe",
                "tbf84fa67c5b49299",
            ),
            (
                {
                    let mut s = TrialSpec::new(Preset::DensenetKoshian2);
                    s.epochs = 3;
                    s.augmentation = Augmentation::None;
                    s.wd_mode = Some(WdMode::Decoupled);
                    s.train_limit = Some(512);
                    s.knobs.growth_rate = Some(24);
                    s.knobs.blocks = Some(vec![2, 2]);
                    s.seed = seed(0, &config_id(&s), 0);
                    s
                },
                "6b396464bd19",
                "t0922f60af2b0651d",
            ),
        ];
        for (s, config, trial) in cases {
            assert_eq!(
                (config_id(&s).as_str(), trial_id(&s, 0).as_str()),
                (config, trial),
                "{}",
                canonical(&s)
            );
        }
    }

    #[test]
    fn repeats_differ_and_layout_does_not_matter() {
        let a = spec(Preset::Vovnet39);
        assert_ne!(trial_id(&a, 0), trial_id(&a, 1));
        assert_ne!(seed(0, &config_id(&a), 0), seed(0, &config_id(&a), 1));
        assert_eq!(config_id(&a), config_id(&a.clone()));
    }
}
