//! One upstream address the proxy routes to, and how a route table's
//! address becomes several: a DNS name such as swarm's `tasks.<service>`
//! stands for every task behind it, so the proxy resolves it on each
//! health round and checks, routes to and gives up on each address alone.
//! One name would hide a dead task behind a live one: the name's check
//! passes while requests pooled to the dead task's address hang.

use super::metrics::ReleaseMetrics;
use super::per_thread::{self, Count, Padded, SLOTS};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use tokio::sync::Notify;

pub struct Target {
    /// Where requests go: a resolved `ip:port`, or the table's address
    /// until its first resolution.
    pub addr: String,
    /// The route table's address this one stands for.
    pub name: String,
    pub release: String,
    /// The release's counters, shared by all its targets.
    pub metrics: Arc<ReleaseMetrics>,
    pub(super) healthy: AtomicBool,
    pub(super) failures: AtomicU32,
    pub(super) draining: AtomicBool,
    pub(super) inflight: Count,
    /// Woken at the drain deadline: open requests and tunnels are cut.
    pub(super) cancel: Notify,
    /// Woken when the health checker takes this target out: requests still
    /// waiting for its answer stop waiting (and, when safe, go elsewhere).
    /// One per serving thread: every request waits on it, and a waiter
    /// takes the `Notify`'s lock twice.
    lost: [Padded<Notify>; SLOTS],
}

impl Target {
    pub fn new(
        addr: &str,
        name: &str,
        (release, metrics): (&str, Arc<ReleaseMetrics>),
        healthy: bool,
    ) -> Arc<Target> {
        Arc::new(Target {
            addr: addr.to_string(),
            name: name.to_string(),
            release: release.to_string(),
            metrics,
            healthy: AtomicBool::new(healthy),
            failures: AtomicU32::new(0),
            draining: AtomicBool::new(false),
            inflight: Count::default(),
            cancel: Notify::new(),
            lost: Default::default(),
        })
    }

    /// What this thread's requests wait on to hear the target was lost.
    pub(super) fn lost(&self) -> &Notify {
        &self.lost[per_thread::slot()].0
    }

    fn notify_lost(&self) {
        for n in &self.lost {
            n.0.notify_waiters();
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn inflight(&self) -> usize {
        self.inflight.sum()
    }

    /// Records one check; returns whether the target changed state. Out
    /// after `unhealthy_after` failures in a row, back after one success.
    pub fn record_check(&self, ok: bool, unhealthy_after: u32) -> bool {
        let was = self.is_healthy();
        if ok {
            self.failures.store(0, Ordering::SeqCst);
            self.healthy.store(true, Ordering::SeqCst);
        } else if self.failures.fetch_add(1, Ordering::SeqCst) + 1 >= unhealthy_after {
            self.healthy.store(false, Ordering::SeqCst);
        }
        let changed = was != self.is_healthy();
        if changed && was {
            self.notify_lost();
        }
        changed
    }

    /// Taken out at once: its connection was refused or timed out.
    pub fn mark_down(&self) {
        if self.healthy.swap(false, Ordering::SeqCst) {
            self.notify_lost();
        }
    }
}

/// Counts a request (or an open WebSocket) against its target until dropped.
pub struct InFlight(pub(super) Arc<Target>);

impl InFlight {
    pub fn new(t: Arc<Target>) -> InFlight {
        t.inflight.add(1);
        InFlight(t)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.add(-1);
    }
}

/// Whether a table address needs resolving (it is not an `ip:port`).
pub fn is_name(addr: &str) -> bool {
    addr.parse::<SocketAddr>().is_err()
}

/// What a resolution changes for one name: the addresses kept (in the
/// order found), the new ones to check, and the old ones that left.
#[derive(Debug, PartialEq)]
pub struct Change {
    pub kept: Vec<String>,
    pub added: Vec<String>,
    pub gone: Vec<String>,
}

/// Compares the current addresses of a name with a fresh resolution.
/// `None` when nothing changed, or when the name resolved to nothing
/// (a lookup that fails keeps the last known addresses: a DNS hiccup
/// must not empty the pool).
pub fn change(current: &[String], found: &[String]) -> Option<Change> {
    if found.is_empty() {
        return None;
    }
    let kept: Vec<String> = found
        .iter()
        .filter(|a| current.contains(a))
        .cloned()
        .collect();
    let added: Vec<String> = found
        .iter()
        .filter(|a| !current.contains(a))
        .cloned()
        .collect();
    let gone: Vec<String> = current
        .iter()
        .filter(|a| !found.contains(a))
        .cloned()
        .collect();
    (!added.is_empty() || !gone.is_empty()).then_some(Change { kept, added, gone })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_name_expands_into_its_addresses_and_follows_them() {
        // First resolution: the name itself leaves, both tasks arrive.
        let c = change(&v(&["tasks.web:80"]), &v(&["10.0.0.5:80", "10.0.0.6:80"])).unwrap();
        assert_eq!(c.kept, v(&[]));
        assert_eq!(c.added, v(&["10.0.0.5:80", "10.0.0.6:80"]));
        assert_eq!(c.gone, v(&["tasks.web:80"]));
        // A task moves to another node.
        let c = change(
            &v(&["10.0.0.5:80", "10.0.0.6:80"]),
            &v(&["10.0.0.6:80", "10.0.0.9:80"]),
        )
        .unwrap();
        assert_eq!(c.kept, v(&["10.0.0.6:80"]));
        assert_eq!(c.added, v(&["10.0.0.9:80"]));
        assert_eq!(c.gone, v(&["10.0.0.5:80"]));
    }

    #[test]
    fn the_same_addresses_or_a_failed_lookup_change_nothing() {
        let now = v(&["10.0.0.5:80", "10.0.0.6:80"]);
        assert_eq!(change(&now, &v(&["10.0.0.6:80", "10.0.0.5:80"])), None);
        assert_eq!(change(&now, &[]), None);
    }

    #[test]
    fn only_names_are_resolved() {
        assert!(is_name("tasks.dm-p-web-r3:8080"));
        assert!(is_name("localhost:80"));
        assert!(!is_name("10.0.0.5:80"));
        assert!(!is_name("[::1]:80"));
    }

    #[test]
    fn a_target_taken_out_wakes_the_requests_waiting_on_it() {
        let t = Target::new(
            "10.0.0.5:80",
            "tasks.web:80",
            ("1", Default::default()),
            true,
        );
        let waiting = t.lost().notified();
        tokio::pin!(waiting);
        waiting.as_mut().enable();
        assert!(!t.record_check(false, 2), "one failure is not enough");
        assert!(t.record_check(false, 2));
        assert!(!t.is_healthy());
        // Already woken: the future completes at once.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(100), waiting)
                .await
                .expect("woken");
        });
        assert!(t.record_check(true, 2));
        assert!(t.is_healthy());
    }
}
