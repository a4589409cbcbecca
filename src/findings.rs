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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use crate::event::FailureClass;
use crate::session::Outcome;
use crate::summary::SessionFacts;
use crate::summary::session_time;

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
    pub sessions: Vec<String>,
    /// The successful logins that made a burst `high` (session ids, time
    /// order); empty otherwise.
    pub successes: Vec<String>,
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

/// A timed session.
#[derive(Clone, Copy)]
struct Timed<'s> {
    t: i64,
    s: &'s SessionFacts,
}

/// Maximal bursts over time-sorted `times`: index ranges (inclusive) that
/// are unions of overlapping windows of at most `window` ms holding at least
/// `min` items. A two-pointer sweep, O(n).
fn bursts(times: &[i64], min: usize, window: i64) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if min == 0 {
        return out;
    }
    let mut left = 0;
    let mut current: Option<(usize, usize)> = None;
    for (right, &t) in times.iter().enumerate() {
        while left < right && t.saturating_sub(times[left]) > window {
            left += 1;
        }
        if right + 1 - left >= min {
            current = merge(&mut out, current, left, right);
        }
    }
    out.extend(current);
    out
}

/// Like [`bursts`], but a window qualifies when its items name at least
/// `min` distinct keys.
fn distinct_bursts(items: &[(i64, &str)], min: usize, window: i64) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if min == 0 {
        return out;
    }
    let mut left = 0;
    let mut current: Option<(usize, usize)> = None;
    let mut in_window: HashMap<&str, usize> = HashMap::new();
    for (right, &(t, key)) in items.iter().enumerate() {
        *in_window.entry(key).or_default() += 1;
        while left < right && t.saturating_sub(items[left].0) > window {
            let gone = items[left].1;
            if let Some(n) = in_window.get_mut(gone) {
                *n -= 1;
                if *n == 0 {
                    in_window.remove(gone);
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
pub fn find(sessions: &[SessionFacts], t: &Thresholds) -> Vec<Finding> {
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
            x.s.outcome == Outcome::Failure && x.s.failure_class.is_some_and(is_credential_failure)
        })
        .collect();
    let mut index: SuccessIndex<'_> = HashMap::new();
    for x in &timed {
        if x.s.outcome == Outcome::Success
            && let (Some(user), Some(client)) = (x.s.user.as_deref(), x.s.client_addr.as_deref())
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
        sessions: ids(burst),
        successes,
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
    let finding = |kind, severity, subject: &str, group: &[Timed<'_>], summary: String| Finding {
        kind,
        severity,
        subject: subject.to_owned(),
        first_ms: group.first().map_or(0, |x| x.t),
        last_ms: group.last().map_or(0, |x| x.t),
        count: group.len(),
        distinct_users: None,
        sessions: ids(group),
        successes: group
            .iter()
            .filter(|x| x.s.outcome == Outcome::Success)
            .map(|x| x.s.session_id.to_string())
            .collect(),
        summary,
    };
    let succeeded = |g: &[Timed<'_>]| g.iter().filter(|x| x.s.outcome == Outcome::Success).count();

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
fn new_clients(timed: &[Timed<'_>], max_known: usize, baseline: i64, findings: &mut Vec<Finding>) {
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
        let (Some(user), Some(client)) = (x.s.user.as_deref(), x.s.client_addr.as_deref()) else {
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
                        sessions: ids(&evidence),
                        successes: Vec::new(),
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

#[cfg(test)]
mod tests {
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
        assert_eq!(b.sessions[0], "db1/0/".to_owned() + &T0.to_string());
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
            f[0].sessions.last().unwrap(),
            &format!("db1/5/{}", T0 + 2 * HOUR + 2 * MIN)
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
            .map(|x| x.sessions.last().unwrap().clone())
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
        use std::sync::Arc;
        let events: Vec<Event> = (0..20)
            .map(|i| {
                let mut e = Event::new(EventKind::AuthFailed, Arc::from("db1"));
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
