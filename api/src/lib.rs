//! # api — HTTP, auth, dashboard and the `dealtrail` binary
