//! Deploy: run an app on real platforms with zero downtime. The release
//! lifecycle (`release.rs`), lock, spec and strategies are shared; each
//! engine (`docker_host`, `swarm`, `kubernetes`) implements `Platform`.

pub mod chain;
pub mod data_check;
pub mod docker_host;
pub mod engines;
pub mod events;
pub mod hand_over;
pub mod images;
pub mod kubernetes;
pub mod lock;
pub mod migrate;
pub mod preflight;
pub mod proxy;
pub mod release;
pub mod spec;
pub mod strategy;
pub mod swarm;
pub mod volume_copy;

pub use crate::state::settings::EngineKind;
