//! Closes a thread's idle upstream connections on an interval while no
//! request comes to clear them (both pools are per serving thread).

use std::time::{Duration, Instant};

/// How often a pool is swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// The sweeping task of one pool, started when the pool gains a
/// connection and ending once the pool is empty.
#[derive(Default)]
pub struct Sweeper(Option<tokio::task::JoinHandle<()>>);

impl Sweeper {
    /// Starts the sweep unless it runs; `sweep` closes what has expired
    /// and says whether the pool is empty.
    pub fn keep_running(&mut self, sweep: fn(Instant) -> bool) {
        if self.0.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.0 = Some(runtime.spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                if sweep(Instant::now()) {
                    return;
                }
            }
        }));
    }
}
