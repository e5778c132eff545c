//! Overrides of a preset's knobs, so sweeps can vary model size beyond the
//! published eight. The daemon applies them to the preset's architecture.

use serde::{Deserialize, Serialize};

/// Optional overrides of a preset's knobs; unset knobs keep the preset's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelKnobs {
    /// VoVNet: stem output channels (one 3x3 CBR each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stem: Option<Vec<usize>>,
    /// VoVNet: CBR width per stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_widths: Option<Vec<usize>>,
    /// VoVNet: OSA output channels per stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_outputs: Option<Vec<usize>>,
    /// VoVNet: OSA modules per stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetitions: Option<Vec<usize>>,
    /// VoVNet: CBR units per OSA module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub osa_layers: Option<usize>,
    /// DenseNet: growth rate k.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth_rate: Option<usize>,
    /// DenseNet: dense layers per block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<usize>>,
    /// DenseNet: bottleneck width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<usize>,
    /// DenseNet: transition compression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<f64>,
    /// DenseNet: stem output channels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stem_channels: Option<usize>,
}

impl ModelKnobs {
    /// Whether no knob is set.
    pub fn is_empty(&self) -> bool {
        *self == ModelKnobs::default()
    }
}

impl ModelKnobs {
    /// The first knob set here that does not apply to `family`, if any.
    pub fn foreign(&self, family: crate::Family) -> Option<&'static str> {
        let probe = crate::TrialSpec {
            knobs: self.clone(),
            ..Default::default()
        };
        crate::KEYS
            .iter()
            .find(|k| k.family.is_some_and(|f| f != family) && (k.get)(&probe).is_some())
            .map(|k| k.name)
    }
}
