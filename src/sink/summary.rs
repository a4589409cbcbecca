//! Output of `pgtrail summary`: one JSON document (everything, stable field
//! names) or a text report for a responder (top rows of each breakdown,
//! findings with a few session ids).
//!
//! Client-controlled text (user, database, client host names, application
//! names, server labels from file names, and the finding sentences quoting
//! them) is printed through [`escape_text`] in the text report, so a name
//! cannot move the cursor, change colours or forge a line. JSON escapes by
//! itself.

use std::io::{self, Write};

use serde::Serialize;

use crate::findings::{Finding, SessionIds, Severity, Thresholds};
use crate::sink::table;
use crate::summary::{MinuteCount, Row, Summary, UserRow};
use crate::time::format_rfc3339_ms;

/// Rows shown per breakdown in the text report.
pub const TABLE_ROWS: usize = 20;
/// Session ids shown per finding in the text report.
pub const FINDING_SESSIONS: usize = 5;
/// Clients shown per user in the text report.
pub const USER_CLIENTS: usize = 3;
/// Busiest minutes shown in the text report.
pub const BUSY_MINUTES: usize = 10;
/// Longest name shown in a table cell (longer ones end in `…`; JSON has
/// them whole).
pub const CELL_CHARS: usize = 48;
/// How a missing key (no user, no client address, …) is shown in the text
/// report; JSON has `null`.
pub const UNKNOWN: &str = "(unknown)";

// ---------------------------------------------------------------- JSON ---

#[derive(Serialize)]
struct WireTotals {
    attempts: u64,
    success: u64,
    failure: u64,
    abandoned: u64,
    suspect: u64,
    without_time: u64,
}

#[derive(Serialize)]
struct WireRow<'a> {
    key: Option<&'a str>,
    attempts: u64,
    success: u64,
    failure: u64,
    abandoned: u64,
    first_seen: Option<String>,
    last_seen: Option<String>,
}

#[derive(Serialize)]
struct WireUserRow<'a> {
    key: Option<&'a str>,
    attempts: u64,
    success: u64,
    failure: u64,
    abandoned: u64,
    first_seen: Option<String>,
    last_seen: Option<String>,
    distinct_clients: usize,
    clients: &'a [String],
}

#[derive(Serialize)]
struct WireMinute {
    minute: Option<String>,
    failures: u64,
}

/// The failures per minute, each made as it is written (a long log has
/// hundreds of thousands of minutes: no list of their texts is held).
struct WireMinutes<'a>(&'a [MinuteCount]);

impl Serialize for WireMinutes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(wire_minute))
    }
}

#[derive(Serialize)]
struct WireFinding<'a> {
    kind: &'static str,
    severity: &'static str,
    subject: &'a str,
    first_seen: Option<String>,
    last_seen: Option<String>,
    count: usize,
    distinct_users: Option<usize>,
    sessions: WireIds<'a>,
    successes: WireIds<'a>,
    summary: &'a str,
}

/// Session ids as a JSON array of strings.
struct WireIds<'a>(&'a SessionIds);

impl Serialize for WireIds<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for id in self.0.iter() {
            let id = id.map_err(|e| S::Error::custom(format!("reading session ids back: {e}")))?;
            seq.serialize_element(&id)?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct WireCountWindow {
    failures: usize,
    window_ms: u64,
}

#[derive(Serialize)]
struct WireSpraying {
    users: usize,
    window_ms: u64,
}

#[derive(Serialize)]
struct WireNewClient {
    max_known_clients: usize,
    baseline_ms: u64,
}

#[derive(Serialize)]
struct WireThresholds {
    brute_force_user: WireCountWindow,
    brute_force_client: WireCountWindow,
    password_spraying: WireSpraying,
    repeated_iam_failures: WireCountWindow,
    new_client_for_user: WireNewClient,
}

#[derive(Serialize)]
struct WireSummary<'a> {
    totals: WireTotals,
    first_seen: Option<String>,
    last_seen: Option<String>,
    by_user: Vec<WireUserRow<'a>>,
    by_client: Vec<WireRow<'a>>,
    by_failure_class: Vec<WireRow<'a>>,
    by_server: Vec<WireRow<'a>>,
    by_database: Vec<WireRow<'a>>,
    failures_per_minute: WireMinutes<'a>,
    failures_peak_minute: Option<WireMinute>,
    failures_without_time: u64,
    findings: Vec<WireFinding<'a>>,
    thresholds: WireThresholds,
}

/// RFC 3339 time, or `None` when absent or not representable.
fn time(ms: Option<i64>) -> Option<String> {
    ms.map(format_rfc3339_ms).filter(|s| !s.is_empty())
}

fn wire_row(r: &Row) -> WireRow<'_> {
    WireRow {
        key: r.key.as_deref(),
        attempts: r.attempts,
        success: r.success,
        failure: r.failure,
        abandoned: r.abandoned,
        first_seen: time(r.first_seen),
        last_seen: time(r.last_seen),
    }
}

fn wire_user(u: &UserRow) -> WireUserRow<'_> {
    WireUserRow {
        key: u.row.key.as_deref(),
        attempts: u.row.attempts,
        success: u.row.success,
        failure: u.row.failure,
        abandoned: u.row.abandoned,
        first_seen: time(u.row.first_seen),
        last_seen: time(u.row.last_seen),
        distinct_clients: u.distinct_clients,
        clients: &u.clients,
    }
}

fn wire_minute(m: &MinuteCount) -> WireMinute {
    WireMinute {
        minute: time(Some(m.minute_ms)),
        failures: m.failures,
    }
}

fn wire_finding(f: &Finding) -> WireFinding<'_> {
    WireFinding {
        kind: f.kind.as_str(),
        severity: f.severity.as_str(),
        subject: &f.subject,
        first_seen: time(Some(f.first_ms)),
        last_seen: time(Some(f.last_ms)),
        count: f.count,
        distinct_users: f.distinct_users,
        sessions: WireIds(&f.sessions),
        successes: WireIds(&f.successes),
        summary: &f.summary,
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn wire_thresholds(t: &Thresholds) -> WireThresholds {
    WireThresholds {
        brute_force_user: WireCountWindow {
            failures: t.brute_force_user_failures,
            window_ms: ms(t.brute_force_user_window),
        },
        brute_force_client: WireCountWindow {
            failures: t.brute_force_client_failures,
            window_ms: ms(t.brute_force_client_window),
        },
        password_spraying: WireSpraying {
            users: t.spraying_users,
            window_ms: ms(t.spraying_window),
        },
        repeated_iam_failures: WireCountWindow {
            failures: t.iam_failures,
            window_ms: ms(t.iam_window),
        },
        new_client_for_user: WireNewClient {
            max_known_clients: t.new_client_max_known,
            baseline_ms: ms(t.new_client_baseline),
        },
    }
}

/// Writes the summary, findings and thresholds as one pretty JSON document
/// (followed by a newline). Field names are part of the interface.
pub fn write_json<W: Write>(
    out: &mut W,
    summary: &Summary,
    findings: &[Finding],
    thresholds: &Thresholds,
) -> io::Result<()> {
    let t = &summary.totals;
    let wire = WireSummary {
        totals: WireTotals {
            attempts: t.attempts,
            success: t.success,
            failure: t.failure,
            abandoned: t.abandoned,
            suspect: t.suspect,
            without_time: t.without_time,
        },
        first_seen: time(summary.first_seen),
        last_seen: time(summary.last_seen),
        by_user: summary.by_user.iter().map(wire_user).collect(),
        by_client: summary.by_client.iter().map(wire_row).collect(),
        by_failure_class: summary.by_failure_class.iter().map(wire_row).collect(),
        by_server: summary.by_server.iter().map(wire_row).collect(),
        by_database: summary.by_database.iter().map(wire_row).collect(),
        failures_per_minute: WireMinutes(&summary.failures_per_minute),
        failures_peak_minute: summary.peak_minute.as_ref().map(wire_minute),
        failures_without_time: summary.failures_without_time,
        findings: findings.iter().map(wire_finding).collect(),
        thresholds: wire_thresholds(thresholds),
    };
    serde_json::to_writer_pretty(&mut *out, &wire).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

// ---------------------------------------------------------------- text ---

/// Client-controlled text made safe to print on a terminal: control
/// characters, line separators and invisible formatting characters (bidi
/// overrides, zero-width characters, tags) become visible escapes (`\n`,
/// `\x1b`, `\u{202e}`). The same rendering as the session table
/// ([`table::sanitize`]), so a name looks the same in every report.
pub fn escape_text(s: &str) -> String {
    table::sanitize(s)
}

fn key_text(key: Option<&str>) -> String {
    match key {
        Some(k) => clip(escape_text(k)),
        None => UNKNOWN.to_owned(),
    }
}

/// Shortens escaped text to [`CELL_CHARS`] characters, marking the cut.
fn clip(text: String) -> String {
    if text.chars().count() <= CELL_CHARS {
        return text;
    }
    let mut out: String = text.chars().take(CELL_CHARS - 1).collect();
    out.push('…');
    out
}

/// A compact UTC time for tables: `2026-11-28 14:57:21`.
fn short_time(ms: Option<i64>) -> String {
    match time(ms) {
        Some(t) => t.get(..19).unwrap_or(&t).replacen('T', " ", 1),
        None => "-".to_owned(),
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Writes an aligned table (two-space indent, two spaces between columns,
/// the last column not padded). Cells must already be escaped.
fn table<W: Write>(out: &mut W, header: &[(&str, Align)], rows: &[Vec<String>]) -> io::Result<()> {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|(h, _)| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut text = String::from(" ");
        for (i, (cell, ((_, align), w))) in cells.zip(header.iter().zip(&widths)).enumerate() {
            text.push(' ');
            let pad = w.saturating_sub(width(cell));
            let last = i + 1 == header.len();
            match align {
                Align::Left if last => text.push_str(cell),
                Align::Left => {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(cell);
                }
            }
            text.push(' ');
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&mut header.iter().map(|(h, _)| *h))?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

fn more<W: Write>(out: &mut W, total: usize, shown: usize, what: &str) -> io::Result<()> {
    if total > shown {
        writeln!(
            out,
            "  … {} more {what} (all of them in --format json)",
            total - shown
        )?;
    }
    Ok(())
}

const COUNTS: [(&str, Align); 4] = [
    ("attempts", Align::Right),
    ("success", Align::Right),
    ("failure", Align::Right),
    ("abandoned", Align::Right),
];

fn count_cells(r: &Row) -> Vec<String> {
    vec![
        key_text(r.key.as_deref()),
        r.attempts.to_string(),
        r.success.to_string(),
        r.failure.to_string(),
        r.abandoned.to_string(),
        short_time(r.first_seen),
        short_time(r.last_seen),
    ]
}

fn breakdown<W: Write>(out: &mut W, title: &str, key: &str, rows: &[Row]) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{title} ({})", rows.len())?;
    if rows.is_empty() {
        return writeln!(out, "  none");
    }
    let mut header = vec![(key, Align::Left)];
    header.extend(COUNTS);
    header.extend([("first seen", Align::Left), ("last seen", Align::Left)]);
    let cells: Vec<Vec<String>> = rows.iter().take(TABLE_ROWS).map(count_cells).collect();
    table(out, &header, &cells)?;
    more(out, rows.len(), cells.len(), "rows")
}

fn users<W: Write>(out: &mut W, rows: &[UserRow]) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "By user ({})", rows.len())?;
    if rows.is_empty() {
        return writeln!(out, "  none");
    }
    let mut header = vec![("user", Align::Left)];
    header.extend(COUNTS);
    header.extend([
        ("first seen", Align::Left),
        ("last seen", Align::Left),
        ("clients", Align::Right),
        ("most used clients", Align::Left),
    ]);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .take(TABLE_ROWS)
        .map(|u| {
            let mut cells = count_cells(&u.row);
            cells.push(u.distinct_clients.to_string());
            let mut list: Vec<String> = u
                .clients
                .iter()
                .take(USER_CLIENTS)
                .map(|c| clip(escape_text(c)))
                .collect();
            if u.clients.len() > list.len() {
                list.push(format!("+{} more", u.clients.len() - list.len()));
            }
            cells.push(list.join(", "));
            cells
        })
        .collect();
    table(out, &header, &cells)?;
    more(out, rows.len(), cells.len(), "rows")
}

fn failure_classes<W: Write>(out: &mut W, rows: &[Row]) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "By failure class ({})", rows.len())?;
    if rows.is_empty() {
        return writeln!(out, "  none");
    }
    let header = [
        ("class", Align::Left),
        ("failures", Align::Right),
        ("first seen", Align::Left),
        ("last seen", Align::Left),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .take(TABLE_ROWS)
        .map(|r| {
            vec![
                key_text(r.key.as_deref()),
                r.failure.to_string(),
                short_time(r.first_seen),
                short_time(r.last_seen),
            ]
        })
        .collect();
    table(out, &header, &cells)?;
    more(out, rows.len(), cells.len(), "rows")
}

fn per_minute<W: Write>(out: &mut W, summary: &Summary) -> io::Result<()> {
    writeln!(out)?;
    let series = &summary.failures_per_minute;
    match &summary.peak_minute {
        None => writeln!(out, "Failures per minute: no timed failures")?,
        Some(peak) => writeln!(
            out,
            "Failures per minute: {} minutes with failures, peak {} at {}",
            series.len(),
            peak.failures,
            short_time(Some(peak.minute_ms)),
        )?,
    }
    if summary.failures_without_time > 0 {
        writeln!(
            out,
            "  {} failures without a timestamp are not in the series",
            summary.failures_without_time
        )?;
    }
    if series.len() > 1 {
        let mut busiest: Vec<&MinuteCount> = series.iter().collect();
        busiest.sort_by(|a, b| {
            b.failures
                .cmp(&a.failures)
                .then(a.minute_ms.cmp(&b.minute_ms))
        });
        busiest.truncate(BUSY_MINUTES);
        let cells: Vec<Vec<String>> = busiest
            .iter()
            .map(|m| vec![short_time(Some(m.minute_ms)), m.failures.to_string()])
            .collect();
        table(
            out,
            &[("busiest minutes", Align::Left), ("failures", Align::Right)],
            &cells,
        )?;
        more(out, series.len(), cells.len(), "minutes")?;
    }
    Ok(())
}

fn severity_label(severity: Severity, colour: bool) -> String {
    let text = format!("{:<6}", severity.as_str().to_uppercase());
    if !colour {
        return text;
    }
    let code = match severity {
        Severity::High => "1;31",
        Severity::Medium => "33",
        Severity::Low => "36",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn id_list(ids: &SessionIds) -> io::Result<String> {
    let mut text: Vec<String> = Vec::new();
    for id in ids.iter().take(FINDING_SESSIONS) {
        text.push(escape_text(&id?.to_string()));
    }
    let shown = text.len();
    let mut joined = std::mem::take(&mut text).join(", ");
    if ids.len() > shown {
        joined.push_str(&format!(" … and {} more", ids.len() - shown));
    }
    Ok(joined)
}

fn findings_section<W: Write>(out: &mut W, findings: &[Finding], colour: bool) -> io::Result<()> {
    writeln!(out)?;
    if findings.is_empty() {
        return writeln!(out, "Findings: none");
    }
    writeln!(out, "Findings ({})", findings.len())?;
    for f in findings {
        let when = if f.first_ms == f.last_ms {
            short_time(Some(f.first_ms))
        } else {
            format!(
                "{} → {}",
                short_time(Some(f.first_ms)),
                short_time(Some(f.last_ms))
            )
        };
        writeln!(
            out,
            "  {} {}  {}  {when}",
            severity_label(f.severity, colour),
            f.kind.as_str(),
            escape_text(&f.subject),
        )?;
        writeln!(out, "         {}", escape_text(&f.summary))?;
        writeln!(out, "         sessions: {}", id_list(&f.sessions)?)?;
        if !f.successes.is_empty() {
            writeln!(
                out,
                "         successful logins: {}",
                id_list(&f.successes)?
            )?;
        }
    }
    Ok(())
}

/// Writes the text report: totals, each breakdown (top [`TABLE_ROWS`] rows),
/// failures per minute, then the findings (severity coloured when `colour`)
/// with up to [`FINDING_SESSIONS`] session ids each. Times are UTC.
pub fn write_table<W: Write>(
    out: &mut W,
    summary: &Summary,
    findings: &[Finding],
    colour: bool,
) -> io::Result<()> {
    let t = &summary.totals;
    writeln!(
        out,
        "{} attempts: {} success, {} failure, {} abandoned",
        t.attempts, t.success, t.failure, t.abandoned
    )?;
    let mut notes = Vec::new();
    if t.suspect > 0 {
        notes.push(format!("{} with an untrusted (suspect) record", t.suspect));
    }
    if t.without_time > 0 {
        notes.push(format!("{} without a timestamp", t.without_time));
    }
    if !notes.is_empty() {
        writeln!(out, "  ({})", notes.join(", "))?;
    }
    writeln!(
        out,
        "first seen {}, last seen {} (UTC)",
        short_time(summary.first_seen),
        short_time(summary.last_seen)
    )?;
    users(out, &summary.by_user)?;
    breakdown(out, "By client", "client", &summary.by_client)?;
    failure_classes(out, &summary.by_failure_class)?;
    breakdown(out, "By server", "server", &summary.by_server)?;
    breakdown(out, "By database", "database", &summary.by_database)?;
    per_minute(out, summary)?;
    findings_section(out, findings, colour)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::find;
    use crate::session::Outcome;
    use crate::summary::summarize;
    use crate::summary::tests::{Attempt, attempt, sessions};

    const T0: i64 = 1_764_341_820_000;

    fn brute(user: &str, client: &str) -> Vec<Attempt> {
        (0..12)
            .map(|i| attempt(i, T0 + i64::from(i) * 1000, user, client, Outcome::Failure))
            .collect()
    }

    fn render_table(s: &[crate::summary::SessionFacts], colour: bool) -> String {
        let sum = summarize(s);
        let f = find(s, &Thresholds::default());
        let mut out = Vec::new();
        write_table(&mut out, &sum, &f, colour).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_field_names() {
        let mut a = brute("alice", "10.0.0.1");
        a.push(attempt(99, T0 + 100_000, "x", "10.0.0.2", Outcome::Abandoned).no_user());
        let s = sessions(&a);
        let sum = summarize(&s);
        let f = find(&s, &Thresholds::default());
        let mut out = Vec::new();
        write_json(&mut out, &sum, &f, &Thresholds::default()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "totals",
            "first_seen",
            "last_seen",
            "by_user",
            "by_client",
            "by_failure_class",
            "by_server",
            "by_database",
            "failures_per_minute",
            "failures_peak_minute",
            "failures_without_time",
            "findings",
            "thresholds",
        ] {
            assert!(keys.contains(&k), "missing {k} in {keys:?}");
        }
        assert_eq!(v["totals"]["attempts"], 13);
        assert_eq!(v["totals"]["failure"], 12);
        assert_eq!(v["totals"]["abandoned"], 1);
        assert_eq!(v["first_seen"], "2025-11-28T14:57:00.000Z");
        let user = &v["by_user"][0];
        for k in [
            "key",
            "attempts",
            "success",
            "failure",
            "abandoned",
            "first_seen",
            "last_seen",
            "distinct_clients",
            "clients",
        ] {
            assert!(user.get(k).is_some(), "by_user row lacks {k}");
        }
        assert_eq!(user["key"], "alice");
        assert_eq!(user["clients"][0], "10.0.0.1");
        // The attempt without a user is a row with a null key.
        assert!(v["by_user"][1]["key"].is_null());
        assert_eq!(v["by_failure_class"][0]["key"], "password");
        assert_eq!(
            v["failures_per_minute"][0]["minute"],
            "2025-11-28T14:57:00.000Z"
        );
        assert_eq!(v["failures_per_minute"][0]["failures"], 12);
        assert_eq!(v["failures_peak_minute"]["failures"], 12);
        let finding = &v["findings"][0];
        assert_eq!(finding["kind"], "brute_force_user");
        assert_eq!(finding["severity"], "medium");
        assert_eq!(finding["subject"], "alice");
        assert_eq!(finding["count"], 12);
        assert_eq!(finding["sessions"].as_array().unwrap().len(), 12);
        assert!(finding["distinct_users"].is_null());
        for k in ["first_seen", "last_seen", "successes", "summary"] {
            assert!(finding.get(k).is_some(), "finding lacks {k}");
        }
        assert_eq!(v["findings"][1]["kind"], "brute_force_client");
        assert_eq!(v["findings"][1]["distinct_users"], 1);
        assert_eq!(v["thresholds"]["brute_force_user"]["failures"], 10);
        assert_eq!(v["thresholds"]["brute_force_user"]["window_ms"], 300_000);
        assert_eq!(v["thresholds"]["password_spraying"]["users"], 5);
        assert_eq!(
            v["thresholds"]["repeated_iam_failures"]["window_ms"],
            900_000
        );
        assert_eq!(
            v["thresholds"]["new_client_for_user"]["max_known_clients"],
            3
        );
        assert_eq!(
            v["thresholds"]["new_client_for_user"]["baseline_ms"],
            3_600_000
        );
    }

    #[test]
    fn json_of_nothing() {
        let mut out = Vec::new();
        write_json(&mut out, &summarize(&[]), &[], &Thresholds::default()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["totals"]["attempts"], 0);
        assert!(v["first_seen"].is_null());
        assert!(v["failures_peak_minute"].is_null());
        assert_eq!(v["findings"], serde_json::json!([]));
    }

    #[test]
    fn escapes_control_and_invisible_characters() {
        assert_eq!(escape_text("plain ünïcode"), "plain ünïcode");
        assert_eq!(escape_text("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(escape_text("\x1b[31mred\x07"), "\\x1b[31mred\\x07");
        assert_eq!(escape_text("x\u{7f}\u{85}"), "x\\x7f\\x85");
        assert_eq!(escape_text("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape_text("a\u{2028}b\u{200b}"), "a\\u{2028}b\\u{200b}");
        assert_eq!(escape_text("tag\u{e0041}"), "tag\\u{e0041}");
    }

    #[test]
    fn table_escapes_client_controlled_text() {
        let user = "mallory\n2026-01-01 LOG:  connection authorized\x1b[2J";
        let client = "evil\rhost\u{202e}";
        let s = sessions(&brute(user, client));
        let text = render_table(&s, false);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(!text.contains('\r'));
        assert!(!text.contains('\u{202e}'));
        assert!(text.contains("mallory\\n2026-01-01 LOG:  connection authorized\\x1b[2J"));
        assert!(text.contains("evil\\rhost\\u{202e}"));
        // No line of the report starts with the forged text.
        assert!(!text.lines().any(|l| l.starts_with("2026-01-01")));
    }

    #[test]
    fn long_names_are_clipped_in_tables_only() {
        let long = "u".repeat(100);
        let s = sessions(&brute(&long, "10.0.0.1"));
        let text = render_table(&s, false);
        let clipped = format!("{}…", "u".repeat(CELL_CHARS - 1));
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{clipped} ")))
        );
        // The finding sentence keeps the whole name.
        assert!(text.contains(&format!("\"{long}\"")));
        let mut out = Vec::new();
        write_json(&mut out, &summarize(&s), &[], &Thresholds::default()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["by_user"][0]["key"], long.as_str());
    }

    #[test]
    fn table_layout_caps_and_colour() {
        // 25 users with one success each from distinct clients; one user
        // brute-forced.
        let mut a: Vec<Attempt> = (0..25)
            .map(|i| {
                attempt(
                    100 + i,
                    T0 + i64::from(i),
                    &format!("user{i:02}"),
                    &format!("10.0.0.{i}"),
                    Outcome::Success,
                )
            })
            .collect();
        a.extend(brute("victim", "203.0.113.5"));
        let s = sessions(&a);
        let text = render_table(&s, false);
        assert!(text.starts_with("37 attempts: 25 success, 12 failure, 0 abandoned\n"));
        assert!(text.contains("By user (26)"));
        assert!(text.contains("… 6 more rows"));
        assert!(text.contains("By client (26)"));
        assert!(text.contains("By failure class (1)"));
        assert!(text.contains("Failures per minute: 1 minutes with failures, peak 12 at"));
        assert!(text.contains("Findings (2)"));
        assert!(text.contains("MEDIUM brute_force_user  victim"));
        assert!(text.contains(" … and 7 more"));
        // Header columns aligned with the cells below them.
        let header = text
            .lines()
            .find(|l| l.contains("attempts  success"))
            .unwrap();
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("victim"))
            .unwrap();
        let end = header.find("attempts").unwrap() + "attempts".len();
        assert_eq!(&row[end - 2..end], "12", "{header}\n{row}");
        assert!(!text.contains('\x1b'));

        let coloured = render_table(&s, true);
        assert!(coloured.contains("\x1b[33mMEDIUM\x1b[0m brute_force_user"));
    }

    use proptest::prelude::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any event stream: no panic anywhere, breakdowns add up to the
        /// totals, the text report holds no control character but its own
        /// newlines, the JSON parses.
        #[test]
        fn never_panics_and_counts_add_up(
            raw in proptest::collection::vec(
                (
                    0usize..8,
                    0u32..6,
                    proptest::prop_oneof![
                        proptest::strategy::Just(None),
                        (0i64..1_000_000_000).prop_map(Some),
                        proptest::num::i64::ANY.prop_map(Some),
                    ],
                    proptest::option::of("[a-c\\n\\x1b\\u{202e}]{0,3}"),
                    proptest::option::of("[xy:\\r]{0,2}"),
                    0usize..28,
                ),
                0..60,
            ),
        ) {
            use crate::event::{Event, EventKind, FailureClass};
            let kinds = [
                EventKind::Received,
                EventKind::Authorized,
                EventKind::AuthFailed,
                EventKind::Disconnected,
                EventKind::Protocol,
                EventKind::Terminated,
                EventKind::Suspect,
                EventKind::Ready,
            ];
            let events: Vec<Event> = raw
                .iter()
                .map(|(k, pid, t, user, client, class)| {
                    let mut e = Event::new(kinds[*k], crate::name::Name::new("s"));
                    e.pid = Some(*pid);
                    e.time_ms = *t;
                    e.user = user.as_deref().map(crate::event::Text::from);
                    e.client_addr = client.as_deref().map(crate::event::Text::from);
                    e.failure_class = FailureClass::ALL.get(*class).copied();
                    e
                })
                .collect();
            let s = crate::summary::SessionFacts::of_all(crate::session::stitch(events));
            let sum = summarize(&s);
            let t = Thresholds {
                new_client_baseline: std::time::Duration::ZERO,
                brute_force_user_failures: 2,
                brute_force_client_failures: 2,
                spraying_users: 2,
                iam_failures: 1,
                ..Thresholds::default()
            };
            let f = find(&s, &t);
            let n = s.len() as u64;
            prop_assert_eq!(sum.totals.attempts, n);
            prop_assert_eq!(sum.totals.success + sum.totals.failure + sum.totals.abandoned, n);
            for rows in [&sum.by_client, &sum.by_server, &sum.by_database] {
                prop_assert_eq!(rows.iter().map(|r| r.attempts).sum::<u64>(), n);
            }
            prop_assert_eq!(sum.by_user.iter().map(|r| r.row.attempts).sum::<u64>(), n);
            prop_assert_eq!(
                sum.by_failure_class.iter().map(|r| r.failure).sum::<u64>(),
                sum.totals.failure
            );
            prop_assert_eq!(
                sum.failures_per_minute.iter().map(|m| m.failures).sum::<u64>()
                    + sum.failures_without_time,
                sum.totals.failure
            );
            for x in &f {
                prop_assert_eq!(x.count, x.sessions.len());
                prop_assert!(x.first_ms <= x.last_ms);
            }
            let mut out = Vec::new();
            write_table(&mut out, &sum, &f, false).unwrap();
            let text = String::from_utf8(out).unwrap();
            let unsafe_char = text
                .chars()
                .find(|&c| c != '\n' && (c.is_control() || c == '\u{202e}'));
            prop_assert_eq!(unsafe_char, None);
            let mut out = Vec::new();
            write_json(&mut out, &sum, &f, &t).unwrap();
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
        }
    }
}
