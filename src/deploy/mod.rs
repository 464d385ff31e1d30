//! Deploy: run an app on real platforms with zero downtime. The release
//! spec and strategies are shared; each platform has its own engine
//! (`docker_host`), and every public service sits behind our proxy.

pub mod docker_host;
pub mod events;
pub mod proxy;
pub mod spec;
pub mod strategy;
