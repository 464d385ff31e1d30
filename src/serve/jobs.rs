//! Long operations started from the dashboard (deploys, rollbacks) run on
//! their own thread; their progress events are kept and streamed to any
//! number of watchers as server-sent events.

use crate::deploy::events::{Event, Progress};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEvent {
    Step(Event),
    Done { status: String, message: String },
}

pub struct Job {
    pub id: u64,
    pub kind: String,
    pub profile: String,
    history: Mutex<Vec<JobEvent>>,
    tx: broadcast::Sender<JobEvent>,
}

impl Job {
    fn push(&self, e: JobEvent) {
        // Under the history lock, so a watcher that subscribes and then
        // reads the history never misses or repeats an event.
        let mut h = self.history.lock().unwrap();
        h.push(e.clone());
        let _ = self.tx.send(e);
    }

    /// Past events plus a receiver for the ones to come.
    pub fn watch(&self) -> (Vec<JobEvent>, broadcast::Receiver<JobEvent>) {
        let h = self.history.lock().unwrap();
        (h.clone(), self.tx.subscribe())
    }

    pub fn done(&self) -> Option<(String, String)> {
        self.history.lock().unwrap().iter().find_map(|e| match e {
            JobEvent::Done { status, message } => Some((status.clone(), message.clone())),
            _ => None,
        })
    }
}

/// Jobs running at once, all profiles together (one per profile).
pub const MAX_RUNNING: usize = 4;
/// Finished jobs kept for watchers.
pub const MAX_KEPT: usize = 100;

/// A job refused because too many run; answered 429 with `Retry-After`.
#[derive(Debug)]
pub struct Busy(pub String);

#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    map: Mutex<HashMap<u64, Arc<Job>>>,
}

impl Jobs {
    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.map.lock().unwrap().get(&id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Job>> {
        let mut v: Vec<Arc<Job>> = self.map.lock().unwrap().values().cloned().collect();
        v.sort_by_key(|j| j.id);
        v
    }

    /// Runs `work` on a thread of its own with a progress reporter that
    /// feeds the job; its result becomes the final event. Refused when the
    /// profile already has a job running, or [`MAX_RUNNING`] jobs run.
    pub fn start<F>(&self, kind: &str, profile: &str, work: F) -> Result<u64, Busy>
    where
        F: FnOnce(&Progress) -> Result<(String, String), String> + Send + 'static,
    {
        let mut map = self.map.lock().unwrap();
        let running: Vec<&Arc<Job>> = map.values().filter(|j| j.done().is_none()).collect();
        if let Some(j) = running.iter().find(|j| j.profile == profile) {
            return Err(Busy(format!(
                "profile {profile} already has job {} ({}) running; wait for it to finish",
                j.id, j.kind
            )));
        }
        if running.len() >= MAX_RUNNING {
            return Err(Busy(format!(
                "{MAX_RUNNING} jobs are running; try again when one has finished"
            )));
        }
        // Keep the newest finished jobs only: history is for watchers, and
        // an unbounded map is memory anyone with the token could grow.
        let mut finished: Vec<u64> = map
            .values()
            .filter(|j| j.done().is_some())
            .map(|j| j.id)
            .collect();
        if finished.len() >= MAX_KEPT {
            finished.sort_unstable();
            for id in &finished[..finished.len() + 1 - MAX_KEPT] {
                map.remove(id);
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, _) = broadcast::channel(1024);
        let job = Arc::new(Job {
            id,
            kind: kind.into(),
            profile: profile.into(),
            history: Mutex::new(Vec::new()),
            tx,
        });
        map.insert(id, job.clone());
        drop(map);
        std::thread::spawn(move || {
            let sink_job = job.clone();
            let progress =
                Progress::to_sink(Box::new(move |e| sink_job.push(JobEvent::Step(e.clone()))));
            let (status, message) = match work(&progress) {
                Ok(done) => done,
                Err(e) => ("failed".into(), e),
            };
            job.push(JobEvent::Done { status, message });
        });
        Ok(id)
    }
}
