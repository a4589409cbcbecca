//! Connection statistics over sessions: exact counts of attempts, successes,
//! failures and abandoned attempts, overall and per user, client, failure
//! class, server and database, with the failures per minute.
//!
//! Owns [`Tally`] (the statistics added up one session at a time, in any
//! order, in memory that grows with the distinct names and the minutes with
//! failures, not with the sessions), [`SessionView`] (what summaries and
//! findings read of a session), [`SessionFacts`] (the same, owned, for
//! tests and library users) and the [`Summary`] types.
//!
//! Every count is exact: one [`Session`] is one connection attempt, every
//! session is counted once in the totals and once in each breakdown, and
//! nothing is sampled or capped (only the text report shortens lists; the
//! JSON output has everything).
//!
//! Definitions:
//! - an **attempt** is a session; its outcome (`success`, `failure`,
//!   `abandoned`) is the session's. `connection authorized` alone is never a
//!   success (see `session`).
//! - a session's **time** is, for a failure, the time of the refusal
//!   (`end_ms`, else `start_ms`); otherwise its start (`start_ms`, else
//!   `end_ms`). `first_seen` is the earliest start of the sessions in a
//!   row, `last_seen` the latest end or last record (`end_ms`, `last_ms`):
//!   a long session keeps its user "seen" until it ends.
//! - a breakdown key is `None` when the session does not say (no user on a
//!   probe that never sent a startup packet, no client address in the
//!   prefix, …); such sessions form their own row, they are not dropped.
//!   Clients are the `client_addr` text: an IP address, a host name with
//!   `log_hostname`, or `[local]` for Unix-domain sockets.
//! - `by_failure_class` counts failures only (its `success` and
//!   `abandoned` columns are always 0).

use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use crate::cloud::IamAttribution;
use crate::event::FailureClass;
use crate::session::{Outcome, Session};

/// What summaries and findings read of a session, owned: for tests and
/// library users that hold sessions ([`summarize`], `findings::find`).
/// `pgtrail summary` holds none: it adds each session to a [`Tally`] and a
/// `findings::Collector` as it arrives. Repeated names are shared
/// ([`Names`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    pub session_id: Box<str>,
    pub server: crate::name::Name,
    pub pid: u32,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub outcome: Outcome,
    pub failure_class: Option<FailureClass>,
    pub user: Option<Arc<str>>,
    pub database: Option<Arc<str>>,
    pub client_addr: Option<Arc<str>>,
    pub suspect: bool,
    pub iam: Option<Box<IamAttribution>>,
}

/// One shared copy of each user, database and client name of a run (few
/// names, many sessions).
#[derive(Debug, Default)]
pub struct Names {
    known: HashSet<Arc<str>>,
}

impl Names {
    fn share(&mut self, name: Option<&str>) -> Option<Arc<str>> {
        let name = name?;
        if let Some(known) = self.known.get(name) {
            return Some(known.clone());
        }
        let shared: Arc<str> = Arc::from(name);
        self.known.insert(shared.clone());
        Some(shared)
    }
}

impl SessionFacts {
    /// The facts of `session`, its names shared through `names`.
    pub fn new(session: Session, names: &mut Names) -> Self {
        SessionFacts {
            session_id: session.session_id.into_boxed_str(),
            server: session.server,
            pid: session.pid,
            start_ms: session.start_ms,
            end_ms: session.end_ms,
            last_ms: session.last_ms,
            outcome: session.outcome,
            failure_class: session.failure_class,
            user: names.share(session.user.as_deref()),
            database: names.share(session.database.as_deref()),
            client_addr: names.share(session.client_addr.as_deref()),
            suspect: session.suspect,
            iam: session.iam,
        }
    }

    /// The facts of every session (tests and library users).
    pub fn of_all(sessions: Vec<Session>) -> Vec<SessionFacts> {
        let mut names = Names::default();
        sessions
            .into_iter()
            .map(|s| SessionFacts::new(s, &mut names))
            .collect()
    }
}

/// Orders facts by (start, server, pid, session id): the order of
/// [`crate::session::sort_by_start`] for sessions without evidence.
pub fn sort_facts(facts: &mut [SessionFacts]) {
    facts.sort_by(|a, b| {
        (a.start_ms, &a.server, a.pid, &a.session_id).cmp(&(
            b.start_ms,
            &b.server,
            b.pid,
            &b.session_id,
        ))
    });
}

/// Counts over a set of attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Every session (connection attempt).
    pub attempts: u64,
    pub success: u64,
    pub failure: u64,
    pub abandoned: u64,
    /// Sessions with a record pgtrail could not trust (a forged line, …).
    pub suspect: u64,
    /// Sessions without any timestamp (not in first/last seen, not in the
    /// per-minute series, skipped by windowed findings).
    pub without_time: u64,
}

/// One row of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The user, client, failure class, server or database; `None` when the
    /// sessions of this row do not say (rendered `unknown`).
    pub key: Option<String>,
    pub attempts: u64,
    pub success: u64,
    pub failure: u64,
    pub abandoned: u64,
    /// Earliest session start in this row, epoch milliseconds.
    pub first_seen: Option<i64>,
    /// Latest session end (or start) in this row, epoch milliseconds.
    pub last_seen: Option<i64>,
}

/// A per-user row: the counts plus the clients the user came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub row: Row,
    /// Number of distinct known client addresses (any outcome); sessions
    /// without a client address are not a client.
    pub distinct_clients: usize,
    /// Every distinct client address, most attempts first, then by address.
    pub clients: Vec<String>,
}

/// Failures in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteCount {
    /// Start of the minute, epoch milliseconds (UTC).
    pub minute_ms: i64,
    pub failures: u64,
}

/// The statistics `pgtrail summary` reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub totals: Totals,
    /// Earliest session start, epoch milliseconds.
    pub first_seen: Option<i64>,
    /// Latest session end (or start), epoch milliseconds.
    pub last_seen: Option<i64>,
    pub by_user: Vec<UserRow>,
    pub by_client: Vec<Row>,
    pub by_failure_class: Vec<Row>,
    pub by_server: Vec<Row>,
    pub by_database: Vec<Row>,
    /// Minutes with at least one failure, in time order (sparse).
    pub failures_per_minute: Vec<MinuteCount>,
    /// The minute with the most failures (the earliest on a tie).
    pub peak_minute: Option<MinuteCount>,
    /// Failures without a timestamp, not in `failures_per_minute`; with
    /// the series they add up to `totals.failure`.
    pub failures_without_time: u64,
}

/// What summaries and findings read of one session, borrowed: from a
/// [`Session`] as it leaves the filter ([`SessionView::of`]), or from
/// [`SessionFacts`]. Names are `&str` whatever string type a session uses.
#[derive(Debug, Clone, Copy)]
pub struct SessionView<'a> {
    pub session_id: &'a str,
    pub server: &'a str,
    pub pid: u32,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub outcome: Outcome,
    pub failure_class: Option<FailureClass>,
    pub user: Option<&'a str>,
    pub database: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub suspect: bool,
    pub iam: Option<&'a IamAttribution>,
}

impl<'a> SessionView<'a> {
    /// The view of a session.
    pub fn of(s: &'a Session) -> Self {
        SessionView {
            session_id: &s.session_id,
            server: &s.server,
            pid: s.pid,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            last_ms: s.last_ms,
            outcome: s.outcome,
            failure_class: s.failure_class,
            user: s.user.as_deref(),
            database: s.database.as_deref(),
            client_addr: s.client_addr.as_deref(),
            suspect: s.suspect,
            iam: s.iam.as_deref(),
        }
    }

    /// The view of compact facts.
    pub fn of_facts(s: &'a SessionFacts) -> Self {
        SessionView {
            session_id: &s.session_id,
            server: &s.server,
            pid: s.pid,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            last_ms: s.last_ms,
            outcome: s.outcome,
            failure_class: s.failure_class,
            user: s.user.as_deref(),
            database: s.database.as_deref(),
            client_addr: s.client_addr.as_deref(),
            suspect: s.suspect,
            iam: s.iam.as_deref(),
        }
    }
}

/// The time that places a session: a failure at its refusal, anything else
/// at its start.
pub fn session_time(s: &SessionView<'_>) -> Option<i64> {
    match s.outcome {
        Outcome::Failure => s.end_ms.or(s.start_ms),
        Outcome::Success | Outcome::Abandoned => s.start_ms.or(s.end_ms),
    }
}

/// The first and last moments a session was seen: its start, and the latest
/// of its end and its last record.
fn span(s: &SessionView<'_>) -> (Option<i64>, Option<i64>) {
    let first = min_opt(min_opt(s.start_ms, s.end_ms), s.last_ms);
    let last = max_opt(max_opt(s.start_ms, s.end_ms), s.last_ms);
    (first, last)
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

#[derive(Default)]
struct Acc {
    attempts: u64,
    success: u64,
    failure: u64,
    abandoned: u64,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
}

impl Acc {
    fn add(&mut self, s: &SessionView<'_>, span: (Option<i64>, Option<i64>)) {
        self.attempts += 1;
        match s.outcome {
            Outcome::Success => self.success += 1,
            Outcome::Failure => self.failure += 1,
            Outcome::Abandoned => self.abandoned += 1,
        }
        self.first_seen = min_opt(self.first_seen, span.0);
        self.last_seen = max_opt(self.last_seen, span.1);
    }

    fn into_row(self, key: Option<&str>) -> Row {
        Row {
            key: key.map(str::to_owned),
            attempts: self.attempts,
            success: self.success,
            failure: self.failure,
            abandoned: self.abandoned,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
        }
    }
}

/// Attempts descending, then key ascending (`None` first).
fn order(a: &Row, b: &Row) -> std::cmp::Ordering {
    b.attempts.cmp(&a.attempts).then_with(|| a.key.cmp(&b.key))
}

/// A name that is absent (`None`) in an [`Interner`] index.
pub(crate) const NO_NAME: u32 = u32::MAX;

/// One copy of each distinct name (user, client, database, server), by
/// index: a run has few names and many sessions.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    index: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The index of `name`, [`NO_NAME`] for `None`.
    pub(crate) fn intern(&mut self, name: Option<&str>) -> u32 {
        let Some(name) = name else {
            return NO_NAME;
        };
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        // More than u32::MAX - 1 distinct names cannot be held anyway.
        let i = u32::try_from(self.names.len()).unwrap_or(NO_NAME - 1);
        self.names.push(name.into());
        self.index.insert(name.into(), i);
        i
    }

    /// The name of index `i`, `None` for [`NO_NAME`].
    pub(crate) fn name(&self, i: u32) -> Option<&str> {
        self.names.get(i as usize).map(|n| &**n)
    }
}

/// The statistics of a run, added up one session at a time in any order:
/// its memory grows with the distinct names (users, clients, databases,
/// servers, (user, client) pairs) and the minutes with failures, never with
/// the number of sessions. [`Tally::finish`] gives exactly what
/// [`summarize`] gives for the same sessions.
#[derive(Default)]
pub struct Tally {
    names: Interner,
    totals: Totals,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    per_minute: MinuteCounts,
    failures_without_time: u64,
    by_client: HashMap<u32, Acc>,
    by_failure_class: HashMap<Option<&'static str>, Acc>,
    by_server: HashMap<u32, Acc>,
    by_database: HashMap<u32, Acc>,
    /// Users, with the attempts per known client of each.
    by_user: HashMap<u32, (Acc, HashMap<u32, u64>)>,
}

impl Tally {
    /// Counts one session.
    pub fn add(&mut self, s: &SessionView<'_>) {
        let totals = &mut self.totals;
        totals.attempts += 1;
        match s.outcome {
            Outcome::Success => totals.success += 1,
            Outcome::Failure => totals.failure += 1,
            Outcome::Abandoned => totals.abandoned += 1,
        }
        if s.suspect {
            totals.suspect += 1;
        }
        let span = span(s);
        if span.0.is_none() {
            totals.without_time += 1;
        }
        self.first_seen = min_opt(self.first_seen, span.0);
        self.last_seen = max_opt(self.last_seen, span.1);
        if s.outcome == Outcome::Failure {
            match session_time(s) {
                Some(t) => self.per_minute.add(minute_start(t)),
                None => self.failures_without_time += 1,
            }
            self.by_failure_class
                .entry(s.failure_class.map(|c| c.as_str()))
                .or_default()
                .add(s, span);
        }
        let client = self.names.intern(s.client_addr);
        let server = self.names.intern(Some(s.server));
        let database = self.names.intern(s.database);
        let user = self.names.intern(s.user);
        self.by_client.entry(client).or_default().add(s, span);
        self.by_server.entry(server).or_default().add(s, span);
        self.by_database.entry(database).or_default().add(s, span);
        let (acc, clients) = self.by_user.entry(user).or_default();
        acc.add(s, span);
        if client != NO_NAME {
            *clients.entry(client).or_default() += 1;
        }
    }

    /// The statistics of every session added.
    pub fn finish(self) -> Summary {
        let names = &self.names;
        let rows = |map: HashMap<u32, Acc>| -> Vec<Row> {
            let mut rows: Vec<Row> = map
                .into_iter()
                .map(|(k, acc)| acc.into_row(names.name(k)))
                .collect();
            rows.sort_by(order);
            rows
        };
        let by_client = rows(self.by_client);
        let by_server = rows(self.by_server);
        let by_database = rows(self.by_database);
        let mut by_failure_class: Vec<Row> = self
            .by_failure_class
            .into_iter()
            .map(|(k, acc)| acc.into_row(k))
            .collect();
        by_failure_class.sort_by(order);

        let mut by_user: Vec<UserRow> = self
            .by_user
            .into_iter()
            .map(|(user, (acc, clients))| {
                let mut clients: Vec<(&str, u64)> = clients
                    .into_iter()
                    .filter_map(|(c, n)| Some((names.name(c)?, n)))
                    .collect();
                clients.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                UserRow {
                    row: acc.into_row(names.name(user)),
                    distinct_clients: clients.len(),
                    clients: clients.into_iter().map(|(c, _)| c.to_owned()).collect(),
                }
            })
            .collect();
        by_user.sort_by(|a, b| order(&a.row, &b.row));

        let failures_per_minute = self.per_minute.into_sorted();
        // Earliest minute among the highest counts.
        let peak_minute = failures_per_minute
            .iter()
            .copied()
            .reduce(|best, m| if m.failures > best.failures { m } else { best });

        Summary {
            totals: self.totals,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            by_user,
            by_client,
            by_failure_class,
            by_server,
            by_database,
            failures_per_minute,
            peak_minute,
            failures_without_time: self.failures_without_time,
        }
    }
}

/// Failures per minute, for a series that can span years: 16 bytes a
/// minute with failures, in a vector sorted by minute (what the summary
/// hands out, so nothing is copied at the end), plus the minutes not in it
/// yet in a small map, merged in once they are an eighth of it. Logs come
/// mostly in time order, so a failure's minute is usually the vector's
/// last or a recent one. (A hash map of every minute took half as much
/// again, 4.5 against 3.1 MB for the 4 GB benchmark log's four months, and
/// a sorted copy of it was made at the end.)
#[derive(Default)]
struct MinuteCounts {
    /// Sorted by minute, each minute once.
    sorted: Vec<(i64, u64)>,
    /// Minutes not in `sorted`.
    recent: HashMap<i64, u64>,
}

impl MinuteCounts {
    /// Minutes `recent` holds at least before it is merged.
    const MIN_RECENT: usize = 1024;

    /// Counts one failure in the minute starting at `minute_ms`.
    fn add(&mut self, minute_ms: i64) {
        if let Some(last) = self.sorted.last_mut()
            && last.0 == minute_ms
        {
            last.1 += 1;
            return;
        }
        if let Some(count) = self.recent.get_mut(&minute_ms) {
            *count += 1;
            return;
        }
        if let Ok(i) = self.sorted.binary_search_by_key(&minute_ms, |&(m, _)| m) {
            self.sorted[i].1 += 1;
            return;
        }
        self.recent.insert(minute_ms, 1);
        if self.recent.len() >= Self::MIN_RECENT.max(self.sorted.len() / 8) {
            self.merge();
        }
    }

    /// Moves `recent` into `sorted`, merging from the back in place (the
    /// two hold different minutes).
    fn merge(&mut self) {
        let mut recent: Vec<(i64, u64)> = self.recent.drain().collect();
        recent.sort_unstable_by_key(|&(m, _)| m);
        let old = self.sorted.len();
        self.sorted.reserve_exact(recent.len());
        self.sorted.resize(old + recent.len(), (0, 0));
        let (mut i, mut k) = (old, self.sorted.len());
        while let Some(&next) = recent.last() {
            k -= 1;
            if i > 0 && self.sorted[i - 1].0 > next.0 {
                i -= 1;
                self.sorted[k] = self.sorted[i];
            } else {
                self.sorted[k] = next;
                recent.pop();
            }
        }
    }

    /// Every minute with failures, in order.
    fn into_sorted(mut self) -> Vec<MinuteCount> {
        self.merge();
        // Same size and alignment: collected in place.
        self.sorted
            .into_iter()
            .map(|(minute_ms, failures)| MinuteCount {
                minute_ms,
                failures,
            })
            .collect()
    }
}

/// Computes the statistics of `sessions` (already filtered), in any order:
/// a [`Tally`] of them.
pub fn summarize(sessions: &[SessionFacts]) -> Summary {
    let mut tally = Tally::default();
    for s in sessions {
        tally.add(&SessionView::of_facts(s));
    }
    tally.finish()
}

/// The start of the UTC minute containing `ms`.
pub fn minute_start(ms: i64) -> i64 {
    ms.checked_sub(ms.rem_euclid(60_000)).unwrap_or(i64::MIN)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use foldhash::HashMapExt;

    use super::*;
    use crate::event::{Event, EventKind, FailureClass, Name, Provenance};
    use crate::session::stitch;

    /// Builds the events of one connection attempt.
    pub struct Attempt {
        pub server: &'static str,
        pub pid: u32,
        pub t: i64,
        pub user: Option<String>,
        pub database: Option<String>,
        pub client: Option<String>,
        pub outcome: Outcome,
        pub class: Option<FailureClass>,
    }

    pub fn attempt(pid: u32, t: i64, user: &str, client: &str, outcome: Outcome) -> Attempt {
        Attempt {
            server: "db1",
            pid,
            t,
            user: Some(user.to_owned()),
            database: Some("app".to_owned()),
            client: Some(client.to_owned()),
            outcome,
            class: match outcome {
                Outcome::Failure => Some(FailureClass::Password),
                _ => None,
            },
        }
    }

    impl Attempt {
        pub fn class(mut self, class: FailureClass) -> Self {
            self.class = Some(class);
            self
        }

        pub fn server(mut self, server: &'static str) -> Self {
            self.server = server;
            self
        }

        pub fn no_client(mut self) -> Self {
            self.client = None;
            self
        }

        pub fn no_user(mut self) -> Self {
            self.user = None;
            self.database = None;
            self
        }

        pub fn events(&self) -> Vec<Event> {
            let server = Name::new(self.server);
            let input = Name::from(format!("{}.log", self.server));
            let mut line = u64::from(self.pid) * 10;
            let mut ev = |kind: EventKind, dt: i64| {
                let mut e = Event::new(kind, server);
                e.time_ms = Some(self.t + dt);
                e.pid = Some(self.pid);
                line += 1;
                e.source = Some(Provenance {
                    input,
                    line,
                    event_id: None,
                });
                e
            };
            let mut out = Vec::new();
            let mut received = ev(EventKind::Received, 0);
            received.client_addr = self.client.as_deref().map(crate::event::Text::from);
            out.push(received);
            match self.outcome {
                Outcome::Success => {
                    let mut a = ev(EventKind::Authorized, 5);
                    a.user = self.user.as_deref().map(crate::event::Text::from);
                    a.database = self.database.as_deref().map(crate::event::Text::from);
                    a.client_addr = self.client.as_deref().map(crate::event::Text::from);
                    out.push(a);
                    let mut d = ev(EventKind::Disconnected, 1000);
                    d.user = self.user.as_deref().map(crate::event::Text::from);
                    d.database = self.database.as_deref().map(crate::event::Text::from);
                    d.session_duration_ms = Some(1000);
                    out.push(d);
                }
                Outcome::Failure => {
                    let mut f = ev(EventKind::AuthFailed, 5);
                    f.user = self.user.as_deref().map(crate::event::Text::from);
                    f.database = self.database.as_deref().map(crate::event::Text::from);
                    f.client_addr = self.client.as_deref().map(crate::event::Text::from);
                    f.failure_class = self.class;
                    f.message = "authentication failed".to_owned();
                    out.push(f);
                }
                Outcome::Abandoned => {
                    let mut p = ev(EventKind::Protocol, 5);
                    p.user = self.user.as_deref().map(crate::event::Text::from);
                    out.push(p);
                }
            }
            out
        }
    }

    pub fn sessions(attempts: &[Attempt]) -> Vec<SessionFacts> {
        SessionFacts::of_all(stitch(attempts.iter().flat_map(Attempt::events).collect()))
    }

    const T0: i64 = 1_764_341_820_000; // 2025-11-28T14:57:00Z, a minute start

    fn row<'a>(rows: &'a [Row], key: Option<&str>) -> &'a Row {
        rows.iter().find(|r| r.key.as_deref() == key).unwrap()
    }

    #[test]
    fn exact_totals_and_breakdowns() {
        let s = sessions(&[
            attempt(1, T0, "alice", "10.0.0.1", Outcome::Success),
            attempt(2, T0 + 10, "alice", "10.0.0.1", Outcome::Failure),
            attempt(3, T0 + 20, "bob", "10.0.0.2", Outcome::Failure).class(FailureClass::Pam),
            attempt(4, T0 + 30, "bob", "[local]", Outcome::Success).server("db2"),
            attempt(5, T0 + 40, "x", "10.0.0.9", Outcome::Abandoned).no_user(),
            attempt(6, T0 + 50, "carol", "x", Outcome::Failure)
                .no_client()
                .class(FailureClass::TooManyClients),
        ]);
        assert_eq!(s.len(), 6);
        let sum = summarize(&s);
        assert_eq!(
            sum.totals,
            Totals {
                attempts: 6,
                success: 2,
                failure: 3,
                abandoned: 1,
                suspect: 0,
                without_time: 0,
            }
        );
        assert_eq!(sum.first_seen, Some(T0));
        assert_eq!(sum.last_seen, Some(T0 + 30 + 1000));

        let users: Vec<_> = sum.by_user.iter().map(|u| u.row.key.as_deref()).collect();
        assert_eq!(
            users,
            [Some("alice"), Some("bob"), None, Some("carol")],
            "attempts desc, then key asc with unknown first"
        );
        let alice = &sum.by_user[0].row;
        assert_eq!(
            (
                alice.attempts,
                alice.success,
                alice.failure,
                alice.abandoned
            ),
            (2, 1, 1, 0)
        );
        assert_eq!(alice.first_seen, Some(T0));
        assert_eq!(alice.last_seen, Some(T0 + 1000));

        let client = row(&sum.by_client, Some("[local]"));
        assert_eq!((client.attempts, client.success), (1, 1));
        assert_eq!(row(&sum.by_client, None).failure, 1);

        let classes: Vec<_> = sum
            .by_failure_class
            .iter()
            .map(|r| (r.key.as_deref(), r.attempts, r.failure))
            .collect();
        assert_eq!(
            classes,
            [
                (Some("pam"), 1, 1),
                (Some("password"), 1, 1),
                (Some("too_many_clients"), 1, 1)
            ]
        );
        let servers: Vec<_> = sum
            .by_server
            .iter()
            .map(|r| (r.key.as_deref(), r.attempts))
            .collect();
        assert_eq!(servers, [(Some("db1"), 5), (Some("db2"), 1)]);
        assert_eq!(row(&sum.by_database, Some("app")).attempts, 5);
        assert_eq!(row(&sum.by_database, None).abandoned, 1);
        // Every breakdown adds up to the totals.
        for rows in [&sum.by_client, &sum.by_server, &sum.by_database] {
            assert_eq!(rows.iter().map(|r| r.attempts).sum::<u64>(), 6);
        }
        assert_eq!(sum.by_user.iter().map(|r| r.row.attempts).sum::<u64>(), 6);
        assert_eq!(
            sum.by_failure_class.iter().map(|r| r.attempts).sum::<u64>(),
            3
        );
    }

    #[test]
    fn abandoned_counted_per_client() {
        let s = sessions(&[
            attempt(1, T0, "a", "10.0.0.1", Outcome::Abandoned),
            attempt(2, T0 + 1, "a", "10.0.0.1", Outcome::Abandoned),
            attempt(3, T0 + 2, "a", "10.0.0.1", Outcome::Success),
            attempt(4, T0 + 3, "a", "10.0.0.2", Outcome::Abandoned).no_user(),
        ]);
        let sum = summarize(&s);
        assert_eq!(sum.totals.abandoned, 3);
        let c1 = row(&sum.by_client, Some("10.0.0.1"));
        assert_eq!((c1.attempts, c1.abandoned, c1.success), (3, 2, 1));
        assert_eq!(row(&sum.by_client, Some("10.0.0.2")).abandoned, 1);
    }

    #[test]
    fn distinct_clients_per_user() {
        let s = sessions(&[
            attempt(1, T0, "alice", "10.0.0.1", Outcome::Success),
            attempt(2, T0 + 1, "alice", "10.0.0.2", Outcome::Failure),
            attempt(3, T0 + 2, "alice", "10.0.0.2", Outcome::Success),
            attempt(4, T0 + 3, "alice", "10.0.0.3", Outcome::Success),
            attempt(5, T0 + 4, "alice", "10.0.0.2", Outcome::Success),
            attempt(6, T0 + 5, "alice", "x", Outcome::Success).no_client(),
            attempt(7, T0 + 6, "bob", "10.0.0.1", Outcome::Success),
        ]);
        let sum = summarize(&s);
        let alice = &sum.by_user[0];
        assert_eq!(alice.row.key.as_deref(), Some("alice"));
        assert_eq!(alice.row.attempts, 6);
        assert_eq!(alice.distinct_clients, 3);
        assert_eq!(alice.clients, ["10.0.0.2", "10.0.0.1", "10.0.0.3"]);
        assert_eq!(sum.by_user[1].distinct_clients, 1);
    }

    #[test]
    fn minute_counts_equal_a_map_in_any_order() {
        let mut rng = Rng(11);
        for round in 0..20 {
            let mut counts = MinuteCounts::default();
            let mut want = std::collections::BTreeMap::new();
            // Runs of failures moving forward in time (a server's log),
            // restarting from other points (the next server, an older file).
            let n = 1 + rng.below(20_000) as usize * (round % 3);
            let mut minute = 0i64;
            for _ in 0..n {
                match rng.below(100) {
                    0 => minute = rng.below(50_000) as i64 - 5_000,
                    1..=40 => minute += rng.below(3) as i64,
                    _ => {}
                }
                let ms = minute * 60_000;
                counts.add(ms);
                *want.entry(ms).or_insert(0u64) += 1;
            }
            let got: Vec<(i64, u64)> = counts
                .into_sorted()
                .into_iter()
                .map(|m| (m.minute_ms, m.failures))
                .collect();
            assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "round {round}");
        }
    }

    #[test]
    fn failures_per_minute_sparse_with_peak() {
        let mut a = vec![
            attempt(1, T0 + 1_000, "a", "c", Outcome::Failure),
            attempt(2, T0 + 59_000, "a", "c", Outcome::Failure),
            attempt(3, T0 + 60_000, "a", "c", Outcome::Success),
        ];
        for i in 0..3 {
            a.push(attempt(
                10 + i,
                T0 + 180_000 + i as i64,
                "b",
                "c",
                Outcome::Failure,
            ));
        }
        // A tie with the earlier peak must not move it.
        for i in 0..3 {
            a.push(attempt(
                20 + i,
                T0 + 300_000 + i as i64,
                "b",
                "c",
                Outcome::Failure,
            ));
        }
        let sum = summarize(&sessions(&a));
        let series: Vec<_> = sum
            .failures_per_minute
            .iter()
            .map(|m| (m.minute_ms - T0, m.failures))
            .collect();
        assert_eq!(series, [(0, 2), (180_000, 3), (300_000, 3)]);
        assert_eq!(
            sum.peak_minute,
            Some(MinuteCount {
                minute_ms: T0 + 180_000,
                failures: 3
            })
        );
        assert_eq!(sum.failures_without_time, 0);
        assert_eq!(
            sum.failures_per_minute
                .iter()
                .map(|m| m.failures)
                .sum::<u64>(),
            sum.totals.failure
        );
    }

    #[test]
    fn untimed_sessions_are_counted() {
        let mut e = Event::new(EventKind::AuthFailed, crate::name::Name::new("db1"));
        e.pid = Some(7);
        e.user = Some("u".into());
        e.failure_class = Some(FailureClass::Password);
        let s = SessionFacts::of_all(stitch(vec![e]));
        let sum = summarize(&s);
        assert_eq!(sum.totals.failure, 1);
        assert_eq!(sum.totals.without_time, 1);
        assert_eq!(sum.failures_without_time, 1);
        assert!(sum.failures_per_minute.is_empty());
        assert_eq!(sum.peak_minute, None);
        assert_eq!(sum.first_seen, None);
    }

    #[test]
    fn empty_input() {
        let sum = summarize(&[]);
        assert_eq!(sum, Summary::default());
    }

    /// A small deterministic generator (tests only).
    pub struct Rng(pub u64);

    impl Rng {
        pub fn below(&mut self, n: u64) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n.max(1)
        }

        pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }

        pub fn shuffle<T>(&mut self, items: &mut [T]) {
            for i in (1..items.len()).rev() {
                let j = self.below(i as u64 + 1) as usize;
                items.swap(i, j);
            }
        }
    }

    /// Random facts over few names and a few hours, with the awkward cases:
    /// missing times, users, clients; shared times and session ids; IAM
    /// attributions of every kind.
    pub fn random_facts(rng: &mut Rng, n: usize) -> Vec<SessionFacts> {
        use crate::cloud::{IamCandidate, MatchKind};
        let users = ["alice", "bob", "carol", "dave", "erin", "frank", "postgres"];
        let clients = [
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.3",
            "192.0.2.9",
            "[local]",
            "h",
        ];
        let classes = [
            FailureClass::Password,
            FailureClass::Pam,
            FailureClass::RoleMissing,
            FailureClass::NoHbaEntry,
            FailureClass::TooManyClients,
        ];
        let time = |rng: &mut Rng| -> Option<i64> {
            (rng.below(20) != 0).then(|| T0 + (rng.below(4 * 3600) as i64) * 1000)
        };
        (0..n)
            .map(|i| {
                let outcome = match rng.below(3) {
                    0 => Outcome::Success,
                    1 => Outcome::Failure,
                    _ => Outcome::Abandoned,
                };
                let start_ms = time(rng);
                let end_ms = match rng.below(3) {
                    0 => None,
                    1 => start_ms,
                    _ => start_ms.map(|t| t + rng.below(600_000) as i64),
                };
                let pid = rng.below(50) as u32;
                // Some ids repeat, so ties reach the last keys.
                let session_id = match rng.below(10) {
                    0 => format!("dup/{}", rng.below(3)),
                    _ => format!("s/{i}"),
                };
                let iam = match rng.below(4) {
                    0 => {
                        let kind = MatchKind::ALL[rng.below(5) as usize];
                        Some(Box::new(IamAttribution {
                            kind,
                            best: (rng.below(3) != 0).then(|| IamCandidate {
                                principal_arn: format!(
                                    "arn:aws:sts::1:assumed-role/r/{}",
                                    rng.below(3)
                                ),
                                ..IamCandidate::default()
                            }),
                            candidate_count: 0,
                            candidates: Vec::new(),
                            reason: None,
                            policy_principals: [None, Some(0), Some(2)][rng.below(3) as usize],
                            address_known: [None, Some(false), Some(true)][rng.below(3) as usize],
                            foreign_account: (rng.below(2) == 0)
                                .then(|| format!("{}", 100 + rng.below(2))),
                        }))
                    }
                    _ => None,
                };
                SessionFacts {
                    session_id: session_id.into(),
                    server: Name::new(["db1", "db2"][rng.below(2) as usize]),
                    pid,
                    start_ms,
                    end_ms,
                    last_ms: end_ms.or(start_ms).map(|t| t + rng.below(3) as i64),
                    outcome,
                    failure_class: (outcome == Outcome::Failure && rng.below(10) != 0)
                        .then(|| classes[rng.below(classes.len() as u64) as usize]),
                    user: (rng.below(8) != 0).then(|| Arc::from(rng.pick(&users))),
                    database: (rng.below(5) != 0)
                        .then(|| Arc::from(["app", "db"][rng.below(2) as usize])),
                    client_addr: (rng.below(8) != 0).then(|| Arc::from(rng.pick(&clients))),
                    suspect: rng.below(30) == 0,
                    iam,
                }
            })
            .collect()
    }

    /// `summarize` as it was before the [`Tally`]: a batch over sorted facts.
    fn batch_summarize(sessions: &[SessionFacts]) -> Summary {
        fn breakdown<'s>(
            sessions: &'s [SessionFacts],
            key: impl Fn(&'s SessionFacts) -> Option<Option<&'s str>>,
        ) -> Vec<Row> {
            let mut map: HashMap<Option<&str>, Acc> = HashMap::new();
            for s in sessions {
                if let Some(k) = key(s) {
                    let v = SessionView::of_facts(s);
                    map.entry(k).or_default().add(&v, span(&v));
                }
            }
            let mut rows: Vec<Row> = map.into_iter().map(|(k, acc)| acc.into_row(k)).collect();
            rows.sort_by(order);
            rows
        }
        let mut totals = Totals::default();
        let mut first_seen = None;
        let mut last_seen = None;
        let mut per_minute: HashMap<i64, u64> = HashMap::new();
        let mut failures_without_time = 0;
        for s in sessions {
            let v = SessionView::of_facts(s);
            totals.attempts += 1;
            match s.outcome {
                Outcome::Success => totals.success += 1,
                Outcome::Failure => totals.failure += 1,
                Outcome::Abandoned => totals.abandoned += 1,
            }
            if s.suspect {
                totals.suspect += 1;
            }
            let (first, last) = span(&v);
            if first.is_none() {
                totals.without_time += 1;
            }
            first_seen = min_opt(first_seen, first);
            last_seen = max_opt(last_seen, last);
            if s.outcome == Outcome::Failure {
                match session_time(&v) {
                    Some(t) => *per_minute.entry(minute_start(t)).or_default() += 1,
                    None => failures_without_time += 1,
                }
            }
        }
        let by_client = breakdown(sessions, |s| Some(s.client_addr.as_deref()));
        let by_failure_class = breakdown(sessions, |s| {
            (s.outcome == Outcome::Failure).then(|| s.failure_class.map(|c| c.as_str()))
        });
        let by_server = breakdown(sessions, |s| Some(Some(&*s.server)));
        let by_database = breakdown(sessions, |s| Some(s.database.as_deref()));
        let mut users: HashMap<Option<&str>, (Acc, HashMap<&str, u64>)> = HashMap::new();
        for s in sessions {
            let v = SessionView::of_facts(s);
            let (acc, clients) = users.entry(s.user.as_deref()).or_default();
            acc.add(&v, span(&v));
            if let Some(client) = s.client_addr.as_deref() {
                *clients.entry(client).or_default() += 1;
            }
        }
        let mut by_user: Vec<UserRow> = users
            .into_iter()
            .map(|(user, (acc, clients))| {
                let mut clients: Vec<(&str, u64)> = clients.into_iter().collect();
                clients.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                UserRow {
                    row: acc.into_row(user),
                    distinct_clients: clients.len(),
                    clients: clients.into_iter().map(|(c, _)| c.to_owned()).collect(),
                }
            })
            .collect();
        by_user.sort_by(|a, b| order(&a.row, &b.row));
        let mut failures_per_minute: Vec<MinuteCount> = per_minute
            .into_iter()
            .map(|(minute_ms, failures)| MinuteCount {
                minute_ms,
                failures,
            })
            .collect();
        failures_per_minute.sort_by_key(|m| m.minute_ms);
        let peak_minute = failures_per_minute
            .iter()
            .copied()
            .reduce(|best, m| if m.failures > best.failures { m } else { best });
        Summary {
            totals,
            first_seen,
            last_seen,
            by_user,
            by_client,
            by_failure_class,
            by_server,
            by_database,
            failures_per_minute,
            peak_minute,
            failures_without_time,
        }
    }

    #[test]
    fn tally_in_any_order_equals_the_batch() {
        let mut rng = Rng(7);
        for round in 0..30 {
            let n = [0, 1, 2, 10, 100, 400][round % 6];
            let mut facts = random_facts(&mut rng, n);
            sort_facts(&mut facts);
            let batch = batch_summarize(&facts);
            for _ in 0..3 {
                rng.shuffle(&mut facts);
                assert_eq!(summarize(&facts), batch, "round {round}");
            }
        }
    }

    #[test]
    fn minute_start_handles_extremes() {
        assert_eq!(minute_start(-1), -60_000);
        let _ = minute_start(i64::MIN);
        let _ = minute_start(i64::MAX);
    }
}
