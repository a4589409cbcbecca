//! CloudWatch events → one engine input per log stream.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::events::{self, CwEvent, Rendered};
use super::fetch::{GroupKind, group_kind};
use crate::name::Name;

/// One log stream, ordered, de-duplicated and rendered, ready for the engine.
#[derive(Debug)]
pub struct StreamInput {
    pub group: Option<String>,
    pub stream: String,
    /// `<group>:<stream>` (or the stream alone): `Provenance.input`.
    pub label: Name,
    /// The `server` label: the stream name (the DB instance), unless overridden.
    pub server: Name,
    pub kind: GroupKind,
    pub rendered: Rendered,
    /// Events kept.
    pub events: usize,
    /// Events dropped as repeats of an event id.
    pub duplicates: usize,
    /// When set, only the events whose CloudWatch event id is here are
    /// emitted (the others were emitted by an earlier poll and are parsed
    /// again only as context).
    pub emit_only: Option<HashSet<Arc<str>>>,
}

/// Groups events by (group, stream), in that order, and prepares each
/// stream. A stream is an `iam-db-auth-error` log when its group says so,
/// or (group unknown) when its first message is such a line.
pub fn stream_inputs(events: Vec<CwEvent>, server: Option<Name>) -> Vec<StreamInput> {
    let mut by_stream: BTreeMap<(Option<String>, String), Vec<CwEvent>> = BTreeMap::new();
    for event in events {
        by_stream
            .entry((event.group.clone(), event.stream.clone()))
            .or_default()
            .push(event);
    }
    by_stream
        .into_iter()
        .map(|((group, stream), mut events)| {
            let duplicates = events::order_and_dedupe(&mut events);
            let kind = match &group {
                Some(g) if group_kind(g) == GroupKind::IamAuthError => GroupKind::IamAuthError,
                _ if events
                    .first()
                    .is_some_and(|e| crate::iam_auth::looks_like(e.message.as_bytes())) =>
                {
                    GroupKind::IamAuthError
                }
                _ => GroupKind::Postgres,
            };
            let label = match &group {
                Some(g) => Name::new(format!("{g}:{stream}").as_str()),
                None => Name::new(stream.as_str()),
            };
            let server = server.unwrap_or_else(|| Name::new(stream.as_str()));
            StreamInput {
                rendered: events::render(&events),
                events: events.len(),
                group,
                stream,
                label,
                server,
                kind,
                duplicates,
                emit_only: None,
            }
        })
        .collect()
}
