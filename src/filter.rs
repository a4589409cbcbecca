//! Which sessions `pgtrail audit` shows.
//!
//! A [`Filter`] is built from plain values ([`FilterSpec`], filled by the
//! CLI from its arguments; nothing here knows clap) and applied to finished
//! [`Session`]s. Filtering happens *after* stitching, so it never changes
//! what a session is: a session that started before `--since` is still
//! complete, with its `received` record and its evidence.
//!
//! Combination rules: several values of one criterion are OR-ed
//! (`--user a --user b` keeps sessions of `a` or `b`); different criteria
//! are AND-ed (`--user a --outcome failure` keeps failures of `a`). A
//! criterion whose session field is unknown does not match (a session with
//! no user is dropped by any `--user`).
//!
//! | criterion | matches |
//! |---|---|
//! | `user`, `database`, `app` | the exact, case-sensitive text; a value containing `*` is a glob where `*` matches any run of characters (including none). There is no other wildcard and no escape: `*` always means "anything". |
//! | `client` | an IP address (v4 or v6: the same address, IPv4-mapped IPv6 counted as IPv4), a CIDR (`10.0.0.0/8`, `fe80::/10`), `local` / `[local]` (Unix-domain sockets), or a host name (with `log_hostname`), compared as text, ignoring ASCII case. A session whose `client_addr` is a host name matches only that exact text, never an IP or CIDR. |
//! | `outcome` | `success`, `failure`, `abandoned` |
//! | `failure_class` | a failure class name (`password`, `pam`, …) |
//! | `since`, `until` | see [`Filter::matches`] for the time semantics and [`parse_time_bound`] for the accepted forms |

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, NaiveTime};

use crate::event::FailureClass;
use crate::session::{Outcome, Session};

/// The criteria as plain text, one field per command-line option.
/// Empty vectors and `None` mean "no constraint".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// `--user`: exact text, or a `*` glob.
    pub users: Vec<String>,
    /// `--database`: exact text, or a `*` glob.
    pub databases: Vec<String>,
    /// `--app`: exact `application_name`, or a `*` glob.
    pub apps: Vec<String>,
    /// `--client`: IP, CIDR, `local`/`[local]`, or host name.
    pub clients: Vec<String>,
    /// `--outcome`: `success`, `failure` or `abandoned`.
    pub outcomes: Vec<String>,
    /// `--failure-class`: a failure class name.
    pub failure_classes: Vec<String>,
    /// `--since`: see [`parse_time_bound`].
    pub since: Option<String>,
    /// `--until`: see [`parse_time_bound`].
    pub until: Option<String>,
}

/// A text criterion: exact by default, a `*` glob when the value has a `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TextPattern {
    Exact(String),
    Glob(String),
}

impl TextPattern {
    fn new(value: &str) -> TextPattern {
        if value.contains('*') {
            TextPattern::Glob(value.to_owned())
        } else {
            TextPattern::Exact(value.to_owned())
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            TextPattern::Exact(v) => v == text,
            TextPattern::Glob(p) => glob_match(p.as_bytes(), text.as_bytes()),
        }
    }
}

/// `*`-only glob over bytes. Literal runs are valid UTF-8, so matches fall
/// on character boundaries. Linear backtracking (one remembered star): no
/// exponential blow-up on patterns like `*a*a*a*b`.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// A `--client` criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientPattern {
    /// Unix-domain socket (`[local]`).
    Local,
    /// One address, or a network: `bits` leading bits of `addr` must match.
    Net { addr: IpAddr, bits: u8 },
    /// A host name (`log_hostname`), compared as text ignoring ASCII case.
    Host(String),
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`) as IPv4, so that either spelling
/// matches the other.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parses an address as PostgreSQL prints `%r`/`%h`, dropping an IPv6 zone
/// (`fe80::1%eth0`).
fn parse_addr(text: &str) -> Option<IpAddr> {
    let bare = match text.split_once('%') {
        Some((addr, _zone)) => addr,
        None => text,
    };
    bare.parse::<IpAddr>().ok().map(canonical)
}

const CLIENT_FORMS: &str = "expected an IP address (10.0.0.7, ::1), a CIDR (10.0.0.0/8, fe80::/10), \
     `local` for Unix-domain sockets, or a host name";

impl ClientPattern {
    fn parse(value: &str) -> Result<ClientPattern, String> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("local") || v.eq_ignore_ascii_case("[local]") {
            return Ok(ClientPattern::Local);
        }
        if let Some((net, bits)) = v.split_once('/') {
            let addr = parse_addr(net)
                .filter(|_| !net.contains('%'))
                .ok_or_else(|| {
                    format!("{value:?} is not a valid CIDR: bad address {net:?}; {CLIENT_FORMS}")
                })?;
            let max: u8 = if net.contains(':') { 128 } else { 32 };
            let bits: u8 = bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max && !bits.starts_with('+'))
                .ok_or_else(|| {
                    format!("{value:?} is not a valid CIDR: the prefix length must be 0..={max}; {CLIENT_FORMS}")
                })?;
            // `::ffff:10.0.0.0/104` is the IPv4 network 10.0.0.0/8.
            let bits = match addr {
                IpAddr::V4(_) if max == 128 => {
                    if bits < 96 {
                        return Err(format!(
                            "{value:?} is not a valid CIDR: an IPv4-mapped network needs a prefix of at least 96"
                        ));
                    }
                    bits - 96
                }
                _ => bits,
            };
            return Ok(ClientPattern::Net { addr, bits });
        }
        if let Some(addr) = parse_addr(v) {
            let bits = if addr.is_ipv4() { 32 } else { 128 };
            return Ok(ClientPattern::Net { addr, bits });
        }
        // Anything that looks like an address but did not parse is a typo,
        // not a host name.
        let looks_numeric = v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let host_chars = v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if v.is_empty() || looks_numeric || !host_chars {
            return Err(format!("{value:?} is not a valid client; {CLIENT_FORMS}"));
        }
        Ok(ClientPattern::Host(v.to_owned()))
    }

    fn matches(&self, client_addr: &str) -> bool {
        match self {
            ClientPattern::Local => client_addr == "[local]",
            ClientPattern::Host(name) => client_addr.eq_ignore_ascii_case(name),
            ClientPattern::Net { addr, bits } => match parse_addr(client_addr) {
                Some(session_addr) => in_network(session_addr, *addr, *bits),
                // A host name (log_hostname) never matches an IP or network.
                None => false,
            },
        }
    }
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            prefix_eq(u32::from(a).into(), u32::from(n).into(), 32, bits)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => prefix_eq(u128::from(a), u128::from(n), 128, bits),
        _ => false,
    }
}

/// Whether the first `bits` of two `width`-bit numbers agree.
fn prefix_eq(a: u128, b: u128, width: u32, bits: u8) -> bool {
    let bits = u32::from(bits).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (a >> shift) == (b >> shift)
}

/// Which sessions to keep. `Filter::default()` keeps every session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    users: Vec<TextPattern>,
    databases: Vec<TextPattern>,
    apps: Vec<TextPattern>,
    clients: Vec<ClientPattern>,
    outcomes: Vec<Outcome>,
    failure_classes: Vec<FailureClass>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
}

impl Filter {
    /// Validates and compiles `spec`. `now_ms` (milliseconds since the Unix
    /// epoch) anchors relative times such as `90m`. The error names the
    /// option and quotes the bad value.
    pub fn from_spec(spec: &FilterSpec, now_ms: i64) -> Result<Filter, String> {
        let text = |values: &[String]| values.iter().map(|v| TextPattern::new(v)).collect();
        let clients = spec
            .clients
            .iter()
            .map(|v| ClientPattern::parse(v).map_err(|e| format!("--client: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = spec
            .outcomes
            .iter()
            .map(|v| {
                Outcome::from_name(v.trim()).ok_or_else(|| {
                    let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                    format!(
                        "--outcome: unknown outcome {v:?}; expected one of: {}",
                        names.join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let failure_classes = spec
            .failure_classes
            .iter()
            .map(|v| {
                FailureClass::from_name(v.trim()).ok_or_else(|| {
                    let names: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
                    format!(
                        "--failure-class: unknown failure class {v:?}; expected one of: {}",
                        names.join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let since_ms = match &spec.since {
            Some(t) => Some(parse_time_bound(t, now_ms).map_err(|e| format!("--since: {e}"))?),
            None => None,
        };
        let until_ms = match &spec.until {
            Some(t) => Some(parse_time_bound(t, now_ms).map_err(|e| format!("--until: {e}"))?),
            None => None,
        };
        if let (Some(since), Some(until)) = (since_ms, until_ms)
            && since > until
        {
            return Err(format!(
                "--since {:?} ({}) is after --until {:?} ({}): no session can match",
                spec.since.as_deref().unwrap_or_default(),
                crate::time::format_rfc3339_ms(since),
                spec.until.as_deref().unwrap_or_default(),
                crate::time::format_rfc3339_ms(until),
            ));
        }
        Ok(Filter {
            users: text(&spec.users),
            databases: text(&spec.databases),
            apps: text(&spec.apps),
            clients,
            outcomes,
            failure_classes,
            since_ms,
            until_ms,
        })
    }

    /// True when the filter keeps every session.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.databases.is_empty()
            && self.apps.is_empty()
            && self.clients.is_empty()
            && self.outcomes.is_empty()
            && self.failure_classes.is_empty()
            && self.since_ms.is_none()
            && self.until_ms.is_none()
    }

    /// The resolved `--since`, milliseconds since the Unix epoch.
    pub fn since_ms(&self) -> Option<i64> {
        self.since_ms
    }

    /// The resolved `--until`, milliseconds since the Unix epoch.
    pub fn until_ms(&self) -> Option<i64> {
        self.until_ms
    }

    /// Whether `s` passes every criterion.
    ///
    /// Time semantics: a session matches the window `[since, until]` (both
    /// inclusive, either open) when it was active in it:
    /// - with a start time: `start <= until` and (`end >= since`, or the
    ///   session has no end — still open, or its end was never logged, so
    ///   it may have been active at `since`);
    /// - with no start time (the input began mid-session): judged by its
    ///   end alone, `since <= end <= until`;
    /// - with neither: matched only when no time bound is set.
    pub fn matches(&self, s: &Session) -> bool {
        fn any_text(patterns: &[TextPattern], value: Option<&str>) -> bool {
            patterns.is_empty() || value.is_some_and(|v| patterns.iter().any(|p| p.matches(v)))
        }
        any_text(&self.users, s.user.as_deref())
            && any_text(&self.databases, s.database.as_deref())
            && any_text(&self.apps, s.application_name.as_deref())
            && (self.clients.is_empty()
                || s.client_addr
                    .as_deref()
                    .is_some_and(|a| self.clients.iter().any(|c| c.matches(a))))
            && (self.outcomes.is_empty() || self.outcomes.contains(&s.outcome))
            && (self.failure_classes.is_empty()
                || s.failure_class
                    .is_some_and(|c| self.failure_classes.contains(&c)))
            && self.matches_time(s.start_ms, effective_end(s))
    }

    /// `start <= until` and `end >= since`; a session still open at the end
    /// of the input has no end and matches any `since`.
    fn matches_time(&self, start: Option<i64>, end: Option<i64>) -> bool {
        if self.since_ms.is_none() && self.until_ms.is_none() {
            return true;
        }
        let after_since = |t: i64| self.since_ms.is_none_or(|since| t >= since);
        let before_until = |t: i64| self.until_ms.is_none_or(|until| t <= until);
        match (start, end) {
            (Some(start), end) => before_until(start) && end.is_none_or(after_since),
            (None, Some(end)) => after_since(end) && before_until(end),
            (None, None) => false,
        }
    }
}

/// When a session stopped being active: its end record, else (for attempts
/// that just stopped, such as probes) its last record; none while open.
fn effective_end(s: &Session) -> Option<i64> {
    if s.end_reason == Some(crate::session::EndReason::Open) {
        return None;
    }
    s.end_ms.or(s.last_ms)
}

const TIME_FORMS: &str = "accepted forms: RFC 3339 (2026-11-28T14:00:00Z, 2026-11-28T16:00:00+02:00), \
     a date (2026-11-28, meaning 00:00 UTC), YYYY-MM-DD HH:MM[:SS] in UTC (2026-11-28 14:00), \
     or a duration back from now (45s, 90m, 1h30m, 2d, 3w)";

/// Parses a `--since`/`--until` value into milliseconds since the Unix
/// epoch.
///
/// Accepted forms:
/// - RFC 3339 with `Z` or an offset: `2026-11-28T14:00:00Z`,
///   `2026-11-28T16:00:00.250+02:00`;
/// - a date, `2026-11-28`: 00:00 UTC of that day;
/// - `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS` (optionally `.fff`, `T`
///   instead of the space, and a trailing ` UTC` or `Z`), read as UTC — the
///   form the table prints;
/// - a duration back from `now_ms`: one or more `<number><unit>` with unit
///   `s`, `m` (minutes), `h`, `d` or `w`: `45s`, `90m`, `1h30m`, `2d`, `3w`.
///
/// Errors quote the text and list these forms.
pub fn parse_time_bound(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    let fail = |why: &str| {
        if why.is_empty() {
            format!("invalid time {text:?}; {TIME_FORMS}")
        } else {
            format!("invalid time {text:?}: {why}; {TIME_FORMS}")
        }
    };
    if t.is_empty() {
        return Err(fail("empty"));
    }
    let b = t.as_bytes();
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return parse_absolute(t).map_err(fail);
    }
    let back = parse_relative(t).map_err(fail)?;
    now_ms
        .checked_sub(back)
        .ok_or_else(|| fail("duration too large"))
}

fn parse_absolute(t: &str) -> Result<i64, &'static str> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    let b = t.as_bytes();
    let date = parse_date(b.get(..10).ok_or("")?)?;
    if b.len() == 10 {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis())
            .ok_or("no such date");
    }
    if !matches!(b[10], b' ' | b'T' | b't') {
        return Err("");
    }
    let mut rest = &t[11..];
    for suffix in [" UTC", "Z", "z"] {
        if let Some(r) = rest.strip_suffix(suffix) {
            rest = r;
            break;
        }
    }
    let time = parse_clock(rest)?;
    Ok(date.and_time(time).and_utc().timestamp_millis())
}

/// Strict `YYYY-MM-DD` (chrono's `%m` would accept one digit).
fn parse_date(b: &[u8]) -> Result<NaiveDate, &'static str> {
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err("");
    }
    let num = |r: std::ops::Range<usize>| -> u32 {
        b[r].iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'))
    };
    NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10)).ok_or("no such date")
}

/// Strict `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f…` (milliseconds kept).
fn parse_clock(t: &str) -> Result<NaiveTime, &'static str> {
    let (main, frac) = match t.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (t, None),
    };
    let parts: Vec<&str> = main.split(':').collect();
    let two = |p: &str| -> Result<u32, &'static str> {
        if p.len() == 2 && p.bytes().all(|c| c.is_ascii_digit()) {
            p.parse::<u32>().map_err(|_| "")
        } else {
            Err("")
        }
    };
    let (h, m, s) = match parts.as_slice() {
        [h, m] if frac.is_none() => (two(h)?, two(m)?, 0),
        [h, m, s] => (two(h)?, two(m)?, two(s)?),
        _ => return Err(""),
    };
    let milli = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()) => {
            let digits: String = f.chars().chain("00".chars()).take(3).collect();
            digits.parse::<u32>().map_err(|_| "")?
        }
        Some(_) => return Err(""),
    };
    NaiveTime::from_hms_milli_opt(h, m, s, milli).ok_or("no such time of day")
}

/// Parses a duration such as `5m`, `1h30m`, `2d` (units s, m, h, d, w).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let ms = parse_relative(text.trim()).map_err(|why| {
        let why = if why.is_empty() {
            "expected <number><unit>"
        } else {
            why
        };
        format!("invalid duration {text:?}: {why}, e.g. 45s, 5m, 1h30m, 2d")
    })?;
    Ok(std::time::Duration::from_millis(ms.max(0) as u64))
}

/// `1h30m` → milliseconds. Units may come in any order; each at most once.
fn parse_relative(t: &str) -> Result<i64, &'static str> {
    let mut total: i64 = 0;
    let mut seen = [false; 5];
    let mut rest = t.as_bytes();
    if rest.is_empty() {
        return Err("");
    }
    while !rest.is_empty() {
        let n_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n_len == 0 {
            return Err("");
        }
        let mut n: i64 = 0;
        for &c in &rest[..n_len] {
            n = n
                .checked_mul(10)
                .and_then(|v| v.checked_add(i64::from(c - b'0')))
                .ok_or("duration too large")?;
        }
        let (slot, unit_ms) = match rest.get(n_len) {
            Some(b's') => (0, 1_000),
            Some(b'm') => (1, 60_000),
            Some(b'h') => (2, 3_600_000),
            Some(b'd') => (3, 86_400_000),
            Some(b'w') => (4, 604_800_000),
            None => return Err("a duration needs a unit (s, m, h, d or w)"),
            Some(_) => return Err("unknown duration unit (use s, m, h, d or w)"),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err("a duration unit appears twice");
        }
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or("duration too large")?;
        rest = &rest[n_len + 1..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::{Event, EventKind, Provenance};
    use crate::session::{EndReason, stitch};

    const NOW: i64 = 1_764_345_600_000; // 2025-11-28T16:00:00Z

    fn ms(rfc: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc)
            .map(|d| d.timestamp_millis())
            .unwrap_or(i64::MIN)
    }

    fn event(kind: EventKind, pid: u32, time: Option<i64>, line: u64) -> Event {
        let mut e = Event::new(kind, crate::name::Name::new("db1"));
        e.pid = Some(pid);
        e.time_ms = time;
        e.source = Some(Provenance {
            input: crate::name::Name::new("pg.log"),
            line,
            event_id: None,
        });
        e
    }

    /// A session of `user`@`db` from `addr`, `received` at `start`; ended by
    /// a disconnection at `end` when given, else left open.
    struct Spec<'a> {
        pid: u32,
        user: &'a str,
        db: &'a str,
        app: &'a str,
        addr: &'a str,
        start: Option<i64>,
        end: Option<i64>,
        fail: Option<FailureClass>,
    }

    impl Default for Spec<'_> {
        fn default() -> Self {
            Spec {
                pid: 100,
                user: "alice",
                db: "app",
                app: "psql",
                addr: "10.1.2.3",
                start: Some(ms("2025-11-28T10:00:00Z")),
                end: Some(ms("2025-11-28T11:00:00Z")),
                fail: None,
            }
        }
    }

    fn session(spec: Spec<'_>) -> Session {
        let mut events = Vec::new();
        if spec.start.is_some() {
            let mut r = event(EventKind::Received, spec.pid, spec.start, 1);
            r.client_addr = Some(spec.addr.into());
            r.client_port = Some(50000);
            events.push(r);
        }
        match spec.fail {
            Some(class) => {
                let mut f = event(EventKind::AuthFailed, spec.pid, spec.end, 2);
                f.user = Some(spec.user.into());
                f.database = Some(spec.db.into());
                f.client_addr = Some(spec.addr.into());
                f.failure_class = Some(class);
                f.message = "password authentication failed".to_owned();
                events.push(f);
            }
            None => {
                let mut a = event(EventKind::Authorized, spec.pid, spec.start.or(spec.end), 2);
                a.user = Some(spec.user.into());
                a.database = Some(spec.db.into());
                a.application_name = Some(spec.app.into());
                a.client_addr = Some(spec.addr.into());
                if spec.start.is_some() {
                    events.push(a);
                }
                if let Some(end) = spec.end {
                    let mut d = event(EventKind::Disconnected, spec.pid, Some(end), 3);
                    d.user = Some(spec.user.into());
                    d.database = Some(spec.db.into());
                    d.client_addr = Some(spec.addr.into());
                    d.session_duration_ms = Some(1000);
                    events.push(d);
                }
            }
        }
        let mut sessions = stitch(events);
        assert_eq!(sessions.len(), 1, "helper builds one session");
        sessions.remove(0)
    }

    fn filter(f: impl FnOnce(&mut FilterSpec)) -> Filter {
        let mut spec = FilterSpec::default();
        f(&mut spec);
        match Filter::from_spec(&spec, NOW) {
            Ok(filter) => filter,
            Err(e) => panic!("filter {spec:?}: {e}"),
        }
    }

    fn client_matches(pattern: &str, addr: &str) -> bool {
        filter(|s| s.clients = vec![pattern.to_owned()]).matches(&session(Spec {
            addr,
            ..Spec::default()
        }))
    }

    #[test]
    fn empty_filter_keeps_everything() {
        let f = Filter::default();
        assert!(f.is_empty());
        assert!(filter(|_| {}).is_empty());
        assert!(f.matches(&session(Spec::default())));
        assert!(f.matches(&session(Spec {
            start: None,
            end: None,
            fail: Some(FailureClass::Password),
            ..Spec::default()
        })));
        assert!(!filter(|s| s.users = vec!["x".into()]).is_empty());
        assert!(!filter(|s| s.since = Some("1h".into())).is_empty());
    }

    #[test]
    fn cidr_v4() {
        assert!(client_matches("10.0.0.0/8", "10.1.2.3"));
        assert!(client_matches("10.1.2.0/24", "10.1.2.3"));
        assert!(!client_matches("10.1.3.0/24", "10.1.2.3"));
        assert!(client_matches("0.0.0.0/0", "10.1.2.3"));
        assert!(client_matches("10.1.2.3", "10.1.2.3"));
        assert!(client_matches("10.1.2.3/32", "10.1.2.3"));
        assert!(!client_matches("10.1.2.4", "10.1.2.3"));
        // Host bits in the network are ignored, as PostgreSQL's inet does.
        assert!(client_matches("10.9.9.9/8", "10.1.2.3"));
        // IPv4-mapped IPv6, either side.
        assert!(client_matches("10.0.0.0/8", "::ffff:10.1.2.3"));
        assert!(client_matches("::ffff:10.1.2.3", "10.1.2.3"));
        assert!(client_matches("::ffff:10.0.0.0/104", "10.1.2.3"));
        assert!(!client_matches("10.0.0.0/8", "::1"));
    }

    #[test]
    fn cidr_v6() {
        assert!(client_matches("fe80::/10", "fe80::1"));
        assert!(client_matches("fe80::/10", "fe80::1%eth0"));
        assert!(client_matches("fe80::/10", "febf::1"));
        assert!(!client_matches("fe80::/10", "fec0::1"));
        assert!(client_matches("::1", "::1"));
        assert!(client_matches("::1/128", "0:0:0:0:0:0:0:1"));
        assert!(client_matches("2001:db8::/32", "2001:db8:ffff::5"));
        assert!(!client_matches("2001:db8::/32", "2001:db9::5"));
        assert!(!client_matches("::/0", "10.1.2.3"));
        assert!(client_matches("::/0", "2001:db8::1"));
    }

    #[test]
    fn local_and_host_names() {
        assert!(client_matches("local", "[local]"));
        assert!(client_matches("[local]", "[local]"));
        assert!(client_matches("LOCAL", "[local]"));
        assert!(!client_matches("local", "127.0.0.1"));
        assert!(!client_matches("127.0.0.0/8", "[local]"));
        // log_hostname: a name matches only its own text.
        assert!(client_matches("app1.example.com", "app1.example.com"));
        assert!(client_matches("APP1.example.com", "app1.example.com"));
        assert!(!client_matches("app1", "app1.example.com"));
        assert!(!client_matches("10.0.0.0/8", "app1.example.com"));
        assert!(!client_matches("0.0.0.0/0", "app1.example.com"));
        // No client address known: no client criterion matches.
        let mut s = session(Spec::default());
        s.client_addr = None;
        assert!(!filter(|f| f.clients = vec!["0.0.0.0/0".into()]).matches(&s));
    }

    #[test]
    fn bad_clients_are_errors_naming_the_text() {
        for bad in [
            "10.0.0.0/33",
            "fe80::/129",
            "10.0.0.256",
            "10.0.0.0/x",
            "nope/8",
            "a b",
            "",
            "1.2.3",
            "::ffff:10.0.0.0/8",
            "10.0.0.0/+8",
        ] {
            let spec = FilterSpec {
                clients: vec![bad.to_owned()],
                ..FilterSpec::default()
            };
            match Filter::from_spec(&spec, NOW) {
                Ok(f) => panic!("{bad:?} accepted as {f:?}"),
                Err(e) => {
                    assert!(e.starts_with("--client: "), "{e}");
                    assert!(e.contains(&format!("{bad:?}")), "{e}");
                }
            }
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"app_*", b"app_ro"));
        assert!(!glob_match(b"app_*", b"xapp_ro"));
        assert!(glob_match(b"*_ro", b"app_ro"));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(glob_match(b"a*b*c", b"abc"));
        assert!(!glob_match(b"a*b*c", b"abcd"));
        assert!(glob_match(b"*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaab"));
        assert!(!glob_match(b"*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaa"));
        assert!(glob_match(b"r\xc3\xb4le*", "rôle_x".as_bytes()));
        assert!(glob_match(b"**", b"x"));

        let s = session(Spec {
            user: "app_ro",
            db: "orders_eu",
            app: "pgbench",
            ..Spec::default()
        });
        assert!(filter(|f| f.users = vec!["app_*".into()]).matches(&s));
        assert!(filter(|f| f.users = vec!["*_ro".into()]).matches(&s));
        assert!(
            !filter(|f| f.users = vec!["app".into()]).matches(&s),
            "exact by default"
        );
        assert!(
            !filter(|f| f.users = vec!["APP_RO".into()]).matches(&s),
            "case-sensitive"
        );
        assert!(filter(|f| f.databases = vec!["orders_*".into()]).matches(&s));
        assert!(filter(|f| f.apps = vec!["pg*".into()]).matches(&s));
        assert!(!filter(|f| f.apps = vec!["psql".into()]).matches(&s));
    }

    #[test]
    fn combined_criteria_or_within_and_across() {
        let alice = session(Spec::default());
        let bob = session(Spec {
            user: "bob",
            fail: Some(FailureClass::Password),
            ..Spec::default()
        });
        let carol = session(Spec {
            user: "carol",
            addr: "192.168.0.5",
            ..Spec::default()
        });

        let f = filter(|f| f.users = vec!["alice".into(), "bob".into()]);
        assert!(f.matches(&alice) && f.matches(&bob) && !f.matches(&carol));

        let f = filter(|f| {
            f.users = vec!["alice".into(), "bob".into()];
            f.outcomes = vec!["failure".into()];
        });
        assert!(!f.matches(&alice) && f.matches(&bob) && !f.matches(&carol));

        let f = filter(|f| {
            f.outcomes = vec!["success".into(), "abandoned".into()];
            f.clients = vec!["192.168.0.0/16".into(), "local".into()];
        });
        assert!(!f.matches(&alice) && !f.matches(&bob) && f.matches(&carol));

        let f = filter(|f| f.failure_classes = vec!["pam".into(), "password".into()]);
        assert!(!f.matches(&alice) && f.matches(&bob));
        let f = filter(|f| f.failure_classes = vec!["pam".into()]);
        assert!(!f.matches(&bob));

        let f = filter(|f| {
            f.users = vec!["bob".into()];
            f.databases = vec!["other".into()];
        });
        assert!(!f.matches(&bob));
    }

    #[test]
    fn bad_outcome_and_class_list_the_names() {
        let e = Filter::from_spec(
            &FilterSpec {
                outcomes: vec!["ok".into()],
                ..FilterSpec::default()
            },
            NOW,
        )
        .err()
        .unwrap_or_default();
        assert!(
            e.contains("\"ok\"") && e.contains("success, failure, abandoned"),
            "{e}"
        );
        let e = Filter::from_spec(
            &FilterSpec {
                failure_classes: vec!["passwd".into()],
                ..FilterSpec::default()
            },
            NOW,
        )
        .err()
        .unwrap_or_default();
        assert!(
            e.contains("\"passwd\"") && e.contains("password, role_missing"),
            "{e}"
        );
    }

    #[test]
    fn time_window_semantics() {
        let window = |since: &str, until: &str| {
            filter(|f| {
                f.since = Some(since.into());
                f.until = Some(until.into());
            })
        };
        let f = window("2025-11-28T12:00:00Z", "2025-11-28T13:00:00Z");
        // Entirely before, entirely after, spanning, inside.
        let before = session(Spec::default()); // 10:00–11:00
        let after = session(Spec {
            start: Some(ms("2025-11-28T14:00:00Z")),
            end: Some(ms("2025-11-28T15:00:00Z")),
            ..Spec::default()
        });
        let spanning = session(Spec {
            start: Some(ms("2025-11-28T11:00:00Z")),
            end: Some(ms("2025-11-28T14:00:00Z")),
            ..Spec::default()
        });
        let inside = session(Spec {
            start: Some(ms("2025-11-28T12:10:00Z")),
            end: Some(ms("2025-11-28T12:20:00Z")),
            ..Spec::default()
        });
        assert!(!f.matches(&before));
        assert!(!f.matches(&after));
        assert!(f.matches(&spanning));
        assert!(f.matches(&inside));

        // Started before --since, still open: active in the window.
        let open = session(Spec {
            end: None,
            ..Spec::default()
        });
        assert_eq!(open.end_reason, Some(EndReason::Open));
        assert!(f.matches(&open));
        // Open, but started after --until.
        let late_open = session(Spec {
            start: Some(ms("2025-11-28T13:00:01Z")),
            end: None,
            ..Spec::default()
        });
        assert!(!f.matches(&late_open));

        // Bounds are inclusive.
        let edge = window("2025-11-28T11:00:00Z", "2025-11-28T11:00:00Z");
        assert!(edge.matches(&before));
        let edge = window("2025-11-28T10:00:00Z", "2025-11-28T10:00:00Z");
        assert!(edge.matches(&before));

        // --since alone: a session spanning it is kept, whole.
        let since = filter(|f| f.since = Some("2025-11-28T10:30:00Z".into()));
        assert!(since.matches(&before));
        assert_eq!(before.start_ms, Some(ms("2025-11-28T10:00:00Z")));
        let since = filter(|f| f.since = Some("2025-11-28T11:00:01Z".into()));
        assert!(!since.matches(&before));
        // --until alone.
        let until = filter(|f| f.until = Some("2025-11-28T09:59:59Z".into()));
        assert!(!until.matches(&before));
        let until = filter(|f| f.until = Some("2025-11-28T10:00:00Z".into()));
        assert!(until.matches(&before));
    }

    #[test]
    fn sessions_without_start_or_times() {
        // A session with no time at all (a prefix without %t/%m):
        let timeless = session(Spec {
            start: None,
            end: None,
            fail: Some(FailureClass::Password),
            ..Spec::default()
        });
        assert_eq!((timeless.start_ms, timeless.end_ms), (None, None));
        assert!(filter(|_| {}).matches(&timeless));
        assert!(filter(|f| f.users = vec!["alice".into()]).matches(&timeless));
        assert!(!filter(|f| f.since = Some("2d".into())).matches(&timeless));
        assert!(!filter(|f| f.until = Some("2d".into())).matches(&timeless));

        // No start, an end: judged by the end. (`stitch` uses the first
        // record's time as the start, so this needs a record without a
        // time followed by one with a time; checked on the rule itself.)
        let f = Filter {
            since_ms: Some(100),
            until_ms: Some(200),
            ..Filter::default()
        };
        assert!(f.matches_time(None, Some(150)));
        assert!(f.matches_time(None, Some(100)));
        assert!(f.matches_time(None, Some(200)));
        assert!(!f.matches_time(None, Some(99)));
        assert!(!f.matches_time(None, Some(201)));
        assert!(!f.matches_time(None, None));
        let f = Filter {
            since_ms: Some(100),
            ..Filter::default()
        };
        assert!(f.matches_time(Some(0), None));
        assert!(!f.matches_time(Some(0), Some(99)));
    }

    #[test]
    fn since_after_until_is_an_error() {
        let spec = FilterSpec {
            since: Some("2025-11-28".into()),
            until: Some("2025-11-27".into()),
            ..FilterSpec::default()
        };
        let e = Filter::from_spec(&spec, NOW).err().unwrap_or_default();
        assert!(e.contains("after --until"), "{e}");
    }

    #[test]
    fn absolute_times() {
        let p = |t: &str| parse_time_bound(t, NOW);
        assert_eq!(p("2026-11-28T14:00:00Z"), Ok(ms("2026-11-28T14:00:00Z")));
        assert_eq!(
            p("2026-11-28T16:00:00+02:00"),
            Ok(ms("2026-11-28T14:00:00Z"))
        );
        assert_eq!(
            p("2026-11-28T09:00:00-05:00"),
            Ok(ms("2026-11-28T14:00:00Z"))
        );
        assert_eq!(
            p("2026-11-28T14:00:00.250Z"),
            Ok(ms("2026-11-28T14:00:00.250Z"))
        );
        assert_eq!(p("2026-11-28"), Ok(ms("2026-11-28T00:00:00Z")));
        assert_eq!(p(" 2026-11-28 "), Ok(ms("2026-11-28T00:00:00Z")));
        assert_eq!(p("2026-11-28 14:00"), Ok(ms("2026-11-28T14:00:00Z")));
        assert_eq!(p("2026-11-28 14:00:07"), Ok(ms("2026-11-28T14:00:07Z")));
        assert_eq!(p("2026-11-28T14:00"), Ok(ms("2026-11-28T14:00:00Z")));
        assert_eq!(
            p("2026-11-28 14:00:07.5"),
            Ok(ms("2026-11-28T14:00:07.500Z"))
        );
        assert_eq!(p("2026-11-28 14:00:07 UTC"), Ok(ms("2026-11-28T14:00:07Z")));
        assert_eq!(p("2024-02-29"), Ok(ms("2024-02-29T00:00:00Z")));
    }

    #[test]
    fn relative_times() {
        let p = |t: &str| parse_time_bound(t, NOW);
        assert_eq!(p("45s"), Ok(NOW - 45_000));
        assert_eq!(p("90m"), Ok(NOW - 90 * 60_000));
        assert_eq!(p("2h"), Ok(NOW - 2 * 3_600_000));
        assert_eq!(p("1h30m"), Ok(NOW - 90 * 60_000));
        assert_eq!(p("2d"), Ok(NOW - 2 * 86_400_000));
        assert_eq!(p("3w"), Ok(NOW - 21 * 86_400_000));
        assert_eq!(
            p("1d2h3m4s"),
            Ok(NOW - (86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4000))
        );
        assert_eq!(p("0s"), Ok(NOW));
    }

    #[test]
    fn bad_times_name_the_text_and_the_forms() {
        for bad in [
            "",
            "yesterday",
            "90",
            "90x",
            "1h1h",
            "h",
            "1.5h",
            "-2d",
            "2026-13-01",
            "2026-02-30",
            "2026-11-28 25:00",
            "2026-11-28 14:0",
            "2026-11-28 14:00:00 CET",
            "2026-1-28",
            "2026-11-28X14:00",
            "99999999999999999999s",
            "9999999999999w",
            "1h 30m",
            "2026-11-28T14:00:00+25:00",
        ] {
            match parse_time_bound(bad, NOW) {
                Ok(v) => panic!("{bad:?} accepted as {v}"),
                Err(e) => {
                    assert!(e.contains(&format!("{bad:?}")), "{e}");
                    assert!(e.contains("RFC 3339") && e.contains("1h30m"), "{e}");
                }
            }
        }
        let e = parse_time_bound("2026-02-30", NOW)
            .err()
            .unwrap_or_default();
        assert!(e.contains("no such date"), "{e}");
        let spec = FilterSpec {
            since: Some("soon".into()),
            ..FilterSpec::default()
        };
        let e = Filter::from_spec(&spec, NOW).err().unwrap_or_default();
        assert!(e.starts_with("--since: invalid time \"soon\""), "{e}");
        let spec = FilterSpec {
            until: Some("later".into()),
            ..FilterSpec::default()
        };
        let e = Filter::from_spec(&spec, NOW).err().unwrap_or_default();
        assert!(e.starts_with("--until: invalid time \"later\""), "{e}");
    }
}
