//! The proxy's routing table: which release gets which share of traffic and
//! on which targets. It is the only thing the proxy persists; everything
//! else (health, in-flight counts, metrics) is rebuilt at start-up.

use serde::{Deserialize, Serialize};

/// Kamal-proxy's defaults, which users of this field expect.
pub const DEFAULT_DRAIN_MS: u64 = 30_000;
pub const DEFAULT_HOLD_MS: u64 = 10_000;
pub const DEFAULT_HEALTH_INTERVAL_MS: u64 = 1_000;
pub const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 5_000;
/// A routine check slower than this fails (HAProxy's `timeout check`
/// defaults to its interval the same way): a node cut off is then out of
/// the pool in about two rounds of 3 s, not two of 6 s.
pub const ROUTINE_CHECK_TIMEOUT_MS: u64 = 2_000;
pub const DEFAULT_MAX_PAUSE_MS: u64 = 30_000;

/// Cookie holding a client's canary cohort (a bucket 0..10000, or a name
/// that an allowlist can name).
pub const COHORT_COOKIE: &str = "dm-cohort";
/// Cookie pinning a client to one target when the service wants affinity.
pub const AFFINITY_COOKIE: &str = "dm-affinity";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RouteTable {
    pub service: String,
    /// HTTP path probed on each target; `None` means a TCP connect check.
    #[serde(default)]
    pub health_path: Option<String>,
    /// The gRPC service asked about by the standard health check (empty:
    /// the server as a whole); takes the place of `health_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_grpc: Option<String>,
    /// Cookie affinity to one target (sticky sessions).
    #[serde(default)]
    pub sticky: bool,
    #[serde(default = "drain_default")]
    pub drain_timeout_ms: u64,
    /// How long a request waits for a target instead of failing at once.
    #[serde(default = "hold_default")]
    pub hold_timeout_ms: u64,
    /// Releases in deploy order: the last one with weight is the canary.
    #[serde(default)]
    pub releases: Vec<ReleaseRoute>,
    /// Cohort cookie values always sent to the canary.
    #[serde(default)]
    pub allowlist: Vec<String>,
    /// Paused: new requests are held (up to `max_pause_ms`).
    #[serde(default)]
    pub paused: bool,
    #[serde(default = "pause_default")]
    pub max_pause_ms: u64,
    /// What the targets speak; clients may use HTTP/1.1 or HTTP/2 either way.
    #[serde(default)]
    pub upstream: UpstreamProtocol,
}

/// What a health check asks of a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The port accepts a connection.
    Connect,
    /// A 2xx answer to a GET of this path.
    Http(String),
    /// `SERVING` from `grpc.health.v1.Health/Check` for this service.
    Grpc(String),
}

impl Check {
    /// From the two optional settings a table or a check request carries;
    /// gRPC wins, as only a gRPC server is given one.
    pub fn of(path: Option<&str>, grpc: Option<&str>) -> Check {
        match (grpc, path) {
            (Some(service), _) => Check::Grpc(service.to_string()),
            (None, Some(p)) => Check::Http(p.to_string()),
            (None, None) => Check::Connect,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with kept-alive connections.
    #[default]
    Http1,
    /// HTTP/2 without TLS, prior knowledge (what gRPC servers speak):
    /// one connection per target carries many requests at once.
    H2c,
}

fn drain_default() -> u64 {
    DEFAULT_DRAIN_MS
}
fn hold_default() -> u64 {
    DEFAULT_HOLD_MS
}
fn pause_default() -> u64 {
    DEFAULT_MAX_PAUSE_MS
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ReleaseRoute {
    pub release: String,
    /// Share of traffic in percent; 0 keeps the targets warm but unrouted.
    pub weight: u32,
    /// `host:port` of each replica.
    pub targets: Vec<String>,
}

impl RouteTable {
    pub fn new(service: &str) -> RouteTable {
        RouteTable {
            service: service.into(),
            drain_timeout_ms: DEFAULT_DRAIN_MS,
            hold_timeout_ms: DEFAULT_HOLD_MS,
            max_pause_ms: DEFAULT_MAX_PAUSE_MS,
            ..Default::default()
        }
    }

    /// The check the health loop runs on every target.
    pub fn check(&self) -> Check {
        Check::of(self.health_path.as_deref(), self.health_grpc.as_deref())
    }

    /// Every target of every release.
    pub fn targets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.releases.iter().flat_map(|r| {
            r.targets
                .iter()
                .map(move |t| (r.release.as_str(), t.as_str()))
        })
    }

    /// The release a request in `bucket` (0..10000) goes to. Newer releases
    /// take the low buckets so that raising a canary's weight only moves
    /// clients from old to new, never back.
    pub fn pick_release(&self, bucket: u32, allowlisted: bool) -> Option<&ReleaseRoute> {
        // Iterated rather than collected: this runs once per request.
        let weighted = || self.releases.iter().filter(|r| r.weight > 0);
        if allowlisted {
            return weighted().next_back();
        }
        let total: u32 = weighted().map(|r| r.weight).sum();
        if total == 0 {
            return None;
        }
        let point = (bucket % 10_000) as u64 * total as u64 / 10_000;
        let mut acc = 0u64;
        for r in weighted().rev() {
            acc += r.weight as u64;
            if point < acc {
                return Some(r);
            }
        }
        weighted().next()
    }

    /// Releases that currently receive traffic.
    pub fn routed(&self) -> Vec<&str> {
        self.releases
            .iter()
            .filter(|r| r.weight > 0)
            .map(|r| r.release.as_str())
            .collect()
    }
}

/// A cohort cookie value as a bucket: numbers are taken as they are, names
/// are hashed (FNV-1a) so a user id gives a stable cohort.
pub fn bucket_of(value: &str) -> u32 {
    if let Ok(n) = value.parse::<u32>() {
        return n % 10_000;
    }
    let mut h: u32 = 0x811c9dc5;
    for b in value.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h % 10_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(weights: &[(&str, u32)]) -> RouteTable {
        let mut t = RouteTable::new("web");
        for (r, w) in weights {
            t.releases.push(ReleaseRoute {
                release: r.to_string(),
                weight: *w,
                targets: vec![format!("{r}:80")],
            });
        }
        t
    }

    #[test]
    fn canary_share_follows_weight_and_only_grows() {
        let t10 = table(&[("r1", 90), ("r2", 10)]);
        let t50 = table(&[("r1", 50), ("r2", 50)]);
        let mut in10 = 0;
        for b in 0..10_000 {
            let a = t10.pick_release(b, false).unwrap().release.clone();
            let c = t50.pick_release(b, false).unwrap().release.clone();
            if a == "r2" {
                in10 += 1;
                assert_eq!(c, "r2", "bucket {b} moved back to the old release");
            }
        }
        assert_eq!(in10, 1_000);
    }

    #[test]
    fn allowlist_goes_to_canary_and_zero_weight_gets_nothing() {
        let t = table(&[("r1", 100), ("r2", 0)]);
        assert!((0..10_000).all(|b| t.pick_release(b, false).unwrap().release == "r1"));
        let t = table(&[("r1", 99), ("r2", 1)]);
        assert_eq!(t.pick_release(9_999, true).unwrap().release, "r2");
        assert!(table(&[("r1", 0)]).pick_release(5, false).is_none());
    }

    #[test]
    fn named_cohorts_are_stable() {
        assert_eq!(bucket_of("alice"), bucket_of("alice"));
        assert_eq!(bucket_of("42"), 42);
        assert!(bucket_of("bob") < 10_000);
    }
}
