//! `vovd data verify`: decode every installed data set and report one line each.

use std::process::ExitCode;

use clap::Args;

use super::{print_line, print_verified, DataDirArgs};
use crate::cli::{output, CliError};
use crate::data::verify::{self, Verdict};
use crate::data::DatasetName;

/// Arguments of `vovd data verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "Each data set is decoded completely: record counts, sizes, labels in \
range, and a SHA-256 of the decoded records (independent of how the files are compressed), \
compared with the install record `vovd data fetch` wrote and, for a complete Fashion-MNIST, with \
the published records. One line per data set: `NAME  STATE  train=N val=N sha256=HEX dir=DIR`, or \
`NAME  STATE  REASON`; with --json, `detail` is an object for a data set that verified and the \
reason's text otherwise. Exit 1 when one is \
broken (or when the one named is absent).

Examples:
  vovd data verify
  vovd data verify cifar10 --data-dir /var/lib/vovd/data
  vovd data verify --json"
)]
pub struct VerifyArgs {
    /// One data set [default: every one].
    pub name: Option<DatasetName>,
    /// Where the data sets live.
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// Print JSON (one array of objects) instead of lines.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(args: &VerifyArgs) -> Result<ExitCode, CliError> {
    let root = args.dir.resolve()?;
    let names: Vec<DatasetName> = match args.name {
        Some(n) => vec![n],
        None => DatasetName::ALL.to_vec(),
    };
    let mut failed = false;
    let mut json = Vec::new();
    for name in names {
        let verdict = verify::verify(name, &root);
        failed |=
            verdict.is_broken() || (args.name.is_some() && matches!(verdict, Verdict::Absent(_)));
        if args.json {
            json.push(to_json(name, &verdict));
            continue;
        }
        match &verdict {
            Verdict::Ok(v) => print_verified(name, "ok", v)?,
            Verdict::Generated => print_line(name, "ok", "generated on demand")?,
            Verdict::Absent(why) => print_line(name, "absent", why)?,
            Verdict::Broken(why) => print_line(name, "broken", why)?,
        }
    }
    if args.json {
        output::print_json(&json)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn to_json(name: DatasetName, verdict: &Verdict) -> serde_json::Value {
    let (state, detail) = match verdict {
        Verdict::Ok(v) => ("ok", serde_json::to_value(v).unwrap_or_default()),
        Verdict::Generated => ("ok", serde_json::json!("generated on demand")),
        Verdict::Absent(why) => ("absent", serde_json::json!(why)),
        Verdict::Broken(why) => ("broken", serde_json::json!(why)),
    };
    serde_json::json!({ "name": name.to_string(), "state": state, "detail": detail })
}
