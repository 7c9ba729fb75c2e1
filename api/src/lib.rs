//! # api — HTTP, auth, dashboard and the `dealtrail` binary

pub mod cli;
pub mod demo;
pub mod pool_policy;
pub mod projector;
pub mod reports;
pub mod telemetry;
