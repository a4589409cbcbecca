//! JSON Lines output of events: one object per line, stable field names and
//! order, absent fields omitted. This is the format batch jobs and SIEMs
//! consume, so field names are part of the interface (see README).

use std::io::{self, Write};

use serde::Serialize;

use crate::event::Event;
use crate::time::format_rfc3339_ms;

/// The wire shape of one event.
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

fn is_false(b: &bool) -> bool {
    !*b
}

/// Writes one event as a JSON line.
pub fn write_event<W: Write>(out: &mut W, event: &Event) -> io::Result<()> {
    let wire = WireEvent {
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
    };
    serde_json::to_writer(&mut *out, &wire).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
