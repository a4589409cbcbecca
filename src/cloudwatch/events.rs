//! The CloudWatch Logs event model and the one path every CloudWatch input
//! takes into the engine: the events of one log stream are ordered, de-duplicated
//! by event id, and rendered as the text lines PostgreSQL wrote (a message
//! may hold embedded `\n` continuation lines); a [`LineMap`] remembers which
//! event each rendered line came from, so the events the engine emits get
//! their CloudWatch event id (and ingestion time) back.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use crate::event::{Event, Provenance};

/// One CloudWatch Logs event, from the API, a subscription payload or the
/// JSON the AWS CLI prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CwEvent {
    /// The log group, when the source names it (`get-log-events` output does not).
    pub group: Option<String>,
    /// The log stream (for RDS: the DB instance).
    pub stream: String,
    /// CloudWatch's event id: a 56-digit string in AWS, a small integer in moto.
    pub event_id: Option<String>,
    /// Event time, epoch milliseconds.
    pub timestamp_ms: i64,
    /// When CloudWatch ingested the event, epoch milliseconds.
    pub ingestion_ms: Option<i64>,
    pub message: String,
    /// Position in its source (fetch order, or index in a file's `events[]`):
    /// the tie-breaker of last resort, and the reference of events without id.
    pub seq: u64,
}

impl CwEvent {
    /// The input label of the stream: `<group>:<stream>`, or the stream alone.
    pub fn label(&self) -> String {
        match &self.group {
            Some(group) => format!("{group}:{}", self.stream),
            None => self.stream.clone(),
        }
    }
}

/// Compares event ids: all-digit ids (AWS's fixed-width ones, moto's small
/// integers) numerically, others as text.
fn cmp_ids(a: &Option<String>, b: &Option<String>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            if digits(a) && digits(b) {
                let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
                a.len().cmp(&b.len()).then_with(|| a.cmp(b))
            } else {
                a.cmp(b)
            }
        }
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
    }
}

/// Orders the events of one stream as CloudWatch does (timestamp, then
/// ingestion time, then event id; then source position) and removes
/// repeated event ids (pages re-read in an overlap window, a payload
/// delivered twice). Events without an id are never merged: two identical
/// events are legal. Returns how many duplicates were removed.
pub fn order_and_dedupe(events: &mut Vec<CwEvent>) -> usize {
    events.sort_by(|a, b| {
        a.timestamp_ms
            .cmp(&b.timestamp_ms)
            .then_with(|| {
                a.ingestion_ms
                    .unwrap_or(i64::MAX)
                    .cmp(&b.ingestion_ms.unwrap_or(i64::MAX))
            })
            .then_with(|| cmp_ids(&a.event_id, &b.event_id))
            .then_with(|| a.seq.cmp(&b.seq))
    });
    let before = events.len();
    let mut seen: HashSet<String> = HashSet::new();
    events.retain(|e| match &e.event_id {
        Some(id) if !id.is_empty() => seen.insert(id.clone()),
        _ => true,
    });
    before - events.len()
}

/// Where each rendered line came from.
#[derive(Debug, Clone, Default)]
pub struct LineMap {
    /// First line (1-based) of each event, ascending.
    starts: Vec<u64>,
    /// The provenance id of each event: its event id, or `events[<seq>]`
    /// for events that have none (`get-log-events` output).
    ids: Vec<Arc<str>>,
    ingestion: Vec<Option<i64>>,
    times: Vec<i64>,
}

impl LineMap {
    /// The CloudWatch timestamp and provenance id of the event a line belongs to.
    pub fn event_at(&self, line: u64) -> Option<(i64, &Arc<str>)> {
        let at = self.starts.partition_point(|&s| s <= line).checked_sub(1)?;
        Some((self.times[at], &self.ids[at]))
    }

    /// The event a line belongs to: (provenance id, ingestion time).
    pub fn lookup(&self, line: u64) -> Option<(&Arc<str>, Option<i64>)> {
        let at = self.starts.partition_point(|&s| s <= line).checked_sub(1)?;
        Some((&self.ids[at], self.ingestion[at]))
    }

    /// Number of events mapped.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Puts the CloudWatch event id on every provenance of `event` (and
    /// the ingestion time, when the record's text carried none).
    pub fn annotate(&self, event: &mut Event) {
        let fill = |p: &mut Provenance| -> Option<i64> {
            let (id, ingestion) = self.lookup(p.line)?;
            p.event_id = Some(id.clone());
            ingestion
        };
        let ingestion = event.source.as_mut().and_then(fill);
        for related in &mut event.related_sources {
            fill(related);
        }
        if event.ingest_time_ms.is_none() {
            event.ingest_time_ms = ingestion;
        }
    }
}

/// The events of one stream as log text.
#[derive(Debug, Default)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub map: LineMap,
}

/// Renders ordered events as text: each message on its own line(s), one
/// trailing newline of a message dropped (the line break is ours).
pub fn render(events: &[CwEvent]) -> Rendered {
    let mut out = Rendered {
        bytes: Vec::with_capacity(events.iter().map(|e| e.message.len() + 1).sum()),
        map: LineMap::default(),
    };
    let mut line: u64 = 1;
    for event in events {
        let mut text = event.message.as_bytes();
        if let Some(rest) = text.strip_suffix(b"\n") {
            text = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        out.map.starts.push(line);
        out.map.ids.push(match &event.event_id {
            Some(id) if !id.is_empty() => Arc::from(id.as_str()),
            _ => Arc::from(format!("events[{}]", event.seq).as_str()),
        });
        out.map.ingestion.push(event.ingestion_ms);
        out.map.times.push(event.timestamp_ms);
        out.bytes.extend_from_slice(text);
        out.bytes.push(b'\n');
        line += 1 + memchr::memchr_iter(b'\n', text).count() as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: Option<&str>, ts: i64, ing: Option<i64>, msg: &str, seq: u64) -> CwEvent {
        CwEvent {
            group: Some("g".into()),
            stream: "s".into(),
            event_id: id.map(str::to_owned),
            timestamp_ms: ts,
            ingestion_ms: ing,
            message: msg.into(),
            seq,
        }
    }

    #[test]
    fn orders_by_time_ingestion_numeric_id_and_dedupes() {
        let mut events = vec![
            ev(Some("10"), 5, Some(9), "c", 0),
            ev(Some("2"), 5, Some(9), "b", 1),
            ev(Some("1"), 5, Some(7), "a", 2),
            ev(Some("2"), 5, Some(9), "b", 3),
            ev(None, 1, None, "x", 4),
            ev(None, 1, None, "x", 5),
        ];
        assert_eq!(order_and_dedupe(&mut events), 1);
        let order: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(order, ["x", "x", "a", "b", "c"]);
    }

    #[test]
    fn renders_multiline_and_maps_lines() {
        let events = vec![
            ev(Some("7"), 1, Some(3), "first\n\tcontinued\n", 0),
            ev(None, 2, None, "second", 4),
        ];
        let r = render(&events);
        assert_eq!(r.bytes, b"first\n\tcontinued\nsecond\n");
        assert_eq!(r.map.lookup(1).map(|(id, _)| &**id), Some("7"));
        assert_eq!(
            r.map.lookup(2).map(|(id, i)| (&**id, i)),
            Some(("7", Some(3)))
        );
        assert_eq!(r.map.lookup(3).map(|(id, _)| &**id), Some("events[4]"));
        assert!(r.map.lookup(0).is_none());
    }
}
