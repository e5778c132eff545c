//! Knob overrides on top of a preset, so sweeps can vary model size beyond the
//! published eight.

use serde::{Deserialize, Serialize};

use super::{Architecture, ModelError};

/// Optional overrides of a preset's knobs; a knob of the other family is an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelKnobs {
    /// VoVNet: stem output channels (one 3x3 CBR each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stem: Option<Vec<usize>>,
    /// VoVNet: CBR width per stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_widths: Option<Vec<usize>>,
    /// VoVNet: OSA output channels per stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_outputs: Option<Vec<usize>>,
    /// VoVNet: OSA modules per stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetitions: Option<Vec<usize>>,
    /// VoVNet: CBR units per OSA module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osa_layers: Option<usize>,
    /// DenseNet: growth rate k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_rate: Option<usize>,
    /// DenseNet: dense layers per block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<usize>>,
    /// DenseNet: bottleneck width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<usize>,
    /// DenseNet: transition compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<f64>,
    /// DenseNet: stem output channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stem_channels: Option<usize>,
}

fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
    if let Some(v) = v {
        *slot = v.clone();
    }
}

impl ModelKnobs {
    /// Overwrites the knobs of `arch` that are set here.
    pub fn apply(&self, arch: &mut Architecture) -> Result<(), ModelError> {
        match arch {
            Architecture::Vovnet(c) => {
                self.reject("vovnet", &self.densenet_knobs())?;
                set(&mut c.stem, &self.stem);
                set(&mut c.stage_widths, &self.stage_widths);
                set(&mut c.stage_outputs, &self.stage_outputs);
                set(&mut c.repetitions, &self.repetitions);
                set(&mut c.osa_layers, &self.osa_layers);
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
                self.reject("densenet", &self.vovnet_knobs())?;
                set(&mut c.growth_rate, &self.growth_rate);
                set(&mut c.blocks, &self.blocks);
                set(&mut c.bottleneck, &self.bottleneck);
                set(&mut c.compression, &self.compression);
                set(&mut c.stem, &self.stem_channels);
            }
        }
        Ok(())
    }

    fn vovnet_knobs(&self) -> [(&'static str, bool); 5] {
        [
            ("stem", self.stem.is_some()),
            ("stage_widths", self.stage_widths.is_some()),
            ("stage_outputs", self.stage_outputs.is_some()),
            ("repetitions", self.repetitions.is_some()),
            ("osa_layers", self.osa_layers.is_some()),
        ]
    }

    fn densenet_knobs(&self) -> [(&'static str, bool); 5] {
        [
            ("growth_rate", self.growth_rate.is_some()),
            ("blocks", self.blocks.is_some()),
            ("bottleneck", self.bottleneck.is_some()),
            ("compression", self.compression.is_some()),
            ("stem_channels", self.stem_channels.is_some()),
        ]
    }

    fn reject(
        &self,
        family: &'static str,
        foreign: &[(&'static str, bool)],
    ) -> Result<(), ModelError> {
        match foreign.iter().find(|(_, set)| *set) {
            Some((knob, _)) => Err(ModelError::KnobNotForFamily { knob, family }),
            None => Ok(()),
        }
    }

    /// The knobs that are set, as `key=value` pairs joined by commas.
    pub fn describe(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        let Some(map) = value.as_object() else {
            return String::new();
        };
        map.iter()
            .map(|(k, v)| format!("{k}={}", v.to_string().replace(',', " ")))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether no knob is set.
    pub fn is_empty(&self) -> bool {
        *self == ModelKnobs::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ModelSpec, VovNetConfig};
    use super::*;

    #[test]
    fn overrides_apply_and_name_the_model() {
        let knobs = ModelKnobs {
            growth_rate: Some(24),
            blocks: Some(vec![2, 2]),
            ..Default::default()
        };
        let spec = ModelSpec::resolve("densenet-koshian-2", &knobs).unwrap();
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
        let err = ModelSpec::resolve("vovnet-39", &knobs).unwrap_err();
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
        let spec = ModelSpec::resolve("vovnet-27-slim", &knobs).unwrap();
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
        let spec = ModelSpec::resolve("densenet-koshian-2", &knobs).unwrap();
        let err = spec.arch.validate(32).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("model knob 'compression' = 1.5"),
            "{err}"
        );
    }
}
