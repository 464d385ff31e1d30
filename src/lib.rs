//! deployment-manager: where can this app run, what will it cost there, and
//! how do we get it there without downtime?
//!
//! The pipeline: [`describe`] → [`analyse`] (fitness, cost, plan) →
//! [`render`] (one module per target) → [`deploy`], over [`state`] (what is
//! persisted, typed) and [`catalog`]. [`session`] is the application layer
//! the two fronts call: the CLI (`src/main.rs`, [`cli`]) and the dashboard
//! ([`serve`]). Layers import only those below them (README, "Layout").

pub mod analyse;
pub mod catalog;
pub mod cli;
pub mod deploy;
pub mod describe;
pub mod manifest;
pub mod render;
pub mod report;
pub mod serve;
pub mod session;
pub mod state;
