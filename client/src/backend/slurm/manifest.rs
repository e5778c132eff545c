//! A sweep's manifest: one trial id a line; array index `i` runs line `i + 1`.
//! Lines are only ever appended, under an exclusive lock, so an index never
//! changes meaning and two vovctl processes never hand out the same one.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The array index of each of `ids`, appending the ids the manifest lacks.
pub fn indices(path: &Path, ids: &[&str]) -> io::Result<Vec<u32>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut added = String::new();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let index = match lines.iter().position(|l| l == id) {
            Some(i) => i,
            None => {
                lines.push((*id).to_string());
                added.push_str(id);
                added.push('\n');
                lines.len() - 1
            }
        };
        out.push(u32::try_from(index).map_err(io::Error::other)?);
    }
    if !added.is_empty() {
        // A torn last line (no newline) would join the next id.
        if !text.is_empty() && !text.ends_with('\n') {
            added.insert(0, '\n');
        }
        file.seek(SeekFrom::End(0))?;
        file.write_all(added.as_bytes())?;
        file.sync_data()?;
    }
    Ok(out)
}

/// The trial ids of a manifest, in index order (none when there is none yet).
pub fn read(path: &Path) -> io::Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_never_changes_and_new_ids_are_appended() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s/manifest");
        assert_eq!(indices(&path, &["a", "b"]).unwrap(), [0, 1]);
        assert_eq!(indices(&path, &["c", "a"]).unwrap(), [2, 0]);
        assert_eq!(read(&path).unwrap(), ["a", "b", "c"]);
    }
}
