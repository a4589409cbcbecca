//! The one integration-test binary: data-driven checks against the real logs
//! in `samples/` and live checks against a real PostgreSQL server.

mod audit;
mod bad_input;
mod cloudwatch;
mod common;
mod determinism;
mod iam;
mod live;
mod samples;
mod sessions;
mod siem;
