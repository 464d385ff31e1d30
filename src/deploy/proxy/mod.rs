//! The traffic proxy run in front of every public service (one container
//! per service, built from this same binary).

pub mod admin;
pub mod client_wire;
pub mod front;
pub mod grpc_health;
pub mod http1_wire;
pub mod idle_sweep;
pub mod metrics;
pub mod per_thread;
pub mod server;
pub mod table;
pub mod target;
pub mod upstream;
pub mod upstream_http1;
