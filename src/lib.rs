//! pgtrail: PostgreSQL connection logs → an audit trail.
//!
//! The data flow runs one way (see ARCHITECTURE.md):
//! `source` (bytes) → `record` decoders (`Record<'a>`) → `message`
//! (grammar match) → `event` (`Event`) → sinks.

/// `eprintln!` that ignores a closed or failing stderr instead of
/// panicking: the stats and notes must not kill a run whose stderr went to
/// a pipe that closed (`pgtrail … 2>&1 | head`).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

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
pub mod name;
pub mod pipeline;
pub mod prefetch;
pub mod prefix;
pub mod reader;
pub mod record;
pub mod scratch;
pub mod session;
pub mod sink;
pub mod source;
pub mod summary;
pub mod time;

/// The text of a bundled sample (`relative` to the repository), for tests
/// that build on real lines; `None` in a checkout without `samples/`.
#[cfg(test)]
pub(crate) fn sample_text(relative: &str) -> Option<String> {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).ok()
}
