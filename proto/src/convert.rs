//! The one place where the typed trial ([`vov_spec`]) meets its `vov.v1` messages:
//! specs, states, failure classes and data set states, both ways.

use vov_spec::{
    Augmentation, DatasetReport, DatasetState, DeviceRequirement, FailureClass, JobState,
    KeepWeights, Measure, ModelKnobs, Optimizer, SpecError, TrialSpec, TrialState, WdMode,
};

use crate::pb;

fn list(v: &Option<Vec<usize>>) -> Vec<u32> {
    v.as_deref()
        .unwrap_or_default()
        .iter()
        .map(|&x| x as u32)
        .collect()
}

fn unlist(v: &[u32]) -> Option<Vec<usize>> {
    (!v.is_empty()).then(|| v.iter().map(|&x| x as usize).collect())
}

fn knobs_to_pb(k: &ModelKnobs) -> pb::ModelKnobs {
    pb::ModelKnobs {
        stem: list(&k.stem),
        stage_widths: list(&k.stage_widths),
        stage_outputs: list(&k.stage_outputs),
        repetitions: list(&k.repetitions),
        osa_layers: k.osa_layers.map(|v| v as u32),
        growth_rate: k.growth_rate.map(|v| v as u32),
        blocks: list(&k.blocks),
        bottleneck: k.bottleneck.map(|v| v as u32),
        compression: k.compression,
        stem_channels: k.stem_channels.map(|v| v as u32),
    }
}

fn knobs_from_pb(k: Option<&pb::ModelKnobs>) -> ModelKnobs {
    let Some(k) = k else {
        return ModelKnobs::default();
    };
    ModelKnobs {
        stem: unlist(&k.stem),
        stage_widths: unlist(&k.stage_widths),
        stage_outputs: unlist(&k.stage_outputs),
        repetitions: unlist(&k.repetitions),
        osa_layers: k.osa_layers.map(|v| v as usize),
        growth_rate: k.growth_rate.map(|v| v as usize),
        blocks: unlist(&k.blocks),
        bottleneck: k.bottleneck.map(|v| v as usize),
        compression: k.compression,
        stem_channels: k.stem_channels.map(|v| v as usize),
    }
}

fn optimizer_to_pb(o: Optimizer) -> pb::Optimizer {
    match o {
        Optimizer::Adam => pb::Optimizer::Adam,
        Optimizer::Adamw => pb::Optimizer::Adamw,
        Optimizer::Sgd => pb::Optimizer::Sgd,
    }
}

fn optimizer_from_pb(v: i32) -> Result<Optimizer, SpecError> {
    match pb::Optimizer::try_from(v) {
        Ok(pb::Optimizer::Adam) => Ok(Optimizer::Adam),
        Ok(pb::Optimizer::Adamw) => Ok(Optimizer::Adamw),
        Ok(pb::Optimizer::Sgd) => Ok(Optimizer::Sgd),
        _ => Err(SpecError::new(
            "optimizer",
            format!("{v} is not one of OPTIMIZER_ADAM, OPTIMIZER_ADAMW, OPTIMIZER_SGD"),
        )),
    }
}

fn wd_mode_to_pb(m: Option<WdMode>) -> pb::WeightDecayMode {
    match m {
        None => pb::WeightDecayMode::Unspecified,
        Some(WdMode::L2) => pb::WeightDecayMode::L2,
        Some(WdMode::Decoupled) => pb::WeightDecayMode::Decoupled,
    }
}

fn wd_mode_from_pb(v: i32) -> Result<Option<WdMode>, SpecError> {
    match pb::WeightDecayMode::try_from(v) {
        Ok(pb::WeightDecayMode::Unspecified) => Ok(None),
        Ok(pb::WeightDecayMode::L2) => Ok(Some(WdMode::L2)),
        Ok(pb::WeightDecayMode::Decoupled) => Ok(Some(WdMode::Decoupled)),
        Err(_) => Err(SpecError::new(
            "wd_mode",
            format!("{v} is not a weight decay mode"),
        )),
    }
}

fn augmentation_to_pb(a: Augmentation) -> pb::Augmentation {
    match a {
        Augmentation::None => pb::Augmentation::None,
        Augmentation::Flip => pb::Augmentation::Flip,
        Augmentation::Shift => pb::Augmentation::Shift,
        Augmentation::Crop => pb::Augmentation::Crop,
        Augmentation::Standard => pb::Augmentation::Standard,
        Augmentation::StandardCrop => pb::Augmentation::StandardCrop,
    }
}

fn augmentation_from_pb(v: i32) -> Result<Augmentation, SpecError> {
    Ok(match pb::Augmentation::try_from(v) {
        Ok(pb::Augmentation::Unspecified) => TrialSpec::default().augmentation,
        Ok(pb::Augmentation::None) => Augmentation::None,
        Ok(pb::Augmentation::Flip) => Augmentation::Flip,
        Ok(pb::Augmentation::Shift) => Augmentation::Shift,
        Ok(pb::Augmentation::Crop) => Augmentation::Crop,
        Ok(pb::Augmentation::Standard) => Augmentation::Standard,
        Ok(pb::Augmentation::StandardCrop) => Augmentation::StandardCrop,
        Err(_) => {
            return Err(SpecError::new(
                "augmentation",
                format!("{v} is not an augmentation"),
            ))
        }
    })
}

fn device_to_pb(d: DeviceRequirement) -> pb::DeviceRequirement {
    match d {
        DeviceRequirement::Any => pb::DeviceRequirement::Any,
        DeviceRequirement::Cpu => pb::DeviceRequirement::Cpu,
        DeviceRequirement::Gpu => pb::DeviceRequirement::Gpu,
    }
}

fn device_from_pb(v: i32) -> Result<DeviceRequirement, SpecError> {
    match pb::DeviceRequirement::try_from(v) {
        Ok(pb::DeviceRequirement::Any) => Ok(DeviceRequirement::Any),
        Ok(pb::DeviceRequirement::Cpu) => Ok(DeviceRequirement::Cpu),
        Ok(pb::DeviceRequirement::Gpu) => Ok(DeviceRequirement::Gpu),
        Err(_) => Err(SpecError::new(
            "device",
            format!("{v} is not a device requirement"),
        )),
    }
}

fn limit(key: &str, v: Option<u64>) -> Result<Option<usize>, SpecError> {
    v.map(|n| usize::try_from(n).map_err(|_| SpecError::new(key, format!("{n} is too large"))))
        .transpose()
}

fn keep_weights_from_pb(v: &str) -> Result<KeepWeights, SpecError> {
    if v.is_empty() {
        return Ok(TrialSpec::default().keep_weights);
    }
    v.parse()
        .map_err(|e: vov_spec::names::UnknownName| SpecError::new("keep_weights", e.to_string()))
}

impl From<&TrialSpec> for pb::TrialSpec {
    fn from(s: &TrialSpec) -> Self {
        pb::TrialSpec {
            model: s.model.as_str().to_string(),
            knobs: Some(knobs_to_pb(&s.knobs)),
            dataset: s.dataset.as_str().to_string(),
            epochs: s.epochs as u32,
            batch_size: s.batch_size as u32,
            optimizer: optimizer_to_pb(s.optimizer) as i32,
            lr: s.lr,
            momentum: s.momentum,
            nesterov: s.nesterov,
            weight_decay: s.weight_decay,
            wd_mode: wd_mode_to_pb(s.wd_mode) as i32,
            augmentation: augmentation_to_pb(s.augmentation) as i32,
            seed: s.seed,
            bn_momentum: s.bn_momentum,
            train_limit: s.train_limit.map(|n| n as u64),
            val_limit: s.val_limit.map(|n| n as u64),
            measure_batch1: s.measure.batch1,
            measure_batch32: s.measure.batch32,
            device: device_to_pb(s.device) as i32,
            keep_weights: s.keep_weights.as_str().to_string(),
        }
    }
}

impl TryFrom<&pb::TrialSpec> for TrialSpec {
    type Error = SpecError;

    /// Decodes and validates a spec; every error names the key.
    fn try_from(p: &pb::TrialSpec) -> Result<Self, SpecError> {
        if p.model.is_empty() {
            return Err(SpecError::new(
                "model",
                "required (a preset name, see HostInfo.models)",
            ));
        }
        let model = p
            .model
            .parse()
            .map_err(|e: vov_spec::names::UnknownName| SpecError::new("model", e.to_string()))?;
        let dataset = p
            .dataset
            .parse()
            .map_err(|e: vov_spec::names::UnknownName| SpecError::new("dataset", e.to_string()))?;
        let spec = TrialSpec {
            model,
            knobs: knobs_from_pb(p.knobs.as_ref()),
            dataset,
            epochs: p.epochs as usize,
            batch_size: p.batch_size as usize,
            optimizer: optimizer_from_pb(p.optimizer)?,
            lr: p.lr,
            momentum: p.momentum,
            nesterov: p.nesterov,
            weight_decay: p.weight_decay,
            wd_mode: wd_mode_from_pb(p.wd_mode)?,
            augmentation: augmentation_from_pb(p.augmentation)?,
            seed: p.seed,
            bn_momentum: p.bn_momentum,
            train_limit: limit("train_limit", p.train_limit)?,
            val_limit: limit("val_limit", p.val_limit)?,
            measure: Measure {
                batch1: p.measure_batch1,
                batch32: p.measure_batch32,
            },
            device: device_from_pb(p.device)?,
            keep_weights: keep_weights_from_pb(&p.keep_weights)?,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl From<JobState> for pb::JobState {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Queued => pb::JobState::Queued,
            JobState::Running => pb::JobState::Running,
            JobState::Succeeded => pb::JobState::Succeeded,
            JobState::Failed => pb::JobState::Failed,
            JobState::Cancelled => pb::JobState::Cancelled,
            JobState::Paused => pb::JobState::Paused,
        }
    }
}

/// A job state as received; `None` for unspecified or unknown values.
pub fn job_state(v: i32) -> Option<JobState> {
    match pb::JobState::try_from(v) {
        Ok(pb::JobState::Queued) => Some(JobState::Queued),
        Ok(pb::JobState::Running) => Some(JobState::Running),
        Ok(pb::JobState::Succeeded) => Some(JobState::Succeeded),
        Ok(pb::JobState::Failed) => Some(JobState::Failed),
        Ok(pb::JobState::Cancelled) => Some(JobState::Cancelled),
        Ok(pb::JobState::Paused) => Some(JobState::Paused),
        Ok(pb::JobState::Unspecified) | Err(_) => None,
    }
}

/// A job state as the client tracks it (unspecified reads as queued).
pub fn trial_state(v: i32) -> TrialState {
    job_state(v).map_or(TrialState::Queued, TrialState::from)
}

/// A failure class as sent (`None`: not failed).
pub fn failure_to_pb(f: Option<FailureClass>) -> pb::FailureClass {
    match f {
        None => pb::FailureClass::None,
        Some(FailureClass::InvalidSpec) => pb::FailureClass::InvalidSpec,
        Some(FailureClass::Crashed) => pb::FailureClass::Crashed,
        Some(FailureClass::Oom) => pb::FailureClass::Oom,
        Some(FailureClass::Killed) => pb::FailureClass::Killed,
        Some(FailureClass::Diverged) => pb::FailureClass::Diverged,
        Some(FailureClass::HostLost) => pb::FailureClass::HostLost,
        Some(FailureClass::Unrunnable) => pb::FailureClass::Unrunnable,
        Some(FailureClass::DiskFull) => pb::FailureClass::DiskFull,
    }
}

/// A failure class as received (`None`: not failed, or unknown to this version).
pub fn failure(v: i32) -> Option<FailureClass> {
    match pb::FailureClass::try_from(v) {
        Ok(pb::FailureClass::InvalidSpec) => Some(FailureClass::InvalidSpec),
        Ok(pb::FailureClass::Crashed) => Some(FailureClass::Crashed),
        Ok(pb::FailureClass::Oom) => Some(FailureClass::Oom),
        Ok(pb::FailureClass::Killed) => Some(FailureClass::Killed),
        Ok(pb::FailureClass::Diverged) => Some(FailureClass::Diverged),
        Ok(pb::FailureClass::HostLost) => Some(FailureClass::HostLost),
        Ok(pb::FailureClass::Unrunnable) => Some(FailureClass::Unrunnable),
        Ok(pb::FailureClass::DiskFull) => Some(FailureClass::DiskFull),
        Ok(pb::FailureClass::None) | Err(_) => None,
    }
}

impl From<DatasetState> for pb::DatasetState {
    fn from(s: DatasetState) -> Self {
        match s {
            DatasetState::Present => pb::DatasetState::Present,
            DatasetState::Absent => pb::DatasetState::Absent,
            DatasetState::Broken => pb::DatasetState::Broken,
        }
    }
}

/// A data set as received, in the shape `vovd data list --json` prints.
pub fn dataset_report(info: &pb::DatasetInfo) -> DatasetReport {
    DatasetReport {
        name: info.name.clone(),
        state: dataset_state(info),
        train_images: info.train_images,
        val_images: info.val_images,
        detail: info.detail.clone(),
        fix: info.fix.clone(),
    }
}

/// A data set's state as received. A daemon older than the field sends
/// unspecified: its `available` then says present or absent.
pub fn dataset_state(info: &pb::DatasetInfo) -> DatasetState {
    match pb::DatasetState::try_from(info.state) {
        Ok(pb::DatasetState::Present) => DatasetState::Present,
        Ok(pb::DatasetState::Absent) => DatasetState::Absent,
        Ok(pb::DatasetState::Broken) => DatasetState::Broken,
        Ok(pb::DatasetState::Unspecified) | Err(_) if info.available => DatasetState::Present,
        Ok(pb::DatasetState::Unspecified) | Err(_) => DatasetState::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vov_spec::Preset;

    #[test]
    fn specs_round_trip() {
        let mut s = TrialSpec::new(Preset::DensenetKoshian3);
        s.knobs.blocks = Some(vec![2, 3]);
        s.wd_mode = Some(WdMode::Decoupled);
        s.val_limit = Some(100);
        s.measure.batch1 = false;
        let back = TrialSpec::try_from(&pb::TrialSpec::from(&s)).unwrap();
        assert_eq!(s, back);
    }

    #[test]
    fn bad_fields_are_named() {
        let good = pb::TrialSpec::from(&TrialSpec::new(Preset::Vovnet27Slim));
        let cases: Vec<(pb::TrialSpec, &str)> = vec![
            (
                pb::TrialSpec {
                    model: "alexnet".into(),
                    ..good.clone()
                },
                "model: unknown model 'alexnet'",
            ),
            (
                pb::TrialSpec {
                    model: String::new(),
                    ..good.clone()
                },
                "model: required",
            ),
            (
                pb::TrialSpec {
                    dataset: "imagenet".into(),
                    ..good.clone()
                },
                "dataset: unknown data set 'imagenet'",
            ),
            (
                pb::TrialSpec {
                    epochs: 0,
                    ..good.clone()
                },
                "epochs: 0 is out of range",
            ),
            (
                pb::TrialSpec {
                    lr: -1.0,
                    ..good.clone()
                },
                "lr: -1 is out of range",
            ),
            (
                pb::TrialSpec {
                    optimizer: 0,
                    ..good.clone()
                },
                "optimizer: 0 is not one of",
            ),
            (
                pb::TrialSpec {
                    train_limit: Some(0),
                    ..good.clone()
                },
                "train_limit: 0 is out of range",
            ),
        ];
        for (p, needle) in cases {
            let err = TrialSpec::try_from(&p).unwrap_err().to_string();
            assert!(err.starts_with(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn dataset_states_round_trip_and_old_daemons_read_available() {
        for &s in DatasetState::ALL {
            let info = pb::DatasetInfo {
                state: pb::DatasetState::from(s) as i32,
                ..Default::default()
            };
            assert_eq!(dataset_state(&info), s);
        }
        let old = |available| pb::DatasetInfo {
            available,
            ..Default::default()
        };
        assert_eq!(dataset_state(&old(true)), DatasetState::Present);
        assert_eq!(dataset_state(&old(false)), DatasetState::Absent);
    }

    #[test]
    fn states_and_classes_round_trip() {
        for s in JobState::ALL {
            assert_eq!(job_state(pb::JobState::from(*s) as i32), Some(*s));
        }
        for f in FailureClass::ALL {
            assert_eq!(failure(failure_to_pb(Some(*f)) as i32), Some(*f));
        }
        assert_eq!(failure(0), None);
    }
}
