//! Adaptive search: which trials a sweep starts, continues and stops.
//!
//! A sweep file's `[search]` table ([`SearchDef`]) picks the kind: `grid`
//! (every configuration to its full epochs, today's behaviour, `[random]`
//! included), `asha` (asynchronous successive halving: trials pause at rungs
//! and only the best continue, from their checkpoints) or `median` (a trial
//! whose best value so far is worse than the median of the others at the same
//! epoch is stopped). The rules themselves are pure functions over recorded
//! metric sequences ([`asha`], [`median`]); the scheduler applies them and
//! writes every decision to the store before acting on it.

pub mod asha;
mod def;
pub mod median;
#[cfg(test)]
mod tests;

pub use def::{keys_markdown, parse, Metric, Mode, SearchDef, SearchKind, SECTION};

/// One trial's recorded values of the search metric, by epoch (from 1).
pub type History = std::collections::BTreeMap<u32, f64>;
