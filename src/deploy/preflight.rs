//! Preflight of a multi-host profile, shown by `deploy --dry-run`: for each
//! host, what its engine says of itself (version, swarm role, cores,
//! memory), how far its clock is from this machine's, and whether the disk
//! under its image store has room for the images it lacks. Facts are read
//! first, then judged without IO ([`judge`]).

use crate::deploy::docker_host::client::Host;
use crate::deploy::release::PlanLine;

/// What one engine said, or why it did not answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    pub version: String,
    /// `manager`, `worker` or `none`.
    pub swarm_role: String,
    pub cpus: i64,
    pub memory: i64,
    /// The engine's clock minus this machine's, in seconds.
    pub skew_s: f64,
    /// Bytes free under the engine's data root, when it could be read.
    pub free_bytes: Option<u64>,
    /// Bytes of the release's images this host lacks (known sizes only).
    pub need_bytes: u64,
}

/// Beyond this, swarm's certificates and TLS between nodes start to fail.
pub const MAX_SKEW_S: f64 = 2.0;

/// Room to keep after the images: logs, volumes and layers being unpacked
/// need space too, and a full disk stops containers writing.
pub const DISK_HEADROOM: u64 = 1 << 30;

/// GiB with one decimal, or whole MiB below a GiB (test images are small).
fn gib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", bytes.div_ceil(1 << 20))
    }
}

/// One plan line per host: `ok`, or `warn` with the reason.
pub fn judge(host: &str, facts: &Result<Facts, String>, swarm: bool) -> PlanLine {
    let (action, detail) = match facts {
        Err(e) => ("fail", format!("unreachable: {e}")),
        Ok(f) => {
            let mut problems = Vec::new();
            if f.skew_s.abs() > MAX_SKEW_S {
                problems.push(format!(
                    "clock {:+.1}s off this machine's (over {MAX_SKEW_S}s)",
                    f.skew_s
                ));
            }
            if swarm && f.swarm_role == "none" {
                problems.push("not in a swarm".to_string());
            }
            let mut full = false;
            let disk = match f.free_bytes {
                Some(free) => {
                    if free < f.need_bytes {
                        full = true;
                        problems.push(format!(
                            "{} free, the images it lacks need {}",
                            gib(free),
                            gib(f.need_bytes)
                        ));
                    } else if free - f.need_bytes < DISK_HEADROOM {
                        problems.push(format!(
                            "{} free leaves under {} after the images ({})",
                            gib(free),
                            gib(DISK_HEADROOM),
                            gib(f.need_bytes)
                        ));
                    }
                    format!("{} free, {} to receive", gib(free), gib(f.need_bytes))
                }
                None => format!("free disk unknown, {} to receive", gib(f.need_bytes)),
            };
            let facts = format!(
                "engine {}, swarm {}, {} CPU, {:.1} GiB, clock {:+.1}s, {disk}",
                f.version,
                f.swarm_role,
                f.cpus,
                f.memory as f64 / (1u64 << 30) as f64,
                f.skew_s
            );
            match (problems.is_empty(), full) {
                (true, _) => ("ok", facts),
                (false, false) => ("warn", format!("{facts}: {}", problems.join("; "))),
                (false, true) => ("fail", format!("{facts}: {}", problems.join("; "))),
            }
        }
    };
    PlanLine {
        host: host.to_string(),
        action: action.into(),
        kind: "preflight".into(),
        name: host.to_string(),
        detail,
    }
}

/// Available bytes in `df -Pk` output (the second line's fourth column).
fn parse_df(out: &str) -> Option<u64> {
    let line = out.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// `'…'` for a POSIX shell.
pub(super) fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The command that reads free space under `root` on `host`: `df` here for
/// this machine's engines (a local or unix socket), over the same ssh (and
/// its config) as the engine connection for `ssh://` hosts. An engine
/// behind `tcp://` gives no way to ask.
fn df_command(host: &str, root: &str) -> Option<std::process::Command> {
    if host == "local" || host.starts_with("unix://") {
        let mut c = std::process::Command::new("df");
        c.args(["-Pk", "--", root]);
        return Some(c);
    }
    let target = host.strip_prefix("ssh://")?;
    let (who, port) = match target.rsplit_once(':') {
        Some((w, p)) if p.chars().all(|c| c.is_ascii_digit()) => (w, Some(p)),
        _ => (target, None),
    };
    let mut c = std::process::Command::new("ssh");
    c.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]);
    if let Some(p) = port {
        c.args(["-p", p]);
    }
    c.args([who, "df", "-Pk", "--", &quoted(root)]);
    Some(c)
}

async fn free_bytes(host: &str, root: &str) -> Option<u64> {
    let mut cmd = df_command(host, root)?;
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .ok()?
        .ok()?;
    out.status
        .success()
        .then(|| parse_df(&String::from_utf8_lossy(&out.stdout)))
        .flatten()
}

/// Bytes of `images` that `host` lacks, sized where another host has them.
async fn need_bytes(hosts: &[Host], i: usize, images: &[String]) -> u64 {
    let mut need = 0;
    for image in images {
        if matches!(hosts[i].image_id(image).await, Ok(Some(_))) {
            continue;
        }
        for h in hosts {
            if let Ok(x) = h.docker.inspect_image(image).await {
                need += x.size.unwrap_or(0).max(0) as u64;
                break;
            }
        }
    }
    need
}

/// Reads the facts of one engine.
pub async fn facts(host: &Host) -> Result<Facts, String> {
    let asked = jiff::Timestamp::now();
    let info = host.docker.info().await.map_err(|e| e.to_string())?;
    let answered = jiff::Timestamp::now();
    // The engine's time is compared with the middle of the round trip.
    let middle_ms = (asked.as_millisecond() + answered.as_millisecond()) / 2;
    let skew_s = info
        .system_time
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0.0, |t| (t.as_millisecond() - middle_ms) as f64 / 1000.0);
    let swarm = info.swarm.unwrap_or_default();
    let role = match (swarm.control_available, swarm.node_id.as_deref()) {
        (Some(true), _) => "manager",
        (_, Some(id)) if !id.is_empty() => "worker",
        _ => "none",
    };
    Ok(Facts {
        version: info.server_version.unwrap_or_default(),
        swarm_role: role.into(),
        cpus: info.ncpu.unwrap_or(0),
        memory: info.mem_total.unwrap_or(0),
        skew_s,
        free_bytes: match info.docker_root_dir {
            Some(root) => free_bytes(&host.name, &root).await,
            None => None,
        },
        need_bytes: 0,
    })
}

/// The preflight table of `hosts` for a release of `images`.
pub async fn check(hosts: &[Host], swarm: bool, images: &[String]) -> Vec<PlanLine> {
    let mut out = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let mut f = facts(h).await;
        if let Ok(f) = &mut f {
            f.need_bytes = need_bytes(hosts, i, images).await;
        }
        out.push(judge(&h.name, &f, swarm));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(skew_s: f64, role: &str) -> Result<Facts, String> {
        Ok(Facts {
            version: "20.10.24".into(),
            swarm_role: role.into(),
            cpus: 2,
            memory: 4 << 30,
            skew_s,
            free_bytes: Some(20 << 30),
            need_bytes: 1 << 29,
        })
    }

    #[test]
    fn a_healthy_host_is_ok_with_its_facts() {
        let l = judge("ssh://a", &facts(0.3, "manager"), true);
        assert_eq!(l.action, "ok");
        assert_eq!(
            l.detail,
            "engine 20.10.24, swarm manager, 2 CPU, 4.0 GiB, clock +0.3s, 20.0 GiB free, 512 MiB to receive"
        );
    }

    #[test]
    fn a_disk_without_room_for_the_images_fails_and_a_tight_one_warns() {
        let with_free = |free: Option<u64>| {
            let mut f = facts(0.0, "none").unwrap();
            f.free_bytes = free;
            judge("ssh://a", &Ok(f), false)
        };
        let l = with_free(Some(1 << 28));
        assert_eq!(l.action, "fail", "{}", l.detail);
        assert!(
            l.detail
                .ends_with("256 MiB free, the images it lacks need 512 MiB"),
            "{}",
            l.detail
        );
        let l = with_free(Some(1 << 30));
        assert_eq!(l.action, "warn", "{}", l.detail);
        let l = with_free(None);
        assert_eq!(l.action, "ok");
        assert!(l.detail.contains("free disk unknown"), "{}", l.detail);
    }

    #[test]
    fn free_space_is_read_from_df_here_or_over_ssh() {
        let out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 263174212 12000000 83886080 13% /\n";
        assert_eq!(parse_df(out), Some(83886080 * 1024));
        assert_eq!(parse_df("garbage"), None);
        let args = |c: std::process::Command| -> Vec<String> {
            std::iter::once(c.get_program())
                .chain(c.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let ssh = args(df_command("ssh://root@web1:2222", "/var/lib/my docker").unwrap());
        assert_eq!(
            ssh,
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-p",
                "2222",
                "root@web1",
                "df",
                "-Pk",
                "--",
                "'/var/lib/my docker'"
            ]
        );
        assert_eq!(args(df_command("local", "/d").unwrap())[0], "df");
        assert!(df_command("tcp://web1:2376", "/d").is_none());
        // This machine's own disk is read for real.
        assert!(
            parse_df(&String::from_utf8_lossy(
                &df_command("local", "/").unwrap().output().unwrap().stdout
            ))
            .is_some()
        );
    }

    #[test]
    fn clock_skew_and_a_node_outside_the_swarm_are_warnings() {
        let l = judge("ssh://a", &facts(-3.5, "none"), true);
        assert_eq!(l.action, "warn");
        assert!(l.detail.contains("clock -3.5s off"), "{}", l.detail);
        assert!(l.detail.contains("not in a swarm"), "{}", l.detail);
        // Plain Docker hosts need no swarm.
        assert_eq!(judge("ssh://a", &facts(0.0, "none"), false).action, "ok");
    }

    #[test]
    fn an_unreachable_host_fails() {
        let l = judge("ssh://gone", &Err("timed out".into()), false);
        assert_eq!(
            (l.action.as_str(), l.detail.as_str()),
            ("fail", "unreachable: timed out")
        );
    }
}
