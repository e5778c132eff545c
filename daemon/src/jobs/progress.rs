//! Live progress of a job, folded from its training events and stored with it.

use serde::{Deserialize, Serialize};

use crate::train::TrainEvent;

/// Where a running job is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Current epoch, from 1.
    pub epoch: u32,
    /// Epochs in the trial.
    pub epochs: u32,
    /// Step in the epoch, from 1.
    pub step: u32,
    /// Steps per epoch.
    pub steps: u32,
    /// Validation accuracy of the last finished epoch.
    pub last_val_acc: f64,
    /// Loss of the last reported step.
    pub last_loss: f64,
    /// Inference timing under way, if any.
    pub phase: String,
}

impl Progress {
    /// Updates from one event; returns whether anything changed.
    pub fn apply(&mut self, event: &TrainEvent) -> bool {
        match event {
            TrainEvent::Started {
                epochs,
                start_epoch,
                steps_per_epoch,
                ..
            } => {
                self.epochs = *epochs as u32;
                self.epoch = *start_epoch as u32 + 1;
                self.steps = *steps_per_epoch as u32;
                self.step = 0;
            }
            TrainEvent::Step {
                epoch,
                step,
                steps,
                loss,
            } => {
                self.epoch = *epoch as u32;
                self.step = *step as u32;
                self.steps = *steps as u32;
                self.last_loss = *loss;
            }
            TrainEvent::Epoch(m) => {
                self.epoch = m.epoch as u32;
                self.last_val_acc = m.val_acc;
            }
            TrainEvent::Timing { phase } => self.phase = phase.clone(),
            TrainEvent::Checkpoint { .. } | TrainEvent::Warning { .. } => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_events() {
        let mut p = Progress::default();
        p.apply(&TrainEvent::Step {
            epoch: 2,
            step: 5,
            steps: 9,
            loss: 0.5,
        });
        assert_eq!((p.epoch, p.step, p.steps, p.last_loss), (2, 5, 9, 0.5));
        assert!(!p.apply(&TrainEvent::Warning {
            message: "w".into()
        }));
        p.apply(&TrainEvent::Timing {
            phase: "batch1".into(),
        });
        assert_eq!(p.phase, "batch1");
    }
}
