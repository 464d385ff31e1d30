//! How a new release replaces the old one. The options are shared by every
//! platform; each engine carries them out with its own means (our proxy on
//! Docker hosts, update_config on Swarm, Deployments on Kubernetes).

pub mod analysis;
pub mod canary;

use crate::analyse::cost::Strategy;
use std::time::Duration;

/// When to move on from a canary step.
#[derive(Clone, Debug, PartialEq)]
pub enum Pause {
    Timed(Duration),
    /// Wait for `promote` (or `rollback`).
    Manual,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub strategy: Strategy,
    /// Canary traffic steps in percent, ending at 100.
    pub canary_steps: Vec<u32>,
    pub pause: Pause,
    pub analysis: analysis::Analysis,
    /// Time for new containers to turn healthy (Kamal: 30 s).
    pub deploy_timeout: Duration,
    /// Time in-flight requests get on old containers (Kamal: 30 s).
    pub drain_timeout: Duration,
    /// Watch after cutover; a release going bad then is still rolled back.
    pub bake: Duration,
    /// Releases whose stopped containers are kept for instant rollback.
    pub keep_releases: usize,
    /// Blue-green: remove the previous colour instead of keeping it warm.
    pub cleanup: bool,
    /// Cohort cookie values always sent to the canary.
    pub canary_allowlist: Vec<String>,
    /// Hosts that do not answer are left out instead of stopping the run.
    pub skip_unreachable: bool,
    /// Several Docker hosts, rolling: replace replica N on every host
    /// together instead of finishing one host before the next.
    pub all_hosts_at_once: bool,
    /// The profile's registry: built images are pushed there and pulled
    /// by every target instead of shipped engine to engine.
    pub registry: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            strategy: Strategy::Rolling,
            canary_steps: vec![10, 50, 100],
            pause: Pause::Timed(Duration::from_secs(60)),
            analysis: analysis::Analysis::default(),
            deploy_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            bake: Duration::from_secs(15),
            keep_releases: 5,
            cleanup: false,
            canary_allowlist: Vec::new(),
            skip_unreachable: false,
            all_hosts_at_once: false,
            registry: None,
        }
    }
}

/// `10,50,100` → steps; the last step is always 100.
pub fn parse_steps(text: &str) -> Result<Vec<u32>, String> {
    let mut steps = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: u32 = part
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("canary step `{part}` is not a percentage"))?;
        if n == 0 || n > 100 {
            return Err(format!("canary step {n} must be between 1 and 100"));
        }
        if steps.last().is_some_and(|l| *l >= n) {
            return Err("canary steps must increase".into());
        }
        steps.push(n);
    }
    if steps.last() != Some(&100) {
        steps.push(100);
    }
    Ok(steps)
}

/// `60s`, `5m` or `manual`.
pub fn parse_pause(text: &str) -> Result<Pause, String> {
    if text == "manual" {
        return Ok(Pause::Manual);
    }
    parse_duration(text).map(Pause::Timed)
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("`{text}` is not a duration"));
    }
    crate::describe::units::Duration::parse(text).map(|d| Duration::from_secs(d.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_pauses() {
        assert_eq!(parse_steps("10,50").unwrap(), vec![10, 50, 100]);
        assert_eq!(parse_steps("25%,100").unwrap(), vec![25, 100]);
        assert!(parse_steps("50,10").is_err());
        assert!(parse_steps("0").is_err());
        assert_eq!(parse_pause("manual").unwrap(), Pause::Manual);
        assert_eq!(
            parse_pause("90s").unwrap(),
            Pause::Timed(Duration::from_secs(90))
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    }
}
