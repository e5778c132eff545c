//! The README's tables, generated from their one definition (a test keeps the
//! README in step with them): the trial keys from the registry, the failure
//! classes from [`FailureClass`].

use crate::keys::{KeyDef, KEYS};
use crate::state::FailureClass;

fn default_text(k: &KeyDef) -> String {
    if k.required {
        return "required".into();
    }
    match k.default_value() {
        Some(v) => format!("`{v}`"),
        None => "unset".into(),
    }
}

fn meaning(k: &KeyDef) -> String {
    let unit = if k.unit.is_empty() {
        String::new()
    } else {
        format!(" ({})", k.unit)
    };
    format!("{}{unit}; {}", k.help, k.kind.describe())
}

/// The key table in Markdown: key, default, meaning with type and range.
pub fn markdown() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            k.name,
            default_text(k),
            meaning(k)
        ));
    }
    out
}

/// When a trial that failed so is placed again, from [`FailureClass::retried`].
fn retried_text(class: FailureClass) -> &'static str {
    match (class.retried(false), class.retried(true)) {
        (true, _) => "always (attempts permitting)",
        (false, true) => "with `retry_failed`",
        (false, false) => "never",
    }
}

/// The failure-class table in Markdown: class, meaning, whether it is retried.
pub fn failures_markdown() -> String {
    let mut out = String::from("| class | meaning | retried |\n|---|---|---|\n");
    for class in FailureClass::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            class.as_str(),
            class.meaning(),
            retried_text(*class)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_class_has_a_row() {
        let table = failures_markdown();
        assert_eq!(table.lines().count(), FailureClass::ALL.len() + 2);
        assert!(table.contains("| `disk_full` | "), "{table}");
        assert!(table.contains("| `host_lost` | its host"), "{table}");
        assert!(table
            .lines()
            .any(|l| l.starts_with("| `invalid_spec`") && l.ends_with("| never |")));
    }
}
