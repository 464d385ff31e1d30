//! The canary loop, written once for every engine that has our proxy: the
//! new release takes a growing share of traffic (cohorts sticky by
//! cookie); during each step an analysis over the proxy's per-release
//! metrics decides — failed: abort and roll back; inconclusive: pause for
//! a human; passed: next step. Engines move the weights through [`Traffic`].

use super::analysis::{Measurement, Verdict};
use super::{Options, Pause};
use crate::deploy::events::Progress;
use crate::deploy::proxy::metrics::MetricsSnapshot;
use crate::deploy::release::{Failure, Outcome};
use std::time::Duration;

/// How an engine splits one service's traffic between the releases that
/// served before and the canary.
#[allow(async_fn_in_trait)] // used on the caller's task only
pub trait Traffic {
    /// Gives the canary `weight` percent; the releases serving before
    /// share the rest in their old proportions. 100 leaves it alone.
    async fn set_weight(&self, weight: u32) -> Result<(), Failure>;
    /// The canary's metrics, summed over every proxy.
    async fn metrics(&self) -> Result<MetricsSnapshot, String>;
    /// Fails when a replica of the canary stopped or restarted.
    async fn alive(&self) -> Result<(), Failure>;
    /// After 100 %: stops what served before.
    async fn retire(&self) -> Result<(), Failure>;
}

/// Steps service `service`'s release `release` through `options`'
/// canary steps.
pub async fn run(
    t: &impl Traffic,
    options: &Options,
    progress: &Progress,
    service: &str,
    release: u32,
) -> Result<Outcome, Failure> {
    for &weight in &options.canary_steps {
        t.set_weight(weight).await?;
        progress.step(
            "canary",
            format!("{service}: {weight}% of traffic on release {release}"),
        );
        if weight == 100 {
            break;
        }
        let pause = match options.pause {
            Pause::Timed(d) => d,
            Pause::Manual => {
                return Ok(Outcome::Paused(format!(
                    "{service} at {weight}%: waiting for `promote` or `rollback`"
                )));
            }
        };
        let label = format!("{service} release {release}");
        match analyse(t, options, progress, &label, pause).await? {
            Verdict::Passed => {}
            Verdict::Failed(why) => {
                return Err(Failure::from(format!(
                    "canary analysis of {service} failed at {weight}%: {why}"
                )));
            }
            Verdict::Inconclusive(why) => {
                return Ok(Outcome::Paused(format!(
                    "{service} at {weight}%: analysis inconclusive ({why}); `promote` or `rollback`"
                )));
            }
        }
    }
    t.retire().await?;
    Ok(Outcome::Live)
}

/// One step's analysis run: measurements every interval for the pause,
/// over the canary's metrics, with its replicas checked between
/// measurements.
async fn analyse(
    t: &impl Traffic,
    options: &Options,
    progress: &Progress,
    label: &str,
    pause: Duration,
) -> Result<Verdict, Failure> {
    let a = &options.analysis;
    let interval = a.interval.min(pause).max(Duration::from_millis(100));
    let count = if a.count > 0 {
        a.count
    } else {
        (pause.as_millis() / interval.as_millis()).max(1) as u32
    };
    let mut before = t.metrics().await.unwrap_or_default();
    let mut ms: Vec<Measurement> = Vec::new();
    for k in 0..count {
        tokio::time::sleep(interval).await;
        t.alive().await?;
        let m = match t.metrics().await {
            Ok(now) => {
                let m = a.measure(&now.since(&before));
                before = now;
                m
            }
            Err(why) => Measurement::Error { why },
        };
        progress.step(
            "analysis",
            format!("{label}: {}", serde_json::to_string(&m).unwrap_or_default()),
        );
        ms.push(m);
        if let Some(v) = a.verdict(&ms, k + 1 == count) {
            return Ok(v);
        }
    }
    Ok(a.verdict(&ms, true).unwrap_or(Verdict::Passed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Traffic in memory: records the weights and serves canned metrics,
    /// so the loop's decisions run without an engine.
    struct Script {
        weights: RefCell<Vec<u32>>,
        errors_per_step: u64,
        served: RefCell<MetricsSnapshot>,
        retired: RefCell<bool>,
    }

    impl Script {
        fn new(errors_per_step: u64) -> Script {
            Script {
                weights: RefCell::new(vec![]),
                errors_per_step,
                served: RefCell::new(MetricsSnapshot::default()),
                retired: RefCell::new(false),
            }
        }
    }

    impl Traffic for Script {
        async fn set_weight(&self, weight: u32) -> Result<(), Failure> {
            self.weights.borrow_mut().push(weight);
            Ok(())
        }
        async fn metrics(&self) -> Result<MetricsSnapshot, String> {
            let mut m = self.served.borrow_mut();
            m.requests += 100;
            m.errors += self.errors_per_step;
            Ok(m.clone())
        }
        async fn alive(&self) -> Result<(), Failure> {
            Ok(())
        }
        async fn retire(&self) -> Result<(), Failure> {
            *self.retired.borrow_mut() = true;
            Ok(())
        }
    }

    fn options(pause: Pause) -> Options {
        let mut o = Options {
            canary_steps: vec![10, 50, 100],
            pause,
            ..Options::default()
        };
        o.analysis.interval = Duration::from_millis(100);
        o.analysis.count = 2;
        o.analysis.min_requests = 10;
        o
    }

    fn run_script(s: &Script, o: &Options) -> Result<Outcome, Failure> {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(run(s, o, &Progress::quiet(), "web", 2))
    }

    #[test]
    fn healthy_canary_walks_every_step_then_retires_the_old() {
        let s = Script::new(0);
        let out = run_script(&s, &options(Pause::Timed(Duration::from_millis(200))));
        assert_eq!(out.unwrap(), Outcome::Live);
        assert_eq!(*s.weights.borrow(), vec![10, 50, 100]);
        assert!(*s.retired.borrow());
    }

    #[test]
    fn failing_canary_stops_at_its_first_step_and_keeps_the_old() {
        let s = Script::new(50);
        let err = run_script(&s, &options(Pause::Timed(Duration::from_millis(200)))).unwrap_err();
        assert!(
            err.why.starts_with("canary analysis of web failed at 10%"),
            "{}",
            err.why
        );
        assert_eq!(*s.weights.borrow(), vec![10]);
        assert!(!*s.retired.borrow());
    }

    #[test]
    fn manual_pause_waits_for_a_human_at_the_first_step() {
        let s = Script::new(0);
        let out = run_script(&s, &options(Pause::Manual)).unwrap();
        assert_eq!(
            out,
            Outcome::Paused("web at 10%: waiting for `promote` or `rollback`".into())
        );
        assert!(!*s.retired.borrow());
    }
}
