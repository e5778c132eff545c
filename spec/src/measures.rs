//! What an evaluation of kept weights measures, as `vovd evaluate --measure`,
//! `vovctl evaluate --measure` and a sweep's `[[evaluate]]` name it: the
//! validation accuracy and the timings.

use crate::{Measure, Timing};

/// The measurement that is not a timing.
pub const ACCURACY: &str = "accuracy";

/// Everything, as a `--measure` list.
pub const ALL: &str = "accuracy,batch1,batch32";

/// An evaluation's measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measures {
    /// Take the validation accuracy.
    pub accuracy: bool,
    /// Timings to take.
    pub timings: Measure,
}

impl Measures {
    /// Parses a comma-separated list of [`ACCURACY`] and timing names; an
    /// unknown item is named with the known ones.
    pub fn parse(list: &str) -> Result<Measures, String> {
        let mut accuracy = false;
        let mut timings = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == ACCURACY {
                accuracy = true;
                continue;
            }
            let t: Timing = item.parse().map_err(|_| {
                format!(
                    "unknown measurement '{item}' (known: {ACCURACY}, {})",
                    Timing::NAMES.join(", ")
                )
            })?;
            timings.push(t);
        }
        Ok(Measures {
            accuracy,
            timings: Measure::from_timings(&timings),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_name_the_bad_item() {
        let m = Measures::parse("batch1, accuracy").unwrap();
        assert!(m.accuracy && m.timings.batch1 && !m.timings.batch32);
        let all = Measures::parse(ALL).unwrap();
        assert!(all.accuracy && all.timings == Measure::default());
        let e = Measures::parse("accuracy,latency").unwrap_err();
        assert!(e.contains("'latency'") && e.contains("batch32"), "{e}");
    }
}
