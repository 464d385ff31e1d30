//! The proxy runs from this very binary: the image is built on the host
//! from the running executable and the shared libraries it has loaded, on
//! an empty base, so no registry or base image is needed.

use super::client::{DockerResult, Host};
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use std::path::PathBuf;

pub const PROXY_REPO: &str = "deployment-manager-proxy";
/// Unprivileged user the proxy runs as (nobody).
pub const PROXY_UID: u64 = 65534;

/// Shared objects mapped into this process (the dynamic loader included).
fn loaded_libraries() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut libs: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/') && p.contains(".so"))
        .map(PathBuf::from)
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

fn exe() -> DockerResult<PathBuf> {
    std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))
}

/// The tag for this build of the binary: version plus a digest of its
/// size and modification time, so a rebuilt binary gets a new proxy image
/// and an unchanged one reuses it without reading the whole file.
pub fn proxy_tag(path: &std::path::Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let len = meta.as_ref().map_or(0, |m| m.len());
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    let mut h: u64 = 0xcbf29ce484222325;
    for b in len.to_le_bytes().into_iter().chain(mtime.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!(
        "{PROXY_REPO}:{}-{:012x}",
        env!("CARGO_PKG_VERSION"),
        h & 0xffff_ffff_ffff
    )
}

/// Builds the image on `host` unless it already has it; returns the tag.
pub async fn ensure_proxy_image(host: &Host) -> DockerResult<String> {
    let path = exe()?;
    let tag = proxy_tag(&path);
    if host.image_id(&tag).await?.is_some() {
        return Ok(tag);
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut tar = tar::Builder::new(Vec::new());
    let add = |tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        tar.append_data(&mut h, path, data)
            .map_err(|e| e.to_string())
    };
    add(&mut tar, "rootfs/deployment-manager", &bytes, 0o755)?;
    let libs = loaded_libraries();
    // The loader must also sit where the binary's ELF header names it.
    for interp in ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"] {
        if let Ok(data) = std::fs::read(interp) {
            add(&mut tar, &format!("rootfs{interp}"), &data, 0o755)?;
        }
    }
    let mut dirs: Vec<String> = libs
        .iter()
        .filter_map(|l| l.parent().map(|d| d.display().to_string()))
        .collect();
    dirs.sort();
    dirs.dedup();
    for lib in libs {
        let data =
            std::fs::read(&lib).map_err(|e| format!("cannot read {}: {e}", lib.display()))?;
        let rel = format!("rootfs{}", lib.display());
        add(&mut tar, &rel, &data, 0o755)?;
    }
    // COPY makes everything root's; the state folder is copied on its own
    // with --chown so the unprivileged proxy can write its table there.
    add(&mut tar, "state/.keep", b"", 0o600)?;
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nCOPY --chown={PROXY_UID}:{PROXY_UID} state/ /state/\nENV LD_LIBRARY_PATH={}\nUSER {PROXY_UID}:{PROXY_UID}\nENTRYPOINT [\"/deployment-manager\", \"proxy\"]\n",
        dirs.join(":")
    );
    add(&mut tar, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
    let context = tar.into_inner().map_err(|e| e.to_string())?;
    let opts = BuildImageOptions {
        t: Some(tag.clone()),
        rm: true,
        labels: Some(std::collections::HashMap::from([(
            "dm.role".to_string(),
            "proxy-image".to_string(),
        )])),
        ..Default::default()
    };
    let mut stream = host
        .docker
        .build_image(opts, None, Some(bollard::body_full(context.into())));
    while let Some(msg) = stream.next().await {
        let info =
            msg.map_err(|e| format!("cannot build the proxy image on {}: {e}", host.name))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(format!(
                "cannot build the proxy image on {}: {e}",
                host.name
            ));
        }
    }
    Ok(tag)
}
