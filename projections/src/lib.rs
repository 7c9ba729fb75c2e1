//! # projections — read models and reports (SPEC §2)
