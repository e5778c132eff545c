//! Every name is defined once: each model, augmentation and failure-class name
//! appears as a string literal in exactly one non-test source file of the
//! workspace (this crate's `names.rs` or `state.rs`). Test code (after a file's
//! `#[cfg(test)]`, `tests.rs` modules, the test crates) and comments may spell
//! names out.

use std::path::{Path, PathBuf};

use vov_spec::{Augmentation, FailureClass, Preset};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") && !p.ends_with("tests.rs") {
            out.push(p);
        }
    }
}

/// The non-test part of every library and binary source file.
fn non_test_sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["spec/src", "proto/src", "daemon/src", "client/src"] {
        sources(&root.join(dir), &mut files);
    }
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            // Comments are not literals.
            let code = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (p, code)
        })
        .collect()
}

#[test]
fn names_appear_in_one_file() {
    let files = non_test_sources();
    let names = Preset::NAMES
        .iter()
        .chain(Augmentation::NAMES)
        .chain(FailureClass::NAMES);
    let mut wrong = Vec::new();
    for name in names {
        let literal = format!("\"{name}\"");
        let holders: Vec<String> = files
            .iter()
            .filter(|(_, code)| code.contains(&literal))
            .map(|(p, _)| p.display().to_string())
            .collect();
        if holders.len() != 1 {
            wrong.push(format!("{literal} in {holders:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "names written more than once:\n{}",
        wrong.join("\n")
    );
}
