//! Progress of long operations: one JSON object per line for machines, a
//! spinner and a line per finished step for people. Every event is also
//! kept so it can be stored with the release.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub elapsed_ms: u64,
    pub phase: String,
    pub message: String,
}

/// Receives every event as it happens (the dashboard streams them).
pub type Sink = Box<dyn Fn(&Event) + Send + Sync>;

pub struct Progress {
    json: bool,
    start: Instant,
    bar: Option<ProgressBar>,
    events: Mutex<Vec<Event>>,
    sink: Option<Sink>,
    silent: bool,
}

impl Progress {
    pub fn new(json: bool) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            json,
            start: Instant::now(),
            bar,
            events: Mutex::new(Vec::new()),
            sink: None,
            silent: false,
        }
    }

    /// Events go to `sink` only.
    pub fn to_sink(sink: Sink) -> Progress {
        Progress {
            sink: Some(sink),
            ..Progress::quiet()
        }
    }

    /// A silent reporter (library callers and tests).
    pub fn quiet() -> Progress {
        Progress {
            json: false,
            start: Instant::now(),
            bar: None,
            events: Mutex::new(Vec::new()),
            sink: None,
            silent: true,
        }
    }

    pub fn step(&self, phase: &str, message: impl Into<String>) {
        let e = Event {
            elapsed_ms: self.start.elapsed().as_millis() as u64,
            phase: phase.into(),
            message: message.into(),
        };
        if let Some(sink) = &self.sink {
            sink(&e);
        } else if self.json {
            println!("{}", serde_json::to_string(&e).unwrap_or_default());
        } else if let Some(b) = &self.bar {
            b.println(format!(
                "  {:>6.1}s  {:<10} {}",
                e.elapsed_ms as f64 / 1000.0,
                e.phase,
                e.message
            ));
            b.set_message(e.message.clone());
        } else if std::env::var_os("DM_QUIET").is_none() && !self.silent {
            eprintln!(
                "  {:>6.1}s  {:<10} {}",
                e.elapsed_ms as f64 / 1000.0,
                e.phase,
                e.message
            );
        }
        self.events.lock().unwrap().push(e);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
