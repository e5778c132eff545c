//! The fetch itself: checksums resolved, files gathered (downloaded or taken
//! from `--from`), verified, unpacked, decoded and renamed into place.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::checksum::Checksum;
use super::download::{download, Transfer};
use super::source::{source, RemoteFile, Source};
use super::staging::Staging;
use super::unpack::{unpack, Verified as FileOk};
use super::{BarFactory, FetchError, FetchOutcome, FetchRequest};
use crate::data::verify::{self, Manifest, Verdict, MANIFEST};

/// Fetches `req.name` into `req.root` (see the module docs).
pub fn fetch(req: &FetchRequest, bars: BarFactory<'_>) -> Result<FetchOutcome, FetchError> {
    let src = source(req.name).ok_or_else(|| {
        FetchError::Usage(format!(
            "{} is generated on demand; there is nothing to fetch",
            req.name
        ))
    })?;
    let sums = checksums(src, req)?;
    if req.from.is_some() && req.url.is_some() {
        return Err(FetchError::Usage("give --url or --from, not both".into()));
    }
    // Before the lock, so that checking an installed set writes nothing; the lock
    // is taken without waiting (a second fetch is refused as busy), so no fetch
    // can find the set installed by another while it waited.
    if !req.force {
        if let Verdict::Ok(v) = verify::verify(req.name, &req.root) {
            return Ok(FetchOutcome::AlreadyInstalled(v));
        }
    }
    let staging = Staging::open(&req.root, req.name)?;
    let result = gather_and_install(src, req, &sums, &staging, bars);
    // Downloads proven bad are gone already (a checksum mismatch removes its
    // file); files that matched their checksums but do not decode go too. What
    // is left after any other failure is kept for the next run to resume.
    let proven_bad = matches!(
        result,
        Err(FetchError::Decode(_) | FetchError::Archive { .. })
    );
    let keep = result.is_err() && !proven_bad && staging.holds_partial();
    staging.finish(keep);
    result
}

/// The checksum of each file: the published one unless `--checksum` replaces it.
fn checksums(src: &Source, req: &FetchRequest) -> Result<Vec<Checksum>, FetchError> {
    let names: Vec<&str> = src.files.iter().map(|f| f.name).collect();
    let mut sums: Vec<Checksum> = src.files.iter().map(RemoteFile::checksum).collect();
    for o in &req.checksums {
        let i = match &o.file {
            None if names.len() == 1 => 0,
            None => {
                return Err(FetchError::Usage(format!(
                    "--checksum {}: {} has {} files; name one as FILE=ALGO:HEX ({})",
                    o.checksum,
                    req.name,
                    names.len(),
                    names.join(", ")
                )))
            }
            Some(f) => names.iter().position(|n| n == f).ok_or_else(|| {
                FetchError::Usage(format!(
                    "--checksum {f}=...: {} has no file {f} (its files: {})",
                    req.name,
                    names.join(", ")
                ))
            })?,
        };
        sums[i] = o.checksum.clone();
    }
    Ok(sums)
}

fn gather_and_install(
    src: &Source,
    req: &FetchRequest,
    sums: &[Checksum],
    staging: &Staging,
    bars: BarFactory<'_>,
) -> Result<FetchOutcome, FetchError> {
    let mut files = Vec::new();
    let mut report = Vec::new();
    for (file, sum) in src.files.iter().zip(sums) {
        let (ok, origin, transfer) = gather(src, file, req, staging, bars)?;
        if let Err(e) = sum.check_file(&ok.path, file.name) {
            if ok.owned {
                let _ = std::fs::remove_file(&ok.path);
            }
            return Err(e);
        }
        files.push(ok);
        report.push((origin, transfer));
    }
    let new = staging.fresh_unpack_dir()?;
    unpack(src.layout, &files, &new)?;
    let verified = verify::verify_dir(req.name, &new)?;
    write_manifest(&new, src, &report, sums, &verified)?;
    let target = req.root.join(src.dir);
    staging.swap_into_place(&new, &target)?;
    let verified = verify::Verified {
        dir: target,
        recorded: true,
        ..verified
    };
    Ok(FetchOutcome::Installed {
        verified,
        files: report,
    })
}

/// One file: its local path, its origin, and the transfer (when downloaded).
fn gather(
    src: &Source,
    file: &RemoteFile,
    req: &FetchRequest,
    staging: &Staging,
    bars: BarFactory<'_>,
) -> Result<(FileOk, String, Option<Transfer>), FetchError> {
    if let Some(from) = &req.from {
        let path = from_path(from, file, src.files.len())?;
        let origin = path.display().to_string();
        let ok = FileOk {
            name: file.name,
            path,
            owned: false,
        };
        return Ok((ok, origin, None));
    }
    let url = url_for(req.url.as_deref(), src, file);
    let dest = staging.downloads().join(file.name);
    let transfer = if dest.is_file() {
        // Completed by an earlier run that stopped before installing.
        None
    } else {
        let bar = bars(&url);
        let t = download(&url, &dest, &bar);
        bar.finish_and_clear();
        Some(t?)
    };
    let ok = FileOk {
        name: file.name,
        path: dest,
        owned: true,
    };
    Ok((ok, url, transfer))
}

/// The URL of `file`: below the mirror `--url` (or the published base URL); a
/// one-file data set's `--url` may name the archive itself (`.tar.gz`, `.tgz`).
fn url_for(mirror: Option<&str>, src: &Source, file: &RemoteFile) -> String {
    let names_archive = |u: &str| u.ends_with(".tar.gz") || u.ends_with(".tgz");
    match mirror {
        None => format!("{}{}", src.base_url, file.name),
        Some(u) if u.ends_with('/') => format!("{u}{}", file.name),
        Some(u) if src.files.len() == 1 && names_archive(u) => u.to_string(),
        Some(u) => format!("{u}/{}", file.name),
    }
}

/// `--from`: a directory holding the files by name, or (for a one-file data
/// set) the file itself.
fn from_path(from: &Path, file: &RemoteFile, count: usize) -> Result<PathBuf, FetchError> {
    let path = if from.is_dir() {
        from.join(file.name)
    } else if count == 1 {
        from.to_path_buf()
    } else {
        return Err(FetchError::Usage(format!(
            "--from {}: this data set has {count} files; give the directory holding them",
            from.display()
        )));
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(FetchError::Usage(format!(
            "--from: {} is not a file",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FetchError::Usage(format!(
            "--from: {} does not exist",
            path.display()
        ))),
        Err(e) => Err(FetchError::io(&path, e)),
    }
}

fn write_manifest(
    dir: &Path,
    src: &Source,
    report: &[(String, Option<Transfer>)],
    sums: &[Checksum],
    v: &verify::Verified,
) -> Result<(), FetchError> {
    let m = Manifest {
        name: src.name.to_string(),
        source: report.iter().map(|(o, _)| o.clone()).collect(),
        checksums: sums.iter().map(ToString::to_string).collect(),
        train_records: v.train_records,
        val_records: v.val_records,
        records_sha256: v.records_sha256.clone(),
        installed_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&m).unwrap_or_default() + "\n";
    std::fs::write(&path, text).map_err(|e| FetchError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetName;

    #[test]
    fn urls_follow_the_mirror_form() {
        let cifar = source(DatasetName::Cifar10).unwrap();
        let f = &cifar.files[0];
        assert_eq!(
            url_for(None, cifar, f),
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
        );
        assert_eq!(
            url_for(Some("http://m/data/"), cifar, f),
            "http://m/data/cifar-10-binary.tar.gz"
        );
        assert_eq!(url_for(Some("http://m/c.tgz"), cifar, f), "http://m/c.tgz");
        assert_eq!(
            url_for(Some("http://m/datasets"), cifar, f),
            "http://m/datasets/cifar-10-binary.tar.gz"
        );
        let fm = source(DatasetName::FashionMnist).unwrap();
        assert_eq!(
            url_for(Some("http://m/fm"), fm, &fm.files[1]),
            "http://m/fm/train-labels-idx1-ubyte.gz"
        );
    }
}
