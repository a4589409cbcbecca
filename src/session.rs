//! The per-(server, pid) session state machine: events → one record per
//! connection attempt with its outcome.
//!
//! ```text
//! received ─► (auth_note)* ─► authenticated? ─► authorized ─► ready? ─► disconnected
//!     │              │                │               │                    ▲
//!     │              └── auth_failed ◄┴───────────────┘               terminated
//!     └── nothing else, or protocol noise ─► abandoned
//! ```
//! - A new `received` on a pid closes what that pid had open (pid reuse).
//! - The outcome is decided by what follows `authorized`, never by
//!   `authorized` alone: a FATAL after it is a failure.
//! - A session still open at the end of the input is a success with no end
//!   (`end_reason: open`) if it was authorized, else abandoned.
//!
//! Events must arrive in time order per (server, pid); `stitch` sorts them.

use foldhash::{HashMap, HashMapExt};
use std::collections::hash_map::Entry;
use std::sync::Arc;

use crate::cloud::{CloudContext, IamAttribution};
use crate::event::{Event, EventKind, FailureClass, Name, Provenance, Text};

/// How a connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The login completed.
    Success,
    /// A FATAL refused it.
    Failure,
    /// The client went away before authentication finished (password-prompt
    /// hang-ups, probes, incomplete startup packets).
    Abandoned,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Abandoned];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Abandoned => "abandoned",
        }
    }

    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// A `disconnection` record with nothing unusual before it.
    Client,
    /// Terminated by an administrator or a timeout.
    Terminated,
    /// The client vanished (`could not receive data`, `connection to client lost`).
    ConnectionLost,
    /// The server shut down.
    ServerShutdown,
    /// The client closed the connection during the startup or authentication.
    Eof,
    /// Still open at the end of the input.
    Open,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Client => "client",
            EndReason::Terminated => "terminated",
            EndReason::ConnectionLost => "connection_lost",
            EndReason::ServerShutdown => "server_shutdown",
            EndReason::Eof => "eof",
            EndReason::Open => "open",
        }
    }
}

/// One connection attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// `server/pid/start-ms`, unique within a run (a `#n` suffix separates
    /// the rare attempts that share all three) and stable across runs.
    pub session_id: String,
    pub server: Name,
    pub pid: u32,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Time of the last record of the attempt (for filters: an abandoned
    /// attempt has no end, but it was last seen then).
    pub last_ms: Option<i64>,
    pub duration_ms: Option<u64>,
    pub outcome: Outcome,
    pub failure_class: Option<FailureClass>,
    pub failure_message: Option<String>,
    pub failure_detail: Option<String>,
    /// LOG lines that explained the failure (`pam_authenticate failed: …`).
    pub notes: Vec<String>,
    pub user: Option<Text>,
    pub database: Option<Text>,
    pub application_name: Option<Text>,
    pub client_addr: Option<Text>,
    pub client_port: Option<u16>,
    pub auth_method: Option<Text>,
    pub identity: Option<Text>,
    pub hba_line: Option<Text>,
    pub ssl_protocol: Option<Text>,
    pub ssl_cipher: Option<Text>,
    pub ssl_bits: Option<u32>,
    pub ssl_unverified: bool,
    pub end_reason: Option<EndReason>,
    /// Every record used, in order.
    pub evidence: Vec<Provenance>,
    /// A record of this process could not be trusted (a `suspect` event,
    /// e.g. a forged line): its text is not used, its location is in
    /// `evidence`.
    pub suspect: bool,
    /// Where the server runs (from the configuration or the CloudWatch
    /// source); set after stitching, read by sinks.
    pub cloud: Option<Arc<CloudContext>>,
    /// Which IAM principal this was (set by `iam` correlation, when run).
    pub iam: Option<Box<IamAttribution>>,
    authorized: bool,
    /// Log time of `connection authorized`.
    authorized_ms: Option<i64>,
    established: bool,
    terminated: bool,
    /// Its logon was already handed out by [`Stitcher::take_established`].
    logon_announced: bool,
}

/// Writes a session id as the stitcher names sessions: `server/pid/start-ms`
/// (`-` for an unknown start), with `#n` when `n > 1` (the `n`th attempt of
/// a process in one tick). The findings rebuild ids with it.
pub fn write_session_id<W: std::fmt::Write>(
    w: &mut W,
    server: &str,
    pid: u32,
    start_ms: Option<i64>,
    n: usize,
) -> std::fmt::Result {
    let mut numbers = itoa::Buffer::new();
    w.write_str(server)?;
    w.write_char('/')?;
    w.write_str(numbers.format(pid))?;
    w.write_char('/')?;
    match start_ms {
        Some(ms) => w.write_str(numbers.format(ms))?,
        None => w.write_char('-')?,
    }
    if n > 1 {
        w.write_char('#')?;
        w.write_str(numbers.format(n))?;
    }
    Ok(())
}

impl Session {
    /// [`Session::new`] written straight into its box (a session is large:
    /// building it on the stack cost a copy).
    #[inline]
    fn boxed(server: Name, pid: u32, start_ms: Option<i64>) -> Box<Self> {
        Box::write(Box::new_uninit(), Session::new(server, pid, start_ms))
    }

    #[inline]
    fn new(server: Name, pid: u32, start_ms: Option<i64>) -> Self {
        Session {
            session_id: String::new(),
            server,
            pid,
            start_ms,
            end_ms: None,
            last_ms: start_ms,
            duration_ms: None,
            outcome: Outcome::Abandoned,
            failure_class: None,
            failure_message: None,
            failure_detail: None,
            notes: Vec::new(),
            user: None,
            database: None,
            application_name: None,
            client_addr: None,
            client_port: None,
            auth_method: None,
            identity: None,
            hba_line: None,
            ssl_protocol: None,
            ssl_cipher: None,
            ssl_bits: None,
            ssl_unverified: false,
            end_reason: None,
            // received, authenticated, authorized, disconnected
            evidence: Vec::with_capacity(4),
            suspect: false,
            cloud: None,
            iam: None,
            authorized: false,
            authorized_ms: None,
            established: false,
            terminated: false,
            logon_announced: false,
        }
    }

    /// True when [`Stitcher::take_established`] already handed out this
    /// session's logon (live inputs): only what happened since is new.
    pub fn logon_announced(&self) -> bool {
        self.logon_announced
    }

    /// Drops what only the audit record needs (evidence, messages, TLS and
    /// method details), keeping what summaries and findings read: ids,
    /// times, outcome, class, user, database, client, server, flags.
    pub fn strip_details(&mut self) {
        self.evidence = Vec::new();
        self.notes = Vec::new();
        self.failure_message = None;
        self.failure_detail = None;
        self.application_name = None;
        self.auth_method = None;
        self.identity = None;
        self.hba_line = None;
        self.ssl_protocol = None;
        self.ssl_cipher = None;
    }

    /// `server/pid/start-ms` (`-` for an unknown start), with `#n` when
    /// `n > 1`: the id of the `n`th attempt of a process in one tick.
    fn format_id(&self, n: usize) -> String {
        let mut id = String::with_capacity(self.server.len() + 32);
        // Writing to a String cannot fail.
        let _ = write_session_id(&mut id, &self.server, self.pid, self.start_ms, n);
        id
    }

    /// Takes what the session does not know yet from `event` (moving the
    /// strings out of it).
    fn absorb(&mut self, event: &mut Event) {
        fn fill<T>(slot: &mut Option<T>, value: &mut Option<T>) {
            if slot.is_none() {
                *slot = value.take();
            }
        }
        fill(&mut self.user, &mut event.user);
        fill(&mut self.database, &mut event.database);
        fill(&mut self.client_addr, &mut event.client_addr);
        fill(&mut self.client_port, &mut event.client_port);
        fill(&mut self.auth_method, &mut event.auth_method);
        fill(&mut self.identity, &mut event.identity);
        fill(&mut self.hba_line, &mut event.hba_line);
        if self.start_ms.is_none() {
            self.start_ms = event.time_ms;
        }
        if event.time_ms.is_some() && event.time_ms > self.last_ms {
            self.last_ms = event.time_ms;
        }
        if let Some(source) = event.source.take() {
            self.evidence.push(source);
        }
        self.evidence.append(&mut event.related_sources);
    }
}

/// Stitches a time-ordered event stream into sessions, streaming: a
/// session is handed out (`take_done`) as soon as it ends, and only open
/// sessions are held.
#[derive(Default)]
pub struct Stitcher {
    /// Boxed: a session is large, and moving it in and out of the table
    /// showed up in profiles.
    open: HashMap<ProcessKey, Box<Session>>,
    /// Boxed like `open`: ended sessions move through several hands (the
    /// filter, the correlator, the output thread) without being copied.
    #[allow(clippy::vec_box)]
    done: Vec<Box<Session>>,
    /// The last id base of each process, its start and how often it was
    /// used: a pid reused within one timestamp tick gets `#2`, `#3`…
    last_id: HashMap<ProcessKey, LastId>,
    /// Ids given since `last_id` was last pruned (see [`PRUNE_IDS_EVERY`]).
    ids_since_prune: usize,
    clock: LogClock,
    servers: ServerIds,
}

/// A process of a run: the [`ServerIds`] id of its server, and its pid.
pub(crate) type ProcessKey = (u32, u32);

/// Small dense ids for the server names of a run, so that the per-process
/// tables of the sequential stage hash and compare two integers instead of
/// a name. Consecutive events nearly always share their server, so the id
/// of the previous event's server is nearly always the answer (names are
/// interned: comparing them is comparing pointers).
#[derive(Default)]
pub(crate) struct ServerIds {
    ids: HashMap<Name, u32>,
    /// The names, by id.
    names: Vec<Name>,
    /// The previous lookup.
    last: Option<(Name, u32)>,
}

impl ServerIds {
    /// The id of `server`, given out in order of first appearance.
    #[inline]
    pub(crate) fn id(&mut self, server: Name) -> u32 {
        if let Some((last, id)) = self.last
            && last == server
        {
            return id;
        }
        self.look_up(server)
    }

    /// [`ServerIds::id`] for another name than the previous one's.
    #[inline(never)]
    fn look_up(&mut self, server: Name) -> u32 {
        let id = match self.ids.get(&server) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
                self.names.push(server);
                self.ids.insert(server, id);
                id
            }
        };
        self.last = Some((server, id));
        id
    }

    /// The name of the server with this id.
    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |name| name)
    }
}

/// The log's own clock: the latest event time seen per server, and when
/// the periodic sweep of stale state is due. State is aged by log time, not
/// wall time, so results depend only on the input.
#[derive(Default)]
pub(crate) struct LogClock {
    /// The latest time of each server, by [`ServerIds`] id.
    pub(crate) now: Vec<Option<i64>>,
    since_sweep: usize,
}

impl LogClock {
    /// Advances the clock of `server` (an id) to `time_ms`; true when a
    /// sweep is due (every `SWEEP_EVERY` events).
    pub(crate) fn tick(&mut self, server: u32, time_ms: Option<i64>) -> bool {
        if let Some(t) = time_ms {
            let index = server as usize;
            if index >= self.now.len() {
                self.now.resize(index + 1, None);
            }
            let now = &mut self.now[index];
            *now = Some(now.map_or(t, |now| now.max(t)));
        }
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.since_sweep = 0;
            return true;
        }
        false
    }

    /// The latest time of `server` (an id), if it logged one.
    pub(crate) fn now(&self, server: u32) -> Option<i64> {
        now_of(&self.now, server)
    }
}

/// The time of `server` (an id) in a [`LogClock::now`] table.
pub(crate) fn now_of(now: &[Option<i64>], server: u32) -> Option<i64> {
    now.get(server as usize).copied().flatten()
}

/// The start of a process's last session (which makes its id base) and
/// how many sessions used that base.
struct LastId {
    start_ms: Option<i64>,
    uses: usize,
}

/// PostgreSQL's largest `authentication_timeout` (10 min): a backend that
/// has not finished authenticating after it is gone, silently. An attempt
/// idle longer than this before authorization is closed as abandoned
/// without waiting for the end of the input (memory stays bounded).
pub const ABANDON_AFTER_MS: i64 = 10 * 60 * 1000;

/// How long after `connection authorized` (log time) a login with no
/// refusal counts as established: PostgreSQL's checks after authorization
/// (role, database, privileges, limits) take milliseconds.
pub const ESTABLISHED_AFTER_MS: i64 = 1_000;

/// Events between sweeps of stale state.
pub(crate) const SWEEP_EVERY: usize = 1 << 16;

/// Ids given between prunes of the table of recent ids, besides the prune
/// at each sweep. A sweep comes every [`SWEEP_EVERY`] events, by when a log
/// of short sessions has given some 16,000 ids, nearly all to processes
/// gone for good: looking them up across a table that size missed the
/// cache on nearly every id (3–4 % of a run's time). Pruning this often
/// keeps the table at the ids of the last two seconds of log time plus at
/// most this many.
const PRUNE_IDS_EVERY: usize = 1 << 10;

/// The most sessions held open at once. Past it (checked as each session
/// opens), a sweep writes out the least recently active ones as they are
/// (`end_reason: open`), down to three quarters of the bound: a log where
/// sessions never log their end (`log_disconnections` off) cannot make
/// memory grow without limit. A later record of such a process starts a
/// new, partial session. The enricher bounds its clients the same way.
pub const MAX_OPEN_SESSIONS: usize = 10_000;

/// Drops the entries of the table of recent ids that no later session can
/// share a base with. A later attempt can only share an id with one that
/// started in the same timestamp tick (a second at most), so entries more
/// than two seconds behind their server's clock go; unless the process's
/// open session began in that very tick (a pid reused within it, still
/// connected): it still needs the next `#n`.
fn prune_ids(
    last_id: &mut HashMap<ProcessKey, LastId>,
    open: &HashMap<ProcessKey, Box<Session>>,
    now: &[Option<i64>],
) {
    last_id.retain(|key, last| {
        let recent = match (last.start_ms, now_of(now, key.0)) {
            (Some(start), Some(now)) => now - start <= 2_000,
            _ => true,
        };
        recent || open.get(key).is_some_and(|s| s.start_ms == last.start_ms)
    });
    // After a burst (many ids in two seconds) the table gives its room back.
    let wanted = 2 * (last_id.len() + PRUNE_IDS_EVERY);
    if last_id.capacity() > 2 * wanted {
        last_id.shrink_to(wanted);
    }
}

impl Stitcher {
    pub fn new() -> Self {
        Stitcher::default()
    }

    /// Feeds one event (cloned; see [`Stitcher::push_owned`]).
    pub fn push(&mut self, event: &Event) {
        self.push_owned(Box::new(event.clone()));
    }

    /// Feeds one event, moving its strings into the session (boxed as the
    /// engine hands events out: an event is large, moving it showed up in
    /// profiles).
    pub fn push_owned(&mut self, mut event: Box<Event>) {
        let server = self.servers.id(event.server);
        if self.clock.tick(server, event.time_ms) {
            self.sweep();
        }
        let Some(pid) = event.pid else { return };
        let key = (server, pid);
        if event.kind == EventKind::Suspect {
            // Untrusted text never changes a session's fields; the session
            // is flagged and the location kept.
            if let Some(session) = self.open.get_mut(&key) {
                session.suspect = true;
                session.evidence.extend(event.source.take());
                session.evidence.append(&mut event.related_sources);
            }
            return;
        }
        if event.kind == EventKind::Received {
            if let Some(previous) = self.open.remove(&key) {
                self.close_at_end(previous);
            }
            let mut session = Session::boxed(event.server, pid, event.time_ms);
            session.absorb(&mut event);
            self.open.insert(key, session);
            self.bound_open();
            return;
        }
        // Records of a process whose start we did not see (log_connections
        // off, or the input starts mid-session) still form a session.
        let session = self
            .open
            .entry(key)
            .or_insert_with(|| Session::boxed(event.server, pid, event.time_ms));
        session.absorb(&mut event);
        match event.kind {
            EventKind::Received | EventKind::Suspect => {}
            EventKind::Authenticated => {}
            EventKind::Authorized => {
                session.authorized = true;
                if session.authorized_ms.is_none() {
                    session.authorized_ms = event.time_ms;
                }
                // absorb() took user and database only when unknown; the
                // authorization names them authoritatively.
                if event.user.is_some() {
                    session.user = event.user.take();
                }
                if event.database.is_some() {
                    session.database = event.database.take();
                }
                if event.application_name.is_some() {
                    session.application_name = event.application_name.take();
                }
                session.ssl_protocol = event.ssl_protocol.take();
                session.ssl_cipher = event.ssl_cipher.take();
                session.ssl_bits = event.ssl_bits;
                session.ssl_unverified = event.ssl_unverified;
            }
            EventKind::Ready => session.established = true,
            EventKind::AuthNote => session.notes.push(std::mem::take(&mut event.message)),
            EventKind::AuthFailed => {
                session.outcome = Outcome::Failure;
                session.failure_class = event.failure_class;
                session.failure_message = Some(std::mem::take(&mut event.message));
                session.failure_detail = event.detail.take().map(String::from);
                session.end_ms = event.time_ms;
                session.end_reason = None;
                if let Some(done) = self.open.remove(&key) {
                    self.close(done);
                }
            }
            EventKind::Terminated => {
                session.terminated = true;
                session.end_ms = event.time_ms;
                if event.failure_class == Some(FailureClass::ServerNotReady) {
                    session.end_reason = Some(EndReason::ServerShutdown);
                } else {
                    session.end_reason = Some(EndReason::Terminated);
                }
            }
            EventKind::Protocol => {
                if session.authorized {
                    if session.end_reason.is_none() {
                        session.end_reason = Some(EndReason::ConnectionLost);
                    }
                } else {
                    // Why the attempt went nowhere: a malformed or empty
                    // startup, a TLS handshake error…
                    session.failure_class = event.failure_class.or(session.failure_class);
                    session.failure_message = Some(std::mem::take(&mut event.message));
                    session.end_ms = event.time_ms;
                    if event.severity == Some("FATAL") {
                        // The server refused it (unsupported protocol…).
                        session.outcome = Outcome::Failure;
                        session.end_reason = None;
                        if let Some(done) = self.open.remove(&key) {
                            self.close(done);
                        }
                    } else {
                        session.end_reason = Some(EndReason::Eof);
                    }
                }
            }
            EventKind::Disconnected => {
                session.outcome = Outcome::Success;
                session.end_ms = event.time_ms;
                session.duration_ms = event.session_duration_ms;
                if session.end_reason.is_none() {
                    session.end_reason = Some(EndReason::Client);
                }
                if let Some(done) = self.open.remove(&key) {
                    self.close(done);
                }
            }
        }
        self.bound_open();
    }

    /// Sweeps as soon as more than [`MAX_OPEN_SESSIONS`] sessions are open,
    /// not only at the periodic sweep: between two of those, a log of
    /// attempts that never end could open `SWEEP_EVERY` more.
    #[inline]
    fn bound_open(&mut self) {
        if self.open.len() > MAX_OPEN_SESSIONS {
            self.sweep();
        }
    }

    /// Decides the outcome of a session no failure or disconnection closed.
    fn close_at_end(&mut self, mut session: Box<Session>) {
        if session.authorized || session.established || session.terminated {
            session.outcome = Outcome::Success;
            if session.end_reason.is_none() {
                session.end_reason = Some(EndReason::Open);
            }
        } else {
            session.outcome = Outcome::Abandoned;
            if session.end_reason.is_none() {
                session.end_reason = Some(EndReason::Eof);
            }
        }
        self.close(session);
    }

    /// Closes attempts that can no longer go on (no authorization within
    /// [`ABANDON_AFTER_MS`]) and forgets ids that can no longer collide.
    /// Deterministic: it depends only on the event stream.
    fn sweep(&mut self) {
        let now = std::mem::take(&mut self.clock.now);
        self.sweep_at(&now);
        self.clock.now = now;
    }

    /// [`Self::sweep`] as if the latest time of each server were `now`
    /// (by server id).
    fn sweep_at(&mut self, now: &[Option<i64>]) {
        let stale: Vec<ProcessKey> = self
            .open
            .iter()
            .filter(|&(&(server, _), s)| {
                !(s.authorized || s.established || s.terminated)
                    && match (s.last_ms, now_of(now, server)) {
                        (Some(last), Some(now)) => now - last > ABANDON_AFTER_MS,
                        _ => false,
                    }
            })
            .map(|(&k, _)| k)
            .collect();
        let mut stale: Vec<Box<Session>> =
            stale.iter().filter_map(|k| self.open.remove(k)).collect();
        if self.open.len() > MAX_OPEN_SESSIONS {
            let mut by_activity: Vec<(&ProcessKey, &Session)> =
                self.open.iter().map(|(k, s)| (k, &**s)).collect();
            by_activity.sort_by(|(_, a), (_, b)| {
                (a.last_ms, a.start_ms, &a.server, a.pid)
                    .cmp(&(b.last_ms, b.start_ms, &b.server, b.pid))
            });
            let excess = self.open.len() - MAX_OPEN_SESSIONS * 3 / 4;
            let evicted: Vec<ProcessKey> = by_activity
                .into_iter()
                .take(excess)
                .map(|(&k, _)| k)
                .collect();
            for key in evicted {
                if let Some(session) = self.open.remove(&key) {
                    stale.push(session);
                }
            }
        }
        stale.sort_by(|a, b| (a.start_ms, &a.server, a.pid).cmp(&(b.start_ms, &b.server, b.pid)));
        for session in stale {
            self.close_at_end(session);
        }
        prune_ids(&mut self.last_id, &self.open, now);
        self.ids_since_prune = 0;
    }

    /// Assigns the session id (unless announced already) and hands the
    /// session out.
    fn close(&mut self, mut session: Box<Session>) {
        if session.session_id.is_empty() {
            self.assign_id(&mut session);
        }
        self.done.push(session);
    }

    /// Gives a session its id: the base, `#2`, `#3`… for a pid reused
    /// within one timestamp tick.
    fn assign_id(&mut self, session: &mut Session) {
        // Same server and pid (the key) and the same start: the same base.
        let key = (self.servers.id(session.server), session.pid);
        // One hash of the key: most sessions are a new process's.
        let fresh = LastId {
            start_ms: session.start_ms,
            uses: 1,
        };
        let n = match self.last_id.entry(key) {
            Entry::Occupied(mut entry) => {
                let last = entry.get_mut();
                if last.start_ms == session.start_ms {
                    last.uses += 1;
                } else {
                    *last = fresh;
                }
                last.uses
            }
            Entry::Vacant(entry) => entry.insert(fresh).uses,
        };
        session.session_id = session.format_id(n);
        self.ids_since_prune += 1;
        if self.ids_since_prune >= PRUNE_IDS_EVERY {
            self.ids_since_prune = 0;
            prune_ids(&mut self.last_id, &self.open, &self.clock.now);
        }
    }

    /// Successful logins not yet announced, for live inputs (`audit
    /// --follow`) that report a logon before its session ends: sessions
    /// `connection ready`, or authorized at least [`ESTABLISHED_AFTER_MS`]
    /// ago (log time plus `quiet_ms`, how long the input has been quiet)
    /// with no refusal since. Each is announced once, in (start, server,
    /// pid) order; the copy handed out has its final id, outcome success
    /// and no end.
    pub fn take_established(&mut self, quiet_ms: i64) -> Vec<Session> {
        let clock = &self.clock;
        let mut ready: Vec<(Option<i64>, Name, u32, ProcessKey)> = self
            .open
            .iter()
            .filter(|&(&(server, _), s)| {
                !s.logon_announced
                    && s.authorized
                    && (s.established
                        || match (s.authorized_ms, clock.now(server)) {
                            (Some(at), Some(now)) => {
                                now.saturating_add(quiet_ms) - at >= ESTABLISHED_AFTER_MS
                            }
                            _ => false,
                        })
            })
            .map(|(&key, s)| (s.start_ms, s.server, s.pid, key))
            .collect();
        ready.sort();
        let mut announced = Vec::with_capacity(ready.len());
        for (_, _, _, key) in ready {
            let Some(mut session) = self.open.remove(&key) else {
                continue;
            };
            self.assign_id(&mut session);
            session.logon_announced = true;
            let mut copy = Session::clone(&session);
            copy.outcome = Outcome::Success;
            copy.end_reason = None;
            copy.end_ms = None;
            announced.push(copy);
            self.open.insert(key, session);
        }
        announced
    }

    /// Closes the attempts not authorized within [`ABANDON_AFTER_MS`],
    /// counting `quiet_ms` more than the log's clock: for a live input,
    /// whose log clock stops while the server is quiet (`audit --follow`
    /// passes how long the file has been quiet).
    pub fn close_stale(&mut self, quiet_ms: i64) {
        let now: Vec<Option<i64>> = self
            .clock
            .now
            .iter()
            .map(|t| t.map(|t| t.saturating_add(quiet_ms)))
            .collect();
        self.sweep_at(&now);
    }

    /// The sessions that ended since the last call, in the order they ended.
    pub fn take_done(&mut self) -> Vec<Session> {
        self.done.drain(..).map(|s| *s).collect()
    }

    /// Like [`Stitcher::take_done`], keeping the list's memory for the next
    /// sessions (the streaming path: no regrowth, no fresh pages per batch).
    /// Boxed, as they are kept.
    pub fn drain_done(&mut self) -> std::vec::Drain<'_, Box<Session>> {
        self.done.drain(..)
    }

    /// Closes everything still open (in (start, server, pid) order) and
    /// returns the sessions not yet taken.
    pub fn finish(mut self) -> Vec<Session> {
        let mut open: Vec<Box<Session>> = self.open.drain().map(|(_, s)| s).collect();
        open.sort_by(|a, b| (a.start_ms, &a.server, a.pid).cmp(&(b.start_ms, &b.server, b.pid)));
        for session in open {
            self.close_at_end(session);
        }
        self.done.into_iter().map(|s| *s).collect()
    }
}

/// Orders sessions by (start, server, pid, first evidence).
pub fn sort_by_start(sessions: &mut [Session]) {
    sessions.sort_by(|a, b| {
        (a.start_ms, &a.server, a.pid, &a.evidence.first()).cmp(&(
            b.start_ms,
            &b.server,
            b.pid,
            &b.evidence.first(),
        ))
    });
}

/// Orders events for stitching and stitches them: by server, then time.
/// Events of one input keep their order; inputs of one server (hourly files
/// given in any order) are ordered by their first time, then by name, so
/// records of the same second on both sides of a file boundary stay in
/// order. A record without a time takes the time of the record before it in
/// its input.
pub fn stitch(events: Vec<Event>) -> Vec<Session> {
    use std::collections::BTreeMap;
    let input_of = |e: &Event| e.source.as_ref().map(|p| p.input);
    // First time seen per input, for ordering the inputs of a server.
    let mut first_time: BTreeMap<Option<Name>, i64> = BTreeMap::new();
    let mut times: Vec<i64> = Vec::with_capacity(events.len());
    let mut previous: HashMap<Option<Name>, i64> = HashMap::new();
    for e in &events {
        let input = input_of(e);
        let time = e
            .time_ms
            .or_else(|| previous.get(&input).copied())
            .unwrap_or(i64::MIN);
        previous.insert(input, time);
        let first = first_time.entry(input).or_insert(time);
        *first = (*first).min(time);
        times.push(time);
    }
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        let (ea, eb) = (&events[a], &events[b]);
        let (ia, ib) = (input_of(ea), input_of(eb));
        ea.server
            .cmp(&eb.server)
            .then(times[a].cmp(&times[b]))
            .then(first_time[&ia].cmp(&first_time[&ib]))
            .then(ia.cmp(&ib))
            .then(a.cmp(&b))
    });
    let mut stitcher = Stitcher::new();
    for i in order {
        stitcher.push(&events[i]);
    }
    let mut sessions = stitcher.finish();
    sort_by_start(&mut sessions);
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, pid: Option<u32>, time_ms: i64) -> Event {
        let mut e = Event::new(kind, Name::new("db"));
        e.pid = pid;
        e.time_ms = Some(time_ms);
        e
    }

    /// A stitcher that saw pid 7 fail and connect again within one tick
    /// (time 0); the second session is still open.
    fn pid_7_reused_within_a_tick() -> Stitcher {
        let mut st = Stitcher::new();
        st.push(&event(EventKind::Received, Some(7), 0));
        st.push(&event(EventKind::AuthFailed, Some(7), 0));
        st.push(&event(EventKind::Received, Some(7), 0));
        st.push(&event(EventKind::Authorized, Some(7), 0));
        st
    }

    /// A pid reused within one timestamp tick gets `#2`, even when its
    /// session outlives the pruning of recent ids (a sweep seconds later).
    #[test]
    fn a_pid_reused_within_a_tick_keeps_a_unique_id_across_a_sweep() {
        let mut st = pid_7_reused_within_a_tick();
        // Seconds later, enough events for a sweep.
        for _ in 0..SWEEP_EVERY {
            st.push(&event(EventKind::Protocol, None, 5_000));
        }
        st.push(&event(EventKind::Disconnected, Some(7), 6_000));
        let ids: Vec<String> = st
            .take_done()
            .into_iter()
            .filter(|s| s.pid == 7)
            .map(|s| s.session_id.clone())
            .collect();
        assert_eq!(ids, ["db/7/0", "db/7/0#2"]);
    }

    /// Between sweeps, the table of recent ids keeps only what a later id
    /// could need: a log of short sessions does not fill it with the ids
    /// of processes long gone, and a pid reused within one tick, still
    /// connected, keeps its `#2` across the prunes.
    #[test]
    fn recent_ids_are_pruned_between_sweeps_and_still_unique() {
        let mut st = pid_7_reused_within_a_tick();
        // Many short sessions, one a second: far fewer events than a sweep.
        let many = 4 * PRUNE_IDS_EVERY as u32;
        for pid in 100..100 + many {
            let at = i64::from(pid) * 1_000;
            st.push(&event(EventKind::Received, Some(pid), at));
            st.push(&event(EventKind::Disconnected, Some(pid), at));
        }
        // Events so far: no sweep has run.
        assert!(2 * many as usize + 4 < SWEEP_EVERY);
        assert!(
            st.last_id.len() <= PRUNE_IDS_EVERY + 3,
            "{}",
            st.last_id.len()
        );
        st.push(&event(EventKind::Disconnected, Some(7), 6_000_000));
        let done = st.take_done();
        let ids: Vec<&str> = done
            .iter()
            .filter(|s| s.pid == 7)
            .map(|s| s.session_id.as_str())
            .collect();
        assert_eq!(ids, ["db/7/0", "db/7/0#2"]);
        assert_eq!(done.len(), many as usize + 2);
    }

    /// Memory stays bounded: attempts that can no longer authenticate are
    /// closed as abandoned, and past MAX_OPEN_SESSIONS the least recently
    /// active sessions are written out as open.
    #[test]
    fn open_sessions_are_bounded() {
        let mut st = Stitcher::new();
        // One attempt that never goes past `received`.
        st.push(&event(EventKind::Received, Some(1), 0));
        // Many sessions that never log their end.
        let many = MAX_OPEN_SESSIONS as u32 + 2000;
        for pid in 10..10 + many {
            st.push(&event(EventKind::Received, Some(pid), 1_000));
            st.push(&event(EventKind::Authorized, Some(pid), 1_000));
            // Bounded as they open, not only at the periodic sweep.
            assert!(st.open.len() <= MAX_OPEN_SESSIONS, "{}", st.open.len());
        }
        // Time passes beyond the longest authentication timeout, and enough
        // events arrive for a sweep.
        let later = ABANDON_AFTER_MS + 10_000;
        for _ in 0..SWEEP_EVERY {
            st.push(&event(EventKind::Protocol, None, later));
        }
        let done = st.take_done();
        let abandoned: Vec<&Session> = done
            .iter()
            .filter(|s| s.outcome == Outcome::Abandoned)
            .collect();
        assert_eq!(abandoned.len(), 1);
        assert_eq!(abandoned[0].pid, 1);
        let evicted = done
            .iter()
            .filter(|s| s.end_reason == Some(EndReason::Open))
            .count();
        // The least recently active went first, down to three quarters of
        // the bound, when it was passed (the attempt of pid 1 first, which
        // was never authorized: abandoned); the 2,000 after stay open.
        assert_eq!(st.open.len(), MAX_OPEN_SESSIONS * 3 / 4 + 2000);
        assert_eq!(evicted, many as usize - st.open.len());
        // Nothing is lost: the rest comes out at the end.
        assert_eq!(done.len() + st.finish().len(), many as usize + 1);
    }
}

#[cfg(test)]
mod close_stale_tests {
    use super::*;

    fn received(pid: u32, time_ms: i64) -> Event {
        let mut e = Event::new(EventKind::Received, Name::new("db"));
        e.pid = Some(pid);
        e.time_ms = Some(time_ms);
        e
    }

    #[test]
    fn a_quiet_live_log_closes_only_attempts_past_the_abandon_delay() {
        let mut stitcher = Stitcher::new();
        stitcher.push(&received(1, 0));
        stitcher.push(&received(2, 120_000));
        let mut authorized = received(3, 0);
        authorized.kind = EventKind::Authorized;
        stitcher.push(&authorized);
        stitcher.close_stale(1_000);
        assert!(stitcher.take_done().is_empty(), "nothing is stale yet");
        // Quiet for the whole delay: pid 1 (last seen 2 min before the log's
        // latest record) is past it, pid 2 is not, the authorized pid 3
        // stays open whatever the delay.
        stitcher.close_stale(ABANDON_AFTER_MS - 60_000);
        let done = stitcher.take_done();
        assert_eq!(done.iter().map(|s| s.pid).collect::<Vec<_>>(), [1]);
        assert_eq!(done[0].outcome, Outcome::Abandoned);
        assert_eq!(done[0].end_reason, Some(EndReason::Eof));
        stitcher.close_stale(10 * ABANDON_AFTER_MS);
        assert_eq!(
            stitcher
                .take_done()
                .iter()
                .map(|s| s.pid)
                .collect::<Vec<_>>(),
            [2]
        );
        let rest = stitcher.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].outcome, Outcome::Success);
    }
}

#[cfg(test)]
mod established_tests {
    use super::*;

    fn at(kind: EventKind, pid: u32, time_ms: i64) -> Event {
        let mut e = Event::new(kind, Name::new("db"));
        e.pid = Some(pid);
        e.time_ms = Some(time_ms);
        e
    }

    #[test]
    fn logons_are_announced_once_when_nothing_refused_them() {
        let mut st = Stitcher::new();
        st.push(&at(EventKind::Received, 1, 0));
        st.push(&at(EventKind::Authorized, 1, 10));
        // Too early: a refusal could still follow.
        assert!(st.take_established(0).is_empty());
        // A refusal after authorization: never announced.
        st.push(&at(EventKind::Received, 2, 20));
        st.push(&at(EventKind::Authorized, 2, 30));
        st.push(&at(EventKind::AuthFailed, 2, 31));
        // The log moves on (another process), or the input stays quiet.
        st.push(&at(EventKind::Received, 3, 1_500));
        let first = st.take_established(0);
        assert_eq!(first.iter().map(|s| s.pid).collect::<Vec<_>>(), [1]);
        assert_eq!(first[0].outcome, Outcome::Success);
        assert_eq!(first[0].end_reason, None);
        assert_eq!(first[0].session_id, "db/1/0");
        assert!(first[0].logon_announced());
        assert!(st.take_established(60_000).is_empty(), "announced once");
        st.push(&at(EventKind::Authorized, 3, 1_501));
        assert!(st.take_established(0).is_empty());
        assert_eq!(st.take_established(1_000).len(), 1, "quiet time counts");
        // The end keeps the announced id and says the logon was announced.
        st.push(&at(EventKind::Disconnected, 1, 9_000));
        let done = st.take_done();
        let ended: Vec<&Session> = done.iter().filter(|s| s.pid == 1).collect();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].session_id, "db/1/0");
        assert!(ended[0].logon_announced());
        assert_eq!(ended[0].end_reason, Some(EndReason::Client));
        let failed: Vec<&Session> = done.iter().filter(|s| s.pid == 2).collect();
        assert!(!failed[0].logon_announced());
    }
}
