//! # api — HTTP, auth, dashboard and the `dealtrail` binary

pub mod cli;
pub mod demo;
pub mod reports;
