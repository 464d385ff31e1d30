//! Per-release request metrics kept by the proxy: counts and a latency
//! histogram whose deltas between two reads give the p99 of an interval,
//! which is what canary analysis needs.

use super::per_thread::{Padded, SLOTS, slot};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket upper bounds in microseconds: 100 µs growing by 25 % per bucket,
/// so any latency is known to within a quarter.
pub fn bucket_bounds_us() -> Vec<u64> {
    let mut b = Vec::with_capacity(BUCKETS);
    let mut x = 100.0f64;
    for _ in 0..BUCKETS - 1 {
        b.push(x as u64);
        x *= 1.25;
    }
    b.push(u64::MAX);
    b
}

pub const BUCKETS: usize = 64;

/// Counts of one release, one slot per serving thread (`per_thread`):
/// every request writes them, from every core.
pub struct ReleaseMetrics {
    slots: Box<[Padded<Slot>]>,
}

struct Slot {
    requests: AtomicU64,
    errors: AtomicU64,
    hist: [AtomicU64; BUCKETS],
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            hist: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Default for ReleaseMetrics {
    fn default() -> Self {
        ReleaseMetrics {
            slots: (0..SLOTS).map(|_| Padded::default()).collect(),
        }
    }
}

fn bounds() -> &'static [u64] {
    static BOUNDS: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(bucket_bounds_us)
}

impl ReleaseMetrics {
    pub fn record(&self, micros: u64, error: bool) {
        let s = &self.slots[slot()].0;
        s.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            s.errors.fetch_add(1, Ordering::Relaxed);
        }
        let i = bounds().partition_point(|&b| b < micros);
        s.hist[i.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let sum = |f: &dyn Fn(&Slot) -> &AtomicU64| -> u64 {
            self.slots
                .iter()
                .map(|s| f(&s.0).load(Ordering::Relaxed))
                .sum()
        };
        MetricsSnapshot {
            requests: sum(&|s| &s.requests),
            errors: sum(&|s| &s.errors),
            histogram: (0..BUCKETS).map(|i| sum(&|s| &s.hist[i])).collect(),
        }
    }
}

/// Counters as read at one moment.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub errors: u64,
    pub histogram: Vec<u64>,
}

impl MetricsSnapshot {
    /// Adds another proxy's counts (the canary's metrics over every host).
    pub fn add(&mut self, other: &MetricsSnapshot) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.histogram.len() < other.histogram.len() {
            self.histogram.resize(other.histogram.len(), 0);
        }
        for (a, b) in self.histogram.iter_mut().zip(&other.histogram) {
            *a += b;
        }
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &MetricsSnapshot) -> MetricsSnapshot {
        MetricsSnapshot {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            histogram: self
                .histogram
                .iter()
                .enumerate()
                .map(|(i, v)| v.saturating_sub(earlier.histogram.get(i).copied().unwrap_or(0)))
                .collect(),
        }
    }

    /// Share of requests that did not fail; `None` when there were none.
    pub fn success_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| 1.0 - self.errors as f64 / self.requests as f64)
    }

    /// Upper bound of the bucket holding the given quantile, in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.histogram.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil() as u64;
        let bounds = bounds();
        let mut acc = 0;
        for (i, n) in self.histogram.iter().enumerate() {
            acc += n;
            if acc >= want {
                return Some(bounds[i].min(3_600_000_000) as f64 / 1000.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_deltas() {
        let m = ReleaseMetrics::default();
        let before = m.snapshot();
        for _ in 0..99 {
            m.record(1_000, false);
        }
        m.record(200_000, true);
        let d = m.snapshot().since(&before);
        assert_eq!(d.requests, 100);
        assert_eq!(d.success_rate(), Some(0.99));
        let p50 = d.quantile_ms(0.5).unwrap();
        assert!((1.0..1.3).contains(&p50), "{p50}");
        let p100 = d.quantile_ms(1.0).unwrap();
        assert!((200.0..260.0).contains(&p100), "{p100}");
        assert_eq!(MetricsSnapshot::default().success_rate(), None);
    }
}
