//! Sweep parsing, expansion and identity.

use proptest::prelude::*;

use super::*;

const BASIC: &str = r#"
name = "basic"
repeats = 2
[base]
model = "vovnet-27-slim"
dataset = "synthetic"
epochs = 2
[grid]
lr = [0.001, 0.01, 0.1]
augmentation = ["none", "standard"]
"#;

#[test]
fn grid_times_repeats() {
    let s = from_text(BASIC, &[]).unwrap();
    assert_eq!(s.trials.len(), 3 * 2 * 2);
    let ids: std::collections::HashSet<_> = s.trials.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids.len(), 12, "distinct ids");
    let t = &s.trials[0];
    assert_eq!(t.spec.epochs, 2);
    assert_eq!(t.spec.batch_size, 128, "defaults filled in");
    assert_eq!(t.label, "vovnet-27-slim augmentation=none lr=0.001");
    assert_ne!(
        s.trials[0].spec.seed, s.trials[1].spec.seed,
        "repeats get their own seeds"
    );
    assert_eq!(s.trials[0].config_id, s.trials[1].config_id);
}

#[test]
fn set_overrides_everything() {
    let s = from_text(
        BASIC,
        &[
            "epochs=3".into(),
            "repeats=1".into(),
            "model=densenet-koshian-2".into(),
        ],
    )
    .unwrap();
    assert_eq!(s.trials.len(), 6);
    assert!(s
        .trials
        .iter()
        .all(|t| t.spec.epochs == 3 && t.spec.model == "densenet-koshian-2"));
    let e = from_text(BASIC, &["epoch=3".into()])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--set epoch: unknown key"), "{e}");
    let e = from_text(BASIC, &["epochs=-1".into()])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--set epochs: -1 is out of range"), "{e}");
}

#[test]
fn random_trials_and_duplicates() {
    let text = r#"
name = "r"
seed = 5
[base]
model = "densenet-koshian-2"
[random]
samples = 4
lr = { loguniform = [1e-4, 1e-2] }
growth_rate = { uniform = [8, 32] }
augmentation = { choice = ["none", "flip"] }
[[trial]]
model = "vovnet-39"
epochs = 150
[[trial]]
model = "vovnet-39"
epochs = 150
"#;
    let s = from_text(text, &[]).unwrap();
    assert_eq!(
        s.trials.len(),
        4 + 1,
        "the duplicate explicit trial is kept once"
    );
    for t in &s.trials[..4] {
        assert!((1e-4..1e-2).contains(&t.spec.lr));
        let g = t.spec.knobs.as_ref().unwrap().growth_rate.unwrap();
        assert!((8..=32).contains(&g));
    }
    assert_eq!(s.trials[4].spec.epochs, 150);
    let again = from_text(text, &[]).unwrap();
    assert_eq!(again.trials, s.trials, "seeded draws are reproducible");
}

/// The corpus of bad files: each names its key.
#[test]
fn bad_files_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("name = \"x\"\n[base\nmodel = 1", "not valid TOML"),
        ("name = \"x\"\n[base]\nmodle = \"vovnet-39\"", "base.modle: unknown key"),
        ("name = \"x\"\nfoo = 1", "foo: unknown top-level key"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\nepochs = \"ten\"", "base.epochs: expected an integer"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\n[grid]\nlr = []", "grid.lr: empty grid"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\n[grid]\nkeep_weights = [\"final\", \"best\"]", "grid.keep_weights: cannot be a grid axis"),
        ("name = \"x\"\n[base]\nmodel = \"alexnet\"", "base.model: unknown model 'alexnet'"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\nepochs = -5", "base.epochs: -5 is out of range"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\n[random]\nsamples = 2\nlr = { loguniform = [0, 0.1] }", "random.lr.loguniform: bounds must be above 0"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\n[grid]\nepochs = [1, 0]", "grid.epochs[1]: 0 is out of range"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\ngrowth_rate = 12", "base.growth_rate: does not apply to vovnet"),
        ("name = \"x\"\n[base]\nepochs = 2", "base.model: required"),
        ("[base]\nmodel = \"vovnet-39\"", "name: required"),
        ("name = \"a b\"", "name: \"a b\" must be"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\n[grid]\nlr = 0.1", "grid.lr: a grid key takes a list"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\n[random]\nlr = { uniform = [0.1, 0.2] }", "random.samples: required"),
        ("name = \"x\"\n[base]\nmodel = \"vovnet-39\"\noptimizer = \"adamw\"\nwd_mode = \"l2\"\nweight_decay = 0.1", "base.wd_mode: l2: adamw"),
        ("name = \"x\"\n[hosts]\naddresses = \"a:1\"", "hosts.addresses: expected a list"),
    ];
    for (text, needle) in cases {
        let e = from_text(text, &[]).unwrap_err().to_string();
        assert!(e.contains(needle), "{needle}: got {e}");
    }
}

#[test]
fn ids_do_not_depend_on_layout_or_explicit_defaults() {
    let a = from_text(
        "name = \"a\"\n[base]\nmodel = \"vovnet-39\"\ndataset = \"synthetic\"\nepochs = 3\n",
        &[],
    )
    .unwrap();
    let b = from_text("name = \"b\"\n[base]\nepochs = 3\ndataset = \"synthetic\"\nbatch_size = 128\nmodel = \"vovnet-39\"\n", &[]).unwrap();
    assert_eq!(a.trials[0].id, b.trials[0].id);
    let c = from_text(
        "name = \"c\"\n[base]\nmodel = \"vovnet-39\"\ndataset = \"synthetic\"\nepochs = 4\n",
        &[],
    )
    .unwrap();
    assert_ne!(a.trials[0].id, c.trials[0].id);
}

proptest! {
    /// Expansion count: product of grid sizes x random samples x repeats.
    #[test]
    fn expansion_count(sizes in proptest::collection::vec(1usize..4, 0..3), samples in 0u32..3, repeats in 1u32..4) {
        let keys = ["lr", "weight_decay", "bn_momentum"];
        let mut text = format!("name = \"p\"\nrepeats = {repeats}\n[base]\nmodel = \"vovnet-39\"\n[grid]\n");
        for (k, n) in keys.iter().zip(&sizes) {
            let values: Vec<String> = (0..*n).map(|i| format!("{}", 0.01 * (i + 1) as f64)).collect();
            text += &format!("{k} = [{}]\n", values.join(", "));
        }
        if samples > 0 {
            text += &format!("[random]\nsamples = {samples}\nmomentum = {{ uniform = [0.1, 0.9] }}\n");
        }
        let s = from_text(&text, &[]).unwrap();
        let points: usize = sizes.iter().product();
        let expected = points * samples.max(1) as usize * repeats as usize;
        prop_assert_eq!(s.trials.len(), expected);
    }

    /// Trial ids are stable: the same file gives the same ids, and they depend on
    /// the values, not on the order keys are written in.
    #[test]
    fn trial_ids_are_stable(epochs in 1i64..50, lr in 1u32..100, swap in any::<bool>()) {
        let lines = [format!("epochs = {epochs}"), format!("lr = {}", f64::from(lr) / 1000.0)];
        let (a, b) = if swap { (&lines[1], &lines[0]) } else { (&lines[0], &lines[1]) };
        let text = format!("name = \"s\"\n[base]\nmodel = \"vovnet-39\"\n{a}\n{b}\n");
        let one = from_text(&text, &[]).unwrap();
        let canonical = format!("name = \"s\"\n[base]\nmodel = \"vovnet-39\"\n{}\n{}\n", lines[0], lines[1]);
        let two = from_text(&canonical, &[]).unwrap();
        prop_assert_eq!(&one.trials[0].id, &two.trials[0].id);
        prop_assert_eq!(one.trials[0].spec.seed, two.trials[0].spec.seed);
    }
}

const README_BEGIN: &str =
    "<!-- sweep keys: generated from client/src/sweep/params.rs, do not edit -->\n";
const README_END: &str = "<!-- end of sweep keys -->";

/// The README's sweep-key table is [`params::PARAMS`]'s;
/// `VOV_UPDATE_README=1 cargo test -p vovctl readme` rewrites it.
#[test]
fn readme_sweep_key_table_is_generated_from_the_params() {
    crate::readme::check_section(README_BEGIN, README_END, &params::markdown());
}

#[test]
fn a_sweep_above_max_trials_is_refused_before_expanding() {
    let text = r#"
name = "huge"
[base]
model = "vovnet-27-slim"
[grid]
lr = [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3]
epochs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
batch_size = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
"#;
    let e = from_text(text, &["max_trials=999".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "the sweep expands to 10 (grid.lr) x 10 (grid.epochs) x 10 (grid.batch_size) x 1 (repeats) = 1000 trials, above max_trials = 999"
        ),
        "{e}"
    );
    assert_eq!(
        from_text(text, &["max_trials=1000".into()])
            .unwrap()
            .trials
            .len(),
        1000
    );
    let e = from_text(text, &["max_trials=0".into()])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--set max_trials: 0 is out of range"), "{e}");
}
