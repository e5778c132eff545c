//! Engine types to their `vov.v1` messages (the direction the daemon sends); states
//! and failure classes go through `vov_proto::convert`.

use vov_proto::pb;

use super::Progress;
use crate::runtime::fingerprint::Fingerprint;
use crate::train::evaluate::EvaluationRecord;
use crate::train::metrics::EpochMetrics;
use crate::train::timing::{Batch1Timing, BatchTiming};
use crate::train::weights::WeightsInfo;
use crate::train::{TrainEvent, TrainRecord};

/// A fingerprint as sent.
pub fn fingerprint(f: &Fingerprint) -> pb::Fingerprint {
    pb::Fingerprint {
        id: f.id.clone(),
        cpu_model: f.cpu_model.clone(),
        cpu_cores: f.cpu_cores as u32,
        cpu_threads: f.cpu_threads as u32,
        threads: f.threads as u32,
        device: f.device.clone(),
        device_name: f.device_name.clone(),
        build_features: f.build_features.clone(),
        platform: f.platform.clone(),
        vovd_version: f.vovd_version.clone(),
        gpu_driver: f.gpu_driver.clone(),
        cuda_version: f.cuda_version.clone(),
    }
}

/// An epoch's metrics as sent.
pub fn epoch(m: &EpochMetrics) -> pb::EpochMetrics {
    pb::EpochMetrics {
        epoch: m.epoch as u32,
        train_loss: m.train_loss,
        train_acc: m.train_acc,
        val_loss: m.val_loss,
        val_acc: m.val_acc,
        epoch_s: m.epoch_s,
        data_wait_s: m.data_wait_s,
        val_s: m.val_s,
        steps: m.steps as u32,
    }
}

/// A result record as sent.
pub fn result(r: &TrainRecord) -> pb::TrialResult {
    pb::TrialResult {
        model: r.model.clone(),
        params: r.params.total as u64,
        trainable_params: r.params.trainable as u64,
        train_images: r.train_images as u64,
        val_images: r.val_images as u64,
        history: r.history.iter().map(epoch).collect(),
        max_val_acc: r.max_val_acc,
        max_val_acc_epoch: r.max_val_acc_epoch as u32,
        final_val_acc: r.final_val_acc,
        final_train_acc: r.final_train_acc,
        first_epoch_s: r.first_epoch_s,
        train_s_per_epoch: r.train_s_per_epoch,
        pipeline_s_per_epoch: r.pipeline_s_per_epoch,
        data_wait_s_per_epoch: r.data_wait_s_per_epoch,
        train_images_per_s: r.train_images_per_s,
        batch1: r.batch1.as_ref().map(batch1),
        batch32: r.batch32.as_ref().map(batched),
        peak_rss_bytes: r.peak_rss_bytes.unwrap_or(0),
        fingerprint: Some(fingerprint(&r.fingerprint)),
        resumed_from_epoch: r.resumed_from_epoch as u32,
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        warnings: r.warnings.clone(),
        version: r.version.clone(),
        resolved_spec_json: serde_json::to_string(&r.spec).unwrap_or_default(),
        weights: r.weights.as_ref().map(kept),
    }
}

fn batch1(b: &Batch1Timing) -> pb::Batch1Timing {
    pb::Batch1Timing {
        images: b.images as u64,
        total_s: b.total_s,
        p50_ms: b.p50_ms,
        p95_ms: b.p95_ms,
        p99_ms: b.p99_ms,
    }
}

fn batched(b: &BatchTiming) -> pb::BatchTiming {
    pb::BatchTiming {
        images: b.images as u64,
        batch_size: b.batch_size as u32,
        total_s: b.total_s,
        images_per_s: b.images_per_s,
    }
}

fn kept(w: &WeightsInfo) -> pb::KeptWeights {
    pb::KeptWeights {
        kept: w.kept.as_str().to_string(),
        epoch: w.epoch as u32,
        val_acc: w.val_acc,
        bytes: w.bytes,
        sha256: w.sha256.clone(),
    }
}

/// An evaluation record as sent, for weights trained by `source_trial_id`.
pub fn evaluation(r: &EvaluationRecord, source_trial_id: &str) -> pb::EvaluationResult {
    pb::EvaluationResult {
        model: r.model.clone(),
        params: r.params.total as u64,
        trainable_params: r.params.trainable as u64,
        dataset: r.dataset.as_str().to_string(),
        val_images: r.val_images as u64,
        val_acc: r.val_acc,
        val_loss: r.val_loss,
        batch1: r.batch1.as_ref().map(batch1),
        batch32: r.batch32.as_ref().map(batched),
        fingerprint: Some(fingerprint(&r.fingerprint)),
        weights: Some(kept(&r.file)),
        source_trial_id: source_trial_id.to_string(),
        peak_rss_bytes: r.peak_rss_bytes.unwrap_or(0),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        version: r.version.clone(),
    }
}

/// A training event as a job event kind.
pub fn event_kind(e: &TrainEvent) -> pb::job_event::Kind {
    use pb::job_event::Kind;
    match e {
        TrainEvent::Started {
            epochs,
            start_epoch,
            steps_per_epoch,
            params,
            train_images,
            val_images,
        } => Kind::Started(pb::TrainingStarted {
            epochs: *epochs as u32,
            start_epoch: *start_epoch as u32,
            steps_per_epoch: *steps_per_epoch as u32,
            params: params.total as u64,
            train_images: *train_images as u64,
            val_images: *val_images as u64,
        }),
        TrainEvent::Step {
            epoch,
            step,
            steps,
            loss,
        } => Kind::Step(pb::StepProgress {
            epoch: *epoch as u32,
            step: *step as u32,
            steps: *steps as u32,
            loss: *loss,
        }),
        TrainEvent::Epoch(m) => Kind::Epoch(epoch(m)),
        TrainEvent::Checkpoint { epoch, .. } => Kind::CheckpointEpoch(*epoch as u32),
        TrainEvent::Timing { phase } => Kind::Timing(phase.clone()),
        TrainEvent::Warning { message } => Kind::Warning(message.clone()),
    }
}

/// Progress as sent.
pub fn progress(p: &Progress) -> pb::Progress {
    pb::Progress {
        epoch: p.epoch,
        epochs: p.epochs,
        step: p.step,
        steps: p.steps,
        last_val_acc: p.last_val_acc,
        last_loss: p.last_loss,
        phase: p.phase.clone(),
    }
}
