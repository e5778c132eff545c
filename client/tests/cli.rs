//! Black-box tests of the `vovctl` binary that need no daemon: the bad sweep
//! corpus in configs/bad, help and completions.

use std::path::PathBuf;
use std::process::Command;

fn vovctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vovctl"))
        .args(args)
        .env_remove("VOVCTL_HOSTS")
        .output()
        .expect("vovctl runs")
}

fn configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

#[test]
fn bad_sweep_files_exit_2_naming_the_key() {
    let cases = [
        ("syntax.toml", "not valid TOML"),
        ("unknown-key.toml", "base.lerning_rate: unknown key"),
        (
            "wrong-type.toml",
            "base.epochs: expected an integer, got a string",
        ),
        ("empty-grid.toml", "grid.weight_decay: empty grid"),
        (
            "unknown-model.toml",
            "base.model: unknown model 'resnet-50'",
        ),
        ("negative-epochs.toml", "base.epochs: -3 is out of range"),
        (
            "loguniform-zero.toml",
            "random.lr.loguniform: bounds must be above 0",
        ),
        (
            "search-eta.toml",
            "search.reduction_factor: 1 is out of range",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("r.db");
    for (file, needle) in cases {
        let path = configs().join("bad").join(file);
        let out = vovctl(&[
            "sweep",
            path.to_str().unwrap(),
            "--dry-run",
            "--store",
            store.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(needle), "{file}: {err}");
    }
    let out = vovctl(&["sweep", "/nonexistent/sweep.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sweep.toml"));
}

#[test]
fn shipped_configs_expand() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("r.db");
    for (file, trials) in [
        ("all.toml", 8),
        ("quick.toml", 3),
        ("regularisation.toml", 8),
        ("search-fmnist.toml", 27),
    ] {
        let path = configs().join(file);
        let out = vovctl(&[
            "sweep",
            path.to_str().unwrap(),
            "--dry-run",
            "--store",
            store.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&format!("{trials} trials")), "{file}: {text}");
    }
}

#[test]
fn help_and_completions() {
    let out = vovctl(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for verb in [
        "sweep",
        "attach",
        "hosts",
        "status",
        "cancel",
        "results",
        "report",
        "completions",
    ] {
        assert!(text.contains(verb), "help lacks {verb}");
    }
    let out = vovctl(&["sweep", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--dry-run",
        "--detach",
        "--rerun",
        "--set",
        "--hosts",
        "--store",
        "--json",
        "--lease",
    ] {
        assert!(text.contains(flag), "sweep help lacks {flag}");
    }
    let out = vovctl(&["completions", "bash"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("vovctl"));
    let out = vovctl(&["report", "nothing", "--store", "/nonexistent/r.db"]);
    assert_eq!(out.status.code(), Some(2));
}
