//! `vovd data fetch`: the command line of [`crate::data::fetch`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{print_verified, DataDirArgs};
use crate::cli::{output, CliError};
use crate::data::fetch::{self, ChecksumOverride, FetchOutcome, FetchRequest};
use crate::data::DatasetName;

/// Arguments of `vovd data fetch`.
#[derive(Debug, Args)]
#[command(
    after_help = "Downloads the published files (CIFAR-10: cifar-10-binary.tar.gz from \
the CIFAR page; Fashion-MNIST: the four IDX files from the data set's own mirror), verifies \
each against its published MD5 before anything is unpacked, decodes every record, and renames the result into <data dir>/NAME. An interrupted download resumes when run \
again. A data set that already verifies is left alone unless --force.

Examples:
  vovd data fetch cifar10
  vovd data fetch cifar10 --data-dir /var/lib/vovd/data --url http://mirror.site/datasets/
  vovd data fetch cifar10 --from /media/usb/cifar-10-binary.tar.gz
  vovd data fetch cifar10 --from site-cifar.tgz --checksum sha256:<64 hex digits>
  vovd data fetch fashion-mnist --force --from /usr/share/datasets/fashion-mnist \\
      --checksum train-images-idx3-ubyte.gz=md5:... (one per file: Debian re-packs them)"
)]
pub struct FetchArgs {
    /// The data set: cifar10 or fashion-mnist.
    pub name: DatasetName,
    /// Where the data sets live.
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// A mirror: base URL the published file names are appended to (or, for CIFAR-10, the archive's URL).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Install from an archive copied in by hand (or a directory holding the published files).
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    pub from: Option<PathBuf>,
    /// Verify against this checksum instead of the published one: ALGO:HEX, or FILE=ALGO:HEX
    /// (ALGO md5 or sha256); repeat for several files.
    #[arg(long, value_name = "[FILE=]ALGO:HEX")]
    pub checksum: Vec<ChecksumOverride>,
    /// Replace an installed data set even when it verifies.
    #[arg(long)]
    pub force: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A byte progress bar on stderr (drawn on a terminal only), after a plain line
/// naming the URL for logs.
fn bar(url: &str) -> ProgressBar {
    eprintln!("downloading {url}");
    let name = url.rsplit('/').next().unwrap_or(url);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub(super) fn run(args: &FetchArgs) -> Result<ExitCode, CliError> {
    let req = FetchRequest {
        name: args.name,
        root: args.dir.resolve()?,
        url: args.url.clone(),
        from: args.from.clone(),
        checksums: args.checksum.clone(),
        force: args.force,
    };
    let outcome = fetch::fetch(&req, &bar).map_err(|e| {
        let text = format!("vovd data fetch {}: {e}", args.name);
        if e.is_usage() {
            CliError::Usage(text)
        } else {
            CliError::Failed(text)
        }
    })?;
    let (state, verified, files) = match &outcome {
        FetchOutcome::AlreadyInstalled(v) => ("already installed", v, Vec::new()),
        FetchOutcome::Installed { verified, files } => ("installed", verified, files.clone()),
    };
    if args.json {
        output::print_json(&serde_json::json!({
            "name": args.name.to_string(),
            "state": state,
            "verified": verified,
            "files": files.iter().map(|(origin, t)| serde_json::json!({
                "from": origin,
                "bytes": t.as_ref().map(|t| t.bytes),
                "resumed_from": t.as_ref().map(|t| t.resumed_from),
                "retries": t.as_ref().map(|t| t.retries),
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        if state == "already installed" {
            eprintln!(
                "{}: already installed and verified; --force replaces it",
                args.name
            );
        }
        print_verified(args.name, state, verified)?;
    }
    Ok(ExitCode::SUCCESS)
}
