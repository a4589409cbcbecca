//! Records → events: classifies each record's message with the grammar
//! catalogue and fills an [`Event`] from the message fields, the prefix/csv/
//! json fields, and what earlier records of the same process said (the
//! client address lives only on `connection received` in many prefixes).
//!
//! It also decides which records cannot be trusted (`suspect`), and counts
//! everything that produced no event.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::event::{Event, EventKind, FailureClass, Provenance, SuspectReason};
use crate::message::{Catalog, Field, Match};
use crate::record::{Item, Label, Record, Unparsed};

/// Per-input counters, printed as the stats line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records decoded (a record with its DETAIL lines counts once).
    pub records: u64,
    /// Events produced, `suspect` included.
    pub events: u64,
    pub events_by_kind: BTreeMap<EventKind, u64>,
    /// Lines or rows that produced no record, by reason.
    pub unparsed: BTreeMap<Unparsed, u64>,
    /// Records that contained bytes that are not UTF-8.
    pub invalid_utf8: u64,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.records += other.records;
        self.events += other.events;
        for (k, v) in &other.events_by_kind {
            *self.events_by_kind.entry(*k).or_default() += v;
        }
        for (k, v) in &other.unparsed {
            *self.unparsed.entry(*k).or_default() += v;
        }
        self.invalid_utf8 += other.invalid_utf8;
    }

    pub fn unparsed_total(&self) -> u64 {
        self.unparsed.values().sum()
    }
}

/// The client of a process, as `connection received` said.
#[derive(Debug, Clone)]
struct Client {
    addr: String,
    port: Option<u16>,
}

/// An `authorized` event whose TLS fields wait for verification.
#[derive(Debug, Clone, Copy)]
struct PendingTls {
    /// Index into `events`.
    index: usize,
    /// Byte offset of the application name in the event's message.
    app_offset: usize,
}

/// PostgreSQL keeps at most this many bytes of a GUC value such as
/// `application_name` (NAMEDATALEN - 1); the message keeps it all.
const MAX_GUC_NAME: usize = 63;

/// Builds events for one input (one server label).
pub struct Extractor<'c> {
    catalog: &'c Catalog,
    server: Arc<str>,
    input: Arc<str>,
    clients: HashMap<u32, Client>,
    /// `authorized` events whose TLS fields wait for the application name
    /// that a structured format (csv/json) reports on later records.
    unverified_tls: HashMap<u32, PendingTls>,
    pub events: Vec<Event>,
    pub stats: Stats,
}

impl<'c> Extractor<'c> {
    pub fn new(catalog: &'c Catalog, server: Arc<str>, input: Arc<str>) -> Self {
        Extractor {
            catalog,
            server,
            input,
            clients: HashMap::new(),
            unverified_tls: HashMap::new(),
            events: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn provenance(&self, line: u64) -> Provenance {
        Provenance {
            input: self.input.clone(),
            line,
        }
    }

    /// Feeds one decoded item.
    pub fn push(&mut self, item: Item<'_>) {
        match item {
            Item::Record(record) => {
                self.stats.records += 1;
                if record.invalid_utf8 {
                    self.stats.invalid_utf8 += 1;
                }
                self.record(&record);
            }
            Item::Unparsed { reason, .. } => {
                *self.stats.unparsed.entry(reason).or_default() += 1;
            }
            Item::Suspect { head, tail_lines } => {
                self.stats.records += 1;
                let mut event = self.suspect(&head, SuspectReason::BrokenPrefix);
                if event.pid.is_none() {
                    // The prefix broke before %p: the client's address and
                    // port (written before the raw names) identify the
                    // process whose `received` record carried the same.
                    event.pid = self.pid_of_client(event.client_addr.as_deref(), event.client_port);
                }
                event.related_sources = tail_lines.iter().map(|&l| self.provenance(l)).collect();
                self.emit(event);
            }
        }
    }

    /// The process whose `connection received` named this client address and port.
    fn pid_of_client(&self, addr: Option<&str>, port: Option<u16>) -> Option<u32> {
        let (addr, port) = (addr?, port?);
        let mut found = self
            .clients
            .iter()
            .filter(|(_, c)| c.addr == addr && c.port == Some(port))
            .map(|(pid, _)| *pid);
        let pid = found.next()?;
        // Ambiguous (two open processes with one address and port) means unknown.
        found.next().is_none().then_some(pid)
    }

    fn emit(&mut self, event: Event) {
        self.stats.events += 1;
        *self.stats.events_by_kind.entry(event.kind).or_default() += 1;
        self.events.push(event);
    }

    fn suspect(&self, record: &Record<'_>, reason: SuspectReason) -> Event {
        let mut event = Event::new(EventKind::Suspect, self.server.clone());
        event.time_ms = record.time_ms;
        event.pid = record.pid;
        event.client_addr = record.client_addr.as_deref().map(str::to_owned);
        event.client_port = record.client_port;
        event.severity = Some(record.label.as_str().to_owned());
        event.message = record.message.to_string();
        event.detail = record.detail.as_deref().map(str::to_owned);
        event.ingest_time_ms = record.ingest_time_ms;
        event.invalid_utf8 = record.invalid_utf8;
        event.source = Some(self.provenance(record.line));
        event.suspect_reason = Some(reason);
        event
    }

    fn record(&mut self, record: &Record<'_>) {
        if record.structured {
            self.verify_tls(record);
        }
        if !record.label.is_severity() {
            return;
        }
        let Some(found) = self.catalog.classify(record.label, &record.message) else {
            return;
        };
        if record.prefix_ambiguous {
            let event = self.suspect(record, SuspectReason::AmbiguousPrefix);
            self.emit(event);
            return;
        }
        if record.context.is_some() {
            let event = self.suspect(record, SuspectReason::RaisedFromSql);
            self.emit(event);
            return;
        }
        let event = self.build(record, &found);
        if let Some(pid) = event.pid {
            match event.kind {
                EventKind::Received => {
                    if let Some(addr) = &event.client_addr {
                        self.clients.insert(
                            pid,
                            Client {
                                addr: addr.clone(),
                                port: event.client_port,
                            },
                        );
                    }
                    self.unverified_tls.remove(&pid);
                }
                EventKind::Authorized if event.ssl_unverified && record.structured => {
                    let app_offset = found
                        .get(Field::ApplicationName)
                        .map(|app| app.as_ptr() as usize - record.message.as_ptr() as usize);
                    if let Some(app_offset) = app_offset {
                        let index = self.events.len();
                        self.unverified_tls
                            .insert(pid, PendingTls { index, app_offset });
                    }
                }
                EventKind::AuthFailed | EventKind::Disconnected => {
                    self.clients.remove(&pid);
                }
                _ => {}
            }
        }
        self.emit(event);
    }

    /// csvlog/jsonlog give the session's real application name on later
    /// records (cut to 63 bytes): it tells whether the `SSL enabled (…)` text
    /// of the `authorized` message was the server's or part of the client's
    /// name. Every way of splitting the message into name + server suffix is
    /// tried; when exactly one agrees with the real name, it is the truth.
    fn verify_tls(&mut self, record: &Record<'_>) {
        let (Some(pid), Some(real)) = (record.pid, record.application_name.as_deref()) else {
            return;
        };
        let Some(pending) = self.unverified_tls.remove(&pid) else {
            return;
        };
        let catalog = self.catalog;
        let Some(event) = self.events.get_mut(pending.index) else {
            return;
        };
        let Some(rest) = event.message.get(pending.app_offset..) else {
            return;
        };
        let agrees = |name: &str| {
            name == real
                || (real.len() + 4 > MAX_GUC_NAME
                    && name.len() > real.len()
                    && name.starts_with(real))
        };
        // Candidate ends of the name: the end of the message, or the start of
        // a server-written suffix.
        let ends: Vec<usize> = rest
            .match_indices(" SSL enabled (")
            .chain(rest.match_indices(" GSS ("))
            .map(|(i, _)| i)
            .chain(std::iter::once(rest.len()))
            .filter(|&i| agrees(&rest[..i]))
            .collect();
        let [end] = ends.as_slice() else {
            // None or several readings agree: it stays unverified.
            return;
        };
        let (name, suffix) = rest.split_at(*end);
        event.application_name = Some(name.to_owned());
        event.ssl_protocol = None;
        event.ssl_cipher = None;
        event.ssl_bits = None;
        event.ssl_unverified = false;
        if !suffix.is_empty() {
            // Read the real suffix with the grammar, on a message that has
            // no client text before it.
            let probe = format!("connection authorized: user=u database=d{suffix}");
            if let Some(found) = catalog.classify(Label::Log, &probe) {
                event.ssl_protocol = found.get(Field::SslProtocol).map(str::to_owned);
                event.ssl_cipher = found.get(Field::SslCipher).map(str::to_owned);
                event.ssl_bits = found.get(Field::SslBits).and_then(|b| b.parse().ok());
            }
        }
    }

    fn build(&self, record: &Record<'_>, found: &Match<'_>) -> Event {
        let mut event = Event::new(found.event, self.server.clone());
        let get = |f: Field| found.get(f).map(str::to_owned);
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        event.time_ms = record.time_ms;
        event.message_id = Some(found.def.id.clone());
        event.pid = record.pid;
        event.user =
            non_empty(get(Field::User)).or_else(|| record.user.as_deref().map(str::to_owned));
        event.database = non_empty(get(Field::Database))
            .or_else(|| record.database.as_deref().map(str::to_owned));
        event.application_name = non_empty(get(Field::ApplicationName))
            .or_else(|| record.application_name.as_deref().map(str::to_owned));
        // The client: the message's own host= (received, disconnection, hba
        // messages), else the prefix/column, else what `received` said.
        let message_host = non_empty(get(Field::Host));
        if let Some(host) = message_host {
            event.client_addr = Some(host);
            event.client_port = found.get(Field::Port).and_then(|p| p.parse().ok());
        } else if let Some(addr) = record.client_addr.as_deref() {
            event.client_addr = Some(addr.to_owned());
            event.client_port = record.client_port;
        }
        if let Some(pid) = record.pid
            && let Some(client) = self.clients.get(&pid)
        {
            if event.client_addr.is_none() {
                event.client_addr = Some(client.addr.clone());
            }
            if event.client_port.is_none()
                && event.client_addr.as_deref() == Some(client.addr.as_str())
            {
                event.client_port = client.port;
            }
        }
        event.auth_method = get(Field::Method);
        event.identity = get(Field::Identity);
        if let (Some(file), Some(line)) =
            (found.get(Field::HbaFile), found.get(Field::HbaLineNumber))
        {
            event.hba_line = Some(format!("{file}:{line}"));
        }
        event.ssl_protocol = get(Field::SslProtocol);
        event.ssl_cipher = get(Field::SslCipher);
        event.ssl_bits = found.get(Field::SslBits).and_then(|b| b.parse().ok());
        // The message text cannot tell a real `SSL enabled (…)` from an
        // application name ending in the same words (see README).
        event.ssl_unverified =
            event.ssl_protocol.is_some() && found.get(Field::ApplicationName).is_some();
        event.failure_class = found.class;
        if let Some(detail) = record.detail.as_deref() {
            let info = self.catalog.classify_detail(found, detail);
            if let Some(class) = info.class {
                event.failure_class = Some(class);
            }
            if let (Some(file), Some(line)) = (info.hba_file, info.hba_line_number) {
                event.hba_line = Some(format!("{file}:{line}"));
            } else if let Some(line) = info.hba_line_number {
                event.hba_line = Some(format!("pg_hba.conf:{line}"));
            }
            if event.auth_method.is_none() {
                event.auth_method = info.hba_line.and_then(hba_rule_method).map(str::to_owned);
            }
        }
        if event.kind == EventKind::AuthFailed && event.failure_class.is_none() {
            event.failure_class = Some(FailureClass::Other);
        }
        event.sqlstate = record.sqlstate.as_deref().map(str::to_owned);
        event.severity = Some(record.label.as_str().to_owned());
        event.message = record.message.to_string();
        event.detail = record.detail.as_deref().map(str::to_owned);
        event.session_duration_ms = found.get(Field::SessionTime).and_then(parse_session_time);
        event.ingest_time_ms = record.ingest_time_ms;
        event.invalid_utf8 = record.invalid_utf8;
        event.source = Some(self.provenance(record.line));
        event
    }

    /// Ends the input; returns the events and the stats.
    pub fn finish(self) -> (Vec<Event>, Stats) {
        (self.events, self.stats)
    }
}

/// The method of a raw pg_hba.conf rule: `host db user addr [mask] method [options]`.
pub fn hba_rule_method(rule: &str) -> Option<&str> {
    let words: Vec<&str> = rule.split_whitespace().collect();
    let kind = *words.first()?;
    let index = if kind == "local" {
        3
    } else if kind.starts_with("host") {
        // An address with a separate netmask takes two words.
        let addr = words.get(3)?;
        if !addr.contains('/')
            && words
                .get(4)
                .is_some_and(|w| w.parse::<std::net::IpAddr>().is_ok())
        {
            5
        } else {
            4
        }
    } else {
        return None;
    };
    words.get(index).copied()
}

/// `H:MM:SS.mmm` → milliseconds.
pub fn parse_session_time(text: &str) -> Option<u64> {
    let mut parts = text.splitn(3, ':');
    let hours: u64 = parts.next()?.parse().ok()?;
    let minutes: u64 = parts.next()?.parse().ok()?;
    let (secs, millis) = parts.next()?.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let millis: u64 = millis.parse().ok()?;
    Some(((hours * 60 + minutes) * 60 + secs) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_rule_methods() {
        assert_eq!(
            hba_rule_method("hostssl    all             +rds_iam             all            pam"),
            Some("pam")
        );
        assert_eq!(
            hba_rule_method("host    appdb       all         127.0.0.1/32    scram-sha-256"),
            Some("scram-sha-256")
        );
        assert_eq!(
            hba_rule_method("host all all 10.0.0.0 255.0.0.0 md5"),
            Some("md5")
        );
        assert_eq!(
            hba_rule_method("local   all   postgres   peer map=x"),
            Some("peer")
        );
        assert_eq!(hba_rule_method("garbage"), None);
    }

    #[test]
    fn session_time() {
        assert_eq!(parse_session_time("0:00:00.847"), Some(847));
        assert_eq!(parse_session_time("12:01:02.003"), Some(43_262_003));
        assert_eq!(parse_session_time("x"), None);
    }
}
