//! One deploy per profile at a time. Each engine keeps the lock where its
//! platform can create an object atomically (a container on a Docker host,
//! a Lease on Kubernetes); the waiting, the take-over of a lock whose
//! process is gone and `--break-lock` are written here once.

use super::release::{Failure, FailureKind, LockRequest};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Who holds a lock, stored with it as labels or annotations.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct Holder {
    pub actor: String,
    pub pid: u32,
    pub machine: String,
    pub since: String,
    pub command: String,
}

const KEYS: [&str; 5] = ["actor", "pid", "machine", "since", "command"];

impl Holder {
    /// This process, running `command`.
    pub fn me(command: &str) -> Holder {
        Holder {
            actor: crate::state::releases::actor(),
            pid: std::process::id(),
            machine: machine(),
            since: jiff::Timestamp::now().to_string(),
            command: command.into(),
        }
    }

    /// As `<prefix>actor`, `<prefix>pid`… keys.
    pub fn to_labels(&self, prefix: &str) -> BTreeMap<String, String> {
        let values = [
            self.actor.clone(),
            self.pid.to_string(),
            self.machine.clone(),
            self.since.clone(),
            self.command.clone(),
        ];
        KEYS.iter()
            .zip(values)
            .map(|(k, v)| (format!("{prefix}{k}"), v))
            .collect()
    }

    pub fn from_labels<'a>(prefix: &str, get: impl Fn(&str) -> Option<&'a String>) -> Holder {
        let g = |k: &str| get(&format!("{prefix}{k}")).cloned().unwrap_or_default();
        Holder {
            actor: g("actor"),
            pid: g("pid").parse().unwrap_or(0),
            machine: g("machine"),
            since: g("since"),
            command: g("command"),
        }
    }

    pub fn describe(&self) -> String {
        let age = self
            .since
            .parse::<jiff::Timestamp>()
            .map(|t| {
                format!(
                    "{}s",
                    (jiff::Timestamp::now().as_second() - t.as_second()).max(0)
                )
            })
            .unwrap_or_else(|_| "?".into());
        format!(
            "{} (pid {} on {}, `{}`, since {}, age {age})",
            self.actor, self.pid, self.machine, self.command, self.since
        )
    }

    /// Held by a process of this machine that no longer exists.
    pub fn is_stale(&self) -> bool {
        self.machine == machine() && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Where an engine keeps a profile's lock.
#[allow(async_fn_in_trait)] // used on the caller's task only
pub trait LockStore {
    /// Where the lock lives, in words (a host, a namespace).
    fn place(&self) -> String;
    /// Creates the lock atomically; false when it already exists.
    async fn create(&self, holder: &Holder) -> Result<bool, String>;
    /// Who holds it, if anyone.
    async fn holder(&self) -> Result<Option<Holder>, String>;
    async fn remove(&self) -> Result<(), String>;
}

/// Takes the lock of `profile`, waiting up to `how.wait`. A lock left by a
/// dead process of this machine is taken over (and said so); any other is
/// broken only with `how.force`. Returns a note when a lock was broken.
pub async fn acquire(
    store: &impl LockStore,
    profile: &str,
    how: &LockRequest,
) -> Result<Option<String>, Failure> {
    let start = Instant::now();
    let mut note = None;
    loop {
        if store.create(&Holder::me(&how.command)).await? {
            return Ok(note);
        }
        let Some(h) = store.holder().await? else {
            continue;
        };
        if how.force || h.is_stale() {
            note = Some(format!(
                "broke the lock of {}{}",
                h.describe(),
                if how.force {
                    ""
                } else {
                    ": that process is gone"
                }
            ));
            store.remove().await?;
            continue;
        }
        if start.elapsed() >= how.wait {
            return Err(Failure::new(
                FailureKind::Locked,
                format!(
                    "profile `{profile}` is locked on {} by {}; wait with --lock-wait 5m, or if that run is dead, --break-lock",
                    store.place(),
                    h.describe()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A lock in memory, so the waiting rules run without a platform.
    struct Memory(RefCell<Option<Holder>>);

    impl LockStore for Memory {
        fn place(&self) -> String {
            "memory".into()
        }
        async fn create(&self, holder: &Holder) -> Result<bool, String> {
            let mut h = self.0.borrow_mut();
            if h.is_some() {
                return Ok(false);
            }
            *h = Some(holder.clone());
            Ok(true)
        }
        async fn holder(&self) -> Result<Option<Holder>, String> {
            Ok(self.0.borrow().clone())
        }
        async fn remove(&self) -> Result<(), String> {
            *self.0.borrow_mut() = None;
            Ok(())
        }
    }

    fn held_by(pid: u32) -> Memory {
        let mut h = Holder::me("deploy");
        h.pid = pid;
        Memory(RefCell::new(Some(h)))
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_live_holder_is_waited_for_then_refused_and_a_dead_one_taken_over() {
        let live = held_by(std::process::id());
        let how = LockRequest::default();
        let err = run(acquire(&live, "p", &how)).unwrap_err();
        assert_eq!(err.kind, FailureKind::Locked);
        assert!(err.why.contains("locked on memory") && err.why.contains("--break-lock"));

        let forced = LockRequest {
            force: true,
            ..LockRequest::default()
        };
        let note = run(acquire(&live, "p", &forced)).unwrap().unwrap();
        assert!(note.starts_with("broke the lock of"), "{note}");
        assert_eq!(live.0.borrow().as_ref().unwrap().pid, std::process::id());

        // No process has pid u32::MAX - 1 (Linux caps pids at 2^22).
        let dead = held_by(u32::MAX - 1);
        let note = run(acquire(&dead, "p", &how)).unwrap().unwrap();
        assert!(note.ends_with("that process is gone"), "{note}");

        let free = Memory(RefCell::new(None));
        assert_eq!(run(acquire(&free, "p", &how)).unwrap(), None);
    }

    #[test]
    fn the_holder_survives_labels() {
        let h = Holder::me("deploy --strategy canary");
        let labels = h.to_labels("dm.lock.");
        assert_eq!(Holder::from_labels("dm.lock.", |k| labels.get(k)), h);
    }
}
