//! Sessions as ArcSight Common Event Format (CEF:0) lines: one line per
//! logon and per logoff (see [`auth_event`]), ready
//! for a syslog/CEF receiver (ArcSight, QRadar, Splunk, Sentinel).
//!
//! ```text
//! CEF:0|pgtrail|pgtrail|<version>|<signature>|<name>|<severity>|<extensions>
//! ```
//!
//! This module owns the line format and its escaping:
//!
//! - Header fields are fixed text chosen here (never client text), still
//!   escaped (`\` → `\\`, `|` → `\|`).
//! - Extension keys are fixed; values escape `\` → `\\`, `=` → `\=`, a
//!   newline → `\n` and a carriage return → `\r`. So a user, database or
//!   application name can neither start another key nor another line.
//! - Signatures: `logon:success`, `logon:failure`, `logon:abandoned`,
//!   `logoff`; severity 1 (informational), 3 (refused), 6 (a record of the
//!   session could not be trusted).
//! - Keys: `rt` (epoch ms), `act`, `cat`, `outcome`, `reason`, `msg`,
//!   `duser` (the database role), `suser` (the correlated IAM principal
//!   ARN, else the authenticated identity), `src`/`c6a2` (IPv4/IPv6
//!   client), `spt`, `shost` (a client logged by name), `app`
//!   (`postgresql`), `dproc`/`dpid` (the backend), `dhost`/`dvchost`/`dpt`
//!   (the endpoint, when known), `deviceExternalId` (pgtrail's server label),
//!   `externalId` (the session id), `start`/`end`/`cn1` (duration ms) on
//!   logoffs, and labelled custom strings: `cs1` database, `cs2`
//!   application, `cs3` authMethod, `cs4` failureClass, `cs5` evidence,
//!   `cs6` cloud (`aws:<region>:<account>`), `flexString1` the client as
//!   logged (`[local]` for a Unix socket), `flexString2` `suspect`.

use std::io::{self, Write};

use super::auth_event::{self, Activity, AuthEvent, Client, Part, Severity};
use crate::cloud::MatchKind;
use crate::session::{Outcome, Session};

/// Escapes a header field: `\` and `|`; a newline would end the line, so
/// it becomes a space (header fields are fixed text anyway).
pub fn escape_header(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Escapes an extension value: `\`, `=`, newline and carriage return.
pub fn escape_value(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Accumulates `key=value` pairs, space-separated, values escaped.
struct Extensions {
    line: String,
    first: bool,
}

impl Extensions {
    fn add(&mut self, key: &'static str, value: &str) {
        if !self.first {
            self.line.push(' ');
        }
        self.first = false;
        self.line.push_str(key);
        self.line.push('=');
        escape_value(value, &mut self.line);
    }

    fn add_opt(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(v) = value {
            self.add(key, v);
        }
    }

    fn add_labelled(
        &mut self,
        key: &'static str,
        label_key: &'static str,
        label: &str,
        value: Option<&str>,
    ) {
        if let Some(v) = value {
            self.add(key, v);
            self.add(label_key, label);
        }
    }
}

/// One event as a CEF line, without the line end.
fn line(ev: AuthEvent<'_>) -> String {
    let s = ev.session;
    let (signature, name) = match (ev.activity, ev.outcome()) {
        (Activity::Logoff, _) => ("logoff", "PostgreSQL logoff"),
        (Activity::Logon, Outcome::Success) => ("logon:success", "PostgreSQL logon succeeded"),
        (Activity::Logon, Outcome::Failure) => ("logon:failure", "PostgreSQL logon failed"),
        (Activity::Logon, Outcome::Abandoned) => ("logon:abandoned", "PostgreSQL logon abandoned"),
    };
    let severity = match ev.severity() {
        Severity::Informational => "1",
        Severity::Low => "3",
        Severity::Medium => "6",
    };
    let mut out = String::with_capacity(512);
    out.push_str("CEF:0|");
    for field in [
        "pgtrail",
        "pgtrail",
        env!("CARGO_PKG_VERSION"),
        signature,
        name,
        severity,
    ] {
        escape_header(field, &mut out);
        out.push('|');
    }
    let mut ext = Extensions {
        line: out,
        first: true,
    };
    if let Some(t) = ev.time_ms() {
        ext.add("rt", &t.to_string());
    }
    ext.add("act", ev.activity.as_str());
    ext.add("cat", "authentication");
    ext.add("outcome", ev.outcome().as_str());
    ext.add_opt("reason", ev.status_detail().as_deref());
    ext.add("msg", &ev.message());
    ext.add_opt("duser", s.user.as_deref());
    let principal = s.iam.as_deref().and_then(|i| match i.kind {
        MatchKind::Exact | MatchKind::Probable => i.best.as_ref(),
        _ => None,
    });
    ext.add_opt(
        "suser",
        principal
            .map(|p| p.principal_arn.as_str())
            .or(s.identity.as_deref()),
    );
    match Client::of(s) {
        Some(Client::Ip(ip)) if ip.is_ipv4() => ext.add("src", &ip.to_string()),
        Some(Client::Ip(ip)) => {
            ext.add("c6a2", &ip.to_string());
            ext.add("c6a2Label", "Source IPv6 Address");
        }
        Some(Client::Host(h)) => ext.add("shost", h),
        Some(Client::Local) | None => {}
    }
    if let Some(port) = s.client_port {
        ext.add("spt", &port.to_string());
    }
    ext.add("app", "postgresql");
    ext.add("dproc", "postgres");
    ext.add("dpid", &s.pid.to_string());
    let cloud = s.cloud.as_deref();
    ext.add_opt("dhost", cloud.and_then(|c| c.host.as_deref()));
    ext.add_opt("dvchost", cloud.and_then(|c| c.host.as_deref()));
    if let Some(port) = cloud.and_then(|c| c.port) {
        ext.add("dpt", &port.to_string());
    }
    ext.add("deviceExternalId", &s.server);
    ext.add("externalId", &s.session_id);
    if ev.activity == Activity::Logoff {
        if let Some(t) = s.start_ms {
            ext.add("start", &t.to_string());
        }
        if let Some(t) = s.end_ms {
            ext.add("end", &t.to_string());
        }
        if let Some(d) = ev.duration_ms() {
            ext.add("cn1", &d.to_string());
            ext.add("cn1Label", "durationMs");
        }
    }
    ext.add_labelled("cs1", "cs1Label", "database", s.database.as_deref());
    ext.add_labelled(
        "cs2",
        "cs2Label",
        "application",
        s.application_name.as_deref(),
    );
    ext.add_labelled("cs3", "cs3Label", "authMethod", s.auth_method.as_deref());
    ext.add_labelled(
        "cs4",
        "cs4Label",
        "failureClass",
        s.failure_class.map(|c| c.as_str()),
    );
    let evidence: Vec<String> = s.evidence.iter().map(|p| p.to_string()).collect();
    ext.add_labelled(
        "cs5",
        "cs5Label",
        "evidence",
        (!evidence.is_empty())
            .then(|| evidence.join(";"))
            .as_deref(),
    );
    let cloud_text = cloud
        .filter(|c| c.account_id.is_some() || c.region.is_some())
        .map(|c| {
            format!(
                "aws:{}:{}",
                c.region.as_deref().unwrap_or_default(),
                c.account_id.as_deref().unwrap_or_default()
            )
        });
    ext.add_labelled("cs6", "cs6Label", "cloud", cloud_text.as_deref());
    ext.add_labelled(
        "flexString1",
        "flexString1Label",
        "client",
        s.client_addr.as_deref(),
    );
    if s.suspect {
        ext.add("flexString2", "suspect");
        ext.add("flexString2Label", "integrity");
    }
    ext.line
}

/// Writes the events of one session (logon, then logoff if it ended), one
/// CEF line each.
pub fn write_session<W: Write>(out: &mut W, session: &Session) -> io::Result<()> {
    write_events(out, session, Part::All)
}

/// Writes the events of `part` of one session, one CEF line each.
pub fn write_events<W: Write>(out: &mut W, session: &Session, part: Part) -> io::Result<()> {
    for ev in auth_event::events_of(session, part) {
        let mut text = line(ev);
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::{Event, EventKind, FailureClass, Provenance};
    use crate::session::stitch;

    #[test]
    fn values_escape_backslash_equals_and_line_breaks() {
        let mut out = String::new();
        escape_value("a\\b=c\nd\re|f g", &mut out);
        assert_eq!(out, "a\\\\b\\=c\\nd\\re|f g");
        let mut out = String::new();
        escape_header("a|b\\c\nd", &mut out);
        assert_eq!(out, "a\\|b\\\\c d");
    }

    fn refused(user: &str) -> Session {
        let mut r = Event::new(EventKind::Received, crate::name::Name::new("db1"));
        r.pid = Some(7);
        r.time_ms = Some(1_000);
        r.client_addr = Some("2001:db8::7".into());
        r.client_port = Some(5000);
        r.source = Some(Provenance {
            input: crate::name::Name::new("pg.log"),
            line: 1,
            event_id: None,
        });
        let mut f = r.clone();
        f.kind = EventKind::AuthFailed;
        f.time_ms = Some(1_002);
        f.user = Some(user.into());
        f.failure_class = Some(FailureClass::Password);
        f.message = format!("password authentication failed for user \"{user}\"");
        let mut sessions = stitch(vec![r, f]);
        assert_eq!(sessions.len(), 1);
        sessions.remove(0)
    }

    #[test]
    fn a_hostile_user_cannot_add_a_key_or_a_line() {
        let user = "x duser=admin|\\\nCEF:0|a|b|c|d|e|10|src=6.6.6.6";
        let mut out = Vec::new();
        assert!(write_session(&mut out, &refused(user)).is_ok());
        let text = String::from_utf8(out).unwrap_or_default();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with('\n'));
        // Every `=` that separates a key is preceded by a fixed key.
        let unescaped_equals = text
            .char_indices()
            .filter(|&(i, c)| c == '=' && !text[..i].ends_with('\\'))
            .count();
        let keys = text.split(' ').filter(|w| w.contains('=')).count();
        assert!(unescaped_equals <= keys);
        assert!(text.contains("duser=x duser\\=admin|\\\\\\nCEF:0|a|b|c|d|e|10|src\\=6.6.6.6 "));
        assert!(text.starts_with("CEF:0|pgtrail|pgtrail|"));
        assert!(text.contains("|logon:failure|PostgreSQL logon failed|3|"));
        // IPv6 clients use c6a2, not src.
        assert!(text.contains(" c6a2=2001:db8::7 c6a2Label=Source IPv6 Address "));
        assert!(!text.contains(" src=2001"));
    }
}
