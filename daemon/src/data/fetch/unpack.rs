//! Turning verified files into the directory the loader reads, in a temporary
//! directory that is renamed into place only when complete.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::source::Layout;
use super::FetchError;

/// A verified file to install: where it is, and whether it may be moved (a
/// download) or must be copied (a file given with `--from`).
#[derive(Debug, Clone)]
pub(super) struct Verified {
    /// The published file name.
    pub(super) name: &'static str,
    /// Its path.
    pub(super) path: PathBuf,
    /// Whether it belongs to the fetch (a download) and may be moved.
    pub(super) owned: bool,
}

/// Fills the empty directory `dest` from `files` as `layout` says.
pub(super) fn unpack(layout: Layout, files: &[Verified], dest: &Path) -> Result<(), FetchError> {
    match layout {
        Layout::AsIs => {
            for f in files {
                let to = dest.join(f.name);
                if f.owned {
                    std::fs::rename(&f.path, &to)
                } else {
                    std::fs::copy(&f.path, &to).map(|_| ())
                }
                .map_err(|e| FetchError::io(&to, e))?;
            }
            Ok(())
        }
        Layout::TarGz { required, optional } => {
            for f in files {
                untar(&f.path, required, optional, dest)?;
            }
            Ok(())
        }
    }
}

/// Takes the members named in `required` and `optional` (by file name, at any
/// depth) out of the archive into `dest`; anything else is skipped, so no path
/// in the archive can write outside `dest`.
fn untar(
    archive: &Path,
    required: &[&str],
    optional: &[&str],
    dest: &Path,
) -> Result<(), FetchError> {
    let bad = |reason: String| FetchError::Archive {
        path: archive.to_path_buf(),
        reason,
    };
    let file = File::open(archive).map_err(|e| FetchError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut taken = BTreeSet::new();
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("unreadable archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| bad(format!("bad member name: {e}")))?
            .into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(&known) = required.iter().chain(optional).find(|&&k| k == name) else {
            continue;
        };
        if !taken.insert(known) {
            return Err(bad(format!("{known} appears twice in the archive")));
        }
        let to = dest.join(known);
        let mut out = File::create(&to).map_err(|e| FetchError::io(&to, e))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| bad(format!("reading member {}: {e}", path.display())))?;
        out.sync_all().map_err(|e| FetchError::io(&to, e))?;
    }
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !taken.contains(r))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(bad(format!(
            "the archive lacks {} (not the binary version?)",
            missing.join(", ")
        )))
    }
}
