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
    let up = dst
        .docker
        .upload_to_container(
            &helper,
            Some(UploadToContainerOptions {
                path: "/target".into(),
                ..Default::default()
            }),
            bollard::body_full(archive.into()),
        )
        .await
        .map_err(|e| format!("write into volume {volume}: {e}"));
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
        files: sent.len(),
    })
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
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        // Both sides are read as `dir/.`, whose entries are `./x`.
        let path = entry.path()?.to_string_lossy().to_string();
        let inside = path.trim_start_matches("./").to_string();
        let mut hasher = Sha256::new();
        let size = std::io::copy(&mut entry, &mut hasher)?;
        out.insert(inside, (size, format!("{:x}", hasher.finalize())));
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
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
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
        assert_eq!(sent.keys().collect::<Vec<_>>(), vec!["dump.rdb", "sub/a"]);
        assert!(differences(&sent, &same).is_empty());
        assert_eq!(sent["dump.rdb"].0, 3);
        let other = manifest(&archive(&[("./dump.rdb", b"abd"), ("./x", b"")])).unwrap();
        assert_eq!(
            differences(&sent, &other),
            vec!["dump.rdb changed", "sub/a missing", "x extra"]
        );
    }
}
