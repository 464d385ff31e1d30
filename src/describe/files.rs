//! Reading the files an app description names (the description itself,
//! `.env`, `env_file`, manifest folders) from the user's disk: regular
//! files only and bounded in size, so that a poisoned repository cannot make
//! an import block on a FIFO, read a device or `/proc`, or eat memory.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest description read (app.yaml, compose file, manifest, catalog).
pub const MAX_SPEC_FILE: u64 = super::load::MAX_SPEC_BYTES as u64;
/// Largest env file read (real ones are a few hundred bytes).
pub const MAX_ENV_FILE: u64 = 1 << 20;
/// Most files read from one manifest folder.
pub const MAX_MANIFEST_FILES: usize = 2000;

/// Pseudo file systems whose "files" are windows into the running system.
const REFUSED_ROOTS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Reads a regular file of at most `limit` bytes as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, String> {
    String::from_utf8(read_bytes(path, limit)?).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Reads a regular file of at most `limit` bytes.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    if let Ok(real) = path.canonicalize()
        && REFUSED_ROOTS.iter().any(|r| real.starts_with(r))
    {
        return Err(format!(
            "refusing to read {}: it is not a regular file on disk",
            real.display()
        ));
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is
    // then checked on the open file, so a swap after the check cannot win.
    use std::os::unix::fs::OpenOptionsExt;
    const O_NONBLOCK: i32 = 0o4000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file (a folder, FIFO, socket or device)".into());
    }
    if meta.len() > limit {
        return Err(format!("{} bytes; the limit is {limit}", meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("more than {limit} bytes; the limit is {limit}"));
    }
    Ok(bytes)
}

/// The `.yaml`, `.yml` and `.json` files under `root`, sorted. Symbolic
/// links are followed only when they stay inside `root`, each folder is read
/// once (so link cycles end), and at most [`MAX_MANIFEST_FILES`] are taken.
pub fn manifest_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    let base = root.canonicalize().map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![base.clone()];
    let mut out = Vec::new();
    while let Some(dir) = todo.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path();
            let Ok(real) = path.canonicalize() else {
                continue; // a dangling link
            };
            if !real.starts_with(&base) {
                continue;
            }
            if real.is_dir() {
                todo.push(real);
            } else if real.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            {
                // Named as the user named the folder, for messages.
                out.push(root.join(path.strip_prefix(&base).unwrap_or(&path)));
                if out.len() > MAX_MANIFEST_FILES {
                    return Err(format!(
                        "more than {MAX_MANIFEST_FILES} manifest files under {}",
                        root.display()
                    ));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        if status.is_ok_and(|s| s.success()) {
            let e = read_text(&fifo, 100).unwrap_err();
            assert!(e.contains("not a regular file"), "{e}");
        }
        for p in ["/proc/self/environ", "/dev/zero", "/etc"] {
            assert!(read_text(Path::new(p), 100).is_err(), "{p}");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, "x".repeat(101)).unwrap();
        assert!(read_text(&big, 100).unwrap_err().contains("limit is 100"));
        std::fs::write(&big, "A=1\n").unwrap();
        assert_eq!(read_text(&big, 100).unwrap(), "A=1\n");
    }

    #[test]
    fn manifest_walk_stays_inside_and_ends_on_cycles() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("m");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.yaml"), "").unwrap();
        std::fs::write(root.join("sub/b.yml"), "").unwrap();
        std::fs::write(dir.path().join("outside.yaml"), "").unwrap();
        std::os::unix::fs::symlink(".", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("..", root.join("sub/loop2")).unwrap();
        std::os::unix::fs::symlink("../outside.yaml", root.join("out.yaml")).unwrap();
        let files = manifest_files(&root).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.yaml", "sub/b.yml"]);
    }
}
