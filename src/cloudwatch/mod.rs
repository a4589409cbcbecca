//! CloudWatch Logs as a source: the RDS/Aurora log groups read live through
//! `aws-sdk-cloudwatchlogs`, and the same data offline (subscription
//! payloads, CLI JSON; S3 exports go through the stderr decoder).
//!
//! Every CloudWatch input becomes [`CwEvent`]s, grouped per log stream,
//! ordered and de-duplicated ([`events::order_and_dedupe`]), rendered as the
//! log text PostgreSQL wrote ([`events::render`]) and run through the same
//! engine as a file; the [`events::LineMap`] then puts each event's
//! CloudWatch event id into its provenance.
//!
//! | module | owns |
//! |---|---|
//! | `events` | the event model, ordering, de-duplication, rendering, line → event id |
//! | `payload` | recognising and decoding offline shapes |
//! | `limiter` | the client-side request rate limit shared by all requests |
//! | `fetch` | the SDK client: discovery, paginated FilterLogEvents per stream |
//! | `streams` | events → one ordered, rendered engine input per stream |
//! | `checkpoint` | `--follow` progress per stream, written atomically |

pub mod checkpoint;
pub mod events;
pub mod fetch;
pub mod limiter;
pub mod payload;
pub mod streams;

pub use events::{CwEvent, LineMap, Rendered};
