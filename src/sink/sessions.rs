//! Sessions as JSON Lines and CSV: one record per connection attempt.
//!
//! Both formats have the same fields in the same order ([`COLUMNS`]): the
//! fields of the `pgtrail audit` record, then `ssl_unverified`, `suspect`
//! and `notes`. Field names are part of the interface (see README).
//!
//! - JSON Lines: absent fields are omitted (unknown values, `false` flags,
//!   empty `notes`); times are RFC 3339 UTC with milliseconds; `evidence`
//!   is an array of `"path:line"` strings.
//! - CSV: a header row, then one row per session (`\n` line ends); unknown values are empty
//!   fields, flags are `true`/`false`, `evidence` is joined with `;` and
//!   `notes` with a newline. Fields are quoted as RFC 4180 requires, so a
//!   multi-line `failure_detail` stays one field. Values are written as
//!   logged: a client-chosen name starting with `=` is not neutralised for
//!   spreadsheets.
//! - IAM correlation (`--cloudtrail` & co.): JSON Lines gain an `iam`
//!   object after `notes` ([`IAM_FIELDS`] order, absent fields omitted);
//!   CSV gains the [`IAM_COLUMNS`] after the others. Without IAM inputs
//!   neither appears and the output is unchanged.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use super::json::{self, key};
use crate::cloud::{IamAttribution, IamCandidate};
use crate::event::Provenance;
use crate::session::Session;
use crate::time::format_rfc3339_ms;

/// The field names, in output order, for both formats.
pub const COLUMNS: [&str; 26] = [
    "session_id",
    "server",
    "pid",
    "start",
    "end",
    "duration_ms",
    "outcome",
    "failure_class",
    "failure_message",
    "failure_detail",
    "user",
    "database",
    "application_name",
    "client_addr",
    "client_port",
    "auth_method",
    "identity",
    "hba_line",
    "ssl_protocol",
    "ssl_cipher",
    "ssl_bits",
    "end_reason",
    "evidence",
    "ssl_unverified",
    "suspect",
    "notes",
];

/// The fields of the `iam` object, in output order.
pub const IAM_FIELDS: [&str; 16] = [
    "match",
    "principal_arn",
    "role_arn",
    "session_name",
    "source_identity",
    "source_account",
    "access_key_id",
    "assumed_at",
    "expires_at",
    "evidence",
    "sources",
    "chain",
    "conditional",
    "candidates",
    "reason",
    "candidate_list",
];

/// The CSV columns added by IAM correlation (`iam_` + [`IAM_FIELDS`]).
pub const IAM_COLUMNS: [&str; 16] = [
    "iam_match",
    "iam_principal_arn",
    "iam_role_arn",
    "iam_session_name",
    "iam_source_identity",
    "iam_source_account",
    "iam_access_key_id",
    "iam_assumed_at",
    "iam_expires_at",
    "iam_evidence",
    "iam_sources",
    "iam_chain",
    "iam_conditional",
    "iam_candidates",
    "iam_reason",
    "iam_candidate_list",
];

/// One IAM candidate on the wire (no credentials: only the access key id).
#[derive(Serialize)]
struct WireCandidate<'s> {
    principal_arn: &'s str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_name: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_identity: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_account: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assumed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    evidence: &'s [String],
    sources: &'s [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    chain: &'s [String],
    #[serde(skip_serializing_if = "is_false")]
    conditional: bool,
    #[serde(skip_serializing_if = "is_false")]
    contradicted: bool,
    score: u32,
}

impl<'s> WireCandidate<'s> {
    fn new(c: &'s IamCandidate) -> Self {
        WireCandidate {
            principal_arn: &c.principal_arn,
            role_arn: c.role_arn.as_deref(),
            session_name: c.session_name.as_deref(),
            source_identity: c.source_identity.as_deref(),
            source_account: c.source_account.as_deref(),
            access_key_id: c.access_key_id.as_deref(),
            assumed_at: time(c.assumed_at_ms),
            expires_at: time(c.expires_at_ms),
            evidence: &c.evidence,
            sources: &c.sources,
            chain: &c.chain,
            conditional: c.conditional,
            contradicted: c.contradicted,
            score: c.score,
        }
    }
}

/// The `iam` object (field order = [`IAM_FIELDS`]).
#[derive(Serialize)]
struct WireIam<'s> {
    #[serde(rename = "match")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_arn: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_name: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_identity: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_account: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assumed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    evidence: &'s [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    sources: &'s [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    chain: &'s [String],
    #[serde(skip_serializing_if = "is_false")]
    conditional: bool,
    candidates: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'s str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    candidate_list: Vec<WireCandidate<'s>>,
}

impl<'s> WireIam<'s> {
    fn new(a: &'s IamAttribution) -> Self {
        let best = a.best.as_ref();
        // An ambiguous answer chose nobody: it shows the evidence the tied
        // candidates share.
        let evidence: &[String] = match (best, a.candidates.first()) {
            (Some(b), _) => &b.evidence,
            (None, Some(c)) if a.kind == crate::cloud::MatchKind::Ambiguous => &c.evidence,
            _ => &[],
        };
        WireIam {
            kind: a.kind.as_str(),
            principal_arn: best.map(|b| b.principal_arn.as_str()),
            role_arn: best.and_then(|b| b.role_arn.as_deref()),
            session_name: best.and_then(|b| b.session_name.as_deref()),
            source_identity: best.and_then(|b| b.source_identity.as_deref()),
            source_account: best.and_then(|b| b.source_account.as_deref()),
            access_key_id: best.and_then(|b| b.access_key_id.as_deref()),
            assumed_at: time(best.and_then(|b| b.assumed_at_ms)),
            expires_at: time(best.and_then(|b| b.expires_at_ms)),
            evidence,
            sources: best.map_or(&[][..], |b| &b.sources),
            chain: best.map_or(&[][..], |b| &b.chain),
            conditional: best.is_some_and(|b| b.conditional),
            candidates: a.candidate_count,
            reason: a.reason.as_deref(),
            candidate_list: a.candidates.iter().map(WireCandidate::new).collect(),
        }
    }

    /// The CSV cells, in [`IAM_COLUMNS`] order.
    fn csv_cells(&self) -> Vec<Cow<'_, str>> {
        let text = |v: Option<&'s str>| Cow::Borrowed(v.unwrap_or_default());
        vec![
            Cow::Borrowed(self.kind),
            text(self.principal_arn),
            text(self.role_arn),
            text(self.session_name),
            text(self.source_identity),
            text(self.source_account),
            text(self.access_key_id),
            Cow::Owned(self.assumed_at.clone().unwrap_or_default()),
            Cow::Owned(self.expires_at.clone().unwrap_or_default()),
            Cow::Owned(self.evidence.join(";")),
            Cow::Owned(self.sources.join(";")),
            Cow::Owned(self.chain.join(";")),
            Cow::Borrowed(if self.conditional { "true" } else { "false" }),
            Cow::Owned(self.candidates.to_string()),
            text(self.reason),
            if self.candidate_list.is_empty() {
                Cow::Borrowed("")
            } else {
                Cow::Owned(serde_json::to_string(&self.candidate_list).unwrap_or_default())
            },
        ]
    }
}

/// The wire shape of one session (field order = [`COLUMNS`]).
#[derive(Serialize)]
struct WireSession<'s> {
    session_id: &'s str,
    server: &'s str,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_message: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_detail: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_name: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_addr: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_method: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hba_line: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_protocol: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_cipher: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_bits: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_reason: Option<&'static str>,
    evidence: EvidenceList<'s>,
    #[serde(skip_serializing_if = "is_false")]
    ssl_unverified: bool,
    #[serde(skip_serializing_if = "is_false")]
    suspect: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notes: &'s [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    iam: Option<WireIam<'s>>,
}

/// Provenances as `"path:line"` strings, written without building them
/// first (a session has several; this runs once per session).
pub(crate) struct EvidenceList<'s>(pub(crate) &'s [Provenance]);

impl EvidenceList<'_> {
    fn joined(&self, separator: &str) -> String {
        let texts: Vec<String> = self.0.iter().map(|p| p.to_string()).collect();
        texts.join(separator)
    }
}

impl Serialize for EvidenceList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct AsText<'p>(&'p Provenance);
        impl Serialize for AsText<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self.0)
            }
        }
        serializer.collect_seq(self.0.iter().map(AsText))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// RFC 3339 UTC with milliseconds; `None` for a time chrono cannot show.
fn time(ms: Option<i64>) -> Option<String> {
    ms.map(format_rfc3339_ms).filter(|t| !t.is_empty())
}

impl<'s> WireSession<'s> {
    fn new(s: &'s Session) -> Self {
        WireSession {
            session_id: &s.session_id,
            server: &s.server,
            pid: s.pid,
            start: time(s.start_ms),
            end: time(s.end_ms),
            duration_ms: s.duration_ms,
            outcome: s.outcome.as_str(),
            failure_class: s.failure_class.map(|c| c.as_str()),
            failure_message: s.failure_message.as_deref(),
            failure_detail: s.failure_detail.as_deref(),
            user: s.user.as_deref(),
            database: s.database.as_deref(),
            application_name: s.application_name.as_deref(),
            client_addr: s.client_addr.as_deref(),
            client_port: s.client_port,
            auth_method: s.auth_method.as_deref(),
            identity: s.identity.as_deref(),
            hba_line: s.hba_line.as_deref(),
            ssl_protocol: s.ssl_protocol.as_deref(),
            ssl_cipher: s.ssl_cipher.as_deref(),
            ssl_bits: s.ssl_bits,
            end_reason: s.end_reason.map(|r| r.as_str()),
            evidence: EvidenceList(&s.evidence),
            ssl_unverified: s.ssl_unverified,
            suspect: s.suspect,
            notes: &s.notes,
            iam: s.iam.as_deref().map(WireIam::new),
        }
    }

    /// The CSV row, in [`COLUMNS`] order.
    fn csv_row(&self) -> [Cow<'_, str>; 26] {
        fn opt<T: ToString>(v: Option<T>) -> Cow<'static, str> {
            v.map_or(Cow::Borrowed(""), |v| Cow::Owned(v.to_string()))
        }
        fn text<'a>(v: Option<&'a str>) -> Cow<'a, str> {
            Cow::Borrowed(v.unwrap_or_default())
        }
        fn flag(b: bool) -> Cow<'static, str> {
            Cow::Borrowed(if b { "true" } else { "false" })
        }
        [
            Cow::Borrowed(self.session_id),
            Cow::Borrowed(self.server),
            Cow::Owned(self.pid.to_string()),
            text(self.start.as_deref()),
            text(self.end.as_deref()),
            opt(self.duration_ms),
            Cow::Borrowed(self.outcome),
            text(self.failure_class),
            text(self.failure_message),
            text(self.failure_detail),
            text(self.user),
            text(self.database),
            text(self.application_name),
            text(self.client_addr),
            opt(self.client_port),
            text(self.auth_method),
            text(self.identity),
            text(self.hba_line),
            text(self.ssl_protocol),
            text(self.ssl_cipher),
            opt(self.ssl_bits),
            text(self.end_reason),
            Cow::Owned(self.evidence.joined(";")),
            flag(self.ssl_unverified),
            flag(self.suspect),
            Cow::Owned(self.notes.join("\n")),
        ]
    }
}

/// Writes one session as a JSON line: what serialising `WireSession`
/// with `serde_json` writes (the tests hold them equal), built in one
/// buffer by `json::Object` and written at once.
pub fn write_jsonl<W: Write>(out: &mut W, s: &Session) -> io::Result<()> {
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    append_jsonl(&mut line, s)?;
    out.write_all(&line)
}

/// Appends one session as a JSON line to `buf` (the bytes of
/// [`write_jsonl`]). On an error part of the line may be in `buf`: the
/// caller drops it (`BackgroundWriter::push` does).
pub fn append_jsonl(buf: &mut Vec<u8>, s: &Session) -> io::Result<()> {
    session_json(buf, s)?;
    buf.push(b'\n');
    Ok(())
}

/// Room for a typical session line, so the buffer rarely grows.
const LINE_CAPACITY: usize = 1024;

/// Appends one session as a JSON object (field order = [`COLUMNS`]).
fn session_json(line: &mut Vec<u8>, s: &Session) -> io::Result<()> {
    let mut o = json::Object::begin(line);
    o.str(key!("session_id"), &s.session_id);
    o.str(key!("server"), &s.server);
    o.uint(key!("pid"), u64::from(s.pid));
    o.time(key!("start"), s.start_ms, true);
    o.time(key!("end"), s.end_ms, true);
    o.opt_uint(key!("duration_ms"), s.duration_ms);
    o.str(key!("outcome"), s.outcome.as_str());
    o.opt_str(key!("failure_class"), s.failure_class.map(|c| c.as_str()));
    o.opt_str(key!("failure_message"), s.failure_message.as_deref());
    o.opt_str(key!("failure_detail"), s.failure_detail.as_deref());
    o.opt_str(key!("user"), s.user.as_deref());
    o.opt_str(key!("database"), s.database.as_deref());
    o.opt_str(key!("application_name"), s.application_name.as_deref());
    o.opt_str(key!("client_addr"), s.client_addr.as_deref());
    o.opt_uint(key!("client_port"), s.client_port.map(u64::from));
    o.opt_str(key!("auth_method"), s.auth_method.as_deref());
    o.opt_str(key!("identity"), s.identity.as_deref());
    o.opt_str(key!("hba_line"), s.hba_line.as_deref());
    o.opt_str(key!("ssl_protocol"), s.ssl_protocol.as_deref());
    o.opt_str(key!("ssl_cipher"), s.ssl_cipher.as_deref());
    o.opt_uint(key!("ssl_bits"), s.ssl_bits.map(u64::from));
    o.opt_str(key!("end_reason"), s.end_reason.map(|r| r.as_str()));
    o.provenances(key!("evidence"), &s.evidence, false);
    o.flag(key!("ssl_unverified"), s.ssl_unverified);
    o.flag(key!("suspect"), s.suspect);
    o.str_array(key!("notes"), s.notes.iter().map(String::as_str), true);
    if let Some(iam) = s.iam.as_deref() {
        // Rare (IAM correlation only): serde writes it.
        serde_json::to_writer(o.key(key!("iam")), &WireIam::new(iam)).map_err(io::Error::from)?;
    }
    o.end();
    Ok(())
}

/// Sessions as CSV: a header row (written before the first session, or by
/// [`CsvWriter::finish`] when there is none), then one row per session.
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<W>,
    header_written: bool,
    iam: bool,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> Self {
        CsvWriter {
            inner: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out),
            header_written: false,
            iam: false,
        }
    }

    /// A writer with the [`IAM_COLUMNS`] (IAM correlation on).
    pub fn with_iam(out: W) -> Self {
        CsvWriter {
            iam: true,
            ..CsvWriter::new(out)
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            if self.iam {
                self.inner
                    .write_record(COLUMNS.iter().chain(IAM_COLUMNS.iter()))?;
            } else {
                self.inner.write_record(COLUMNS)?;
            }
            self.header_written = true;
        }
        Ok(())
    }

    /// Writes one session as a row.
    pub fn write(&mut self, s: &Session) -> io::Result<()> {
        self.header()?;
        let wire = WireSession::new(s);
        if self.iam {
            let iam = wire
                .iam
                .as_ref()
                .map(WireIam::csv_cells)
                .unwrap_or_else(|| vec![Cow::Borrowed(""); IAM_COLUMNS.len()]);
            self.inner.write_record(
                wire.csv_row()
                    .iter()
                    .chain(iam.iter())
                    .map(|f| f.as_bytes()),
            )?;
        } else {
            self.inner
                .write_record(wire.csv_row().iter().map(|f| f.as_bytes()))?;
        }
        Ok(())
    }

    /// Flushes the rows written so far to the underlying writer (a batch
    /// boundary of `--follow`) and lends it.
    pub fn flush(&mut self) -> io::Result<&W> {
        self.inner.flush()?;
        Ok(self.inner.get_ref())
    }

    /// Writes the header if no session was written, flushes, and returns
    /// the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header()?;
        self.inner.flush()?;
        self.inner
            .into_inner()
            .map_err(|e| io::Error::other(e.error().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::event::{Event, EventKind, FailureClass, Name, Provenance};
    use crate::session::stitch;

    fn event(kind: EventKind, pid: u32, time: i64, line: u64) -> Event {
        let mut e = Event::new(kind, crate::name::Name::new("db1"));
        e.pid = Some(pid);
        e.time_ms = Some(time);
        e.source = Some(Provenance {
            input: crate::name::Name::new("logs/pg.log"),
            line,
            event_id: None,
        });
        e
    }

    const T0: i64 = 1_764_341_841_812; // 2025-11-28T14:57:21.812Z

    /// A full TLS login with a disconnection: every field known.
    fn full_success() -> Session {
        let mut r = event(EventKind::Received, 4242, T0, 10);
        r.client_addr = Some("10.0.0.7".into());
        r.client_port = Some(51234);
        let mut au = event(EventKind::Authenticated, 4242, T0 + 5, 11);
        au.identity = Some("alice@EXAMPLE".into());
        au.auth_method = Some("scram-sha-256".into());
        au.hba_line = Some("/etc/pg_hba.conf:12".into());
        let mut az = event(EventKind::Authorized, 4242, T0 + 6, 12);
        az.user = Some("alice".into());
        az.database = Some("app".into());
        az.application_name = Some("psql".into());
        az.ssl_protocol = Some("TLSv1.3".into());
        az.ssl_cipher = Some("TLS_AES_256_GCM_SHA384".into());
        az.ssl_bits = Some(256);
        az.ssl_unverified = true;
        let mut d = event(EventKind::Disconnected, 4242, T0 + 70_000, 40);
        d.session_duration_ms = Some(69_994);
        one(vec![r, au, az, d])
    }

    fn pam_failure(user: &str, detail: &str) -> Session {
        let mut r = event(EventKind::Received, 77, T0, 1);
        r.client_addr = Some("::1".into());
        r.client_port = Some(5000);
        let mut n = event(EventKind::AuthNote, 77, T0 + 1, 2);
        n.message = "pam_authenticate failed: Authentication failure".into();
        n.failure_class = Some(FailureClass::Pam);
        let mut f = event(EventKind::AuthFailed, 77, T0 + 2, 3);
        f.user = Some(user.into());
        f.database = Some("postgres".into());
        f.failure_class = Some(FailureClass::Pam);
        f.message = format!("PAM authentication failed for user \"{user}\"");
        f.detail = Some(detail.into());
        one(vec![r, n, f])
    }

    fn one(events: Vec<Event>) -> Session {
        let mut sessions = stitch(events);
        assert_eq!(sessions.len(), 1);
        sessions.remove(0)
    }

    fn json(s: &Session) -> serde_json::Map<String, serde_json::Value> {
        let mut buf = Vec::new();
        assert!(write_jsonl(&mut buf, s).is_ok());
        assert_eq!(buf.last(), Some(&b'\n'));
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        match serde_json::from_slice(&buf) {
            Ok(serde_json::Value::Object(map)) => map,
            other => panic!("not an object: {other:?}"),
        }
    }

    fn keys(map: &serde_json::Map<String, serde_json::Value>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    #[test]
    fn jsonl_field_names_and_order() {
        let s = full_success();
        let mut buf = Vec::new();
        assert!(write_jsonl(&mut buf, &s).is_ok());
        let line = String::from_utf8_lossy(&buf);
        // Order as written (serde_json's Map may sort, so check the text).
        let mut at = 0;
        let mut present = Vec::new();
        for name in COLUMNS {
            if let Some(pos) = line.find(&format!("\"{name}\":")) {
                assert!(pos >= at, "{name} out of order in {line}");
                at = pos;
                present.push(name);
            }
        }
        let expected: Vec<&str> = COLUMNS
            .iter()
            .copied()
            .filter(|n| {
                !matches!(
                    *n,
                    "failure_class" | "failure_message" | "failure_detail" | "suspect" | "notes"
                )
            })
            .collect();
        assert_eq!(present, expected);
        let map = json(&s);
        assert_eq!(keys(&map).len(), expected.len(), "no other fields: {line}");
        assert_eq!(map["session_id"], format!("db1/4242/{T0}").as_str());
        assert_eq!(map["server"], "db1");
        assert_eq!(map["pid"], 4242);
        assert_eq!(map["start"], "2025-11-28T14:57:21.812Z");
        assert_eq!(map["end"], "2025-11-28T14:58:31.812Z");
        assert_eq!(map["duration_ms"], 69_994);
        assert_eq!(map["outcome"], "success");
        assert_eq!(map["user"], "alice");
        assert_eq!(map["client_addr"], "10.0.0.7");
        assert_eq!(map["client_port"], 51234);
        assert_eq!(map["auth_method"], "scram-sha-256");
        assert_eq!(map["identity"], "alice@EXAMPLE");
        assert_eq!(map["hba_line"], "/etc/pg_hba.conf:12");
        assert_eq!(map["ssl_bits"], 256);
        assert_eq!(map["end_reason"], "client");
        assert_eq!(map["ssl_unverified"], true);
        assert_eq!(
            map["evidence"],
            serde_json::json!([
                "logs/pg.log:10",
                "logs/pg.log:11",
                "logs/pg.log:12",
                "logs/pg.log:40"
            ])
        );
    }

    #[test]
    fn jsonl_absent_fields() {
        let s = pam_failure("bob", "Connection matched pg_hba.conf line 3");
        let map = json(&s);
        assert_eq!(map["outcome"], "failure");
        assert_eq!(map["failure_class"], "pam");
        assert_eq!(
            map["notes"],
            serde_json::json!(["pam_authenticate failed: Authentication failure"])
        );
        for absent in [
            "duration_ms",
            "application_name",
            "auth_method",
            "identity",
            "hba_line",
            "ssl_protocol",
            "ssl_cipher",
            "ssl_bits",
            "ssl_unverified",
            "suspect",
            "end_reason",
        ] {
            assert!(!map.contains_key(absent), "{absent} present: {map:?}");
        }
        // An abandoned probe: almost nothing known.
        let mut r = event(EventKind::Received, 9, T0, 1);
        r.client_addr = Some("[local]".into());
        let s = one(vec![r]);
        let map = json(&s);
        assert_eq!(
            keys(&map)
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>(),
            [
                "session_id",
                "server",
                "pid",
                "start",
                "outcome",
                "client_addr",
                "end_reason",
                "evidence"
            ]
            .into_iter()
            .collect()
        );
        assert_eq!(map["outcome"], "abandoned");
        assert_eq!(map["end_reason"], "eof");
    }

    #[test]
    fn jsonl_suspect_flag() {
        let r = event(EventKind::Received, 5, T0, 1);
        let mut s = event(EventKind::Suspect, 5, T0 + 1, 2);
        s.related_sources = vec![Provenance {
            input: crate::name::Name::new("logs/pg.log"),
            line: 3,
            event_id: None,
        }];
        let session = one(vec![r, s]);
        let map = json(&session);
        assert_eq!(map["suspect"], true);
        assert_eq!(
            map["evidence"],
            serde_json::json!(["logs/pg.log:1", "logs/pg.log:2", "logs/pg.log:3"])
        );
    }

    /// The line `serde_json` writes for the session (the former writer).
    fn oracle(s: &Session) -> Vec<u8> {
        let mut line = serde_json::to_vec(&WireSession::new(s)).unwrap_or_default();
        line.push(b'\n');
        line
    }

    fn written(s: &Session) -> Vec<u8> {
        let mut line = Vec::new();
        assert!(write_jsonl(&mut line, s).is_ok());
        line
    }

    /// A session with every text set to `text`, or every optional field
    /// empty.
    fn session_with(text: &str, full: bool) -> Session {
        let mut s = full_success();
        s.session_id = text.to_owned();
        s.server = Name::new(text);
        s.evidence = vec![Provenance {
            input: crate::name::Name::new(text),
            line: u64::MAX,
            event_id: Some(Arc::from(text)),
        }];
        if full {
            s.failure_class = Some(FailureClass::Pam);
            s.failure_message = Some(text.to_owned());
            s.failure_detail = Some(text.to_owned());
            s.user = Some(text.into());
            s.database = Some(text.into());
            s.application_name = Some(text.into());
            s.client_addr = Some(text.into());
            s.auth_method = Some(text.into());
            s.identity = Some(text.into());
            s.hba_line = Some(text.into());
            s.ssl_protocol = Some(text.into());
            s.ssl_cipher = Some(text.into());
            s.suspect = true;
            s.notes = vec![text.to_owned(), String::new()];
        } else {
            s.start_ms = None;
            s.end_ms = None;
            s.duration_ms = None;
            s.failure_class = None;
            s.user = None;
            s.database = None;
            s.application_name = None;
            s.client_addr = None;
            s.client_port = None;
            s.auth_method = None;
            s.identity = None;
            s.hba_line = None;
            s.ssl_protocol = None;
            s.ssl_cipher = None;
            s.ssl_bits = None;
            s.ssl_unverified = false;
            s.end_reason = None;
            s.evidence.clear();
        }
        s
    }

    #[test]
    fn jsonl_writes_what_serde_json_writes() {
        let mut sessions = vec![full_success(), pam_failure("bob", "d\"e\\t\n")];
        for text in ["", "plain", "q\"b\\s/\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}é😀"] {
            sessions.push(session_with(text, true));
            sessions.push(session_with(text, false));
        }
        // Times chrono writes (five-digit year) or cannot write (omitted).
        let mut s = full_success();
        s.start_ms = Some(253_402_300_800_000);
        s.end_ms = Some(i64::MAX);
        sessions.push(s);
        for s in &sessions {
            assert_eq!(
                String::from_utf8_lossy(&written(s)),
                String::from_utf8_lossy(&oracle(s))
            );
        }
    }

    #[test]
    fn jsonl_iam_object_like_serde_json() {
        use crate::cloud::{IamAttribution, IamCandidate, MatchKind};
        let candidate = IamCandidate {
            principal_arn: "arn:aws:iam::1:role/\"r\"".into(),
            evidence: vec!["ct:1".into()],
            sources: vec!["cloudtrail".into()],
            assumed_at_ms: Some(T0),
            score: 3,
            ..IamCandidate::default()
        };
        let mut s = full_success();
        s.iam = Some(Box::new(IamAttribution {
            kind: MatchKind::Ambiguous,
            best: None,
            candidates: vec![candidate.clone(), candidate],
            candidate_count: 2,
            reason: Some("tie\n".into()),
            policy_principals: None,
            address_known: None,
            foreign_account: None,
        }));
        assert_eq!(written(&s), oracle(&s));
    }

    proptest::proptest! {
        #[test]
        fn jsonl_any_text_writes_what_serde_json_writes(
            text in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f/])*",
            full: bool,
            start in proptest::option::of(proptest::prelude::any::<i64>()),
        ) {
            let mut s = session_with(&text, full);
            s.start_ms = start;
            proptest::prop_assert_eq!(written(&s), oracle(&s));
        }
    }

    fn csv_rows(sessions: &[Session]) -> (String, Vec<csv::StringRecord>) {
        let mut w = CsvWriter::new(Vec::new());
        for s in sessions {
            assert!(w.write(s).is_ok());
        }
        let bytes = match w.finish() {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        let rows = reader.records().map(|r| r.unwrap_or_default()).collect();
        (text, rows)
    }

    #[test]
    fn csv_header_only_when_empty() {
        let (text, rows) = csv_rows(&[]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].iter().collect::<Vec<_>>(), COLUMNS);
        assert!(text.starts_with("session_id,server,pid,start,end,duration_ms,outcome,"));
    }

    #[test]
    fn csv_quotes_multiline_detail_and_hostile_names() {
        let detail = "Connection matched file \"/etc/pg_hba.conf\" line 3: \"host all all 0.0.0.0/0 pam\"\nsecond line, with comma";
        let user = "mal\"lory, \"admin\"\nfake,row";
        let sessions = [pam_failure(user, detail), full_success()];
        let (text, rows) = csv_rows(&sessions);
        assert_eq!(rows.len(), 3, "header + 2 rows:\n{text}");
        let col = |name: &str| {
            COLUMNS
                .iter()
                .position(|c| *c == name)
                .unwrap_or(usize::MAX)
        };
        let row = &rows[1];
        assert_eq!(row.len(), COLUMNS.len());
        assert_eq!(row.get(col("failure_detail")), Some(detail));
        assert_eq!(row.get(col("user")), Some(user));
        assert_eq!(row.get(col("outcome")), Some("failure"));
        assert_eq!(row.get(col("duration_ms")), Some(""));
        assert_eq!(row.get(col("suspect")), Some("false"));
        assert_eq!(
            row.get(col("notes")),
            Some("pam_authenticate failed: Authentication failure")
        );
        assert_eq!(
            row.get(col("evidence")),
            Some("logs/pg.log:1;logs/pg.log:2;logs/pg.log:3")
        );
        // The quote is doubled inside a quoted field.
        assert!(
            text.contains("\"mal\"\"lory, \"\"admin\"\"\nfake,row\""),
            "{text}"
        );
        let row = &rows[2];
        assert_eq!(row.get(col("start")), Some("2025-11-28T14:57:21.812Z"));
        assert_eq!(row.get(col("client_port")), Some("51234"));
        assert_eq!(row.get(col("ssl_bits")), Some("256"));
        assert_eq!(row.get(col("ssl_unverified")), Some("true"));
        assert_eq!(row.get(col("end_reason")), Some("client"));
    }
}
