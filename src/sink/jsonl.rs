//! JSON Lines output of events: one object per line, stable field names and
//! order, absent fields omitted. This is the format batch jobs and SIEMs
//! consume, so field names are part of the interface (see README).

use std::io::{self, Write};

#[cfg(test)]
use serde::Serialize;

use super::json::{self, key};
use crate::event::Event;
#[cfg(test)]
use crate::time::format_rfc3339_ms;

/// The wire shape of one event: the schema [`write_event`] writes by hand,
/// and its test oracle.
#[cfg(test)]
#[derive(Serialize)]
struct WireEvent<'e> {
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    event: &'static str,
    server: &'e str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_name: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_addr: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_method: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hba_line: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_protocol: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_cipher: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_bits: Option<u32>,
    #[serde(skip_serializing_if = "is_false")]
    ssl_unverified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sqlstate: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'e str>,
    message: &'e str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suspect_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingest_time: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    invalid_utf8: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_sources: Vec<String>,
}

#[cfg(test)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// Writes one event as a JSON line: what serialising `WireEvent` with
/// `serde_json` writes (the tests hold them equal), built in one buffer by
/// `json::Object` and written at once.
pub fn write_event<W: Write>(out: &mut W, event: &Event) -> io::Result<()> {
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    append_event(&mut line, event);
    out.write_all(&line)
}

/// Appends one event as a JSON line to `buf` (the bytes of
/// [`write_event`]).
pub fn append_event(buf: &mut Vec<u8>, event: &Event) {
    event_json(buf, event);
    buf.push(b'\n');
}

/// Room for a typical event line, so the buffer rarely grows.
const LINE_CAPACITY: usize = 1024;

/// Appends one event as a JSON object, fields in [`WireEvent`] order.
/// Unlike a session's, an event's time that cannot be shown is `""`.
fn event_json(line: &mut Vec<u8>, e: &Event) {
    let mut o = json::Object::begin(line);
    o.time(key!("time"), e.time_ms, false);
    o.str(key!("event"), e.kind.as_str());
    o.str(key!("server"), &e.server);
    o.opt_uint(key!("pid"), e.pid.map(u64::from));
    o.opt_str(key!("user"), e.user.as_deref());
    o.opt_str(key!("database"), e.database.as_deref());
    o.opt_str(key!("application_name"), e.application_name.as_deref());
    o.opt_str(key!("client_addr"), e.client_addr.as_deref());
    o.opt_uint(key!("client_port"), e.client_port.map(u64::from));
    o.opt_str(key!("auth_method"), e.auth_method.as_deref());
    o.opt_str(key!("identity"), e.identity.as_deref());
    o.opt_str(key!("hba_line"), e.hba_line.as_deref());
    o.opt_str(key!("ssl_protocol"), e.ssl_protocol.as_deref());
    o.opt_str(key!("ssl_cipher"), e.ssl_cipher.as_deref());
    o.opt_uint(key!("ssl_bits"), e.ssl_bits.map(u64::from));
    o.flag(key!("ssl_unverified"), e.ssl_unverified);
    o.opt_str(key!("failure_class"), e.failure_class.map(|c| c.as_str()));
    o.opt_str(key!("sqlstate"), e.sqlstate.as_deref());
    o.opt_str(key!("severity"), e.severity);
    o.opt_str(key!("message_id"), e.message_id);
    o.str(key!("message"), &e.message);
    o.opt_str(key!("detail"), e.detail.as_deref());
    o.opt_uint(key!("session_duration_ms"), e.session_duration_ms);
    o.opt_str(key!("suspect_reason"), e.suspect_reason.map(|r| r.as_str()));
    o.time(key!("ingest_time"), e.ingest_time_ms, false);
    o.flag(key!("invalid_utf8"), e.invalid_utf8);
    if let Some(p) = &e.source {
        json::provenance_into(o.key(key!("source")), p);
    }
    o.provenances(key!("related_sources"), &e.related_sources, true);
    o.end();
}

/// The serde wire value of an event (the oracle of the tests).
#[cfg(test)]
fn wire(event: &Event) -> WireEvent<'_> {
    WireEvent {
        time: event.time_ms.map(format_rfc3339_ms),
        event: event.kind.as_str(),
        server: &event.server,
        pid: event.pid,
        user: event.user.as_deref(),
        database: event.database.as_deref(),
        application_name: event.application_name.as_deref(),
        client_addr: event.client_addr.as_deref(),
        client_port: event.client_port,
        auth_method: event.auth_method.as_deref(),
        identity: event.identity.as_deref(),
        hba_line: event.hba_line.as_deref(),
        ssl_protocol: event.ssl_protocol.as_deref(),
        ssl_cipher: event.ssl_cipher.as_deref(),
        ssl_bits: event.ssl_bits,
        ssl_unverified: event.ssl_unverified,
        failure_class: event.failure_class.map(|c| c.as_str()),
        sqlstate: event.sqlstate.as_deref(),
        severity: event.severity,
        message_id: event.message_id,
        message: &event.message,
        detail: event.detail.as_deref(),
        session_duration_ms: event.session_duration_ms,
        suspect_reason: event.suspect_reason.map(|r| r.as_str()),
        ingest_time: event.ingest_time_ms.map(format_rfc3339_ms),
        invalid_utf8: event.invalid_utf8,
        source: event.source.as_ref().map(|p| p.to_string()),
        related_sources: event
            .related_sources
            .iter()
            .map(|p| p.to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::event::{EventKind, FailureClass, Provenance, SuspectReason};

    /// The line `serde_json` writes for the event (the former writer).
    fn oracle(e: &Event) -> Vec<u8> {
        let mut line = serde_json::to_vec(&wire(e)).unwrap_or_default();
        line.push(b'\n');
        line
    }

    fn written(e: &Event) -> Vec<u8> {
        let mut line = Vec::new();
        assert!(write_event(&mut line, e).is_ok());
        line
    }

    fn provenance(input: &str, line: u64, id: Option<&str>) -> Provenance {
        Provenance {
            input: crate::name::Name::new(input),
            line,
            event_id: id.map(Arc::from),
        }
    }

    /// Every optional field set to `text` (or a number), or every one empty.
    fn event_with(text: &str, full: bool) -> Event {
        let mut e = Event::new(EventKind::AuthFailed, crate::name::Name::new(text));
        e.message = text.to_owned();
        if full {
            e.time_ms = Some(1_764_341_841_812);
            e.message_id = Some("auth_failed.password");
            e.pid = Some(u32::MAX);
            e.user = Some(text.into());
            e.database = Some(text.into());
            e.application_name = Some(text.into());
            e.client_addr = Some(text.into());
            e.client_port = Some(0);
            e.auth_method = Some(text.into());
            e.identity = Some(text.into());
            e.hba_line = Some(text.into());
            e.ssl_protocol = Some(text.into());
            e.ssl_cipher = Some(text.into());
            e.ssl_bits = Some(256);
            e.ssl_unverified = true;
            e.failure_class = Some(FailureClass::Pam);
            e.sqlstate = Some(text.into());
            e.severity = Some("FATAL");
            e.detail = Some(text.into());
            e.session_duration_ms = Some(u64::MAX);
            e.ingest_time_ms = Some(-1);
            e.invalid_utf8 = true;
            e.source = Some(provenance(text, 7, Some(text)));
            e.suspect_reason = Some(SuspectReason::BrokenPrefix);
            e.related_sources = vec![provenance(text, 8, None), provenance("b", 9, Some(""))];
        }
        e
    }

    #[test]
    fn writes_what_serde_json_writes() {
        for text in ["", "plain", "q\"b\\s/\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}é😀"] {
            for full in [false, true] {
                let e = event_with(text, full);
                assert_eq!(written(&e), oracle(&e), "{text:?} {full}");
            }
        }
        // Times chrono writes (five-digit year) or cannot write (empty, kept).
        let mut e = event_with("x", true);
        e.time_ms = Some(253_402_300_800_000);
        e.ingest_time_ms = Some(i64::MAX);
        assert_eq!(written(&e), oracle(&e));
        assert!(String::from_utf8_lossy(&written(&e)).contains("\"ingest_time\":\"\""));
    }

    proptest! {
        #[test]
        fn any_text_writes_what_serde_json_writes(
            text in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f/])*",
            full: bool,
            time in proptest::option::of(any::<i64>()),
        ) {
            let mut e = event_with(&text, full);
            e.time_ms = time;
            prop_assert_eq!(written(&e), oracle(&e));
        }
    }
}
