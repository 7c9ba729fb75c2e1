//! The API's integration tests: one test binary (faster to link), one module per concern.
//! Most drive `router(..)` with `oneshot`; `e2e` starts real servers on 127.0.0.1:0.

mod append;
mod auth;
mod bad_inputs;
mod consumers;
mod currency;
mod deals;
mod e2e;
mod erase;
mod helpers;
mod openapi;
mod ops;
mod reads;
mod scope;
mod stall;
mod subscribe;
mod tokens;
