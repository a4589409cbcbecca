//! Records → events, in two stages:
//!
//! 1. [`Extractor`] (per chunk, parallel): classifies each record's message
//!    with the grammar catalogue, fills an [`Event`] from the message fields
//!    and the prefix/csv/json fields, decides which records cannot be
//!    trusted (`suspect`), and counts what produced no event. It keeps no
//!    state across records, so chunks can be extracted independently.
//! 2. [`Enricher`] (sequential, in input order): what needs earlier or
//!    later records of the same process — the client address that only
//!    `connection received` carries, the process of a broken (forged)
//!    prefix, and the TLS check against the application name that csvlog
//!    and jsonlog report on later records.

use std::collections::{BTreeMap, VecDeque};
use std::mem::MaybeUninit;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::event::{Event, EventKind, FailureClass, Name, Provenance, SuspectReason, Text};
use crate::message::{Catalog, ClassifyMemo, Field, Match};
use crate::pipeline::MessageText;
use crate::prefetch::prefetch;
use crate::record::{Item, Label, Record, Unparsed};
use crate::session::{LogClock, ProcessKey, ServerIds};

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

/// What the extractor hands to the enricher, in record order.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// An event; `tls_pending` when its TLS fields wait for the application
    /// name a structured format reports on a later record. Boxed: an event
    /// is large and moves through several queues.
    Event {
        event: Box<Event>,
        tls_pending: bool,
    },
    /// A csvlog/jsonlog record named the process's application name (first
    /// such record of the process in the chunk).
    AppSeen { server: Name, pid: u32, app: String },
}

/// Records → events for one chunk of one input. No state crosses records.
pub struct Extractor<'c> {
    catalog: &'c Catalog,
    /// The chunk's recent classifications (its repeated messages).
    memo: ClassifyMemo,
    server: Name,
    input: Name,
    /// Processes whose application name this chunk already reported.
    app_seen: HashSet<u32>,
    /// Which events keep their message text.
    pub messages: MessageText,
    pub out: Vec<Out>,
    pub stats: Stats,
    /// Events per kind (indexed like [`EventKind::ALL`]), added to `stats`
    /// by [`Self::finish`]: cheaper than a map update per event.
    kind_counts: [u64; EventKind::ALL.len()],
    /// The box the next event is built in, taken one event ahead and
    /// prefetched ([`crate::prefetch`]): its lines are on their way while
    /// the records between are parsed.
    next_box: Option<Box<MaybeUninit<Event>>>,
}

impl<'c> Extractor<'c> {
    pub fn new(catalog: &'c Catalog, server: Name, input: Name) -> Self {
        Extractor {
            catalog,
            memo: take_thread_memo(),
            server,
            input,
            app_seen: HashSet::new(),
            messages: MessageText::Every,
            out: Vec::new(),
            stats: Stats::default(),
            kind_counts: [0; EventKind::ALL.len()],
            next_box: None,
        }
    }

    /// A box for an event, and the next one asked for.
    #[inline]
    fn event_box(&mut self) -> Box<MaybeUninit<Event>> {
        let next = Box::new_uninit();
        prefetch(&*next);
        self.next_box.replace(next).unwrap_or_else(Box::new_uninit)
    }

    fn provenance(&self, line: u64) -> Provenance {
        Provenance {
            input: self.input,
            line,
            event_id: None,
        }
    }

    /// Feeds one decoded item.
    pub fn push(&mut self, item: Item<'_>) {
        self.push_returning(item);
    }

    /// [`Extractor::push`], giving a record's box back for reuse
    /// (`stderr::decode_recycling`).
    pub fn push_returning<'a>(&mut self, item: Item<'a>) -> Option<Box<Record<'a>>> {
        match item {
            Item::Record(record) => {
                self.stats.records += 1;
                if record.invalid_utf8 {
                    self.stats.invalid_utf8 += 1;
                }
                self.record(&record);
                return Some(record);
            }
            Item::Quiet(quiet) => {
                self.stats.records += 1;
                if quiet.invalid_utf8 {
                    self.stats.invalid_utf8 += 1;
                }
            }
            Item::Unparsed { reason, .. } => {
                *self.stats.unparsed.entry(reason).or_default() += 1;
            }
            Item::Suspect { head, tail_lines } => {
                self.stats.records += 1;
                let mut event = self.suspect(&head, SuspectReason::BrokenPrefix);
                event.related_sources = tail_lines.iter().map(|&l| self.provenance(l)).collect();
                self.emit(event, false);
            }
        }
        None
    }

    fn emit(&mut self, event: Box<Event>, tls_pending: bool) {
        self.stats.events += 1;
        self.kind_counts[event.kind as usize] += 1;
        self.out.push(Out::Event { event, tls_pending });
    }

    fn suspect(&self, record: &Record<'_>, reason: SuspectReason) -> Box<Event> {
        let mut event = Event::boxed(EventKind::Suspect, self.server);
        event.time_ms = record.time_ms;
        event.pid = record.pid;
        event.client_addr = record.client_addr.as_deref().map(Text::from);
        event.client_port = record.client_port;
        event.severity = Some(record.label.as_str());
        event.message = record.message.to_string();
        event.detail = record.detail.as_deref().map(Text::from);
        event.ingest_time_ms = record.ingest_time_ms;
        event.invalid_utf8 = record.invalid_utf8;
        event.source = Some(self.provenance(record.line));
        event.suspect_reason = Some(reason);
        event
    }

    fn record(&mut self, record: &Record<'_>) {
        if record.structured
            && let (Some(pid), Some(app)) = (record.pid, record.application_name.as_deref())
            && self.app_seen.insert(pid)
        {
            self.out.push(Out::AppSeen {
                server: self.server,
                pid,
                app: app.to_owned(),
            });
        }
        if !record.label.is_severity() {
            return;
        }
        let Some(found) = self
            .catalog
            .classify_memo(&mut self.memo, record.label, &record.message)
        else {
            return;
        };
        if record.prefix_ambiguous {
            let event = self.suspect(record, SuspectReason::AmbiguousPrefix);
            self.emit(event, false);
            return;
        }
        if record.context.is_some() {
            let event = self.suspect(record, SuspectReason::RaisedFromSql);
            self.emit(event, false);
            return;
        }
        let event = self.build(record, &found);
        let tls_pending =
            event.kind == EventKind::Authorized && event.ssl_unverified && record.structured;
        if tls_pending && let Some(pid) = event.pid {
            // A later record of this process in this chunk must still be
            // able to report the application name.
            self.app_seen.remove(&pid);
        }
        self.emit(event, tls_pending);
    }

    /// The event of a classified record, built in place on the heap (it
    /// is handed on boxed; building it on the stack cost a copy).
    fn build(&mut self, record: &Record<'_>, found: &Match<'_>) -> Box<Event> {
        let mut event = Box::write(self.event_box(), Event::new(found.event, self.server));
        let get = |f: Field| found.get(f).map(Text::from);
        let non_empty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Text::from);
        event.time_ms = record.time_ms;
        event.message_id = Some(found.def.id);
        event.pid = record.pid;
        event.user =
            non_empty(found.get(Field::User)).or_else(|| record.user.as_deref().map(Text::from));
        event.database = non_empty(found.get(Field::Database))
            .or_else(|| record.database.as_deref().map(Text::from));
        event.application_name = non_empty(found.get(Field::ApplicationName))
            .or_else(|| record.application_name.as_deref().map(Text::from));
        // The client: the message's own host= (received, disconnection, hba
        // messages), else the prefix/column, else what `received` said.
        if let Some(host) = non_empty(found.get(Field::Host)) {
            event.client_addr = Some(host);
            event.client_port = found.get(Field::Port).and_then(|p| p.parse().ok());
        } else if let Some(addr) = record.client_addr.as_deref() {
            event.client_addr = Some(Text::from(addr));
            event.client_port = record.client_port;
        }
        event.auth_method = get(Field::Method);
        event.identity = get(Field::Identity);
        if let (Some(file), Some(line)) =
            (found.get(Field::HbaFile), found.get(Field::HbaLineNumber))
        {
            event.hba_line = Some(hba_location(file, line));
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
            let info = self
                .catalog
                .classify_detail_memo(&mut self.memo, found, detail);
            if let Some(class) = info.class {
                event.failure_class = Some(class);
            }
            if let (Some(file), Some(line)) = (info.hba_file, info.hba_line_number) {
                event.hba_line = Some(compact_str::format_compact!("{file}:{line}"));
            } else if let Some(line) = info.hba_line_number {
                event.hba_line = Some(compact_str::format_compact!("pg_hba.conf:{line}"));
            }
            if event.auth_method.is_none() {
                event.auth_method = info.hba_method.map(Text::from);
            }
        }
        if event.kind == EventKind::AuthFailed && event.failure_class.is_none() {
            event.failure_class = Some(FailureClass::Other);
        }
        event.sqlstate = record.sqlstate.as_deref().map(Text::from);
        event.severity = Some(record.label.as_str());
        let keep_message = match self.messages {
            MessageText::Every => true,
            MessageText::Explanations => match event.kind {
                EventKind::AuthFailed | EventKind::AuthNote | EventKind::Protocol => true,
                EventKind::Authorized => record.structured,
                _ => false,
            },
        };
        if keep_message {
            event.message = record.message.to_string();
        }
        event.detail = record.detail.as_deref().map(Text::from);
        event.session_duration_ms = found.get(Field::SessionTime).and_then(parse_session_time);
        event.ingest_time_ms = record.ingest_time_ms;
        event.invalid_utf8 = record.invalid_utf8;
        event.source = Some(self.provenance(record.line));
        event
    }

    /// Ends the chunk; returns what it produced and the stats. The memo
    /// goes back to the thread for its next chunk.
    pub fn finish(self) -> (Vec<Out>, Stats) {
        let Extractor {
            memo,
            out,
            mut stats,
            kind_counts,
            ..
        } = self;
        THREAD_MEMO.with_borrow_mut(|slot| *slot = Some(memo));
        for (&kind, &count) in EventKind::ALL.iter().zip(&kind_counts) {
            if count > 0 {
                *stats.events_by_kind.entry(kind).or_default() += count;
            }
        }
        (out, stats)
    }
}

thread_local! {
    /// The classification memo of this thread's last extractor. A memo
    /// answers exactly what classifying again would (it compares whole
    /// texts and serves one catalog), so carrying it from chunk to chunk
    /// changes no output; it saves matching a chunk's repeated messages
    /// against the templates again at the start of every chunk (some
    /// 157,000 instructions a chunk on the dense benchmark log). Bounded
    /// like any memo: 256 texts and 256 DETAIL texts.
    static THREAD_MEMO: std::cell::RefCell<Option<ClassifyMemo>> =
        const { std::cell::RefCell::new(None) };
}

/// This thread's memo, or a new one.
fn take_thread_memo() -> ClassifyMemo {
    THREAD_MEMO
        .with_borrow_mut(Option::take)
        .unwrap_or_default()
}

/// `file:line` of a pg_hba.conf rule.
fn hba_location(file: &str, line: &str) -> Text {
    let mut location = Text::with_capacity(file.len() + 1 + line.len());
    location.push_str(file);
    location.push(':');
    location.push_str(line);
    location
}

/// The client of a process, as `connection received` said.
#[derive(Debug, Clone)]
struct Client {
    addr: Text,
    port: Option<u16>,
    /// When `received` was logged, and whether the process got past
    /// authorization (only then may it live long).
    since_ms: Option<i64>,
    authorized: bool,
}

/// Events held at most this long (in events) while an `authorized` event
/// waits for its application name; then it goes out unverified. Keeps
/// memory bounded and the output streaming.
pub const TLS_HOLD_EVENTS: usize = 4096;

/// PostgreSQL keeps at most this many bytes of a GUC value such as
/// `application_name` (NAMEDATALEN - 1); the message keeps it all.
const MAX_GUC_NAME: usize = 63;

/// The sequential stage: cross-record facts, in input order. One enricher
/// serves a whole run (state is keyed by server and pid).
pub struct Enricher<'c> {
    catalog: &'c Catalog,
    clients: HashMap<ProcessKey, Client>,
    /// Events not yet released, in order, with a flag: waiting for TLS.
    queue: VecDeque<(Box<Event>, bool)>,
    /// Sequence number of `queue[0]`.
    front_seq: u64,
    /// The waiting `authorized` event of a process, by sequence number.
    waiting: HashMap<ProcessKey, u64>,
    clock: LogClock,
    servers: ServerIds,
}

impl<'c> Enricher<'c> {
    pub fn new(catalog: &'c Catalog) -> Self {
        Enricher {
            catalog,
            clients: HashMap::new(),
            queue: VecDeque::new(),
            front_seq: 0,
            waiting: HashMap::new(),
            clock: LogClock::default(),
            servers: ServerIds::default(),
        }
    }

    /// Forgets the clients of attempts that never got authorized within
    /// PostgreSQL's longest authentication timeout (they are gone).
    /// Past `MAX_OPEN_SESSIONS` remembered clients, the oldest are
    /// forgotten too (processes that never log their end).
    fn sweep(&mut self) {
        let clock = &self.clock;
        self.clients.retain(|&(server, _), client| {
            client.authorized
                || match (client.since_ms, clock.now(server)) {
                    (Some(since), Some(now)) => now - since <= crate::session::ABANDON_AFTER_MS,
                    _ => true,
                }
        });
        let bound = crate::session::MAX_OPEN_SESSIONS;
        if self.clients.len() > bound {
            // Oldest first; ties by server name and pid (not by id: the
            // order must not depend on which server was seen first).
            let mut by_age: Vec<(Option<i64>, &str, u32, ProcessKey)> = self
                .clients
                .iter()
                .map(|(&key, client)| (client.since_ms, self.servers.name(key.0), key.1, key))
                .collect();
            by_age.sort();
            let excess = self.clients.len() - bound * 3 / 4;
            for (_, _, _, key) in by_age.into_iter().take(excess) {
                self.clients.remove(&key);
            }
        }
    }

    /// Feeds the extractor's output; calls `emit` for each event released.
    pub fn push(&mut self, out: Out, emit: &mut dyn FnMut(Box<Event>)) {
        match out {
            Out::AppSeen { server, pid, app } => {
                let server = self.servers.id(server);
                if let Some(seq) = self.waiting.remove(&(server, pid)) {
                    let catalog = self.catalog;
                    if let Some((event, waiting)) = self.slot(seq) {
                        verify_tls(catalog, event, &app);
                        *waiting = false;
                    }
                }
            }
            Out::Event {
                mut event,
                tls_pending,
            } => {
                let server = self.servers.id(event.server);
                self.enrich(&mut event, server);
                let key = event.pid.map(|pid| (server, pid));
                if let Some(key) = &key
                    && matches!(
                        event.kind,
                        EventKind::Received | EventKind::AuthFailed | EventKind::Disconnected
                    )
                {
                    // The session ended or the pid was reused: its TLS check
                    // can no longer be settled.
                    self.release_waiting(key);
                }
                if !tls_pending && self.queue.is_empty() {
                    // Nothing held (always so for stderr and syslog): out
                    // at once, without a trip through the queue.
                    self.front_seq += 1;
                    emit(event);
                    return;
                }
                let waiting = match key {
                    Some(key) if tls_pending => {
                        let seq = self.front_seq + self.queue.len() as u64;
                        if let Some(previous) = self.waiting.insert(key, seq)
                            && let Some((_, w)) = self.slot(previous)
                        {
                            *w = false;
                        }
                        true
                    }
                    _ => false,
                };
                self.queue.push_back((event, waiting));
            }
        }
        self.release(emit, TLS_HOLD_EVENTS);
    }

    fn slot(&mut self, seq: u64) -> Option<(&mut Event, &mut bool)> {
        let index = usize::try_from(seq.checked_sub(self.front_seq)?).ok()?;
        self.queue.get_mut(index).map(|(e, w)| (&mut **e, w))
    }

    fn release_waiting(&mut self, key: &ProcessKey) {
        if !self.waiting.is_empty()
            && let Some(seq) = self.waiting.remove(key)
            && let Some((_, waiting)) = self.slot(seq)
        {
            *waiting = false;
        }
    }

    /// Emits events from the front while they are not waiting, or while the
    /// queue holds more than `hold` events.
    fn release(&mut self, emit: &mut dyn FnMut(Box<Event>), hold: usize) {
        while let Some((_, waiting)) = self.queue.front() {
            if *waiting && self.queue.len() <= hold {
                break;
            }
            let Some((event, waiting)) = self.queue.pop_front() else {
                break;
            };
            if waiting && let Some(pid) = event.pid {
                let server = self.servers.id(event.server);
                self.waiting.remove(&(server, pid));
            }
            self.front_seq += 1;
            emit(event);
        }
    }

    /// Releases everything still held (end of the run).
    pub fn finish(&mut self, emit: &mut dyn FnMut(Box<Event>)) {
        self.waiting.clear();
        self.release(emit, 0);
    }

    /// Fills what earlier records of the process said; `server` is the
    /// id of the event's server.
    fn enrich(&mut self, event: &mut Event, server: u32) {
        if self.clock.tick(server, event.time_ms) {
            self.sweep();
        }
        if event.kind == EventKind::Suspect {
            if event.pid.is_none() {
                // The prefix broke before %p: the client's address and port
                // (written before the raw names) identify the process whose
                // `received` record carried the same.
                event.pid =
                    self.pid_of_client(server, event.client_addr.as_deref(), event.client_port);
            }
            return;
        }
        let Some(pid) = event.pid else { return };
        let key = (server, pid);
        if let Some(client) = self.clients.get(&key) {
            if event.client_addr.is_none() {
                event.client_addr = Some(client.addr.clone());
            }
            if event.client_port.is_none()
                && event.client_addr.as_deref() == Some(client.addr.as_str())
            {
                event.client_port = client.port;
            }
        }
        match event.kind {
            EventKind::Received => match &event.client_addr {
                Some(addr) => {
                    let client = Client {
                        addr: addr.clone(),
                        port: event.client_port,
                        since_ms: event.time_ms,
                        authorized: false,
                    };
                    self.clients.insert(key, client);
                    if self.clients.len() > crate::session::MAX_OPEN_SESSIONS {
                        self.sweep();
                    }
                }
                None => {
                    self.clients.remove(&key);
                }
            },
            EventKind::AuthFailed | EventKind::Disconnected => {
                self.clients.remove(&key);
            }
            EventKind::Authorized => {
                if let Some(client) = self.clients.get_mut(&key) {
                    client.authorized = true;
                }
            }
            _ => {}
        }
    }

    /// The process whose `connection received` named this client address
    /// and port; none when two open processes match.
    fn pid_of_client(&self, server: u32, addr: Option<&str>, port: Option<u16>) -> Option<u32> {
        let (addr, port) = (addr?, port?);
        let mut found = self
            .clients
            .iter()
            .filter(|((s, _), c)| *s == server && c.addr == addr && c.port == Some(port))
            .map(|((_, pid), _)| *pid);
        let pid = found.next()?;
        found.next().is_none().then_some(pid)
    }
}

/// csvlog/jsonlog give the session's real application name on later
/// records (cut to 63 bytes): it tells whether the `SSL enabled (…)` text of
/// the `authorized` message was the server's or part of the client's name.
/// Every way of splitting the message into name + server suffix is tried;
/// when exactly one agrees with the real name, it is the truth.
fn verify_tls(catalog: &Catalog, event: &mut Event, real: &str) {
    let Some(found) = catalog.classify(Label::Log, &event.message) else {
        return;
    };
    let Some(app) = found.get(Field::ApplicationName) else {
        return;
    };
    let offset = app.as_ptr() as usize - event.message.as_ptr() as usize;
    let Some(rest) = event.message.get(offset..) else {
        return;
    };
    let agrees = |name: &str| {
        name == real
            || (real.len() + 4 > MAX_GUC_NAME && name.len() > real.len() && name.starts_with(real))
    };
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
    let suffix = suffix.to_owned();
    event.application_name = Some(Text::from(name));
    event.ssl_protocol = None;
    event.ssl_cipher = None;
    event.ssl_bits = None;
    event.ssl_unverified = false;
    if !suffix.is_empty() {
        // Read the real suffix with the grammar, on a message that has no
        // client text before it.
        let probe = format!("connection authorized: user=u database=d{suffix}");
        if let Some(found) = catalog.classify(Label::Log, &probe) {
            event.ssl_protocol = found.get(Field::SslProtocol).map(Text::from);
            event.ssl_cipher = found.get(Field::SslCipher).map(Text::from);
            event.ssl_bits = found.get(Field::SslBits).and_then(|b| b.parse().ok());
        }
    }
}

/// `H:MM:SS.mmm` → milliseconds.
pub fn parse_session_time(text: &str) -> Option<u64> {
    // What PostgreSQL writes (`%d:%02d:%02d.%03d`), read byte by byte;
    // anything else goes the general way.
    if let [rest @ .., m1, m2, b':', s1, s2, b'.', f1, f2, f3] = text.as_bytes()
        && let [hours @ .., b':'] = rest
        && (1..=6).contains(&hours.len())
        && hours
            .iter()
            .chain([m1, m2, s1, s2, f1, f2, f3])
            .all(u8::is_ascii_digit)
    {
        let number = |digits: &[u8]| {
            digits
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
        };
        let minutes = number(&[*m1, *m2]);
        let secs = number(&[*s1, *s2]);
        let millis = number(&[*f1, *f2, *f3]);
        return Some(((number(hours) * 60 + minutes) * 60 + secs) * 1000 + millis);
    }
    parse_session_time_generally(text)
}

/// [`parse_session_time`] for any text: fields of any width.
fn parse_session_time_generally(text: &str) -> Option<u64> {
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
    fn session_times_read_byte_by_byte_agree_with_the_general_parse() {
        for text in [
            "0:00:00.016",
            "0:00:44.331",
            "12:34:56.789",
            "123456:59:59.999",
            "1234567:00:00.001",
            "0:0:0.1",
            "+1:00:00.000",
            "1:00:00.0000",
            "1:00:00",
            "::.",
            ":00:00.000",
            "a:00:00.000",
            "1:00:00.00a",
            "",
        ] {
            assert_eq!(
                parse_session_time(text),
                parse_session_time_generally(text),
                "{text:?}"
            );
        }
        assert_eq!(parse_session_time("1:02:03.004"), Some(3_723_004));
    }

    #[test]
    fn session_time() {
        assert_eq!(parse_session_time("0:00:00.847"), Some(847));
        assert_eq!(parse_session_time("12:01:02.003"), Some(43_262_003));
        assert_eq!(parse_session_time("x"), None);
    }
}

#[cfg(test)]
mod enricher_tests {
    use super::*;

    /// A log of attempts that never end cannot grow the table of clients
    /// past the bound between two periodic sweeps: it is swept as it fills.
    #[test]
    fn clients_are_bounded_as_they_arrive() {
        let catalog = Catalog::builtin();
        let mut enricher = Enricher::new(catalog);
        let mut released = 0usize;
        let many = crate::session::MAX_OPEN_SESSIONS as u32 + 2000;
        for pid in 1..=many {
            let mut event = Event::boxed(EventKind::Received, Name::new("db"));
            event.pid = Some(pid);
            event.time_ms = Some(1_000);
            event.client_addr = Some(Text::from("10.0.0.1"));
            event.client_port = Some(40_000);
            enricher.push(
                Out::Event {
                    event,
                    tls_pending: false,
                },
                &mut |_| released += 1,
            );
            assert!(enricher.clients.len() <= crate::session::MAX_OPEN_SESSIONS);
        }
        assert_eq!(released, many as usize, "every event is released");
        // Swept once, when the bound was passed (down to three quarters);
        // the clients after stay.
        let bound = crate::session::MAX_OPEN_SESSIONS;
        assert_eq!(
            enricher.clients.len(),
            bound * 3 / 4 + (many as usize - (bound + 1))
        );
    }
}
