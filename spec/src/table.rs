//! The README's key table, generated from the registry (a test keeps the README
//! in step with it).

use crate::keys::{KeyDef, KEYS};

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
