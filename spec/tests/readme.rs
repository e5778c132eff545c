//! The README's generated tables are their definitions': this test fails when
//! they differ. `VOV_UPDATE_README=1 cargo test -p vov-spec --test readme`
//! rewrites them.

use std::path::Path;

/// Checks (or, with `VOV_UPDATE_README`, rewrites) the README text between
/// `begin` and `end` against `want`.
fn generated(what: &str, begin: &str, end: &str, want: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(begin)
        .unwrap_or_else(|| panic!("README lacks the {what}'s begin marker {begin:?}"))
        + begin.len();
    let stop = start
        + text[start..]
            .find(end)
            .unwrap_or_else(|| panic!("README lacks the {what}'s end marker {end:?}"));
    if std::env::var_os("VOV_UPDATE_README").is_some() {
        let updated = format!("{}{want}{}", &text[..start], &text[stop..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        &text[start..stop],
        want,
        "README {what} differs from its definition; run VOV_UPDATE_README=1 cargo test -p vov-spec --test readme"
    );
}

/// One test for both tables, so that rewriting them never races.
#[test]
fn readme_tables_are_generated_from_their_definitions() {
    generated(
        "key table",
        "<!-- trial keys: generated from spec/src/keys.rs, do not edit -->\n",
        "<!-- end of trial keys -->",
        &vov_spec::table::markdown(),
    );
    generated(
        "failure-class table",
        "<!-- failure classes: generated from spec/src/state.rs, do not edit -->\n",
        "<!-- end of failure classes -->",
        &vov_spec::table::failures_markdown(),
    );
}
