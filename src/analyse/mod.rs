//! Analyse: fitness (where can it run), cost (what does it cost there) and
//! the plan that combines them into a recommendation.

pub mod cost;
pub mod fitness;
pub mod graph;
pub mod placement;
pub mod plan;
pub mod split;
pub mod validate;
