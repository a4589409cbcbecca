//! pgtrail: PostgreSQL connection logs → an audit trail.
//!
//! The data flow runs one way (see ARCHITECTURE.md):
//! `source` (bytes) → `record` decoders (`Record<'a>`) → `message`
//! (grammar match) → `event` (`Event`) → sinks.

pub mod cli;
pub mod cloud;
pub mod cloudwatch;
pub mod engine;
pub mod event;
pub mod extract;
pub mod filter;
pub mod findings;
pub mod follow;
pub mod frame;
pub mod grammar;
pub mod iam;
pub mod iam_auth;
pub mod message;
pub mod pipeline;
pub mod prefix;
pub mod reader;
pub mod record;
pub mod session;
pub mod sink;
pub mod source;
pub mod summary;
pub mod time;
