//! A dependency's data moved between Docker engines without any tool in
//! its image: its directory leaves the stopped container as a tar stream,
//! the destination volume is emptied, the stream is unpacked into it
//! through a helper container of the proxy image, and the volume is read
//! back and compared file by file (size and SHA-256).

use super::docker_host::client::{ContainerPlan, Host};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Removes everything inside `dir`, keeping `dir` (a volume's mount).
pub fn empty_dir(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Empties a volume through a one-off root container of the helper image:
/// a copy then replaces the volume's content instead of adding to it (a
/// database directory must not keep files the source no longer has).
async fn clear_volume(dst: &Host, volume: &str, helper_image: &str) -> Result<(), String> {
    let name = format!("{volume}-clear");
    let _ = dst.remove(&name).await;
    let plan = ContainerPlan {
        name: &name,
        image: helper_image,
        labels: Default::default(),
        // The image's entrypoint is `deployment-manager proxy`.
        command: vec!["empty-dir".into(), "/target".into()],
        network: "none",
        binds: vec![format!("{volume}:/target")],
        user: Some("0:0".into()),
        one_off: true,
        ..Default::default()
    };
    dst.create(&plan).await?;
    let exit = dst
        .run_to_exit(&name, std::time::Duration::from_secs(120))
        .await?;
    let logs = dst.tail(&name, 5).await;
    let _ = dst.remove(&name).await;
    if exit != Some(0) {
        return Err(format!(
            "could not empty volume {volume} before the copy: {logs}"
        ));
    }
    Ok(())
}

/// Copies `path` of a (stopped) container into a volume on another (or the
/// same) engine, through a created-never-started helper container that
/// mounts the volume: no shell or tool is needed in any image. The volume
/// is emptied first and read back after, file by file.
pub async fn copy_volume(
    src: &Host,
    container: &str,
    path: &str,
    dst: &Host,
    volume: &str,
    profile: &str,
    helper_image: &str,
) -> Result<Copied, String> {
    dst.ensure_volume(volume, profile).await?;
    clear_volume(dst, volume, helper_image).await?;
    let helper = format!("{volume}-copy");
    let _ = dst.remove(&helper).await;
    let plan = ContainerPlan {
        name: &helper,
        image: helper_image,
        labels: Default::default(),
        command: vec!["version".into()],
        network: "none",
        binds: vec![format!("{volume}:/target")],
        ..Default::default()
    };
    dst.create(&plan).await?;
    let archive = download(src, container, path).await?;
    let sent = manifest(&archive).map_err(|e| format!("read {path} of {container}: {e}"))?;
    let bytes = archive.len() as u64;
    // Without `copyUIDGID` the engine keeps the archive's owners (with it,
    // everything would belong to the helper's user). It ignores the `./`
    // entry of the extraction directory, so the volume's own owner and
    // mode (a database server refuses a data directory not its own) only
    // come through as the `target/` entry of an archive extracted at `/`.
    let up = match under("target", &archive) {
        Ok(rooted) => dst
            .docker
            .upload_to_container(
                &helper,
                Some(UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                bollard::body_full(rooted.into()),
            )
            .await
            .map_err(|e| format!("write into volume {volume}: {e}")),
        Err(e) => Err(format!("read {path} of {container}: {e}")),
    };
    // Verified by reading the volume back through the same helper.
    let checked = match up {
        Ok(()) => download(dst, &helper, "/target").await.and_then(|back| {
            manifest(&back).map_err(|e| format!("read back volume {volume}: {e}"))
        }),
        Err(e) => Err(e),
    };
    let _ = dst.remove(&helper).await;
    let found = checked?;
    let differ = differences(&sent, &found);
    if !differ.is_empty() {
        return Err(format!(
            "volume {volume} differs from {path} of {container} after the copy: {}",
            differ.join(", ")
        ));
    }
    Ok(Copied {
        bytes,
        files: sent.keys().filter(|k| !k.ends_with('/')).count(),
    })
}

/// The same archive with every entry under `dir/` (`./x` → `dir/x`, the
/// root `./` → `dir/`).
fn under(dir: &str, archive: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().to_string();
        let inside = if path == "." {
            ""
        } else {
            path.trim_start_matches("./")
        };
        let name = format!("{dir}/{inside}");
        let mut header = entry.header().clone();
        match entry.header().entry_type() {
            tar::EntryType::Link | tar::EntryType::Symlink => {
                // Hard links name a path inside the archive; symlinks
                // keep their target as it is.
                let target = entry
                    .link_name()?
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let target = if header.entry_type() == tar::EntryType::Link {
                    format!("{dir}/{}", target.trim_start_matches("./"))
                } else {
                    target
                };
                out.append_link(&mut header, &name, target)?;
            }
            _ => out.append_data(&mut header, &name, &mut entry)?,
        }
    }
    out.into_inner()
}

/// What a volume copy moved, verified file by file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Copied {
    /// Size of the archive sent.
    pub bytes: u64,
    /// Regular files whose size and SHA-256 match on both sides.
    pub files: usize,
}

async fn download(host: &Host, container: &str, path: &str) -> Result<Vec<u8>, String> {
    host.docker
        .download_from_container(
            container,
            Some(DownloadFromContainerOptions {
                path: format!("{}/.", path.trim_end_matches('/')),
            }),
        )
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .map_err(|e| format!("read {path} of {container}: {e}"))
}

/// Each regular file of a tar archive by its path inside the copied
/// directory (the leading `./` dropped), with its size and SHA-256.
pub fn manifest(archive: &[u8]) -> std::io::Result<BTreeMap<String, (u64, String)>> {
    let mut out = BTreeMap::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular && kind != tar::EntryType::Directory {
            continue;
        }
        // Owner and mode count too: a server refuses files not its own.
        let h = entry.header();
        let num = |x: std::io::Result<u64>| x.unwrap_or_default();
        let meta = format!(
            "{}:{} {:o}",
            num(h.uid()),
            num(h.gid()),
            h.mode().unwrap_or_default() & 0o7777
        );
        // Both sides are read as `dir/.`, whose entries are `./x`.
        let path = entry.path()?.to_string_lossy().to_string();
        let inside = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if kind == tar::EntryType::Directory {
            out.insert(format!("{inside}/"), (0, meta));
            continue;
        }
        let mut hasher = Sha256::new();
        let size = std::io::copy(&mut entry, &mut hasher)?;
        out.insert(inside, (size, format!("{:x} {meta}", hasher.finalize())));
    }
    Ok(out)
}

/// Files missing, extra or changed on the second side, by path.
pub fn differences(
    sent: &BTreeMap<String, (u64, String)>,
    found: &BTreeMap<String, (u64, String)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, digest) in sent {
        match found.get(path) {
            None => out.push(format!("{path} missing")),
            Some(d) if d != digest => out.push(format!("{path} changed")),
            Some(_) => {}
        }
    }
    for path in found.keys().filter(|p| !sent.contains_key(*p)) {
        out.push(format!("{path} extra"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        owned_archive(files, 0)
    }

    fn owned_archive(files: &[(&str, &[u8])], uid: u64) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut d = tar::Header::new_gnu();
        d.set_entry_type(tar::EntryType::Directory);
        d.set_mode(0o700);
        d.set_uid(uid);
        d.set_size(0);
        b.append_data(&mut d, "./", std::io::empty()).unwrap();
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_uid(uid);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn any_missing_extra_or_changed_file_is_named() {
        let sent = manifest(&archive(&[("./dump.rdb", b"abc"), ("./sub/a", b"1")])).unwrap();
        let same = manifest(&archive(&[("./dump.rdb", b"abc"), ("./sub/a", b"1")])).unwrap();
        assert_eq!(
            sent.keys().collect::<Vec<_>>(),
            vec!["/", "dump.rdb", "sub/a"]
        );
        assert!(differences(&sent, &same).is_empty());
        assert_eq!(sent["dump.rdb"].0, 3);
        let other = manifest(&archive(&[("./dump.rdb", b"abd"), ("./x", b"")])).unwrap();
        assert_eq!(
            differences(&sent, &other),
            vec!["dump.rdb changed", "sub/a missing", "x extra"]
        );
    }

    #[test]
    fn an_archive_moved_under_a_folder_keeps_its_entries_and_owners() {
        let a = owned_archive(
            &[
                ("./PG_VERSION", b"15"),
                ("./.s.lock", b""),
                ("./base/1", b"x"),
            ],
            999,
        );
        let moved = under("target", &a).unwrap();
        let m = manifest(&moved).unwrap();
        let mut names: Vec<&String> = m.keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "target/",
                "target/.s.lock",
                "target/PG_VERSION",
                "target/base/1"
            ]
        );
        assert_eq!(m["target/"].1, "999:0 700");
        assert_eq!(m["target/PG_VERSION"], manifest(&a).unwrap()["PG_VERSION"]);
    }

    #[test]
    fn a_file_or_the_root_that_changed_owner_is_named() {
        let sent = manifest(&owned_archive(&[("./PG_VERSION", b"15")], 999)).unwrap();
        let as_root = manifest(&owned_archive(&[("./PG_VERSION", b"15")], 0)).unwrap();
        assert_eq!(sent["/"].1, "999:0 700");
        assert_eq!(
            differences(&sent, &as_root),
            vec!["/ changed", "PG_VERSION changed"]
        );
    }
}
