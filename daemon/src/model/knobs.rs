//! Knob overrides on top of a preset, so sweeps can vary model size beyond the
//! published eight.

use vov_spec::ModelKnobs;

use super::{Architecture, ModelError};

fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
    if let Some(v) = v {
        *slot = v.clone();
    }
}

/// Overwrites the knobs of `arch` that `knobs` sets; a knob of the other family
/// is an error.
pub fn apply(knobs: &ModelKnobs, arch: &mut Architecture) -> Result<(), ModelError> {
    let family = arch.family();
    if let Some(knob) = knobs.foreign(family) {
        return Err(ModelError::KnobNotForFamily { knob, family });
    }
    match arch {
        Architecture::Vovnet(c) => {
            set(&mut c.stem, &knobs.stem);
            set(&mut c.stage_widths, &knobs.stage_widths);
            set(&mut c.stage_outputs, &knobs.stage_outputs);
            set(&mut c.repetitions, &knobs.repetitions);
            set(&mut c.osa_layers, &knobs.osa_layers);
            // Stage lists given for fewer stages than the preset: keep the lists
            // consistent by truncating the ones that were not given.
            let n = c.stage_widths.len();
            for list in [&mut c.stage_outputs, &mut c.repetitions] {
                if list.len() > n {
                    list.truncate(n);
                }
            }
        }
        Architecture::Densenet(c) => {
            set(&mut c.growth_rate, &knobs.growth_rate);
            set(&mut c.blocks, &knobs.blocks);
            set(&mut c.bottleneck, &knobs.bottleneck);
            set(&mut c.compression, &knobs.compression);
            set(&mut c.stem, &knobs.stem_channels);
        }
    }
    Ok(())
}

/// The knobs that are set, as `key=value` pairs joined by commas (the suffix of a
/// resized model's name).
pub fn describe(knobs: &ModelKnobs) -> String {
    let value = serde_json::to_value(knobs).unwrap_or_default();
    let Some(map) = value.as_object() else {
        return String::new();
    };
    map.iter()
        .map(|(k, v)| format!("{k}={}", v.to_string().replace(',', " ")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::super::{ModelSpec, VovNetConfig};
    use super::*;
    use vov_spec::Preset;

    #[test]
    fn overrides_apply_and_name_the_model() {
        let knobs = ModelKnobs {
            growth_rate: Some(24),
            blocks: Some(vec![2, 2]),
            ..Default::default()
        };
        let spec = ModelSpec::resolve(Preset::DensenetKoshian2, &knobs).unwrap();
        assert_eq!(spec.name, "densenet-koshian-2(blocks=[2 2],growth_rate=24)");
        let Architecture::Densenet(c) = spec.arch else {
            panic!("family changed")
        };
        assert_eq!((c.growth_rate, c.blocks), (24, vec![2, 2]));
    }

    #[test]
    fn foreign_knobs_are_rejected() {
        let knobs = ModelKnobs {
            growth_rate: Some(24),
            ..Default::default()
        };
        let err = ModelSpec::resolve(Preset::Vovnet39, &knobs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "model knob 'growth_rate' does not apply to vovnet models"
        );
    }

    #[test]
    fn fewer_stages_truncate_the_other_lists() {
        let knobs = ModelKnobs {
            stage_widths: Some(vec![8, 8]),
            ..Default::default()
        };
        let spec = ModelSpec::resolve(Preset::Vovnet27Slim, &knobs).unwrap();
        let Architecture::Vovnet(VovNetConfig {
            stage_outputs,
            repetitions,
            ..
        }) = spec.arch
        else {
            panic!("family changed")
        };
        assert_eq!(stage_outputs, vec![128, 256]);
        assert_eq!(repetitions, vec![1, 1]);
    }

    #[test]
    fn invalid_knob_values_name_the_knob() {
        let knobs = ModelKnobs {
            compression: Some(1.5),
            ..Default::default()
        };
        let spec = ModelSpec::resolve(Preset::DensenetKoshian2, &knobs).unwrap();
        let err = spec.arch.validate(32).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("model knob 'compression' = 1.5"),
            "{err}"
        );
    }
}
