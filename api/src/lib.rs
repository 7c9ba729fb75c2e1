//! # api — HTTP, auth, dashboard and the `dealtrail` binary

pub mod cli;
pub mod demo;
pub mod projector;
pub mod reports;
