//! The one definition of a vov trial, shared by `vovd` and `vovctl`.
//!
//! - [`TrialSpec`]: everything that determines a trial's outcome, typed;
//! - [`keys::KEYS`]: each settable key once, with its type, bounds, default, help
//!   and unit; sweep files, `--set`, `vovd train`'s flags, request validation and
//!   the README's key table all derive from it;
//! - [`identity`]: the canonical form and the hashes behind trial ids;
//! - [`names`] and [`state`]: every name (models, data sets, optimizers,
//!   augmentations, states, failure classes) as a Rust enum, written once.
//!
//! Serde is versioned by defaults: every field a later version adds takes its
//! default when an older record lacks it, so stored specs and checkpoints load.

pub mod dataset;
pub mod digest;
pub mod identity;
pub mod keys;
pub mod knobs;
pub mod measures;
pub mod names;
pub mod state;
pub mod table;
pub mod trial;
pub mod validate;
pub mod value;

pub use dataset::DatasetReport;
pub use keys::{KeyDef, KEYS};
pub use knobs::ModelKnobs;
pub use measures::Measures;
pub use names::{
    Augmentation, DatasetName, DeviceRequirement, Family, KeepWeights, Optimizer, Preset, Timing,
    WdMode, LOCAL_DATA_DIR,
};
pub use state::{DatasetState, FailureClass, JobState, TrialState};
pub use trial::{Measure, TrialSpec};
pub use validate::SpecError;
pub use value::{Kind, Value};
