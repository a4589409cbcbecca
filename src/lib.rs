//! pgtrail: PostgreSQL connection logs → an audit trail.
//!
//! The data flow runs one way (see ARCHITECTURE.md):
//! `source` (bytes) → `record` decoders (`Record<'a>`) → `message`
//! (grammar match) → `event` (`Event`) → sinks.

pub mod event;
pub mod prefix;
pub mod record;
pub mod time;
