//! Preflight of a multi-host profile, shown by `deploy --dry-run`: for each
//! host, what its engine says of itself (version, swarm role, cores,
//! memory) and how far its clock is from this machine's. Facts are read
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
}

/// Beyond this, swarm's certificates and TLS between nodes start to fail.
pub const MAX_SKEW_S: f64 = 2.0;

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
            let facts = format!(
                "engine {}, swarm {}, {} CPU, {:.1} GiB, clock {:+.1}s",
                f.version,
                f.swarm_role,
                f.cpus,
                f.memory as f64 / (1u64 << 30) as f64,
                f.skew_s
            );
            if problems.is_empty() {
                ("ok", facts)
            } else {
                ("warn", format!("{facts}: {}", problems.join("; ")))
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
    })
}

/// The preflight table of `hosts`.
pub async fn check(hosts: &[Host], swarm: bool) -> Vec<PlanLine> {
    let mut out = Vec::new();
    for h in hosts {
        out.push(judge(&h.name, &facts(h).await, swarm));
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
        })
    }

    #[test]
    fn a_healthy_host_is_ok_with_its_facts() {
        let l = judge("ssh://a", &facts(0.3, "manager"), true);
        assert_eq!(l.action, "ok");
        assert_eq!(
            l.detail,
            "engine 20.10.24, swarm manager, 2 CPU, 4.0 GiB, clock +0.3s"
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
