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

/// Path → (size, `sha256 uid:gid mode`) for files, `dir/` → (0,
/// `uid:gid mode`) for directories (the root is `/`): what [`manifest`]
/// reads from an archive, read here from a directory on disk.
pub type Manifest = BTreeMap<String, (u64, String)>;

/// The [`Manifest`] of a directory on disk (inside a helper container that
/// mounts a volume), so a volume is checked where it is, without sending
/// it anywhere.
pub fn dir_manifest(root: &std::path::Path) -> std::io::Result<Manifest> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Manifest::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let m = std::fs::symlink_metadata(&path)?;
        let meta = format!("{}:{} {:o}", m.uid(), m.gid(), m.mode() & 0o7777);
        let name = rel.to_string_lossy().to_string();
        if m.is_dir() {
            out.insert(format!("{name}/"), (0, meta));
            for entry in std::fs::read_dir(&path)? {
                stack.push(rel.join(entry?.file_name()));
            }
        } else if m.is_file() {
            let mut hasher = Sha256::new();
            let size = std::io::copy(&mut std::fs::File::open(&path)?, &mut hasher)?;
            out.insert(name, (size, format!("{:x} {meta}", hasher.finalize())));
        }
    }
    Ok(out)
}

/// Prints a directory's manifest, one JSON array per line (what a helper
/// container's log carries back).
pub fn print_manifest(root: &std::path::Path) -> std::io::Result<()> {
    for (path, (size, meta)) in dir_manifest(root)? {
        println!("{}", serde_json::json!([path, size, meta]));
    }
    Ok(())
}

/// Removes `paths` (relative, files or whole directories) under `root`.
pub fn remove_paths(root: &std::path::Path, paths: &[String]) -> std::io::Result<()> {
    for p in paths {
        let rel = p.trim_end_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == "..") {
            continue;
        }
        let path = root.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path)?,
            Ok(_) => std::fs::remove_file(&path)?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// Writes a tar of `paths` (relative; directories whole) under `root` to
/// `out`, owners and modes kept: a final sync's changes leave the source
/// engine as one archive instead of one request per file.
pub fn pack(
    root: &std::path::Path,
    out: &std::path::Path,
    paths: &[String],
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(std::fs::File::create(out)?);
    b.follow_symlinks(false);
    for p in paths {
        let rel = p.trim_end_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == "..") {
            continue;
        }
        let path = root.join(rel);
        if std::fs::symlink_metadata(&path)?.is_dir() {
            b.append_dir_all(rel, &path)?;
        } else {
            b.append_path_with_name(&path, rel)?;
        }
    }
    b.into_inner()?.sync_all()
}

/// What a final sync does: paths to fetch from the source (files, or whole
/// directories the destination lacks) and paths to remove.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    pub fetch: Vec<String>,
    pub remove: Vec<String>,
}

/// Decides the final sync from the two manifests, without IO. A directory
/// the destination lacks (or whose owner or mode differ) is fetched whole;
/// nothing under it is listed again. `None` when the roots differ: copy
/// everything instead.
pub fn sync_plan(src: &Manifest, dst: &Manifest) -> Option<SyncPlan> {
    if src.get("/") != dst.get("/") {
        return None;
    }
    let under = |p: &str, dirs: &[String]| dirs.iter().any(|d| p.starts_with(d.as_str()) && p != d);
    let mut plan = SyncPlan::default();
    let mut whole: Vec<String> = Vec::new();
    for (path, v) in src {
        if under(path, &whole) || dst.get(path) == Some(v) {
            continue;
        }
        if path.ends_with('/') {
            whole.push(path.clone());
        }
        plan.fetch.push(path.trim_end_matches('/').to_string());
    }
    let mut gone: Vec<String> = Vec::new();
    for path in dst.keys() {
        if src.contains_key(path) || under(path, &gone) {
            continue;
        }
        if path.ends_with('/') {
            gone.push(path.clone());
        }
        plan.remove.push(path.clone());
    }
    Some(plan)
}

/// Runs the helper image's `proxy <args>` once as root with `volume` at
/// `/target` and returns its output; a non-zero exit is an error with it.
async fn run_helper(
    host: &Host,
    volume: &str,
    helper_image: &str,
    task: &str,
    args: Vec<String>,
) -> Result<String, String> {
    run_helper_for(host, volume, helper_image, task, args, None)
        .await
        .map(|(logs, _)| logs)
}

/// [`run_helper`], then reads file `fetch` out of the stopped helper.
async fn run_helper_for(
    host: &Host,
    volume: &str,
    helper_image: &str,
    task: &str,
    args: Vec<String>,
    fetch: Option<&str>,
) -> Result<(String, Option<Vec<u8>>), String> {
    let name = format!("{volume}-{task}");
    let _ = host.remove(&name).await;
    let plan = ContainerPlan {
        name: &name,
        image: helper_image,
        labels: Default::default(),
        // The image's entrypoint is `deployment-manager proxy`.
        command: args,
        network: "none",
        binds: vec![format!("{volume}:/target")],
        user: Some("0:0".into()),
        one_off: true,
        ..Default::default()
    };
    host.create(&plan).await?;
    let exit = host
        .run_to_exit(&name, std::time::Duration::from_secs(300))
        .await;
    let opts = bollard::query_parameters::LogsOptions {
        stdout: true,
        stderr: true,
        tail: "all".into(),
        ..Default::default()
    };
    let logs: Vec<String> = host
        .docker
        .logs(&name, Some(opts))
        .map_ok(|chunk| chunk.to_string())
        .try_collect()
        .await
        .unwrap_or_default();
    let fetched = match (&exit, fetch) {
        (Ok(Some(0)), Some(file)) => Some(download(host, &name, file).await),
        _ => None,
    };
    let _ = host.remove(&name).await;
    let logs = logs.concat();
    match exit? {
        Some(0) => Ok((logs, fetched.transpose()?)),
        _ => Err(format!(
            "the {task} helper on volume {volume} failed: {}",
            logs.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
        )),
    }
}

/// Empties a volume: a copy then replaces the volume's content instead of
/// adding to it (a database directory must not keep files the source no
/// longer has).
async fn clear_volume(dst: &Host, volume: &str, helper_image: &str) -> Result<(), String> {
    let args = vec!["empty-dir".into(), "/target".into()];
    run_helper(dst, volume, helper_image, "clear", args)
        .await
        .map(|_| ())
        .map_err(|e| format!("could not empty volume {volume} before the copy: {e}"))
}

/// A volume's [`Manifest`], read on its own engine by a helper.
pub async fn volume_manifest(
    host: &Host,
    volume: &str,
    helper_image: &str,
) -> Result<Manifest, String> {
    let args = vec!["manifest".into(), "/target".into()];
    let out = run_helper(host, volume, helper_image, "manifest", args).await?;
    let mut m = Manifest::new();
    for line in out.lines().filter(|l| l.starts_with('[')) {
        let (path, size, meta): (String, u64, String) = serde_json::from_str(line)
            .map_err(|e| format!("manifest of {volume} on {}: {e}", host.name))?;
        m.insert(path, (size, meta));
    }
    Ok(m)
}

/// Copies `path` of a container into a volume on another (or the same)
/// engine, through a created-never-started helper container that mounts
/// the volume: no shell or tool is needed in any image. The volume is
/// emptied first. With `verify` (the container is stopped), the volume is
/// then checked file by file where it is; without (a bulk copy while the
/// source still runs, before [`final_sync`]), it is not.
#[allow(clippy::too_many_arguments)]
pub async fn copy_volume(
    src: &Host,
    container: &str,
    path: &str,
    dst: &Host,
    volume: &str,
    profile: &str,
    helper_image: &str,
    verify: bool,
) -> Result<Copied, String> {
    dst.ensure_volume(volume, profile).await?;
    clear_volume(dst, volume, helper_image).await?;
    let whole = format!("{}/.", path.trim_end_matches('/'));
    let archive = download(src, container, &whole).await?;
    let sent = manifest(&archive).map_err(|e| format!("read {path} of {container}: {e}"))?;
    let bytes = archive.len() as u64;
    // Without `copyUIDGID` the engine keeps the archive's owners (with it,
    // everything would belong to the helper's user). It ignores the `./`
    // entry of the extraction directory, so the volume's own owner and
    // mode (a database server refuses a data directory not its own) only
    // come through as the `target/` entry of an archive extracted at `/`.
    let mut rooted = tar::Builder::new(Vec::new());
    append_under(&mut rooted, "target", &archive)
        .map_err(|e| format!("read {path} of {container}: {e}"))?;
    let rooted = rooted.into_inner().map_err(|e| e.to_string())?;
    unpack(dst, volume, helper_image, rooted).await?;
    if verify {
        // Checked where the volume is: only its manifest travels back.
        let found = volume_manifest(dst, volume, helper_image).await?;
        check(&sent, &found, volume, path, container)?;
    }
    Ok(Copied {
        bytes,
        files: sent.keys().filter(|k| !k.ends_with('/')).count(),
    })
}

/// [`copy_volume`] out of a volume rather than a container: a helper that
/// is created, never started, mounts it read-only, so the copy needs no
/// container of the source's own (a swarm removes a task's container soon
/// after its service scales to zero; the volume stays on the node).
pub async fn copy_from_volume(
    src: &Host,
    src_volume: &str,
    dst: &Host,
    volume: &str,
    profile: &str,
    helpers: (&str, &str),
) -> Result<Copied, String> {
    let reader = format!("{src_volume}-read");
    idle_helper(src, &reader, helpers.0, format!("{src_volume}:/source:ro")).await?;
    let copied = copy_volume(
        src, &reader, "/source", dst, volume, profile, helpers.1, true,
    )
    .await;
    let _ = src.remove(&reader).await;
    copied
}

/// A helper container that is created, never started, with one volume
/// `bind`: the engine's archive calls read and write the volume through it.
/// One left by an interrupted run of the same name is replaced.
async fn idle_helper(host: &Host, name: &str, image: &str, bind: String) -> Result<(), String> {
    let _ = host.remove(name).await;
    let plan = ContainerPlan {
        name,
        image,
        labels: Default::default(),
        command: vec!["version".into()],
        network: "none",
        binds: vec![bind],
        ..Default::default()
    };
    host.create(&plan).await.map(|_| ())
}

fn check(
    sent: &Manifest,
    found: &Manifest,
    volume: &str,
    path: &str,
    container: &str,
) -> Result<(), String> {
    let differ = differences(sent, found);
    if differ.is_empty() {
        return Ok(());
    }
    Err(format!(
        "volume {volume} differs from {path} of {container} after the copy: {}",
        differ.join(", ")
    ))
}

/// Unpacks an archive whose entries are under `target/` into `volume`.
async fn unpack(
    dst: &Host,
    volume: &str,
    helper_image: &str,
    archive: Vec<u8>,
) -> Result<(), String> {
    let helper = format!("{volume}-copy");
    idle_helper(dst, &helper, helper_image, format!("{volume}:/target")).await?;
    let up = dst
        .docker
        .upload_to_container(
            &helper,
            Some(UploadToContainerOptions {
                path: "/".into(),
                ..Default::default()
            }),
            bollard::body_full(archive.into()),
        )
        .await
        .map_err(|e| format!("write into volume {volume}: {e}"));
    let _ = dst.remove(&helper).await;
    up
}

/// The last step of a warm copy, once the source container has stopped:
/// both volumes' manifests are read where they are (helpers on each
/// engine), and only what differs moves — changed or new files (whole new
/// directories) fetched from the stopped container in one archive, paths
/// the source no longer has removed — then the destination must match
/// the source exactly. Falls back to a whole copy when the roots differ.
#[allow(clippy::too_many_arguments)]
pub async fn final_sync(
    src: &Host,
    container: &str,
    src_volume: &str,
    path: &str,
    dst: &Host,
    volume: &str,
    profile: &str,
    helpers: (&str, &str),
) -> Result<Copied, String> {
    let (src_helper, dst_helper) = helpers;
    let (want, have) = tokio::join!(
        volume_manifest(src, src_volume, src_helper),
        volume_manifest(dst, volume, dst_helper)
    );
    let (want, have) = (want?, have?);
    let Some(plan) = sync_plan(&want, &have) else {
        return copy_volume(src, container, path, dst, volume, profile, dst_helper, true).await;
    };
    if !plan.remove.is_empty() {
        let mut args = vec!["remove-paths".to_string(), "/target".to_string()];
        args.extend(plan.remove.iter().cloned());
        run_helper(dst, volume, dst_helper, "prune", args).await?;
    }
    let mut bytes = 0u64;
    if !plan.fetch.is_empty() {
        // Packed on the source engine by a helper, fetched in one piece.
        let mut args = vec!["pack".to_string(), "/target".into(), "/sync.tar".into()];
        args.extend(plan.fetch.iter().cloned());
        let fetch = Some("/sync.tar");
        let (_, outer) = run_helper_for(src, src_volume, src_helper, "pack", args, fetch).await?;
        // The engine sends the file wrapped in an archive of its own.
        let outer = outer.unwrap_or_default();
        let mut packed = Vec::new();
        let mut wrapper = tar::Archive::new(outer.as_slice());
        for entry in wrapper.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            std::io::Read::read_to_end(&mut entry, &mut packed).map_err(|e| e.to_string())?;
        }
        bytes = packed.len() as u64;
        let mut out = tar::Builder::new(Vec::new());
        append_under(&mut out, "target", &packed)
            .map_err(|e| format!("read the changes of {container}: {e}"))?;
        let archive = out.into_inner().map_err(|e| e.to_string())?;
        unpack(dst, volume, dst_helper, archive).await?;
    }
    let found = volume_manifest(dst, volume, dst_helper).await?;
    check(&want, &found, volume, path, container)?;
    Ok(Copied {
        bytes,
        files: want.keys().filter(|k| !k.ends_with('/')).count(),
    })
}

/// Appends every entry of `archive` under `dir/` (`./x` or `x` → `dir/x`,
/// the root `./` → `dir/`).
fn append_under(out: &mut tar::Builder<Vec<u8>>, dir: &str, archive: &[u8]) -> std::io::Result<()> {
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
    Ok(())
}

#[cfg(test)]
fn under(dir: &str, archive: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    append_under(&mut out, dir, archive)?;
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

/// `path` of a container as the engine's tar stream (`dir/.` for a
/// directory's content, `dir/file` for one entry).
async fn download(host: &Host, container: &str, path: &str) -> Result<Vec<u8>, String> {
    host.docker
        .download_from_container(
            container,
            Some(DownloadFromContainerOptions { path: path.into() }),
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

    fn m(entries: &[(&str, &str)]) -> Manifest {
        entries
            .iter()
            .map(|(p, v)| (p.to_string(), (v.len() as u64, v.to_string())))
            .collect()
    }

    #[test]
    fn a_final_sync_fetches_what_changed_and_removes_what_is_gone() {
        let src = m(&[
            ("/", "999:999 700"),
            ("PG_VERSION", "a"),
            ("base/", "d"),
            ("base/1", "changed"),
            ("new/", "d"),
            ("new/x", "x"),
            ("new/y", "y"),
        ]);
        let dst = m(&[
            ("/", "999:999 700"),
            ("PG_VERSION", "a"),
            ("base/", "d"),
            ("base/1", "old"),
            ("base/2", "gone"),
            ("old/", "d"),
            ("old/z", "z"),
        ]);
        assert_eq!(
            sync_plan(&src, &dst).unwrap(),
            SyncPlan {
                fetch: vec!["base/1".into(), "new".into()],
                remove: vec!["base/2".into(), "old/".into()],
            }
        );
        assert_eq!(sync_plan(&src, &src).unwrap(), SyncPlan::default());
        let mut other_root = dst.clone();
        other_root.insert("/".into(), (0, "0:0 755".into()));
        assert_eq!(sync_plan(&src, &other_root), None);
    }

    #[test]
    fn a_directory_on_disk_reads_as_its_archive_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), "1").unwrap();
        std::fs::write(dir.path().join(".hidden"), "").unwrap();
        let on_disk = dir_manifest(dir.path()).unwrap();
        let mut names: Vec<&String> = on_disk.keys().collect();
        names.sort();
        assert_eq!(names, [".hidden", "/", "sub/", "sub/a"]);
        let mut b = tar::Builder::new(Vec::new());
        b.append_dir_all(".", dir.path()).unwrap();
        let from_tar = manifest(&b.into_inner().unwrap()).unwrap();
        assert_eq!(from_tar["sub/a"], on_disk["sub/a"]);
        let out = dir.path().join("out.tar");
        pack(dir.path(), &out, &["sub".into(), ".hidden".into()]).unwrap();
        let packed = manifest(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(packed["sub/a"], on_disk["sub/a"]);
        assert_eq!(packed["sub/"], on_disk["sub/"]);
        assert!(packed.contains_key(".hidden"));
        std::fs::remove_file(&out).unwrap();
        remove_paths(dir.path(), &["sub/".into(), "../x".into()]).unwrap();
        assert!(!dir.path().join("sub").exists());
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
