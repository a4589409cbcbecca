//! Connection statistics over sessions: exact counts of attempts, successes,
//! failures and abandoned attempts, overall and per user, client, failure
//! class, server and database, with the failures per minute.
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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::cloud::IamAttribution;
use crate::event::FailureClass;
use crate::session::{Outcome, Session};

/// What summaries and findings read of a session. `summary` holds every
/// session of a run, so this keeps only that (no evidence, messages or TLS
/// details) and shares repeated names ([`Names`]): about a third of the
/// memory of a [`Session`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    pub session_id: Box<str>,
    pub server: Arc<str>,
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

/// The time that places a session: a failure at its refusal, anything else
/// at its start.
pub fn session_time(s: &SessionFacts) -> Option<i64> {
    match s.outcome {
        Outcome::Failure => s.end_ms.or(s.start_ms),
        Outcome::Success | Outcome::Abandoned => s.start_ms.or(s.end_ms),
    }
}

/// The first and last moments a session was seen: its start, and the latest
/// of its end and its last record.
fn span(s: &SessionFacts) -> (Option<i64>, Option<i64>) {
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
    fn add(&mut self, s: &SessionFacts) {
        self.attempts += 1;
        match s.outcome {
            Outcome::Success => self.success += 1,
            Outcome::Failure => self.failure += 1,
            Outcome::Abandoned => self.abandoned += 1,
        }
        let (first, last) = span(s);
        self.first_seen = min_opt(self.first_seen, first);
        self.last_seen = max_opt(self.last_seen, last);
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

fn breakdown<'s>(
    sessions: &'s [SessionFacts],
    key: impl Fn(&'s SessionFacts) -> Option<Option<&'s str>>,
) -> Vec<Row> {
    let mut map: HashMap<Option<&str>, Acc> = HashMap::new();
    for s in sessions {
        if let Some(k) = key(s) {
            map.entry(k).or_default().add(s);
        }
    }
    let mut rows: Vec<Row> = map.into_iter().map(|(k, acc)| acc.into_row(k)).collect();
    rows.sort_by(order);
    rows
}

/// Computes the statistics of `sessions` (already filtered).
pub fn summarize(sessions: &[SessionFacts]) -> Summary {
    let mut totals = Totals::default();
    let mut first_seen = None;
    let mut last_seen = None;
    let mut per_minute: HashMap<i64, u64> = HashMap::new();
    let mut failures_without_time = 0;
    for s in sessions {
        totals.attempts += 1;
        match s.outcome {
            Outcome::Success => totals.success += 1,
            Outcome::Failure => totals.failure += 1,
            Outcome::Abandoned => totals.abandoned += 1,
        }
        if s.suspect {
            totals.suspect += 1;
        }
        let (first, last) = span(s);
        if first.is_none() {
            totals.without_time += 1;
        }
        first_seen = min_opt(first_seen, first);
        last_seen = max_opt(last_seen, last);
        if s.outcome == Outcome::Failure {
            match session_time(s) {
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

    // Users, with the attempts per client of each.
    let mut users: HashMap<Option<&str>, (Acc, HashMap<&str, u64>)> = HashMap::new();
    for s in sessions {
        let (acc, clients) = users.entry(s.user.as_deref()).or_default();
        acc.add(s);
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
    // Earliest minute among the highest counts.
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

/// The start of the UTC minute containing `ms`.
pub fn minute_start(ms: i64) -> i64 {
    ms.checked_sub(ms.rem_euclid(60_000)).unwrap_or(i64::MIN)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{Event, EventKind, FailureClass, Provenance};
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
            let server: Arc<str> = Arc::from(self.server);
            let input: Arc<str> = Arc::from(format!("{}.log", self.server));
            let mut line = u64::from(self.pid) * 10;
            let mut ev = |kind: EventKind, dt: i64| {
                let mut e = Event::new(kind, server.clone());
                e.time_ms = Some(self.t + dt);
                e.pid = Some(self.pid);
                line += 1;
                e.source = Some(Provenance {
                    input: input.clone(),
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
        let mut e = Event::new(EventKind::AuthFailed, Arc::from("db1"));
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

    #[test]
    fn minute_start_handles_extremes() {
        assert_eq!(minute_start(-1), -60_000);
        let _ = minute_start(i64::MIN);
        let _ = minute_start(i64::MAX);
    }
}
