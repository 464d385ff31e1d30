//! Canary analysis over the proxy's own per-release metrics, with the
//! vocabulary of Argo Rollouts' AnalysisRun: measurements every interval,
//! a count per step, a failure limit and a limit on consecutive
//! measurements that could not be taken. A measurement with no traffic is
//! inconclusive, never a pass.

use crate::deploy::proxy::metrics::MetricsSnapshot;
use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Analysis {
    pub interval: Duration,
    /// Measurements per step; 0 means as many as fit in the step's pause.
    pub count: u32,
    /// Failed measurements tolerated per step.
    pub failure_limit: u32,
    /// Measurements in a row that could not be taken before giving up.
    pub consecutive_error_limit: u32,
    /// Lowest acceptable success rate (non-5xx share).
    pub min_success_rate: f64,
    /// Highest acceptable p99 latency in ms.
    pub max_p99_ms: f64,
    /// Fewest requests a measurement needs to count.
    pub min_requests: u64,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            interval: Duration::from_secs(10),
            count: 0,
            failure_limit: 0,
            consecutive_error_limit: 4,
            min_success_rate: 0.99,
            max_p99_ms: 1_000.0,
            min_requests: 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    Passed {
        requests: u64,
        success_rate: f64,
        p99_ms: f64,
    },
    Failed {
        requests: u64,
        success_rate: f64,
        p99_ms: f64,
        why: String,
    },
    /// Too little traffic to judge.
    Inconclusive { requests: u64 },
    /// The metrics could not be read.
    Error { why: String },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Failed(String),
    Inconclusive(String),
}

impl Analysis {
    pub fn measure(&self, delta: &MetricsSnapshot) -> Measurement {
        if delta.requests < self.min_requests.max(1) {
            return Measurement::Inconclusive {
                requests: delta.requests,
            };
        }
        let rate = delta.success_rate().unwrap_or(0.0);
        let p99 = delta.quantile_ms(0.99).unwrap_or(0.0);
        let mut why = Vec::new();
        if rate < self.min_success_rate {
            why.push(format!(
                "success rate {:.2}% below {:.2}%",
                rate * 100.0,
                self.min_success_rate * 100.0
            ));
        }
        if p99 > self.max_p99_ms {
            why.push(format!("p99 {p99:.1} ms above {:.1} ms", self.max_p99_ms));
        }
        if why.is_empty() {
            Measurement::Passed {
                requests: delta.requests,
                success_rate: rate,
                p99_ms: p99,
            }
        } else {
            Measurement::Failed {
                requests: delta.requests,
                success_rate: rate,
                p99_ms: p99,
                why: why.join("; "),
            }
        }
    }

    /// The verdict of a step from its measurements so far; `None` while it
    /// is still undecided.
    pub fn verdict(&self, ms: &[Measurement], done: bool) -> Option<Verdict> {
        let failed: Vec<&Measurement> = ms
            .iter()
            .filter(|m| matches!(m, Measurement::Failed { .. }))
            .collect();
        if failed.len() as u32 > self.failure_limit {
            let why = match failed.last() {
                Some(Measurement::Failed { why, .. }) => why.clone(),
                _ => String::new(),
            };
            return Some(Verdict::Failed(why));
        }
        let errors_in_a_row = ms
            .iter()
            .rev()
            .take_while(|m| matches!(m, Measurement::Error { .. }))
            .count() as u32;
        if errors_in_a_row > self.consecutive_error_limit {
            return Some(Verdict::Inconclusive(format!(
                "{errors_in_a_row} measurements in a row could not be taken"
            )));
        }
        if !done {
            return None;
        }
        if ms.iter().any(|m| matches!(m, Measurement::Passed { .. })) {
            Some(Verdict::Passed)
        } else {
            Some(Verdict::Inconclusive(
                "no measurement had enough traffic to judge the canary".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(requests: u64, errors: u64, micros: u64) -> MetricsSnapshot {
        let m = crate::deploy::proxy::metrics::ReleaseMetrics::default();
        for i in 0..requests {
            m.record(micros, i < errors);
        }
        m.snapshot()
    }

    #[test]
    fn failing_canary_fails_quiet_one_is_inconclusive() {
        let a = Analysis::default();
        let good = a.measure(&snap(100, 0, 2_000));
        assert!(matches!(good, Measurement::Passed { .. }));
        let bad = a.measure(&snap(100, 5, 2_000));
        assert!(matches!(bad, Measurement::Failed { .. }));
        let slow = a.measure(&snap(100, 0, 3_000_000));
        assert!(matches!(slow, Measurement::Failed { .. }));
        assert_eq!(
            a.measure(&snap(3, 0, 1_000)),
            Measurement::Inconclusive { requests: 3 }
        );

        assert_eq!(a.verdict(std::slice::from_ref(&good), false), None);
        assert_eq!(
            a.verdict(&[good.clone(), good.clone()], true),
            Some(Verdict::Passed)
        );
        assert!(matches!(
            a.verdict(&[good.clone(), bad], false),
            Some(Verdict::Failed(_))
        ));
        let quiet = Measurement::Inconclusive { requests: 0 };
        assert!(matches!(
            a.verdict(&[quiet], true),
            Some(Verdict::Inconclusive(_))
        ));
        let err = Measurement::Error { why: "x".into() };
        assert!(matches!(
            a.verdict(&vec![err; 5], false),
            Some(Verdict::Inconclusive(_))
        ));
    }
}
