//! Blue-green: the whole new colour comes up beside the old one on every
//! host and passes its health checks; then traffic switches at once. The
//! old colour stays running, unrouted, so a rollback is one switch back,
//! until the next deploy or `--cleanup`.

use super::{Engine, Failure, Outcome};
use crate::deploy::spec::ServiceSpec;

pub async fn run(e: &Engine<'_>, s: &ServiceSpec, new: u32) -> Result<Outcome, Failure> {
    let previous: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for host in &e.hosts {
            v.push(e.running_others(host, s, new).await?);
        }
        v
    };
    e.start_release(s, new).await?;
    for (host, old) in e.hosts.iter().zip(previous) {
        if s.public_port.is_some() {
            e.switch_all(host, s, new).await?;
        }
        if e.options.cleanup || s.public_port.is_none() {
            e.stop_all(host, &old, s.stop_grace).await?;
        }
        e.progress.step(
            "switch",
            format!("{} on {}: all traffic on release {new}", s.name, host.name),
        );
    }
    Ok(Outcome::Live)
}
