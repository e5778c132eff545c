//! The README's key table is the registry's: this test fails when they differ.
//! `VOV_UPDATE_README=1 cargo test -p vov-spec --test readme` rewrites it.

use std::path::Path;

const BEGIN: &str = "<!-- trial keys: generated from spec/src/keys.rs, do not edit -->\n";
const END: &str = "<!-- end of trial keys -->";

#[test]
fn readme_key_table_is_generated_from_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(BEGIN)
        .expect("README lacks the key table's begin marker")
        + BEGIN.len();
    let end = start
        + text[start..]
            .find(END)
            .expect("README lacks the key table's end marker");
    let want = vov_spec::table::markdown();
    if std::env::var_os("VOV_UPDATE_README").is_some() {
        let updated = format!("{}{want}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        &text[start..end],
        want,
        "README key table differs from the registry; run VOV_UPDATE_README=1 cargo test -p vov-spec --test readme"
    );
}
