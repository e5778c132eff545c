//! Tests that keep the README's generated tables equal to their sources.

/// Checks that the README's text between `begin` and `end` is `want`;
/// `VOV_UPDATE_README=1 cargo test -p vovctl readme` rewrites it instead.
pub(crate) fn check_section(begin: &str, end: &str, want: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find(begin).expect("begin marker") + begin.len();
    let stop = start + text[start..].find(end).expect("end marker");
    if std::env::var_os("VOV_UPDATE_README").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &text[..start], &text[stop..])).unwrap();
        return;
    }
    assert_eq!(
        &text[start..stop],
        want,
        "run VOV_UPDATE_README=1 cargo test -p vovctl readme"
    );
}
