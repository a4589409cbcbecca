//! Findings: patterns in the sessions a responder should look at, each with
//! its evidence (the session ids) and a configurable threshold.
//!
//! | kind | fires when (defaults) | subject |
//! |---|---|---|
//! | `brute_force_user` | ≥ 10 credential failures for one user within 5 minutes | user |
//! | `brute_force_client` | ≥ 10 credential failures from one client within 5 minutes | client |
//! | `password_spraying` | one client has credential failures for ≥ 5 distinct users within 10 minutes | client |
//! | `repeated_iam_failures` | ≥ 3 `pam` failures (RDS IAM) for one user within 15 minutes | user |
//! | `new_client_for_user` | a successful login for a user from a client that user had not logged in from earlier in the input, at least 1 hour after the user's first successful login in the input, while the user had logged in from 1 to 3 other clients | user |
//! | `iam_login_no_policy` | IAM correlation on: an IAM (PAM) login as a database user that no principal of the authorization details may `rds-db:connect` as | user |
//! | `iam_cross_account_login` | IAM correlation on: a login attributed (`exact`/`probable`) to a principal whose chain involves another account than the database's | principal ARN |
//! | `iam_unknown_address` | IAM correlation on: an IAM login from an address neither the EC2 inventory nor CloudTrail knows | client |
//!
//! **Credential failures** are failures of class `password`, `role_missing`,
//! `no_password`, `password_expired`, `invalid_secret`, `empty_password`,
//! `pam`, `ldap`, `radius`, `cert`, `gss`, `sspi`, `ident`, `peer`, `oauth`.
//! Refusals that say nothing about credentials (`no_hba_entry`,
//! `hba_reject`, `database_missing`, `login_not_permitted`,
//! `connect_privilege`, the connection limits, `server_not_ready`,
//! `auth_timeout`, `ssl`, `protocol`, `other`) and abandoned attempts never
//! count.
//!
//! **Windows** are sliding and inclusive: a set of failures qualifies when
//! the last is at most the window after the first. Overlapping qualifying
//! windows (sharing at least one failure) are merged, so a burst is
//! reported once, as a whole, however long it lasts: `first_ms`/`last_ms`
//! are its first and last failure, `count` and `sessions` cover every
//! failure of the subject between them. A failure's time is the time of
//! its refusal (`summary::session_time`).
//!
//! **Sessions without any timestamp are skipped** by every finding (their
//! place in time is unknown); so are sessions without the subject (a
//! failure with no user for the per-user findings, with no client address
//! for the per-client ones, with no user for spraying).
//!
//! **Severity**:
//! - `high`: a brute force or spraying burst followed by a successful login
//!   for a (user, client) pair that failed in the burst, at or after the
//!   burst's first failure and at most one window after its last. Those
//!   logins are listed in `successes`. Pairs need a known client address.
//! - `medium`: any other brute force or spraying burst; a new client for a
//!   user when that client had credential failures for that user earlier
//!   in the input (they are part of the evidence).
//! - `low`: repeated IAM/PAM failures (most often an expired token, a role
//!   without `rds_iam` or a policy without `rds-db:connect`); any other new
//!   client for a user.
//! - IAM findings: `iam_login_no_policy` is `high` when such a login
//!   succeeded (the authorization details are stale or incomplete, or the
//!   user is reachable another way), else `medium`;
//!   `iam_cross_account_login` is `medium`; `iam_unknown_address` is `high`
//!   when a login from there succeeded and no candidate fits it, `medium`
//!   for other successes, `low` for failures only.
//!
//! Findings are ordered by severity (high first), first time, kind,
//! subject, last time.
//!
//! Owns the rules above, [`Thresholds`], [`Finding`], and [`Collector`]:
//! what a run keeps for them, gathered one session at a time in any order
//! (compact records of credential failures, of the first login of each
//! (user, client) pair and of IAM logins; successful logins set aside in a
//! temporary file and read back only where a burst can list them). Its
//! parts: `runs` sorts the failures (and the logins read back) in runs on
//! disk past a bound, `stream` finds the bursts in one pass over them,
//! `evidence` keeps each finding's session ids (on disk when the failures
//! are), `spill` owns the temporary files.

mod evidence;
mod runs;
mod spill;
mod stream;

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashMapExt};
use std::fmt;
#[cfg(test)]
use std::hash::Hash;
use std::io;
use std::sync::Arc;
use std::time::Duration;

pub use evidence::Iter as SessionIdIter;
use evidence::{Evidence, Slot, Stored};
use runs::Runs;
use spill::LoginSpill;
use stream::{Burst, Detector, Rule};

use crate::cloud::{IamAttribution, MatchKind};
use crate::event::FailureClass;
use crate::session::Outcome;
use crate::summary::{Interner, NO_NAME, SessionFacts, SessionView, session_time};

/// The thresholds of the findings. A count threshold of 0 disables its
/// finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// `brute_force_user`: at least this many credential failures for one
    /// user (from any clients, on any servers) … (default 10)
    pub brute_force_user_failures: usize,
    /// … within this window (default 5 minutes).
    pub brute_force_user_window: Duration,
    /// `brute_force_client`: at least this many credential failures from one
    /// client address (for any users, on any servers) … (default 10)
    pub brute_force_client_failures: usize,
    /// … within this window (default 5 minutes).
    pub brute_force_client_window: Duration,
    /// `password_spraying`: one client address with credential failures for
    /// at least this many distinct users … (default 5)
    pub spraying_users: usize,
    /// … within this window (default 10 minutes).
    pub spraying_window: Duration,
    /// `repeated_iam_failures`: at least this many `pam` failures (how RDS
    /// IAM authentication fails) for one user … (default 3)
    pub iam_failures: usize,
    /// … within this window (default 15 minutes).
    pub iam_window: Duration,
    /// `new_client_for_user`: flag a successful login from a new client only
    /// while the user had logged in successfully from at least 1 and at
    /// most this many other clients (default 3). The first login of a user
    /// in the input is never flagged; a user seen from more clients than
    /// this roams (pooled or autoscaled clients) and is no longer flagged.
    pub new_client_max_known: usize,
    /// `new_client_for_user`: the learning period. Clients a user logs in
    /// from within this time after the user's first successful login in the
    /// input become known silently; only later new clients are flagged
    /// (default 1 hour). Keeps the start of every input from flagging each
    /// user's usual second and third client.
    pub new_client_baseline: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            brute_force_user_failures: 10,
            brute_force_user_window: Duration::from_secs(5 * 60),
            brute_force_client_failures: 10,
            brute_force_client_window: Duration::from_secs(5 * 60),
            spraying_users: 5,
            spraying_window: Duration::from_secs(10 * 60),
            iam_failures: 3,
            iam_window: Duration::from_secs(15 * 60),
            new_client_max_known: 3,
            new_client_baseline: Duration::from_secs(60 * 60),
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    BruteForceUser,
    BruteForceClient,
    PasswordSpraying,
    RepeatedIamFailures,
    NewClientForUser,
    IamLoginNoPolicy,
    IamCrossAccountLogin,
    IamUnknownAddress,
}

impl FindingKind {
    pub const ALL: [FindingKind; 8] = [
        FindingKind::BruteForceUser,
        FindingKind::BruteForceClient,
        FindingKind::PasswordSpraying,
        FindingKind::RepeatedIamFailures,
        FindingKind::NewClientForUser,
        FindingKind::IamLoginNoPolicy,
        FindingKind::IamCrossAccountLogin,
        FindingKind::IamUnknownAddress,
    ];

    /// The snake_case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::BruteForceUser => "brute_force_user",
            FindingKind::BruteForceClient => "brute_force_client",
            FindingKind::PasswordSpraying => "password_spraying",
            FindingKind::RepeatedIamFailures => "repeated_iam_failures",
            FindingKind::NewClientForUser => "new_client_for_user",
            FindingKind::IamLoginNoPolicy => "iam_login_no_policy",
            FindingKind::IamCrossAccountLogin => "iam_cross_account_login",
            FindingKind::IamUnknownAddress => "iam_unknown_address",
        }
    }

    pub fn from_name(name: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a finding is (rule in the module documentation). Ordered:
/// `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Low, Severity::Medium, Severity::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// The user (`brute_force_user`, `repeated_iam_failures`,
    /// `new_client_for_user`) or client address (`brute_force_client`,
    /// `password_spraying`).
    pub subject: String,
    /// Time of the first session of the evidence, epoch milliseconds.
    pub first_ms: i64,
    /// Time of the last session of the evidence, epoch milliseconds.
    pub last_ms: i64,
    /// Number of sessions in `sessions`: the failures of the burst; for
    /// `new_client_for_user`, the earlier failures from that client plus
    /// the login.
    pub count: usize,
    /// Distinct users among the failures (`brute_force_client`,
    /// `password_spraying`).
    pub distinct_users: Option<usize>,
    /// The session ids of the evidence, in time order (complete).
    pub sessions: SessionIds,
    /// The successful logins that made a burst `high` (session ids, time
    /// order); empty otherwise.
    pub successes: SessionIds,
    /// One readable sentence. Contains client-controlled names as they are:
    /// escape it before printing to a terminal.
    pub summary: String,
}

/// Whether a failure of this class says the client presented wrong or
/// unusable credentials (counted by brute force and spraying).
pub fn is_credential_failure(class: FailureClass) -> bool {
    use FailureClass::*;
    matches!(
        class,
        Password
            | RoleMissing
            | NoPassword
            | PasswordExpired
            | InvalidSecret
            | EmptyPassword
            | Pam
            | Ldap
            | Radius
            | Cert
            | Gss
            | Sspi
            | Ident
            | Peer
            | Oauth
    )
}

fn window_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// [`bursts_of`] over a slice (tests and their reference).
#[cfg(test)]
fn bursts(times: &[i64], min: usize, window: i64) -> Vec<(usize, usize)> {
    bursts_of(times.len(), |i| times[i], min, window)
}

/// Maximal bursts over the `len` time-sorted times `time(0..len)`: index
/// ranges (inclusive) that are unions of overlapping windows of at most
/// `window` ms holding at least `min` items. A two-pointer sweep, O(n).
#[cfg(test)]
fn bursts_of(
    len: usize,
    time: impl Fn(usize) -> i64,
    min: usize,
    window: i64,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if min == 0 {
        return out;
    }
    let mut left = 0;
    let mut current: Option<(usize, usize)> = None;
    for right in 0..len {
        let t = time(right);
        while left < right && t.saturating_sub(time(left)) > window {
            left += 1;
        }
        if right + 1 - left >= min {
            current = merge(&mut out, current, left, right);
        }
    }
    out.extend(current);
    out
}

/// [`distinct_bursts_of`] over a slice (tests and their reference).
#[cfg(test)]
fn distinct_bursts<K: Copy + Eq + Hash>(
    items: &[(i64, K)],
    min: usize,
    window: i64,
) -> Vec<(usize, usize)> {
    distinct_bursts_of(items.len(), |i| items[i], min, window)
}

/// Like [`bursts_of`] over the `len` items `item(0..len)` (time, key), but
/// a window qualifies when its items name at least `min` distinct keys.
#[cfg(test)]
fn distinct_bursts_of<K: Copy + Eq + Hash>(
    len: usize,
    item: impl Fn(usize) -> (i64, K),
    min: usize,
    window: i64,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if min == 0 {
        return out;
    }
    let mut left = 0;
    let mut current: Option<(usize, usize)> = None;
    let mut in_window: HashMap<K, usize> = HashMap::new();
    for right in 0..len {
        let (t, key) = item(right);
        *in_window.entry(key).or_default() += 1;
        while left < right && t.saturating_sub(item(left).0) > window {
            let gone = item(left).1;
            if let Some(n) = in_window.get_mut(&gone) {
                *n -= 1;
                if *n == 0 {
                    in_window.remove(&gone);
                }
            }
            left += 1;
        }
        if in_window.len() >= min {
            current = merge(&mut out, current, left, right);
        }
    }
    out.extend(current);
    out
}

/// Adds the qualifying window `left..=right` to the current burst when they
/// share an item, else closes the current burst and starts a new one.
#[cfg(test)]
fn merge(
    out: &mut Vec<(usize, usize)>,
    current: Option<(usize, usize)>,
    left: usize,
    right: usize,
) -> Option<(usize, usize)> {
    match current {
        Some((start, end)) if left <= end => Some((start, right)),
        Some(done) => {
            out.push(done);
            Some((left, right))
        }
        None => Some((left, right)),
    }
}

/// A readable duration: `850ms`, `45s`, `4m`, `4m 30s`, `2h 5m`.
fn human(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    if s < 60 {
        return format!("{s}s");
    }
    if s < 3600 {
        return match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m {r}s", s / 60),
        };
    }
    match (s % 3600) / 60 {
        0 => format!("{}h", s / 3600),
        m => format!("{}h {m}m", s / 3600),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Session ids kept as text (those [`IdCode`] cannot rebuild), in one
/// string (no allocation per id).
#[derive(Default)]
struct Ids {
    text: String,
    ends: Vec<usize>,
}

impl Ids {
    fn push(&mut self, id: &str) -> u32 {
        self.text.push_str(id);
        self.ends.push(self.text.len());
        u32::try_from(self.ends.len() - 1).unwrap_or(u32::MAX)
    }

    fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// A [`Key`]'s `start` when the session has none. No log time is that far
/// back (a start of exactly this value would read as none).
const NO_START: i64 = i64::MIN;

/// How a kept record's session id is had back. The stitcher names sessions
/// `server/pid/start` (`-` without a start), with `#n` after that when the
/// same (server, pid, start) came `n - 1` times before
/// (`Session::format_id`): such an id is rebuilt from the record's server,
/// pid and start, and only `n` is kept. Any other id is kept as text, in
/// the [`Ids`] of the run: its index, with [`IdCode::TEXT`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdCode(u32);

impl IdCode {
    /// Set on the index of an id kept as text.
    const TEXT: u32 = 1 << 31;
}

/// The `n` of an id that is exactly what `Session::format_id(n)` gives for
/// a session of `server`, `pid` and `start` ([`NO_START`]: none); `None`
/// for any other id, and for an `n` too large for an [`IdCode`].
fn repeat_of(id: &str, server: &str, pid: u32, start: i64) -> Option<u32> {
    let mut numbers = itoa::Buffer::new();
    let rest = id.strip_prefix(server)?.strip_prefix('/')?;
    let rest = rest.strip_prefix(numbers.format(pid))?.strip_prefix('/')?;
    let rest = if start == NO_START {
        rest.strip_prefix('-')?
    } else {
        rest.strip_prefix(numbers.format(start))?
    };
    if rest.is_empty() {
        return Some(1);
    }
    let digits = rest.strip_prefix('#')?;
    let n: u32 = digits.parse().ok()?;
    // `parse` also takes "+5" and "05", which `format_id` never writes.
    (n > 1 && n < IdCode::TEXT && numbers.format(n) == digits).then_some(n)
}

/// Writes the id `Session::format_id(n)` gives for a session of `server`,
/// `pid` and `start` ([`NO_START`]: none).
fn write_rebuilt_id<W: fmt::Write>(
    w: &mut W,
    server: &str,
    pid: u32,
    start: i64,
    n: u32,
) -> fmt::Result {
    let start = (start != NO_START).then_some(start);
    crate::session::write_session_id(w, server, pid, start, n as usize)
}

/// The names a run interned and the session ids it kept as text: what
/// turns a [`Key`] back into its session id.
#[derive(Default)]
struct Lexicon {
    names: Interner,
    text: Ids,
}

impl Lexicon {
    /// The code of `id`, the id of a session of server `server` (an
    /// interned name), `pid` and `start`; kept as text when it has another
    /// form than the rebuilt one.
    fn code(&mut self, id: &str, server: u32, pid: u32, start: i64) -> IdCode {
        let server_name = self.names.name(server).unwrap_or_default();
        match repeat_of(id, server_name, pid, start) {
            Some(n) => IdCode(n),
            // More than 2^31 ids cannot be held anyway.
            None => IdCode(IdCode::TEXT | self.text.push(id).min(IdCode::TEXT - 1)),
        }
    }

    /// Writes the session id of `key`.
    fn write_id<W: fmt::Write>(&self, w: &mut W, key: &Key) -> fmt::Result {
        match self.text_of(key) {
            Some(text) => w.write_str(text),
            None => {
                let server = self.names.name(key.server).unwrap_or_default();
                write_rebuilt_id(w, server, key.pid, key.start, key.id.0)
            }
        }
    }

    /// The session id of `key` when it is kept as text.
    fn text_of(&self, key: &Key) -> Option<&str> {
        let IdCode(code) = key.id;
        (code & IdCode::TEXT != 0).then(|| self.text.get(code & !IdCode::TEXT))
    }
}

/// Puts [`Key`]s in their order, rebuilding ids (in buffers of its own)
/// only to break ties of time.
struct Ranker<'a> {
    lex: &'a Lexicon,
    a: String,
    b: String,
}

impl<'a> Ranker<'a> {
    fn new(lex: &'a Lexicon) -> Self {
        Ranker {
            lex,
            a: String::new(),
            b: String::new(),
        }
    }

    /// The order of `x` and `y`: the order of their [`Ranker::rank`]s.
    fn cmp(&mut self, x: &Key, y: &Key) -> Ordering {
        x.t.cmp(&y.t).then_with(|| {
            self.a.clear();
            self.b.clear();
            // Writing to a `String` cannot fail.
            let _ = self.lex.write_id(&mut self.a, x);
            let _ = self.lex.write_id(&mut self.b, y);
            let names = &self.lex.names;
            self.a
                .cmp(&self.b)
                .then(x.start.cmp(&y.start))
                .then_with(|| names.name(x.server).cmp(&names.name(y.server)))
                .then(x.pid.cmp(&y.pid))
                .then(x.seq.cmp(&y.seq))
        })
    }
}

/// Set on an item of [`SessionIds`] that is an index in [`IdBook::keys`]
/// (else it is one in [`IdBook::fails`]).
const IN_KEYS: u32 = 1 << 31;

/// What the session ids of a run's findings point into: the sorted
/// credential failures, the other records findings list, and the
/// [`Lexicon`] to rebuild their ids with.
#[derive(Default)]
struct IdBook {
    lex: Lexicon,
    fails: Vec<Fail>,
    keys: Vec<Key>,
}

impl IdBook {
    /// The key of item `item` of a [`SessionIds`].
    fn key(&self, item: u32) -> Key {
        if item & IN_KEYS != 0 {
            self.keys[(item & !IN_KEYS) as usize]
        } else {
            self.fails[item as usize].key()
        }
    }

    /// Adds `key`; its item.
    fn push_key(&mut self, key: Key) -> u32 {
        // More than 2^31 keys cannot be held anyway.
        let i = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        self.keys.push(key);
        IN_KEYS | i.min(!IN_KEYS)
    }
}

/// The session ids of a finding: records of one book shared by every
/// finding of a run (bursts of a client and spraying from it list the same
/// failures; a `String` per id would cost more than the rest of a run).
/// Ids are rebuilt as they are read.
///
/// A run whose failures went to disk keeps long lists there too: their ids
/// are read back, in blocks, as they are iterated, and reading can fail.
#[derive(Clone, Default)]
pub struct SessionIds {
    book: Arc<IdBook>,
    /// The ids in the run's temporary file, before those of `items`.
    stored: Option<Stored>,
    items: Vec<u32>,
}

/// One session id of a [`SessionIds`]: `Display` writes it.
#[derive(Clone, Copy)]
pub struct SessionId<'a> {
    book: &'a IdBook,
    key: Key,
}

impl fmt::Display for SessionId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.book.lex.write_id(f, &self.key)
    }
}

impl fmt::Debug for SessionId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl PartialEq<str> for SessionId<'_> {
    fn eq(&self, other: &str) -> bool {
        self.with_str(|id| id == other)
    }
}

impl PartialEq<&str> for SessionId<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.with_str(|id| id == *other)
    }
}

/// A string (rebuilt on the stack: findings can list millions).
impl serde::Serialize for SessionId<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_str(|id| serializer.serialize_str(id))
    }
}

impl SessionId<'_> {
    /// Calls `f` with the id: kept text as it is, a rebuilt id from a
    /// buffer on the stack when it fits there.
    fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let lex = &self.book.lex;
        if let Some(text) = lex.text_of(&self.key) {
            return f(text);
        }
        let mut small = StackText::default();
        match lex.write_id(&mut small, &self.key) {
            Ok(()) => f(small.as_str()),
            Err(_) => f(&self.to_string()),
        }
    }
}

/// Text written into a fixed buffer; writing past its end fails.
struct StackText {
    bytes: [u8; 96],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            bytes: [0; 96],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `str`s were written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl SessionIds {
    /// Ids from a list (tests, library users).
    pub fn from_ids<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> Self {
        let mut book = IdBook::default();
        let items = ids
            .into_iter()
            .map(|id| {
                let text = book.lex.text.push(id.as_ref()).min(IdCode::TEXT - 1);
                book.push_key(Key {
                    t: 0,
                    start: NO_START,
                    seq: 0,
                    server: NO_NAME,
                    pid: 0,
                    id: IdCode(IdCode::TEXT | text),
                })
            })
            .collect();
        SessionIds {
            book: Arc::new(book),
            stored: None,
            items,
        }
    }

    fn of(book: &Arc<IdBook>, items: Vec<u32>) -> Self {
        SessionIds {
            book: Arc::clone(book),
            stored: None,
            items,
        }
    }

    pub fn len(&self) -> usize {
        self.stored.as_ref().map_or(0, Stored::len) + self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first id, if any.
    pub fn first(&self) -> Option<io::Result<SessionId<'_>>> {
        self.iter().next()
    }

    /// The last id, if any (reads every stored id before it).
    pub fn last(&self) -> Option<io::Result<SessionId<'_>>> {
        match self.items.last() {
            Some(&item) => Some(Ok(SessionId {
                book: &self.book,
                key: self.book.key(item),
            })),
            None => self.iter().last(),
        }
    }

    /// The ids, in order. Ids kept in a temporary file are read as they
    /// come; a failed read gives its error and ends the ids.
    pub fn iter(&self) -> SessionIdIter<'_> {
        SessionIdIter::new(self)
    }
}

impl fmt::Debug for SessionIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for id in self.iter() {
            match id {
                Ok(id) => list.entry(&id),
                Err(e) => list.entry(&format_args!("<unreadable: {e}>")),
            };
        }
        list.finish()
    }
}

/// Equal when both give the same ids, all of them read.
impl PartialEq for SessionIds {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().zip(other.iter()).all(|pair| match pair {
                (Ok(a), Ok(b)) => a.with_str(|a| b == a),
                _ => false,
            })
    }
}

impl Eq for SessionIds {}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for SessionIds {
    fn eq(&self, other: &[S; N]) -> bool {
        self.len() == N
            && self
                .iter()
                .zip(other)
                .all(|(a, b)| a.is_ok_and(|a| a == b.as_ref()))
    }
}

/// Where a kept session stands in the order findings read sessions in:
/// by time ([`session_time`]) and session id, ties broken by (start,
/// server, pid) and then by arrival, as sorting every session by (start,
/// server, pid, session id) and then, stably, by (time, session id) did.
/// With its id (see [`IdCode`]).
#[derive(Debug, Clone, Copy)]
struct Key {
    t: i64,
    /// [`NO_START`] for none.
    start: i64,
    /// Arrival order.
    seq: u64,
    /// In the collector's names.
    server: u32,
    pid: u32,
    id: IdCode,
}

/// The part of a [`Key`] that is compared, with its id and server resolved.
type Rank<'a> = (i64, &'a str, Option<i64>, Option<&'a str>, u32, u64);

impl Key {
    /// Bytes of a key in a scratch file ([`Key::encode`]).
    const BYTES: usize = 36;

    fn start(&self) -> Option<i64> {
        (self.start != NO_START).then_some(self.start)
    }

    /// Appends the key as bytes: time, start (i64), arrival (u64), server,
    /// pid, id code (u32); little-endian.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.t.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        for n in [self.server, self.pid, self.id.0] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    /// The key [`Key::encode`] wrote at the start of `b` (at least
    /// [`Key::BYTES`] long).
    fn decode(b: &[u8]) -> Key {
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        Key {
            t: u64_at(0) as i64,
            start: u64_at(8) as i64,
            seq: u64_at(16),
            server: u32_at(b, 24),
            pid: u32_at(b, 28),
            id: IdCode(u32_at(b, 32)),
        }
    }
}

/// The little-endian u32 at `i` of `b`.
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// A timed credential failure with a user or a client address: a [`Key`]
/// with the names findings group by, laid out flat (48 bytes: a run can
/// keep millions).
#[derive(Debug, Clone, Copy)]
struct Fail {
    t: i64,
    start: i64,
    seq: u64,
    server: u32,
    pid: u32,
    id: IdCode,
    user: u32,
    client: u32,
    pam: bool,
}

impl Fail {
    fn new(k: Key, user: u32, client: u32, pam: bool) -> Fail {
        Fail {
            t: k.t,
            start: k.start,
            seq: k.seq,
            server: k.server,
            pid: k.pid,
            id: k.id,
            user,
            client,
            pam,
        }
    }

    /// A successful login as a record of the sorted runs.
    fn of_login(login: &Login) -> Fail {
        Fail::new(login.key, login.user, login.client, false)
    }

    fn key(&self) -> Key {
        Key {
            t: self.t,
            start: self.start,
            seq: self.seq,
            server: self.server,
            pid: self.pid,
            id: self.id,
        }
    }
}

/// A timed successful login with a user and a client address.
#[derive(Debug, Clone, Copy)]
struct Login {
    key: Key,
    user: u32,
    client: u32,
}

/// The first successful login of a (user, client) pair (by [`Key`]; its
/// `id` is coded by [`Collector::finish`]).
#[derive(Debug)]
struct FirstLogin {
    key: Key,
    id: Box<str>,
}

impl FirstLogin {
    fn rank<'a>(&'a self, names: &'a Interner) -> Rank<'a> {
        let k = &self.key;
        (k.t, &self.id, k.start(), names.name(k.server), k.pid, k.seq)
    }
}

/// What the IAM findings read of a timed session IAM correlation found to
/// be an IAM login, kept only when one of them can list it.
#[derive(Debug)]
struct IamLogin {
    key: Key,
    /// Its item in the [`IdBook`], once [`Collector::finish`] put it there.
    item: u32,
    user: u32,
    client: u32,
    success: bool,
    /// No principal may connect as the user (`iam_login_no_policy`).
    no_policy: bool,
    /// The foreign account and the chosen principal of an `exact` or
    /// `probable` attribution (`iam_cross_account_login`).
    foreign: Option<(Box<str>, Option<Box<str>>)>,
    /// The address is unknown (`iam_unknown_address`).
    unknown_address: bool,
    /// No candidate fits (`MatchKind::None`).
    unmatched: bool,
}

/// How much of what grows with the input a [`Collector`] holds in memory.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Credential failures (48 bytes each) held before they are sorted and
    /// written to a temporary file as a run; `usize::MAX`: never.
    run_len: usize,
    /// Evidence keys (36 bytes each) pending before they are written.
    evidence: usize,
    /// Whether successful logins are set aside in a temporary file.
    spill_logins: bool,
}

impl Limits {
    /// `pgtrail summary`: about 6 MiB of failures and 2.3 MiB of evidence.
    const FILES: Limits = Limits {
        run_len: 1 << 17,
        evidence: 1 << 16,
        spill_logins: true,
    };

    const MEMORY: Limits = Limits {
        run_len: usize::MAX,
        evidence: usize::MAX,
        spill_logins: false,
    };
}

/// What findings need of a run, gathered one session at a time in any
/// order; [`Collector::finish`] gives exactly what [`find`] gives for the
/// same sessions.
///
/// Kept: the timed credential failures with a user or client (48 bytes
/// each: time, names as indexes, the session id rebuilt from them, see
/// `IdCode`), the first successful login of each (user, client) pair,
/// and the IAM logins an IAM finding can list. Successful logins, which a
/// burst lists when they follow it, are written aside (a temporary file)
/// and only those within a window of a burst of their pair are read back.
///
/// With temporary files ([`Collector::new`]), memory does not grow with the
/// failures either: past `Limits::FILES`'s run length they are sorted in
/// runs on disk, [`Collector::finish`] merges the runs in one pass that
/// finds the bursts as it goes (`stream`), and the findings' long lists of
/// session ids are written to a file and read back as they are output
/// (`evidence`). What stays in memory grows with the distinct names and
/// pairs, the failures within one window of time, the number of findings
/// and the IAM logins listed, never with the sessions.
pub struct Collector {
    thresholds: Thresholds,
    /// Names, and the session ids kept as text.
    lex: Lexicon,
    seq: u64,
    /// Whether a finding on lists credential failures (none: they are not
    /// kept at all).
    keeps_fails: bool,
    fails: Runs,
    limits: Limits,
    first_logins: HashMap<(u32, u32), FirstLogin>,
    /// Successful logins for the bursts; `None` when no burst finding is on.
    logins: Option<LoginSpill>,
    iam: Vec<IamLogin>,
}

impl Collector {
    /// A collector that keeps what grows with the input in temporary files
    /// (`pgtrail summary`).
    pub fn new(thresholds: &Thresholds) -> Self {
        Collector::with_limits(thresholds, Limits::FILES)
    }

    /// A collector that keeps everything in memory.
    pub fn in_memory(thresholds: &Thresholds) -> Self {
        Collector::with_limits(thresholds, Limits::MEMORY)
    }

    fn with_limits(t: &Thresholds, limits: Limits) -> Self {
        let bursts_on = t.brute_force_user_failures > 0
            || t.brute_force_client_failures > 0
            || t.spraying_users > 0;
        Collector {
            thresholds: t.clone(),
            lex: Lexicon::default(),
            seq: 0,
            keeps_fails: bursts_on || t.iam_failures > 0 || t.new_client_max_known > 0,
            fails: Runs::new(limits.run_len),
            limits,
            first_logins: HashMap::new(),
            logins: bursts_on.then(|| LoginSpill::new(limits.spill_logins)),
            iam: Vec::new(),
        }
    }

    /// Takes note of one session.
    pub fn add(&mut self, s: &SessionView<'_>) {
        let seq = self.seq;
        self.seq += 1;
        let Some(t) = session_time(s) else {
            return;
        };
        let start = s.start_ms.unwrap_or(NO_START);
        match s.outcome {
            Outcome::Failure
                if s.failure_class.is_some_and(is_credential_failure)
                    && (s.user.is_some() || s.client_addr.is_some()) =>
            {
                let lex = &mut self.lex;
                let server = lex.names.intern(Some(s.server));
                let fail = Fail {
                    t,
                    start,
                    seq,
                    server,
                    pid: s.pid,
                    id: lex.code(s.session_id, server, s.pid, start),
                    user: lex.names.intern(s.user),
                    client: lex.names.intern(s.client_addr),
                    pam: s.failure_class == Some(FailureClass::Pam),
                };
                if self.keeps_fails {
                    self.fails.push(fail, lex);
                }
            }
            Outcome::Success if s.user.is_some() && s.client_addr.is_some() => {
                let names = &mut self.lex.names;
                let user = names.intern(s.user);
                let client = names.intern(s.client_addr);
                let key = Key {
                    t,
                    start,
                    seq,
                    server: names.intern(Some(s.server)),
                    pid: s.pid,
                    // Set when read back.
                    id: IdCode(1),
                };
                if self.thresholds.new_client_max_known > 0 {
                    let names = &self.lex.names;
                    let first = || FirstLogin {
                        key,
                        id: s.session_id.into(),
                    };
                    match self.first_logins.entry((user, client)) {
                        Entry::Vacant(v) => {
                            v.insert(first());
                        }
                        Entry::Occupied(mut o) => {
                            let rank = (
                                key.t,
                                s.session_id,
                                key.start(),
                                names.name(key.server),
                                key.pid,
                                key.seq,
                            );
                            if rank < o.get().rank(names) {
                                o.insert(first());
                            }
                        }
                    }
                }
                if let Some(spill) = &mut self.logins {
                    spill.push(&Login { key, user, client }, s.session_id);
                }
            }
            _ => {}
        }
        if let Some(a) = s.iam {
            self.add_iam(s, a, t, seq);
        }
    }

    fn add_iam(&mut self, s: &SessionView<'_>, a: &IamAttribution, t: i64, seq: u64) {
        if a.kind == MatchKind::NotApplicable {
            return;
        }
        let no_policy = a.policy_principals == Some(0);
        let foreign = match (&a.foreign_account, a.kind) {
            (Some(account), MatchKind::Exact | MatchKind::Probable) => Some((
                Box::from(account.as_str()),
                a.best.as_ref().map(|b| Box::from(b.principal_arn.as_str())),
            )),
            _ => None,
        };
        let unknown_address = a.address_known == Some(false);
        if !no_policy && foreign.is_none() && !unknown_address {
            return;
        }
        let lex = &mut self.lex;
        let start = s.start_ms.unwrap_or(NO_START);
        let server = lex.names.intern(Some(s.server));
        let key = Key {
            t,
            start,
            seq,
            server,
            pid: s.pid,
            id: lex.code(s.session_id, server, s.pid, start),
        };
        self.iam.push(IamLogin {
            key,
            item: 0,
            user: lex.names.intern(s.user),
            client: lex.names.intern(s.client_addr),
            success: s.outcome == Outcome::Success,
            no_policy,
            foreign,
            unknown_address,
            unmatched: a.kind == MatchKind::None,
        });
    }

    /// The findings of every session added, ordered as the module
    /// documentation says. Fails only when what was set aside in temporary
    /// files cannot be read back (a failed write keeps the records in
    /// memory instead).
    pub fn finish(self) -> io::Result<Vec<Finding>> {
        let Collector {
            thresholds: t,
            mut lex,
            fails,
            limits,
            mut first_logins,
            logins,
            mut iam,
            ..
        } = self;
        for first in first_logins.values_mut() {
            let k = &mut first.key;
            k.id = lex.code(&first.id, k.server, k.pid, k.start);
        }
        let mut fails = fails.sorted(&lex);
        let mut ev = if fails.is_merged() {
            Evidence::on_disk(IdBook::default(), limits.evidence)
        } else {
            Evidence::in_memory(IdBook::default())
        };

        // One pass over the sorted failures finds the bursts and the
        // failures that came before each new client's first login.
        let user_window = window_ms(t.brute_force_user_window);
        let client_window = window_ms(t.brute_force_client_window);
        let spraying_window = window_ms(t.spraying_window);
        let mut detectors: Vec<Detector> = [
            (Rule::User, t.brute_force_user_failures, user_window),
            (Rule::Client, t.brute_force_client_failures, client_window),
            (Rule::Spraying, t.spraying_users, spraying_window),
            (Rule::Pam, t.iam_failures, window_ms(t.iam_window)),
        ]
        .into_iter()
        .filter_map(|(rule, min, window)| Detector::new(rule, min, window))
        .collect();
        let mut new_clients = if t.new_client_max_known > 0 {
            plan_new_clients(
                &lex,
                &first_logins,
                t.new_client_max_known,
                window_ms(t.new_client_baseline),
                &mut ev,
            )
        } else {
            Vec::new()
        };
        let by_pair: HashMap<(u32, u32), usize> = new_clients
            .iter()
            .enumerate()
            .map(|(i, n)| ((n.user, n.client), i))
            .collect();
        let mut ranker = Ranker::new(&lex);
        fails.for_each(&lex, |index, f| {
            for d in &mut detectors {
                d.push(index, f, &mut ev);
            }
            if let Some(&i) = by_pair.get(&(f.user, f.client)) {
                let n = &mut new_clients[i];
                if ranker.cmp(&f.key(), &n.login).is_lt() {
                    ev.push_fail(n.slot, index, f);
                    n.first_failure.get_or_insert(f.t);
                }
            }
            Ok(())
        })?;
        drop(ranker);
        let bursts: Vec<(Rule, Vec<Burst>)> = detectors
            .into_iter()
            .map(|d| (d.rule(), d.finish()))
            .collect();

        // The successful logins within a window after a burst of their
        // pair, in order, to each such burst's list of successes
        // (repeated IAM failures list none).
        let mut wanted: HashMap<(u32, u32), Vec<SuccessSpan>> = HashMap::new();
        let mut successes: HashMap<Slot, Slot> = HashMap::new();
        for (rule, found) in &bursts {
            let window = match rule {
                Rule::User => user_window,
                Rule::Client => client_window,
                Rule::Spraying => spraying_window,
                Rule::Pam => continue,
            };
            for b in found {
                let until = b.last.saturating_add(window);
                let slot = ev.open();
                successes.insert(b.slot, slot);
                let span = SuccessSpan {
                    from: b.first,
                    until,
                    slot,
                };
                for &pair in &b.pairs {
                    wanted.entry(pair).or_default().push(span);
                }
            }
        }
        if let Some(spill) = logins.filter(|_| !wanted.is_empty()) {
            let mut matched = Runs::new(limits.run_len);
            spill.read(&mut |login, id| {
                let Some(spans) = wanted.get(&(login.user, login.client)) else {
                    return;
                };
                let t = login.key.t;
                if spans.iter().any(|s| s.holds(t)) {
                    let k = login.key;
                    matched.push(
                        Fail {
                            id: lex.code(id, k.server, k.pid, k.start),
                            ..Fail::of_login(&login)
                        },
                        &lex,
                    );
                }
            })?;
            let mut matched = matched.sorted(&lex);
            matched.for_each(&lex, |_, login| {
                let spans = wanted.get(&(login.user, login.client));
                for span in spans.into_iter().flatten() {
                    if span.holds(login.t) {
                        ev.push_key(span.slot, login.key());
                    }
                }
                Ok(())
            })?;
        }
        drop(wanted);

        let mut ranker = Ranker::new(&lex);
        iam.sort_by(|a, b| ranker.cmp(&a.key, &b.key));
        drop(ranker);
        for x in &mut iam {
            x.item = ev.book.push_key(x.key);
        }
        for n in &new_clients {
            ev.push_key(n.slot, n.login);
        }
        ev.book.lex = lex;
        ev.book.fails = fails.into_memory();
        let (book, mut lists) = ev.finish();
        let mut take = |slot: Slot| std::mem::take(&mut lists[slot.index()]);
        let names = &book.lex.names;
        let name = |i: u32| names.name(i).unwrap_or_default();

        let mut findings = Vec::new();
        for (rule, found) in bursts {
            for b in found {
                let evidence = take(b.slot);
                let successes = successes.get(&b.slot).map(|&s| take(s)).unwrap_or_default();
                findings.push(burst_finding(
                    rule,
                    &b,
                    name(b.subject),
                    &t,
                    evidence,
                    successes,
                ));
            }
        }
        for n in new_clients {
            let sessions = take(n.slot);
            findings.push(n.finding(sessions));
        }
        iam_findings(&iam, &book, &mut findings);

        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.first_ms.cmp(&b.first_ms))
                .then(a.kind.cmp(&b.kind))
                .then_with(|| a.subject.cmp(&b.subject))
                .then(a.last_ms.cmp(&b.last_ms))
        });
        Ok(findings)
    }
}

/// Finds the patterns of the module documentation in `sessions` (in any
/// order): a [`Collector`] of them, in memory.
pub fn find(sessions: &[SessionFacts], t: &Thresholds) -> Vec<Finding> {
    let mut collector = Collector::in_memory(t);
    for s in sessions {
        collector.add(&SessionView::of_facts(s));
    }
    collector
        .finish()
        .expect("reading records back from memory cannot fail")
}

/// Groups records by a name, keeping the order inside groups; records
/// without the name are left out; groups come out sorted by name.
fn group_refs<'r, T>(
    items: &[&'r T],
    key: impl Fn(&T) -> u32,
    names: &Interner,
) -> Vec<(u32, Vec<&'r T>)> {
    let mut map: HashMap<u32, Vec<&'r T>> = HashMap::new();
    for &item in items {
        let k = key(item);
        if k != NO_NAME {
            map.entry(k).or_default().push(item);
        }
    }
    let mut groups: Vec<_> = map.into_iter().collect();
    groups.sort_by(|a, b| names.name(a.0).cmp(&names.name(b.0)));
    groups
}

fn add_success_note(summary: &mut String, successes: &SessionIds, how: &str) {
    if !successes.is_empty() {
        summary.push_str(&format!(
            "; followed by {} {how}",
            plural(successes.len(), "successful login", "successful logins")
        ));
    }
}

/// Where a burst lists the successful logins of its (user, client) pairs:
/// from its first failure to a window after its last.
#[derive(Debug, Clone, Copy)]
struct SuccessSpan {
    from: i64,
    until: i64,
    slot: Slot,
}

impl SuccessSpan {
    fn holds(&self, t: i64) -> bool {
        self.from <= t && t <= self.until
    }
}

/// The finding of a burst of `rule`, whose subject is named `subject`.
fn burst_finding(
    rule: Rule,
    b: &Burst,
    subject: &str,
    t: &Thresholds,
    sessions: SessionIds,
    successes: SessionIds,
) -> Finding {
    let failures = plural(b.count, "credential failure", "credential failures");
    let span = human(b.last.saturating_sub(b.first));
    let (kind, distinct_users, mut summary, how) = match rule {
        Rule::User => (
            FindingKind::BruteForceUser,
            None,
            format!(
                "{failures} for user \"{subject}\" in {span} from {} (threshold: {} within {})",
                plural(b.distinct, "client", "clients"),
                t.brute_force_user_failures,
                human(window_ms(t.brute_force_user_window)),
            ),
            "from a client that failed",
        ),
        Rule::Client => (
            FindingKind::BruteForceClient,
            Some(b.distinct),
            format!(
                "{failures} from {subject} for {} in {span} (threshold: {} within {})",
                plural(b.distinct, "user", "users"),
                t.brute_force_client_failures,
                human(window_ms(t.brute_force_client_window)),
            ),
            "for a user that failed",
        ),
        Rule::Spraying => (
            FindingKind::PasswordSpraying,
            Some(b.distinct),
            format!(
                "{subject} failed to log in as {} ({failures}) in {span} (threshold: {} within {})",
                plural(b.distinct, "distinct user", "distinct users"),
                plural(t.spraying_users, "user", "users"),
                human(window_ms(t.spraying_window)),
            ),
            "as one of those users",
        ),
        Rule::Pam => (
            FindingKind::RepeatedIamFailures,
            None,
            format!(
                "{} for user \"{subject}\" in {span} from {} (threshold: {} within {}); \
                 on RDS: an expired IAM token (15 minutes), a role without rds_iam \
                 or a policy without rds-db:connect",
                plural(b.count, "PAM (IAM) failure", "PAM (IAM) failures"),
                plural(b.distinct, "client", "clients"),
                t.iam_failures,
                human(window_ms(t.iam_window)),
            ),
            "",
        ),
    };
    add_success_note(&mut summary, &successes, how);
    Finding {
        kind,
        severity: match (rule, successes.is_empty()) {
            (Rule::Pam, _) => Severity::Low,
            (_, true) => Severity::Medium,
            (_, false) => Severity::High,
        },
        subject: subject.to_owned(),
        first_ms: b.first,
        last_ms: b.last,
        count: b.count,
        distinct_users,
        sessions,
        successes,
        summary,
    }
}

/// The IAM findings over the time-sorted IAM logins kept.
fn iam_findings(iam: &[IamLogin], book: &Arc<IdBook>, findings: &mut Vec<Finding>) {
    let names = &book.lex.names;
    let name = |i: u32| names.name(i).unwrap_or_default();
    let finding = |kind, severity, subject: &str, group: &[&IamLogin], summary: String| Finding {
        kind,
        severity,
        subject: subject.to_owned(),
        first_ms: group.first().map_or(0, |x| x.key.t),
        last_ms: group.last().map_or(0, |x| x.key.t),
        count: group.len(),
        distinct_users: None,
        sessions: SessionIds::of(book, group.iter().map(|x| x.item).collect()),
        successes: SessionIds::of(
            book,
            group.iter().filter(|x| x.success).map(|x| x.item).collect(),
        ),
        summary,
    };
    let succeeded = |g: &[&IamLogin]| g.iter().filter(|x| x.success).count();
    let users_of = |g: &[&IamLogin]| -> String {
        let users: BTreeSet<&str> = g.iter().filter_map(|x| names.name(x.user)).collect();
        users
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };

    let no_policy: Vec<&IamLogin> = iam.iter().filter(|x| x.no_policy).collect();
    for (user, group) in group_refs(&no_policy, |x| x.user, names) {
        let ok = succeeded(&group);
        let summary = format!(
            "{} as \"{}\" ({ok} successful) although no principal in the authorization \
             details may rds-db:connect as that user{}",
            plural(group.len(), "IAM login", "IAM logins"),
            name(user),
            if ok > 0 {
                ": the authorization details are stale or incomplete, or the user is reachable another way"
            } else {
                ": a token from a principal without rds-db:connect (or for another database user)"
            }
        );
        let severity = if ok > 0 {
            Severity::High
        } else {
            Severity::Medium
        };
        findings.push(finding(
            FindingKind::IamLoginNoPolicy,
            severity,
            name(user),
            &group,
            summary,
        ));
    }

    // Grouped by the chosen principal (an ARN, not an interned name).
    let mut by_principal: BTreeMap<&str, Vec<&IamLogin>> = BTreeMap::new();
    for x in iam {
        if let Some((_, Some(arn))) = &x.foreign {
            by_principal.entry(arn).or_default().push(x);
        }
    }
    for (arn, group) in by_principal {
        let accounts: BTreeSet<&str> = group
            .iter()
            .filter_map(|x| x.foreign.as_ref().map(|(account, _)| &**account))
            .collect();
        let summary = format!(
            "{} as {} attributed to {arn}, reached from account {}",
            plural(group.len(), "login", "logins"),
            users_of(&group),
            accounts.into_iter().collect::<Vec<_>>().join(", "),
        );
        findings.push(finding(
            FindingKind::IamCrossAccountLogin,
            Severity::Medium,
            arn,
            &group,
            summary,
        ));
    }

    let unknown: Vec<&IamLogin> = iam.iter().filter(|x| x.unknown_address).collect();
    for (client, group) in group_refs(&unknown, |x| x.client, names) {
        let ok = succeeded(&group);
        let unmatched = group.iter().any(|x| x.success && x.unmatched);
        let severity = match (ok, unmatched) {
            (0, _) => Severity::Low,
            (_, true) => Severity::High,
            _ => Severity::Medium,
        };
        let summary = format!(
            "{} ({ok} successful) as {} from {}, an address neither the EC2 inventory nor \
             CloudTrail knows{}",
            plural(group.len(), "IAM login", "IAM logins"),
            users_of(&group),
            name(client),
            if unmatched {
                "; no IAM session fits a successful one"
            } else {
                ""
            }
        );
        findings.push(finding(
            FindingKind::IamUnknownAddress,
            severity,
            name(client),
            &group,
            summary,
        ));
    }
}

/// A `new_client_for_user` finding being gathered: the login, its sentence
/// so far, and its evidence list (the credential failures of the pair that
/// came before the login, then the login).
struct NewClient {
    user: u32,
    client: u32,
    /// The login's key, its id coded.
    login: Key,
    subject: String,
    summary: String,
    slot: Slot,
    /// The time of the first failure in the list.
    first_failure: Option<i64>,
}

impl NewClient {
    /// Its finding, `sessions` its list (the login last).
    fn finding(self, sessions: SessionIds) -> Finding {
        let failures = sessions.len().saturating_sub(1);
        let mut summary = self.summary;
        if failures > 0 {
            summary.push_str(&format!(
                "; {} from there came first",
                plural(failures, "credential failure", "credential failures")
            ));
        }
        Finding {
            kind: FindingKind::NewClientForUser,
            severity: if failures == 0 {
                Severity::Low
            } else {
                Severity::Medium
            },
            subject: self.subject,
            first_ms: self.first_failure.unwrap_or(self.login.t),
            last_ms: self.login.t,
            count: sessions.len(),
            distinct_users: None,
            sessions,
            successes: SessionIds::default(),
            summary,
        }
    }
}

/// `new_client_for_user`: each user's first successful login from each
/// client, in time order; a list for each that makes a finding, in the
/// order the findings are made (users by name, logins by time).
fn plan_new_clients(
    lex: &Lexicon,
    first_logins: &HashMap<(u32, u32), FirstLogin>,
    max_known: usize,
    baseline: i64,
    ev: &mut Evidence,
) -> Vec<NewClient> {
    const SHOWN: usize = 5;
    let names = &lex.names;
    let name = |i: u32| names.name(i).unwrap_or_default();
    let mut by_user: HashMap<u32, Vec<(u32, &FirstLogin)>> = HashMap::new();
    for (&(user, client), first) in first_logins {
        by_user.entry(user).or_default().push((client, first));
    }
    let mut users: Vec<(u32, Vec<(u32, &FirstLogin)>)> = by_user.into_iter().collect();
    users.sort_by(|a, b| names.name(a.0).cmp(&names.name(b.0)));
    let mut out = Vec::new();
    for (user, mut logins) in users {
        logins.sort_by(|a, b| a.1.rank(names).cmp(&b.1.rank(names)));
        let Some(first_login) = logins.first().map(|l| l.1.key.t) else {
            continue;
        };
        // The first few clients, in order of first login, for the sentence.
        let mut shown: Vec<&str> = Vec::new();
        for (known, &(client, x)) in logins.iter().enumerate() {
            let learning = x.key.t.saturating_sub(first_login) < baseline;
            if known > 0 && known <= max_known && !learning {
                let more = if known > shown.len() { ", …" } else { "" };
                let summary = format!(
                    "user \"{}\" logged in from {}, a client it had not \
                     logged in from before in the input (earlier: {}{more}; first login {} before)",
                    name(user),
                    name(client),
                    shown.join(", "),
                    human(x.key.t.saturating_sub(first_login)),
                );
                out.push(NewClient {
                    user,
                    client,
                    login: x.key,
                    subject: name(user).to_owned(),
                    summary,
                    slot: ev.open(),
                    first_failure: None,
                });
            }
            if shown.len() < SHOWN {
                shown.push(name(client));
            }
        }
    }
    out
}

/// The findings as they were computed before the [`Collector`]: a batch over
/// every session, sorted. The oracle of the equivalence tests.
#[cfg(test)]
mod reference {
    #![allow(clippy::all)]
    use super::{
        Finding, FindingKind, SessionIds, Severity, Thresholds, bursts, distinct_bursts, human,
        is_credential_failure, plural, window_ms,
    };
    use crate::event::FailureClass;
    use crate::session::Outcome;
    use crate::summary::SessionFacts;
    use std::collections::{HashMap, HashSet};

    fn session_time(s: &SessionFacts) -> Option<i64> {
        match s.outcome {
            Outcome::Failure => s.end_ms.or(s.start_ms),
            Outcome::Success | Outcome::Abandoned => s.start_ms.or(s.end_ms),
        }
    }

    /// A timed session.
    #[derive(Clone, Copy)]
    struct Timed<'s> {
        t: i64,
        s: &'s SessionFacts,
    }

    /// Successful logins, by (user, client), time-sorted.
    type SuccessIndex<'s> = HashMap<(&'s str, &'s str), Vec<Timed<'s>>>;

    /// The successful logins for the (user, client) pairs of `burst` in
    /// `[first, last + window]`.
    fn successes_after(burst: &[Timed<'_>], index: &SuccessIndex<'_>, window: i64) -> Vec<String> {
        let (Some(first), Some(last)) = (burst.first(), burst.last()) else {
            return Vec::new();
        };
        let until = last.t.saturating_add(window);
        let pairs: HashSet<(&str, &str)> = burst
            .iter()
            .filter_map(|f| Some((f.s.user.as_deref()?, f.s.client_addr.as_deref()?)))
            .collect();
        let mut found: Vec<Timed<'_>> = Vec::new();
        for pair in pairs {
            if let Some(logins) = index.get(&pair) {
                let start = logins.partition_point(|l| l.t < first.t);
                found.extend(logins[start..].iter().take_while(|l| l.t <= until));
            }
        }
        found.sort_by(|a, b| (a.t, &a.s.session_id).cmp(&(b.t, &b.s.session_id)));
        found
            .into_iter()
            .map(|l| l.s.session_id.to_string())
            .collect()
    }

    fn distinct<'s>(burst: &[Timed<'s>], f: impl Fn(&'s SessionFacts) -> Option<&'s str>) -> usize {
        burst
            .iter()
            .filter_map(|x| f(x.s))
            .collect::<HashSet<_>>()
            .len()
    }

    fn ids(burst: &[Timed<'_>]) -> Vec<String> {
        burst.iter().map(|x| x.s.session_id.to_string()).collect()
    }

    /// Groups time-sorted sessions by a key, keeping the order inside groups;
    /// groups come out sorted by key.
    fn group<'s>(
        items: &[Timed<'s>],
        key: impl Fn(&'s SessionFacts) -> Option<&'s str>,
    ) -> Vec<(&'s str, Vec<Timed<'s>>)> {
        let mut map: HashMap<&str, Vec<Timed<'s>>> = HashMap::new();
        for item in items {
            if let Some(k) = key(item.s) {
                map.entry(k).or_default().push(*item);
            }
        }
        let mut groups: Vec<_> = map.into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(b.0));
        groups
    }

    /// Finds the patterns of the module documentation in `sessions`.
    pub(super) fn find(sessions: &[SessionFacts], t: &Thresholds) -> Vec<Finding> {
        let mut timed: Vec<Timed<'_>> = sessions
            .iter()
            .filter_map(|s| {
                Some(Timed {
                    t: session_time(s)?,
                    s,
                })
            })
            .collect();
        timed.sort_by(|a, b| (a.t, &a.s.session_id).cmp(&(b.t, &b.s.session_id)));

        let credential: Vec<Timed<'_>> = timed
            .iter()
            .copied()
            .filter(|x| {
                x.s.outcome == Outcome::Failure
                    && x.s.failure_class.is_some_and(is_credential_failure)
            })
            .collect();
        let mut index: SuccessIndex<'_> = HashMap::new();
        for x in &timed {
            if x.s.outcome == Outcome::Success
                && let (Some(user), Some(client)) =
                    (x.s.user.as_deref(), x.s.client_addr.as_deref())
            {
                index.entry((user, client)).or_default().push(*x);
            }
        }

        let mut findings = Vec::new();

        // Brute force against one user.
        let window = window_ms(t.brute_force_user_window);
        for (user, fails) in group(&credential, |s| s.user.as_deref()) {
            let times: Vec<i64> = fails.iter().map(|x| x.t).collect();
            for (a, b) in bursts(&times, t.brute_force_user_failures, window) {
                let burst = &fails[a..=b];
                let successes = successes_after(burst, &index, window);
                let clients = distinct(burst, |s| s.client_addr.as_deref());
                let mut summary = format!(
                    "{} for user \"{user}\" in {} from {} (threshold: {} within {})",
                    plural(burst.len(), "credential failure", "credential failures"),
                    human(times[b].saturating_sub(times[a])),
                    plural(clients, "client", "clients"),
                    t.brute_force_user_failures,
                    human(window),
                );
                add_success_note(&mut summary, &successes, "from a client that failed");
                findings.push(burst_finding(
                    FindingKind::BruteForceUser,
                    user,
                    burst,
                    None,
                    successes,
                    summary,
                ));
            }
        }

        // Brute force from one client.
        let window = window_ms(t.brute_force_client_window);
        for (client, fails) in group(&credential, |s| s.client_addr.as_deref()) {
            let times: Vec<i64> = fails.iter().map(|x| x.t).collect();
            for (a, b) in bursts(&times, t.brute_force_client_failures, window) {
                let burst = &fails[a..=b];
                let successes = successes_after(burst, &index, window);
                let users = distinct(burst, |s| s.user.as_deref());
                let mut summary = format!(
                    "{} from {client} for {} in {} (threshold: {} within {})",
                    plural(burst.len(), "credential failure", "credential failures"),
                    plural(users, "user", "users"),
                    human(times[b].saturating_sub(times[a])),
                    t.brute_force_client_failures,
                    human(window),
                );
                add_success_note(&mut summary, &successes, "for a user that failed");
                findings.push(burst_finding(
                    FindingKind::BruteForceClient,
                    client,
                    burst,
                    Some(users),
                    successes,
                    summary,
                ));
            }
        }

        // Password spraying: one client, many users.
        let window = window_ms(t.spraying_window);
        for (client, fails) in group(&credential, |s| s.client_addr.as_deref()) {
            let fails: Vec<Timed<'_>> = fails.into_iter().filter(|x| x.s.user.is_some()).collect();
            let items: Vec<(i64, &str)> = fails
                .iter()
                .filter_map(|x| Some((x.t, x.s.user.as_deref()?)))
                .collect();
            for (a, b) in distinct_bursts(&items, t.spraying_users, window) {
                let burst = &fails[a..=b];
                let successes = successes_after(burst, &index, window);
                let users = distinct(burst, |s| s.user.as_deref());
                let mut summary = format!(
                    "{client} failed to log in as {} ({}) in {} (threshold: {} within {})",
                    plural(users, "distinct user", "distinct users"),
                    plural(burst.len(), "credential failure", "credential failures"),
                    human(items[b].0.saturating_sub(items[a].0)),
                    plural(t.spraying_users, "user", "users"),
                    human(window),
                );
                add_success_note(&mut summary, &successes, "as one of those users");
                findings.push(burst_finding(
                    FindingKind::PasswordSpraying,
                    client,
                    burst,
                    Some(users),
                    successes,
                    summary,
                ));
            }
        }

        // Repeated IAM (PAM) failures for one user.
        let window = window_ms(t.iam_window);
        let pam: Vec<Timed<'_>> = credential
            .iter()
            .copied()
            .filter(|x| x.s.failure_class == Some(FailureClass::Pam))
            .collect();
        for (user, fails) in group(&pam, |s| s.user.as_deref()) {
            let times: Vec<i64> = fails.iter().map(|x| x.t).collect();
            for (a, b) in bursts(&times, t.iam_failures, window) {
                let burst = &fails[a..=b];
                let clients = distinct(burst, |s| s.client_addr.as_deref());
                let summary = format!(
                    "{} for user \"{user}\" in {} from {} (threshold: {} within {}); \
                 on RDS: an expired IAM token (15 minutes), a role without rds_iam \
                 or a policy without rds-db:connect",
                    plural(burst.len(), "PAM (IAM) failure", "PAM (IAM) failures"),
                    human(times[b].saturating_sub(times[a])),
                    plural(clients, "client", "clients"),
                    t.iam_failures,
                    human(window),
                );
                let mut finding = burst_finding(
                    FindingKind::RepeatedIamFailures,
                    user,
                    burst,
                    None,
                    Vec::new(),
                    summary,
                );
                finding.severity = Severity::Low;
                findings.push(finding);
            }
        }

        if t.new_client_max_known > 0 {
            new_clients(
                &timed,
                t.new_client_max_known,
                window_ms(t.new_client_baseline),
                &mut findings,
            );
        }

        iam_findings(&timed, &mut findings);

        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.first_ms.cmp(&b.first_ms))
                .then(a.kind.cmp(&b.kind))
                .then_with(|| a.subject.cmp(&b.subject))
                .then(a.last_ms.cmp(&b.last_ms))
        });
        findings
    }

    fn add_success_note(summary: &mut String, successes: &[String], how: &str) {
        if !successes.is_empty() {
            summary.push_str(&format!(
                "; followed by {} {how}",
                plural(successes.len(), "successful login", "successful logins")
            ));
        }
    }

    fn burst_finding(
        kind: FindingKind,
        subject: &str,
        burst: &[Timed<'_>],
        distinct_users: Option<usize>,
        successes: Vec<String>,
        summary: String,
    ) -> Finding {
        Finding {
            kind,
            severity: if successes.is_empty() {
                Severity::Medium
            } else {
                Severity::High
            },
            subject: subject.to_owned(),
            first_ms: burst.first().map_or(0, |x| x.t),
            last_ms: burst.last().map_or(0, |x| x.t),
            count: burst.len(),
            distinct_users,
            sessions: SessionIds::from_ids(ids(burst)),
            successes: SessionIds::from_ids(successes),
            summary,
        }
    }

    /// The IAM findings over time-sorted sessions (only sessions IAM
    /// correlation ran on and found to be IAM logins count).
    fn iam_findings(timed: &[Timed<'_>], findings: &mut Vec<Finding>) {
        use crate::cloud::MatchKind;
        let iam: Vec<Timed<'_>> = timed
            .iter()
            .copied()
            .filter(|x| {
                x.s.iam
                    .as_ref()
                    .is_some_and(|a| a.kind != MatchKind::NotApplicable)
            })
            .collect();
        let finding =
            |kind, severity, subject: &str, group: &[Timed<'_>], summary: String| Finding {
                kind,
                severity,
                subject: subject.to_owned(),
                first_ms: group.first().map_or(0, |x| x.t),
                last_ms: group.last().map_or(0, |x| x.t),
                count: group.len(),
                distinct_users: None,
                sessions: SessionIds::from_ids(ids(group)),
                successes: SessionIds::from_ids(
                    group
                        .iter()
                        .filter(|x| x.s.outcome == Outcome::Success)
                        .map(|x| x.s.session_id.to_string()),
                ),
                summary,
            };
        let succeeded =
            |g: &[Timed<'_>]| g.iter().filter(|x| x.s.outcome == Outcome::Success).count();

        let no_policy: Vec<Timed<'_>> = iam
            .iter()
            .copied()
            .filter(|x| {
                x.s.iam
                    .as_ref()
                    .is_some_and(|a| a.policy_principals == Some(0))
            })
            .collect();
        for (user, group) in group(&no_policy, |s| s.user.as_deref()) {
            let ok = succeeded(&group);
            let summary = format!(
                "{} as \"{user}\" ({ok} successful) although no principal in the authorization \
             details may rds-db:connect as that user{}",
                plural(group.len(), "IAM login", "IAM logins"),
                if ok > 0 {
                    ": the authorization details are stale or incomplete, or the user is reachable another way"
                } else {
                    ": a token from a principal without rds-db:connect (or for another database user)"
                }
            );
            let severity = if ok > 0 {
                Severity::High
            } else {
                Severity::Medium
            };
            findings.push(finding(
                FindingKind::IamLoginNoPolicy,
                severity,
                user,
                &group,
                summary,
            ));
        }

        let foreign: Vec<Timed<'_>> = iam
            .iter()
            .copied()
            .filter(|x| {
                x.s.iam.as_ref().is_some_and(|a| {
                    a.foreign_account.is_some()
                        && matches!(a.kind, MatchKind::Exact | MatchKind::Probable)
                })
            })
            .collect();
        for (arn, group) in group(&foreign, best_principal) {
            let accounts: std::collections::BTreeSet<&str> = group
                .iter()
                .filter_map(|x| x.s.iam.as_ref()?.foreign_account.as_deref())
                .collect();
            let users: std::collections::BTreeSet<&str> =
                group.iter().filter_map(|x| x.s.user.as_deref()).collect();
            let summary = format!(
                "{} as {} attributed to {arn}, reached from account {}",
                plural(group.len(), "login", "logins"),
                users
                    .iter()
                    .map(|u| format!("\"{u}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                accounts.into_iter().collect::<Vec<_>>().join(", "),
            );
            findings.push(finding(
                FindingKind::IamCrossAccountLogin,
                Severity::Medium,
                arn,
                &group,
                summary,
            ));
        }

        let unknown: Vec<Timed<'_>> = iam
            .iter()
            .copied()
            .filter(|x| {
                x.s.iam
                    .as_ref()
                    .is_some_and(|a| a.address_known == Some(false))
            })
            .collect();
        for (client, group) in group(&unknown, |s| s.client_addr.as_deref()) {
            let ok = succeeded(&group);
            let unmatched = group.iter().any(|x| {
                x.s.outcome == Outcome::Success
                    && x.s.iam.as_ref().is_some_and(|a| a.kind == MatchKind::None)
            });
            let severity = match (ok, unmatched) {
                (0, _) => Severity::Low,
                (_, true) => Severity::High,
                _ => Severity::Medium,
            };
            let users: std::collections::BTreeSet<&str> =
                group.iter().filter_map(|x| x.s.user.as_deref()).collect();
            let summary = format!(
                "{} ({ok} successful) as {} from {client}, an address neither the EC2 inventory nor \
             CloudTrail knows{}",
                plural(group.len(), "IAM login", "IAM logins"),
                users
                    .iter()
                    .map(|u| format!("\"{u}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                if unmatched {
                    "; no IAM session fits a successful one"
                } else {
                    ""
                }
            );
            findings.push(finding(
                FindingKind::IamUnknownAddress,
                severity,
                client,
                &group,
                summary,
            ));
        }
    }

    fn best_principal(s: &SessionFacts) -> Option<&str> {
        s.iam
            .as_ref()?
            .best
            .as_ref()
            .map(|b| b.principal_arn.as_str())
    }

    /// `new_client_for_user` over time-sorted sessions.
    fn new_clients(
        timed: &[Timed<'_>],
        max_known: usize,
        baseline: i64,
        findings: &mut Vec<Finding>,
    ) {
        /// What is known about a user's successful logins so far.
        #[derive(Default)]
        struct Known<'s> {
            first_login: i64,
            clients: HashSet<&'s str>,
            /// The first few clients, in order of first login, for the sentence.
            shown: Vec<&'s str>,
        }
        const SHOWN: usize = 5;
        let mut known: HashMap<&str, Known<'_>> = HashMap::new();
        // Credential failures per (user, client) so far.
        let mut failed: HashMap<(&str, &str), Vec<Timed<'_>>> = HashMap::new();
        for x in timed {
            let (Some(user), Some(client)) = (x.s.user.as_deref(), x.s.client_addr.as_deref())
            else {
                continue;
            };
            match x.s.outcome {
                Outcome::Failure if x.s.failure_class.is_some_and(is_credential_failure) => {
                    failed.entry((user, client)).or_default().push(*x);
                }
                Outcome::Success => {
                    let k = known.entry(user).or_insert_with(|| Known {
                        first_login: x.t,
                        ..Known::default()
                    });
                    if k.clients.contains(client) {
                        continue;
                    }
                    let learning = x.t.saturating_sub(k.first_login) < baseline;
                    if !k.clients.is_empty() && k.clients.len() <= max_known && !learning {
                        let before = failed.get(&(user, client)).map_or(&[][..], Vec::as_slice);
                        let mut evidence: Vec<Timed<'_>> = before.to_vec();
                        evidence.push(*x);
                        let more = if k.clients.len() > k.shown.len() {
                            ", …"
                        } else {
                            ""
                        };
                        let mut summary = format!(
                            "user \"{user}\" logged in from {client}, a client it had not \
                         logged in from before in the input (earlier: {}{more}; first login {} before)",
                            k.shown.join(", "),
                            human(x.t.saturating_sub(k.first_login)),
                        );
                        if !before.is_empty() {
                            summary.push_str(&format!(
                                "; {} from there came first",
                                plural(before.len(), "credential failure", "credential failures")
                            ));
                        }
                        findings.push(Finding {
                            kind: FindingKind::NewClientForUser,
                            severity: if before.is_empty() {
                                Severity::Low
                            } else {
                                Severity::Medium
                            },
                            subject: user.to_owned(),
                            first_ms: evidence.first().map_or(x.t, |e| e.t),
                            last_ms: x.t,
                            count: evidence.len(),
                            distinct_users: None,
                            sessions: SessionIds::from_ids(ids(&evidence)),
                            successes: SessionIds::default(),
                            summary,
                        });
                    }
                    k.clients.insert(client);
                    if k.shown.len() < SHOWN {
                        k.shown.push(client);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use foldhash::{HashSet, HashSetExt};

    use super::*;
    use crate::summary::tests::{Attempt, attempt, sessions};

    const T0: i64 = 1_764_341_820_000;
    const MIN: i64 = 60_000;

    fn fail(pid: u32, t: i64, user: &str, client: &str) -> Attempt {
        attempt(pid, t, user, client, Outcome::Failure)
    }

    fn ok(pid: u32, t: i64, user: &str, client: &str) -> Attempt {
        attempt(pid, t, user, client, Outcome::Success)
    }

    fn of_kind(f: &[Finding], kind: FindingKind) -> Vec<&Finding> {
        f.iter().filter(|x| x.kind == kind).collect()
    }

    /// Only one finding kind enabled.
    fn only(kind: FindingKind) -> Thresholds {
        let mut t = Thresholds {
            brute_force_user_failures: 0,
            brute_force_client_failures: 0,
            spraying_users: 0,
            iam_failures: 0,
            new_client_max_known: 0,
            ..Thresholds::default()
        };
        let d = Thresholds::default();
        match kind {
            FindingKind::BruteForceUser => {
                t.brute_force_user_failures = d.brute_force_user_failures
            }
            FindingKind::BruteForceClient => {
                t.brute_force_client_failures = d.brute_force_client_failures
            }
            FindingKind::PasswordSpraying => t.spraying_users = d.spraying_users,
            FindingKind::RepeatedIamFailures => t.iam_failures = d.iam_failures,
            FindingKind::NewClientForUser => t.new_client_max_known = d.new_client_max_known,
            // Always on; they only fire on sessions IAM correlation ran on.
            FindingKind::IamLoginNoPolicy
            | FindingKind::IamCrossAccountLogin
            | FindingKind::IamUnknownAddress => {}
        }
        t
    }

    #[test]
    fn bursts_sweep() {
        assert_eq!(bursts(&[0, 1, 2], 3, 2), [(0, 2)]);
        assert_eq!(bursts(&[0, 1, 3], 3, 2), []);
        // Overlapping windows merge; disjoint ones do not.
        assert_eq!(bursts(&[0, 1, 2, 3, 4, 10, 11, 12], 3, 2), [(0, 4), (5, 7)]);
        assert_eq!(bursts(&[5, 5, 5], 0, 2), []);
        assert_eq!(bursts(&[], 1, 2), []);
        assert_eq!(bursts(&[i64::MIN, i64::MAX], 2, i64::MAX), [(0, 1)]);
        assert_eq!(bursts(&[i64::MIN, i64::MAX], 2, i64::MAX - 1), []);
        assert_eq!(
            distinct_bursts(&[(0, "a"), (1, "a"), (2, "b"), (3, "c"), (9, "d")], 3, 3),
            [(0, 3)]
        );
    }

    #[test]
    fn brute_force_user_at_threshold_not_below() {
        // 10 failures within exactly 5 minutes (inclusive), from two clients.
        let mut a: Vec<Attempt> = (0..10)
            .map(|i| {
                let client = if i % 2 == 0 { "10.0.0.1" } else { "10.0.0.2" };
                fail(i, T0 + i64::from(i) * 5 * MIN / 9, "alice", client)
            })
            .collect();
        let s = sessions(&a);
        let f = find(&s, &only(FindingKind::BruteForceUser));
        assert_eq!(f.len(), 1, "{f:#?}");
        let b = &f[0];
        assert_eq!(b.kind, FindingKind::BruteForceUser);
        assert_eq!(b.severity, Severity::Medium);
        assert_eq!(b.subject, "alice");
        assert_eq!((b.first_ms, b.last_ms), (T0 + 5, T0 + 5 * MIN + 5));
        assert_eq!(b.count, 10);
        assert_eq!(b.sessions.len(), 10);
        assert_eq!(
            b.sessions.first().unwrap().unwrap(),
            &*format!("db1/0/{T0}")
        );
        assert!(
            b.summary
                .contains("10 credential failures for user \"alice\"")
        );
        assert!(b.summary.contains("from 2 clients"));

        // One below: 9 failures.
        a.pop();
        let f = find(&sessions(&a), &only(FindingKind::BruteForceUser));
        assert!(f.is_empty());

        // 10 failures, but the last is 1 ms outside the window.
        let a: Vec<Attempt> = (0..10)
            .map(|i| {
                let t = if i == 9 {
                    T0 + 5 * MIN + 1
                } else {
                    T0 + i64::from(i)
                };
                fail(i, t, "alice", "10.0.0.1")
            })
            .collect();
        assert!(find(&sessions(&a), &only(FindingKind::BruteForceUser)).is_empty());
    }

    #[test]
    fn non_credential_failures_do_not_count() {
        let a: Vec<Attempt> = (0..20)
            .map(|i| {
                fail(i, T0 + i64::from(i), "alice", "10.0.0.1").class(FailureClass::TooManyClients)
            })
            .chain((20..40).map(|i| {
                fail(i, T0 + i64::from(i), "bob", "10.0.0.1").class(FailureClass::ServerNotReady)
            }))
            .collect();
        assert!(find(&sessions(&a), &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_long_burst_is_reported_once() {
        // One failure every 20 s for an hour: every 5-minute window holds 16.
        let a: Vec<Attempt> = (0..180)
            .map(|i| fail(i, T0 + i64::from(i) * 20_000, "postgres", "203.0.113.7"))
            .collect();
        let f = find(&sessions(&a), &Thresholds::default());
        let user = of_kind(&f, FindingKind::BruteForceUser);
        assert_eq!(user.len(), 1);
        assert_eq!(user[0].count, 180);
        assert_eq!(user[0].sessions.len(), 180);
        assert_eq!(user[0].last_ms - user[0].first_ms, 179 * 20_000);
        let client = of_kind(&f, FindingKind::BruteForceClient);
        assert_eq!(client.len(), 1);
        assert_eq!(client[0].subject, "203.0.113.7");
        assert_eq!(client[0].distinct_users, Some(1));
        assert!(of_kind(&f, FindingKind::PasswordSpraying).is_empty());
    }

    #[test]
    fn two_separate_bursts_are_two_findings() {
        let a: Vec<Attempt> = (0..10)
            .map(|i| fail(i, T0 + i64::from(i) * 1000, "alice", "10.0.0.1"))
            .chain(
                (10..20).map(|i| fail(i, T0 + 60 * MIN + i64::from(i) * 1000, "alice", "10.0.0.1")),
            )
            .collect();
        let f = find(&sessions(&a), &only(FindingKind::BruteForceUser));
        assert_eq!(f.len(), 2);
        assert!(f[0].first_ms < f[1].first_ms);
        assert_eq!((f[0].count, f[1].count), (10, 10));
    }

    #[test]
    fn brute_force_client_and_success_raise_severity() {
        let mut a: Vec<Attempt> = (0..10)
            .map(|i| {
                fail(
                    i,
                    T0 + i64::from(i) * 1000,
                    &format!("u{}", i % 2),
                    "198.51.100.4",
                )
            })
            .collect();
        // The attacker gets in as u1 two minutes later: high.
        a.push(ok(50, T0 + 2 * MIN, "u1", "198.51.100.4"));
        // A login for u1 from another client does not count.
        a.push(ok(51, T0 + 2 * MIN, "u1", "10.0.0.1"));
        let s = sessions(&a);
        let f = find(&s, &only(FindingKind::BruteForceClient));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::BruteForceClient);
        assert_eq!(f[0].severity, Severity::High);
        assert_eq!(f[0].distinct_users, Some(2));
        assert_eq!(f[0].successes, [format!("db1/50/{}", T0 + 2 * MIN)]);
        assert!(f[0].summary.contains("followed by 1 successful login"));

        // Nine failures: nothing.
        a.remove(0);
        assert!(find(&sessions(&a), &only(FindingKind::BruteForceClient)).is_empty());
    }

    #[test]
    fn success_long_after_the_burst_does_not_raise() {
        let mut a: Vec<Attempt> = (0..10)
            .map(|i| fail(i, T0 + i64::from(i), "alice", "10.0.0.1"))
            .collect();
        // The last failure is at T0 + 9 + 5 (its FATAL); one window later + 1 ms.
        a.push(ok(50, T0 + 14 + 5 * MIN + 1, "alice", "10.0.0.1"));
        let f = find(&sessions(&a), &only(FindingKind::BruteForceUser));
        assert_eq!(f[0].severity, Severity::Medium);
        assert!(f[0].successes.is_empty());
        // At exactly one window after: high.
        a.pop();
        a.push(ok(50, T0 + 14 + 5 * MIN, "alice", "10.0.0.1"));
        let f = find(&sessions(&a), &only(FindingKind::BruteForceUser));
        assert_eq!(f[0].severity, Severity::High);
    }

    #[test]
    fn spraying_across_users() {
        let users = ["alice", "bob", "carol", "dave", "erin"];
        let mut a: Vec<Attempt> = users
            .iter()
            .enumerate()
            .map(|(i, u)| fail(i as u32, T0 + i as i64 * 2 * MIN, u, "192.0.2.9"))
            .collect();
        // A second failure for alice inside the burst is counted, not a user.
        a.push(fail(9, T0 + MIN, "alice", "192.0.2.9").class(FailureClass::RoleMissing));
        let f = find(&sessions(&a), &only(FindingKind::PasswordSpraying));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].kind, FindingKind::PasswordSpraying);
        assert_eq!(f[0].subject, "192.0.2.9");
        assert_eq!(f[0].distinct_users, Some(5));
        assert_eq!(f[0].count, 6);
        assert_eq!(f[0].severity, Severity::Medium);
        assert!(f[0].summary.contains("5 distinct users"));

        // Four users: nothing.
        let a: Vec<Attempt> = users[..4]
            .iter()
            .enumerate()
            .map(|(i, u)| fail(i as u32, T0 + i as i64, u, "192.0.2.9"))
            .collect();
        assert!(find(&sessions(&a), &only(FindingKind::PasswordSpraying)).is_empty());

        // Five users spread over more than 10 minutes: nothing.
        let a: Vec<Attempt> = users
            .iter()
            .enumerate()
            .map(|(i, u)| fail(i as u32, T0 + i as i64 * 3 * MIN, u, "192.0.2.9"))
            .collect();
        assert!(find(&sessions(&a), &only(FindingKind::PasswordSpraying)).is_empty());
    }

    #[test]
    fn pam_repeats() {
        let a: Vec<Attempt> = (0..3)
            .map(|i| {
                fail(i, T0 + i64::from(i) * 7 * MIN, "iam_app", "10.1.0.5").class(FailureClass::Pam)
            })
            .collect();
        let f = find(&sessions(&a), &only(FindingKind::RepeatedIamFailures));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::RepeatedIamFailures);
        assert_eq!(f[0].severity, Severity::Low);
        assert_eq!(f[0].subject, "iam_app");
        assert_eq!(f[0].count, 3);

        // Two PAM failures and one password failure: nothing.
        let mut a = a;
        a[2].class = Some(FailureClass::Password);
        assert!(find(&sessions(&a), &only(FindingKind::RepeatedIamFailures)).is_empty());
        // Three, but 16 minutes apart end to end: nothing.
        a[2].class = Some(FailureClass::Pam);
        a[2].t = T0 + 16 * MIN;
        assert!(find(&sessions(&a), &only(FindingKind::RepeatedIamFailures)).is_empty());
    }

    const HOUR: i64 = 60 * MIN;

    #[test]
    fn new_client_not_on_first_login_yes_on_later_new_client() {
        let a = vec![
            ok(1, T0, "alice", "10.0.0.1"),
            ok(2, T0 + HOUR, "alice", "10.0.0.1"),
            ok(3, T0 + 2 * HOUR, "bob", "10.0.0.7"),
            ok(4, T0 + 3 * HOUR, "alice", "10.0.0.2"),
            ok(5, T0 + 4 * HOUR, "alice", "10.0.0.2"),
        ];
        let f = find(&sessions(&a), &only(FindingKind::NewClientForUser));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].kind, FindingKind::NewClientForUser);
        assert_eq!(f[0].subject, "alice");
        assert_eq!(f[0].severity, Severity::Low);
        assert_eq!(f[0].sessions, [format!("db1/4/{}", T0 + 3 * HOUR)]);
        assert_eq!(f[0].count, 1);
        assert_eq!(
            (f[0].first_ms, f[0].last_ms),
            (T0 + 3 * HOUR, T0 + 3 * HOUR)
        );
        assert!(f[0].summary.contains("from 10.0.0.2"));
        assert!(
            f[0].summary
                .contains("earlier: 10.0.0.1; first login 3h before")
        );
    }

    #[test]
    fn new_client_learning_period() {
        // A second client 59 minutes after the first login is learnt, not
        // flagged; a third one exactly an hour after is flagged.
        let a = vec![
            ok(1, T0, "alice", "10.0.0.1"),
            ok(2, T0 + HOUR - MIN, "alice", "10.0.0.2"),
            ok(3, T0 + HOUR, "alice", "10.0.0.3"),
            ok(4, T0 + HOUR + 1, "alice", "10.0.0.2"),
        ];
        let f = find(&sessions(&a), &only(FindingKind::NewClientForUser));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].sessions, [format!("db1/3/{}", T0 + HOUR)]);
        assert!(f[0].summary.contains("earlier: 10.0.0.1, 10.0.0.2"));
        // No learning period: both are flagged.
        let t = Thresholds {
            new_client_baseline: Duration::ZERO,
            ..only(FindingKind::NewClientForUser)
        };
        assert_eq!(find(&sessions(&a), &t).len(), 2);
    }

    #[test]
    fn new_client_after_failures_is_medium_and_roaming_users_stop() {
        let mut a = vec![
            ok(1, T0, "alice", "10.0.0.1"),
            fail(2, T0 + 2 * HOUR, "alice", "10.0.0.9"),
            fail(3, T0 + 2 * HOUR + MIN, "alice", "10.0.0.9"),
            // A failure from elsewhere is not evidence for 10.0.0.9.
            fail(4, T0 + 2 * HOUR + MIN, "alice", "10.0.0.8"),
            ok(5, T0 + 2 * HOUR + 2 * MIN, "alice", "10.0.0.9"),
        ];
        let f = find(&sessions(&a), &only(FindingKind::NewClientForUser));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Medium);
        assert_eq!(f[0].count, 3);
        assert_eq!(f[0].first_ms, T0 + 2 * HOUR + 5);
        assert_eq!(
            f[0].sessions.last().unwrap().unwrap().to_string(),
            format!("db1/5/{}", T0 + 2 * HOUR + 2 * MIN)
        );
        assert!(
            f[0].summary
                .contains("2 credential failures from there came first")
        );

        // Known clients: .1, .9; then .2 and .3 are flagged (2 and 3 known
        // before), .4 is not (4 known > 3).
        for (i, c) in ["10.0.0.2", "10.0.0.3", "10.0.0.4"].iter().enumerate() {
            a.push(ok(10 + i as u32, T0 + (3 + i as i64) * HOUR, "alice", c));
        }
        let f = find(&sessions(&a), &only(FindingKind::NewClientForUser));
        let flagged: Vec<_> = f
            .iter()
            .map(|x| x.sessions.last().unwrap().unwrap().to_string())
            .collect();
        assert_eq!(f.len(), 3, "{flagged:?}");
        assert!(!flagged.iter().any(|id| id.starts_with("db1/12/")));
    }

    #[test]
    fn deterministic_order() {
        let mut a: Vec<Attempt> = Vec::new();
        for (k, user) in ["zed", "amy"].iter().enumerate() {
            for i in 0..10u32 {
                let pid = k as u32 * 100 + i;
                a.push(fail(pid, T0 + i64::from(i), user, &format!("10.0.{k}.{i}")));
            }
        }
        // A high finding later in time.
        for i in 0..10u32 {
            a.push(fail(
                500 + i,
                T0 + 30 * MIN + i64::from(i),
                "bob",
                "10.9.9.9",
            ));
        }
        a.push(ok(600, T0 + 31 * MIN, "bob", "10.9.9.9"));
        let s = sessions(&a);
        let f = find(&s, &Thresholds::default());
        let order: Vec<_> = f
            .iter()
            .map(|x| (x.severity, x.kind, x.subject.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (Severity::High, FindingKind::BruteForceUser, "bob"),
                (Severity::High, FindingKind::BruteForceClient, "10.9.9.9"),
                (Severity::Medium, FindingKind::BruteForceUser, "amy"),
                (Severity::Medium, FindingKind::BruteForceUser, "zed"),
            ]
        );
        // Input order does not matter.
        let mut reversed = s.clone();
        reversed.reverse();
        assert_eq!(find(&reversed, &Thresholds::default()), f);
    }

    #[test]
    fn untimed_and_subjectless_sessions_are_skipped() {
        use crate::event::{Event, EventKind};

        let events: Vec<Event> = (0..20)
            .map(|i| {
                let mut e = Event::new(EventKind::AuthFailed, crate::name::Name::new("db1"));
                e.pid = Some(i);
                e.user = Some("alice".into());
                e.client_addr = Some("10.0.0.1".into());
                e.failure_class = Some(FailureClass::Password);
                e
            })
            .collect();
        let s = crate::summary::SessionFacts::of_all(crate::session::stitch(events));
        assert_eq!(s.len(), 20);
        assert!(find(&s, &Thresholds::default()).is_empty());
        let a: Vec<Attempt> = (0..20)
            .map(|i| fail(i, T0 + i64::from(i), "x", "y").no_user().no_client())
            .collect();
        assert!(find(&sessions(&a), &Thresholds::default()).is_empty());
    }

    /// Thresholds low enough for every finding to fire on random facts.
    fn low() -> Thresholds {
        Thresholds {
            brute_force_user_failures: 3,
            brute_force_user_window: Duration::from_secs(20 * 60),
            brute_force_client_failures: 4,
            brute_force_client_window: Duration::from_secs(10 * 60),
            spraying_users: 2,
            spraying_window: Duration::from_secs(15 * 60),
            iam_failures: 2,
            iam_window: Duration::from_secs(30 * 60),
            new_client_max_known: 4,
            new_client_baseline: Duration::from_secs(20 * 60),
        }
    }

    /// Ids of the stitcher's form are rebuilt, with and without a start
    /// and a repeat count; anything else is not taken for one.
    #[test]
    fn rebuilt_ids_round_trip() {
        let rebuilt = |server: &str, pid: u32, start: i64, n: u32| {
            let mut id = String::new();
            write_rebuilt_id(&mut id, server, pid, start, n).unwrap();
            id
        };
        assert_eq!(rebuilt("db1", 42, NO_START, 1), "db1/42/-");
        assert_eq!(rebuilt("db1", 42, T0, 3), format!("db1/42/{T0}#3"));
        assert_eq!(rebuilt("a/b", 0, -5, 12), "a/b/0/-5#12");
        for server in ["db1", "", "a/b", "é#/"] {
            for pid in [0, 7, u32::MAX] {
                for start in [NO_START, T0, -1, 0, i64::MAX] {
                    for n in [1, 2, 10, 12_345, IdCode::TEXT - 1] {
                        let id = rebuilt(server, pid, start, n);
                        assert_eq!(repeat_of(&id, server, pid, start), Some(n), "{id}");
                    }
                }
            }
        }
        let t0 = T0.to_string();
        for (id, start) in [
            (format!("db1/42/{t0}#1"), T0),
            (format!("db1/42/{t0}#01"), T0),
            (format!("db1/42/{t0}#+2"), T0),
            (format!("db1/42/{t0}#"), T0),
            (format!("db1/42/{t0}#0"), T0),
            (format!("db1/42/{t0}#{}", IdCode::TEXT), T0),
            (format!("db1/42/{t0}#99999999999"), T0),
            (format!("db1/42/{t0}x"), T0),
            (format!("db1/042/{t0}"), T0),
            (format!("db1/43/{t0}"), T0),
            (format!("db2/42/{t0}"), T0),
            (format!("db1//42/{t0}"), T0),
            (format!("db1/42/{t0}"), T0 + 1),
            (format!("db1/42/{t0}"), NO_START),
            ("db1/42/-".to_owned(), T0),
            ("db1/42/-#1".to_owned(), NO_START),
            ("db1/42".to_owned(), NO_START),
            ("s/1".to_owned(), NO_START),
            (String::new(), NO_START),
        ] {
            assert_eq!(repeat_of(&id, "db1", 42, start), None, "{id}");
        }
    }

    /// A lexicon gives back every id it coded, rebuilt or kept as text,
    /// and only keeps the text of the others.
    #[test]
    fn lexicon_round_trip() {
        let mut lex = Lexicon::default();
        let db1 = lex.names.intern(Some("db1"));
        let other = lex.names.intern(Some("other"));
        let cases = [
            (format!("db1/7/{T0}"), db1, T0, false),
            (format!("db1/7/{T0}#4"), db1, T0, false),
            ("db1/7/-".to_owned(), db1, NO_START, false),
            ("db1/7/-#2".to_owned(), db1, NO_START, false),
            (format!("db1/7/{T0}#1"), db1, T0, true),
            (format!("db1/7/{T0}"), other, T0, true),
            ("db1/7/-".to_owned(), db1, T0, true),
            ("dup/1".to_owned(), db1, T0, true),
            (String::new(), db1, NO_START, true),
        ];
        let keys: Vec<Key> = cases
            .iter()
            .map(|(id, server, start, _)| Key {
                t: 0,
                start: *start,
                seq: 0,
                server: *server,
                pid: 7,
                id: lex.code(id, *server, 7, *start),
            })
            .collect();
        for ((id, .., as_text), key) in cases.iter().zip(&keys) {
            assert_eq!(key.id.0 & IdCode::TEXT != 0, *as_text, "{id}");
            let mut back = String::new();
            lex.write_id(&mut back, key).unwrap();
            assert_eq!(&back, id);
        }
        let kept: usize = cases.iter().filter(|c| c.3).map(|c| c.0.len()).sum();
        assert_eq!(lex.text.text.len(), kept);
    }

    /// With ids of the stitcher's form (mostly rebuilt, some not: a wrong
    /// pid or `#1`), sessions with and without a start, the collector still
    /// finds exactly what the batch finds.
    #[test]
    fn collector_with_rebuilt_ids_equals_the_batch() {
        use crate::summary::sort_facts;
        use crate::summary::tests::{Rng, random_facts};
        let mut rng = Rng(5);
        let mut rebuilt = 0;
        for round in 0..30 {
            let n = [1, 5, 50, 300][round % 4];
            let mut facts = random_facts(&mut rng, n);
            for s in &mut facts {
                let start = s.start_ms.map_or("-".to_owned(), |ms| ms.to_string());
                let (server, pid) = (&s.server, s.pid);
                s.session_id = match rng.below(8) {
                    0 => format!("{server}/{}/{start}", pid + 1),
                    1 => format!("{server}/{pid}/{start}#1"),
                    2 => s.session_id.to_string(),
                    3 | 4 => format!("{server}/{pid}/{start}#{}", 2 + rng.below(3)),
                    _ => format!("{server}/{pid}/{start}"),
                }
                .into();
                let mut lex = Lexicon::default();
                let server = lex.names.intern(Some(&s.server));
                let code = lex.code(&s.session_id, server, s.pid, s.start_ms.unwrap_or(NO_START));
                rebuilt += usize::from(code.0 & IdCode::TEXT == 0);
            }
            sort_facts(&mut facts);
            for t in [low(), Thresholds::default()] {
                let batch = reference::find(&facts, &t);
                let mut shuffled = facts.clone();
                rng.shuffle(&mut shuffled);
                assert_finds(&shuffled, &t, &batch, &format!("round {round}"));
            }
        }
        assert!(rebuilt > 1000, "{rebuilt}");
    }

    /// `find` over `sessions` in this order, and a collector fed them in
    /// this order (through its temporary file), both give `batch`.
    fn assert_finds(sessions: &[SessionFacts], t: &Thresholds, batch: &[Finding], context: &str) {
        assert_eq!(find(sessions, t), batch, "{context}");
        let mut c = Collector::new(t);
        for s in sessions {
            c.add(&SessionView::of_facts(s));
        }
        assert_eq!(c.finish().unwrap(), batch, "{context}, file");
        // Runs of a few failures, evidence written every few ids: the
        // paths of a large input, on a small one.
        for (run_len, evidence) in [(1, 1), (7, 5), (64, 300)] {
            let limits = Limits {
                run_len,
                evidence,
                spill_logins: true,
            };
            let mut c = Collector::with_limits(t, limits);
            for s in sessions {
                c.add(&SessionView::of_facts(s));
            }
            let found = c.finish().unwrap();
            assert_eq!(found, batch, "{context}, runs of {run_len}");
            for f in &found {
                assert_eq!(f.sessions.len(), f.count, "{context}");
                assert_eq!(f.sessions.iter().count(), f.count, "{context}");
            }
        }
    }

    /// The collector, fed in any order, in memory or through its temporary
    /// file, finds exactly what the batch over sorted sessions found.
    #[test]
    fn collector_in_any_order_equals_the_batch() {
        use crate::summary::sort_facts;
        use crate::summary::tests::{Rng, random_facts};
        let mut rng = Rng(11);
        let mut fired: HashSet<FindingKind> = HashSet::new();
        let mut high = 0;
        for round in 0..40 {
            let n = [0, 1, 5, 50, 300][round % 5];
            let mut facts = random_facts(&mut rng, n);
            sort_facts(&mut facts);
            for t in [
                low(),
                Thresholds::default(),
                only(FindingKind::PasswordSpraying),
            ] {
                let batch = reference::find(&facts, &t);
                fired.extend(batch.iter().map(|f| f.kind));
                high += batch.iter().filter(|f| !f.successes.is_empty()).count();
                let mut shuffled = facts.clone();
                for pass in 0..2 {
                    rng.shuffle(&mut shuffled);
                    assert_finds(
                        &shuffled,
                        &t,
                        &batch,
                        &format!("round {round}, pass {pass}"),
                    );
                }
            }
        }
        // The random facts exercise every kind, and bursts followed by logins.
        assert_eq!(fired.len(), FindingKind::ALL.len(), "{fired:?}");
        assert!(high > 0);
    }

    /// With only new clients on, or every count off (only the IAM findings
    /// left, and no failure kept at all), the collector still finds what
    /// the batch finds.
    #[test]
    fn collector_with_findings_off_equals_the_batch() {
        use crate::summary::sort_facts;
        use crate::summary::tests::{Rng, random_facts};
        let mut rng = Rng(23);
        let mut found = 0;
        for round in 0..20 {
            let mut facts = random_facts(&mut rng, [5, 50, 300][round % 3]);
            sort_facts(&mut facts);
            for t in [
                only(FindingKind::NewClientForUser),
                only(FindingKind::IamLoginNoPolicy),
            ] {
                let batch = reference::find(&facts, &t);
                found += batch.len();
                let mut shuffled = facts.clone();
                rng.shuffle(&mut shuffled);
                assert_finds(&shuffled, &t, &batch, &format!("round {round}"));
            }
        }
        assert!(found > 0);
        assert!(!Collector::new(&only(FindingKind::IamLoginNoPolicy)).keeps_fails);
    }

    /// The temporary file holds successful logins across many chunks and
    /// gives them back exactly.
    #[test]
    fn spill_round_trip_across_chunks() {
        let mut spill = LoginSpill::new(true);
        let n = 40_000u32;
        for i in 0..n {
            let login = Login {
                key: Key {
                    t: i64::from(i) * 1000 - 5,
                    start: if i.is_multiple_of(3) {
                        NO_START
                    } else {
                        -i64::from(i)
                    },
                    seq: u64::from(i) << 20,
                    server: i % 7,
                    pid: i,
                    id: IdCode(1),
                },
                user: i % 11,
                client: NO_NAME - i % 2,
            };
            spill.push(
                &login,
                &format!("server-{i}/{i}/é{}", "x".repeat((i % 40) as usize)),
            );
        }
        assert!(
            spill.in_file > 0 || spill.file.made().is_none(),
            "chunks went to the file"
        );
        let mut seen = 0u32;
        spill
            .read(&mut |login, id| {
                let i = seen;
                assert_eq!(login.key.t, i64::from(i) * 1000 - 5);
                assert_eq!(
                    login.key.start(),
                    (!i.is_multiple_of(3)).then_some(-i64::from(i))
                );
                assert_eq!((login.key.server, login.key.pid), (i % 7, i));
                assert_eq!(login.key.seq, u64::from(i) << 20);
                assert_eq!((login.user, login.client), (i % 11, NO_NAME - i % 2));
                assert_eq!(
                    id,
                    format!("server-{i}/{i}/é{}", "x".repeat((i % 40) as usize))
                );
                seen += 1;
            })
            .unwrap();
        assert_eq!(seen, n);
    }

    #[test]
    fn names_round_trip() {
        for k in FindingKind::ALL {
            assert_eq!(FindingKind::from_name(k.as_str()), Some(k));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::from_name(s.as_str()), Some(s));
        }
        assert!(Severity::High > Severity::Medium && Severity::Medium > Severity::Low);
        assert_eq!(human(4 * MIN + 30_000), "4m 30s");
        assert_eq!(human(2 * 60 * MIN + 5 * MIN), "2h 5m");
        assert_eq!(human(850), "850ms");
        assert_eq!(human(5 * MIN), "5m");
    }
}
