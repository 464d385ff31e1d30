//! How much operating a target takes, beside whether the app fits there:
//! who patches, who backs up, whether it stays up when a host fails, what
//! separates the code the app runs for its users, who renews TLS. Scored
//! from the catalog's facts (each target names its source), so seed 002's
//! comparison (difficulty, security, production readiness) reads off it.

use super::facts::Component;
use crate::catalog::{Availability, Duty, Isolation, Target};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "ready", rename_all = "snake_case")]
pub enum Readiness {
    Yes,
    SmallScale,
    No { why: String },
}

impl Readiness {
    /// The short answer, as in seed 002's column.
    pub fn short(&self) -> &'static str {
        match self {
            Readiness::Yes => "yes",
            Readiness::SmallScale => "small scale",
            Readiness::No { .. } => "no",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Readiness::Yes => "production-ready".into(),
            Readiness::SmallScale => "production-ready at small scale".into(),
            Readiness::No { why } => format!("not production-ready: {why}"),
        }
    }
}

/// How hard it is to get the app running there the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

impl Difficulty {
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }

    /// By family, as seed 002 rates them: a machine, Compose or a platform
    /// is easy; a swarm or a container service (ECS) medium; Kubernetes hard.
    pub fn of_family(family: &str) -> Difficulty {
        match family {
            "kubernetes" => Difficulty::Hard,
            "swarm" | "container_service" => Difficulty::Medium,
            _ => Difficulty::Easy,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct OperationsScore {
    /// 0–100: the share of operating work the target does for the team.
    pub score: u32,
    pub difficulty: Difficulty,
    pub security: Level,
    pub production_ready: Readiness,
    /// What the team does there, one phrase each.
    pub your_work: Vec<String>,
    pub source: String,
}

/// Points per fact; they sum to 100 when the provider does everything.
const PATCHING: u32 = 30;
const BACKUPS: u32 = 15;
const AVAILABILITY: u32 = 20;
const ISOLATION: u32 = 20;
const TLS: u32 = 15;

/// Does the app run code its users send (session containers, or a
/// service that starts containers)?
pub fn runs_untrusted_code(comps: &[Component]) -> bool {
    comps.iter().any(|c| {
        c.kind() == "session"
            || c.fact("spawns_containers")
                .is_some_and(|v| v.as_bool() == Some(true))
    })
}

/// `None` when the catalog has no operating facts for the target.
pub fn assess(target: &Target, untrusted_code: bool) -> Option<OperationsScore> {
    let o = target.operations.as_ref()?;
    let mut score = 0;
    let mut your_work = Vec::new();
    match o.patching {
        Duty::Provider => score += PATCHING,
        Duty::You => your_work.push("patch the operating system and Docker".to_string()),
    }
    match o.backups {
        Duty::Provider => score += BACKUPS,
        Duty::You => {
            score += BACKUPS / 3;
            your_work.push("run and test backups".into());
        }
    }
    match o.high_availability {
        Availability::BuiltIn => score += AVAILABILITY,
        Availability::You => {
            score += AVAILABILITY / 2;
            your_work.push("run several hosts to survive a host failure".into());
        }
        Availability::None => your_work.push("accept downtime when the machine fails".into()),
    }
    let isolation = if untrusted_code {
        o.untrusted_code
    } else {
        Isolation::Sandboxed
    };
    match isolation {
        Isolation::Sandboxed => score += ISOLATION,
        Isolation::Containers => {
            score += ISOLATION / 2;
            your_work.push("harden the host that shares its kernel with users' code".into());
        }
        Isolation::HostSocket => {
            your_work.push("guard a Docker socket that is root on the host".into());
        }
    }
    match o.tls {
        Duty::Provider => score += TLS,
        Duty::You => {
            score += TLS / 3;
            your_work.push("run the TLS proxy and its certificates".into());
        }
    }
    let security = match (untrusted_code, o.untrusted_code, o.patching) {
        (true, Isolation::HostSocket, _) => Level::Low,
        (true, Isolation::Containers, _) | (false, _, Duty::You) => Level::Medium,
        _ => Level::High,
    };
    let production_ready = if target.family == "local" {
        Readiness::No {
            why: "a developer's machine: not reachable or kept up for users".into(),
        }
    } else if untrusted_code && o.untrusted_code == Isolation::HostSocket {
        Readiness::No {
            why: "users' code reaches the Docker socket, which is root on the host".into(),
        }
    } else if o.high_availability == Availability::BuiltIn {
        Readiness::Yes
    } else {
        Readiness::SmallScale
    };
    Some(OperationsScore {
        score,
        difficulty: Difficulty::of_family(&target.family),
        security,
        production_ready,
        your_work,
        source: o.source.clone(),
    })
}
