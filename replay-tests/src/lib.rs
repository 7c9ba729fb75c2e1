//! # replay-tests — recorded event logs and the tests that replay them
//!
//! The logs live in `logs/`; the tests in `tests/`.
