//! deployment-manager: where can this app run, what will it cost there, and
//! how do we get it there without downtime?
//!
//! The pipeline: [`describe`] → [`analyse`] (fitness, cost, plan) →
//! [`render`] (one module per target) → [`state`].
//! The CLI (`src/main.rs`, [`cli`]) is a thin front over this library.

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
