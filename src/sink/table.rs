//! Sessions as an aligned table for people reading a terminal.
//!
//! The table is for reading; the JSON Lines output is the evidence. So the
//! table may shorten values (each column has a width cap, and cut values
//! end in `…`), but it must never let logged text act on the terminal:
//! every value is rendered through [`sanitize`], which replaces control
//! characters (newline, TAB, ESC, the rest of C0 and C1, DEL) and invisible
//! formatting characters (bidirectional overrides, zero-width characters,
//! line/paragraph separators) with visible escapes (`\n`, `\t`, `\x1b`,
//! `\u{202e}`). A user name cannot start a fake row, colour the screen or
//! reorder what follows. Backslashes are shown as they are.
//!
//! Columns: START (UTC), SERVER, PID, OUTCOME, USER, DATABASE, CLIENT,
//! METHOD, TLS, CLASS/END, DURATION, APP. Unknown values are `-`. OUTCOME
//! has a `!` suffix when a record of the session could not be trusted
//! (`suspect`), TLS a `?` suffix when its fields are unverified; both
//! markers survive truncation and are explained under the table.
//!
//! With IAM correlation, a line under a row names the principal
//! (`└ iam: exact arn:… (evidence)`), and with `--explain` one line per
//! candidate follows.
//!
//! Rows are ordered by (start, server, pid, first evidence), as
//! `session::sort_by_start` orders sessions, and buffered until
//! [`TableWriter::finish`] to size the columns: rendered and encoded, in an
//! [`ExternalSort`] that keeps at most [`SORT_LIMIT`] bytes in memory and
//! sorts the rest in runs in a scratch file, so a table of millions of
//! sessions does not hold them.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::cloud::{IamAttribution, MatchKind};
use crate::event::{Provenance, Text};
use crate::scratch::{ExternalSort, SORT_LIMIT, Spill};
use crate::session::{Outcome, Session};

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Whether to colour by default: only on a terminal, never with `NO_COLOR`
/// set to anything non-empty (<https://no-color.org>) or `TERM=dumb`.
/// The caller passes `std::io::stdout().is_terminal()` and the variables.
pub fn use_colour(is_terminal: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    is_terminal
        && no_color.is_none_or(OsStr::is_empty)
        && term.is_none_or(|t| t != OsStr::new("dumb"))
}

struct Column {
    header: &'static str,
    /// Values wider than this are cut with `…`.
    cap: usize,
    /// How narrow a terminal width limit may make the column.
    min: usize,
    right: bool,
}

const fn col(header: &'static str, cap: usize, min: usize, right: bool) -> Column {
    Column {
        header,
        cap,
        min,
        right,
    }
}

const NCOLS: usize = 12;
const SERVER: usize = 1;
const OUTCOME: usize = 3;
const USER: usize = 4;
const DATABASE: usize = 5;
const CLIENT: usize = 6;
const METHOD: usize = 7;
const TLS: usize = 8;
const CLASS_END: usize = 9;
const APP: usize = 11;

const COLUMNS: [Column; NCOLS] = [
    col("START (UTC)", 19, 19, false),
    col("SERVER", 24, 6, false),
    col("PID", 10, 3, true),
    col("OUTCOME", 10, 10, false),
    col("USER", 24, 8, false),
    col("DATABASE", 24, 8, false),
    // `[ffff:…:255.255.255.255]:65535` fits: addresses are never cut
    // unless a terminal width forces it.
    col("CLIENT", 53, 21, false),
    col("METHOD", 14, 6, false),
    col("TLS", 10, 3, false),
    // `too_many_connections_database`
    col("CLASS/END", 29, 9, false),
    col("DURATION", 10, 8, true),
    col("APP", 32, 3, false),
];

/// Which columns give up width first when the table is wider than the
/// terminal (down to their `min`).
const SHRINK_ORDER: [usize; 8] = [APP, SERVER, DATABASE, USER, CLASS_END, METHOD, CLIENT, TLS];

const SEP: &str = "  ";

/// One cell: logged text (escaped when rendered) and a marker of ours that
/// truncation keeps.
#[derive(Default)]
struct Cell {
    text: String,
    suffix: &'static str,
}

impl Cell {
    fn width(&self) -> usize {
        display_width(&self.text) + self.suffix.chars().count()
    }
}

struct Row {
    cells: [Cell; NCOLS],
    outcome: Outcome,
    /// The IAM principal line under the row, when correlated.
    iam: Option<String>,
    /// With `--explain`: one line per candidate.
    iam_candidates: Vec<String>,
}

/// Buffers sessions and writes them as an aligned table on `finish`.
pub struct TableWriter<W: Write> {
    out: W,
    colour: bool,
    width: Option<usize>,
    rows: ExternalSort<SortedRow>,
    /// Rows written so far (their arrival order breaks ties).
    count: u64,
    /// The widest cell of each column so far.
    widest: [usize; NCOLS],
    /// Rows per outcome: success, failure, abandoned.
    outcomes: [usize; 3],
    suspect: bool,
    unverified: bool,
}

/// A row on its way through the sort: its key ([`row_key`]) and the row
/// ([`encode_row`]).
struct SortedRow {
    key: Vec<u8>,
    row: Vec<u8>,
}

fn by_key(a: &SortedRow, b: &SortedRow) -> Ordering {
    a.key.cmp(&b.key)
}

impl Spill for SortedRow {
    fn encode(&self, out: &mut Vec<u8>) {
        push_bytes(out, &self.key);
        push_bytes(out, &self.row);
    }

    fn decode(mut b: &[u8]) -> Option<(Self, usize)> {
        let whole = b.len();
        let key = take_bytes(&mut b)?.to_vec();
        let row = take_bytes(&mut b)?.to_vec();
        Some((SortedRow { key, row }, whole - b.len()))
    }

    fn size(&self) -> usize {
        self.key.len() + self.row.len() + 2 * std::mem::size_of::<Vec<u8>>()
    }
}

impl<W: Write> TableWriter<W> {
    /// `colour`: colour the OUTCOME column and bold the header (see
    /// [`use_colour`]). `width`: the terminal width, if known; wider tables
    /// shrink the textual columns to fit, down to a minimum, and otherwise
    /// wrap.
    pub fn new(out: W, colour: bool, width: Option<usize>) -> Self {
        TableWriter::with_limit(out, colour, width, SORT_LIMIT)
    }

    fn with_limit(out: W, colour: bool, width: Option<usize>, limit: usize) -> Self {
        TableWriter {
            out,
            colour,
            width,
            rows: ExternalSort::new(limit),
            count: 0,
            widest: [0; NCOLS],
            outcomes: [0; 3],
            suspect: false,
            unverified: false,
        }
    }

    /// Adds one session (written by [`TableWriter::finish`]).
    pub fn write(&mut self, s: &Session) -> io::Result<()> {
        let text = |v: &Option<Text>| Cell {
            text: v.as_deref().unwrap_or("-").to_owned(),
            suffix: "",
        };
        let plain = |t: String| Cell {
            text: t,
            suffix: "",
        };
        let tls = match &s.ssl_protocol {
            Some(p) => Cell {
                text: p.to_string(),
                suffix: if s.ssl_unverified { "?" } else { "" },
            },
            None => plain("-".to_owned()),
        };
        let class_end = match s.outcome {
            Outcome::Failure => s.failure_class.map(|c| c.as_str()),
            _ => s.end_reason.map(|r| r.as_str()),
        };
        // Only the server's own session time: log timestamps are often
        // second-precision, so end − start would show a false "0ms".
        let duration = s.duration_ms;
        self.suspect |= s.suspect;
        self.unverified |= s.ssl_unverified && s.ssl_protocol.is_some();
        let row = Row {
            cells: [
                plain(s.start_ms.map_or_else(|| "-".to_owned(), format_start)),
                plain(s.server.to_string()),
                plain(s.pid.to_string()),
                Cell {
                    text: s.outcome.as_str().to_owned(),
                    suffix: if s.suspect { "!" } else { "" },
                },
                text(&s.user),
                text(&s.database),
                plain(format_client(s.client_addr.as_deref(), s.client_port)),
                text(&s.auth_method),
                tls,
                plain(class_end.unwrap_or("-").to_owned()),
                plain(duration.map_or_else(|| "-".to_owned(), human_duration)),
                text(&s.application_name),
            ],
            outcome: s.outcome,
            iam: s.iam.as_deref().and_then(iam_line),
            iam_candidates: s
                .iam
                .as_deref()
                .filter(|a| a.kind != MatchKind::Ambiguous)
                .map(|a| {
                    a.candidates
                        .iter()
                        .map(|c| format!("{} ({})", c.principal_arn, c.evidence.join(", ")))
                        .collect()
                })
                .unwrap_or_default(),
        };
        for (widest, cell) in self.widest.iter_mut().zip(&row.cells) {
            *widest = (*widest).max(cell.width());
        }
        self.outcomes[outcome_index(s.outcome)] += 1;
        let mut key = Vec::new();
        row_key(&mut key, s, self.count);
        self.count += 1;
        let mut encoded = Vec::new();
        encode_row(&mut encoded, &row);
        self.rows.push(SortedRow { key, row: encoded }, &mut by_key);
        Ok(())
    }

    /// Writes the table (or `no sessions match`), the footer and the
    /// legend, flushes, and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.count == 0 {
            writeln!(self.out, "no sessions match")?;
            self.out.flush()?;
            return Ok(self.out);
        }
        let widths = self.widths();
        let truncated = (0..NCOLS).any(|i| self.widest[i] > widths[i]);

        let mut line = String::new();
        for (i, c) in COLUMNS.iter().enumerate() {
            let cell = Cell {
                text: c.header.to_owned(),
                suffix: "",
            };
            let (text, w) = fit(&cell, widths[i]);
            push_cell(&mut line, i, &text, w, widths[i], None);
        }
        let header = line.trim_end();
        if self.colour {
            writeln!(self.out, "{BOLD}{header}{RESET}")?;
        } else {
            writeln!(self.out, "{header}")?;
        }

        let rows = std::mem::replace(&mut self.rows, ExternalSort::new(1));
        let (out, colour) = (&mut self.out, self.colour);
        let mut order = by_key;
        rows.finish(&mut order).for_each(&mut order, |_, sorted| {
            let row = decode_row(&sorted.row).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a table row in the scratch file is damaged",
                )
            })?;
            line.clear();
            for (i, cell) in row.cells.iter().enumerate() {
                let (text, w) = fit(cell, widths[i]);
                let colour = (colour && i == OUTCOME).then_some(match row.outcome {
                    Outcome::Success => GREEN,
                    Outcome::Failure => RED,
                    Outcome::Abandoned => YELLOW,
                });
                push_cell(&mut line, i, &text, w, widths[i], colour);
            }
            writeln!(out, "{}", line.trim_end())?;
            if let Some(iam) = &row.iam {
                writeln!(out, "    └ iam: {}", sanitize(iam))?;
            }
            for c in &row.iam_candidates {
                writeln!(out, "        candidate: {}", sanitize(c))?;
            }
            Ok(())
        })?;
        let counts = self.outcomes;

        let n = self.count;
        writeln!(
            self.out,
            "{n} session{} ({} success, {} failure, {} abandoned)",
            if n == 1 { "" } else { "s" },
            counts[0],
            counts[1],
            counts[2]
        )?;
        if self.suspect {
            writeln!(
                self.out,
                "! a record of this session could not be trusted (possible log forging); see its evidence in --format jsonl"
            )?;
        }
        if self.unverified {
            writeln!(
                self.out,
                "? TLS unverified: the TLS text could be part of a client-chosen application name"
            )?;
        }
        if truncated {
            writeln!(
                self.out,
                "… value cut to fit; --format jsonl has it in full"
            )?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn widths(&self) -> [usize; NCOLS] {
        let mut widths = [0usize; NCOLS];
        for (i, c) in COLUMNS.iter().enumerate() {
            widths[i] = self.widest[i].min(c.cap).max(c.header.chars().count());
        }
        if let Some(limit) = self.width {
            let total = widths.iter().sum::<usize>() + SEP.len() * (NCOLS - 1);
            let mut excess = total.saturating_sub(limit);
            for i in SHRINK_ORDER {
                if excess == 0 {
                    break;
                }
                let cut = widths[i].saturating_sub(COLUMNS[i].min).min(excess);
                widths[i] -= cut;
                excess -= cut;
            }
        }
        widths
    }
}

/// Its place in [`Outcome::ALL`] (success, failure, abandoned).
fn outcome_index(outcome: Outcome) -> usize {
    Outcome::ALL.iter().position(|&o| o == outcome).unwrap_or(0)
}

/// The sort key of a row: `session::sort_by_start`'s order (start, server,
/// pid, first evidence) as bytes that compare the same way, then `seq`,
/// the arrival order (a stable sort).
fn row_key(key: &mut Vec<u8>, s: &Session, seq: u64) {
    fn text(key: &mut Vec<u8>, t: &str) {
        // 0x00 is escaped and the end marked by 0x00 0x00, so a prefix
        // sorts first, as with `str`.
        for &b in t.as_bytes() {
            key.push(b);
            if b == 0 {
                key.push(0xff);
            }
        }
        key.extend_from_slice(&[0, 0]);
    }
    key.clear();
    match s.start_ms {
        None => key.push(0),
        Some(t) => {
            key.push(1);
            key.extend_from_slice(&((t as u64) ^ (1 << 63)).to_be_bytes());
        }
    }
    text(key, &s.server);
    key.extend_from_slice(&s.pid.to_be_bytes());
    match s.evidence.first() {
        None => key.push(0),
        Some(Provenance {
            input,
            line,
            event_id,
        }) => {
            key.push(1);
            text(key, input);
            key.extend_from_slice(&line.to_be_bytes());
            match event_id {
                None => key.push(0),
                Some(id) => {
                    key.push(1);
                    text(key, id);
                }
            }
        }
    }
    key.extend_from_slice(&seq.to_be_bytes());
}

const SUFFIXES: [&str; 3] = ["", "?", "!"];

/// Appends `b` with its length (u32, little-endian). Rendered cells, IAM
/// lines and keys are far shorter than 4 GiB.
fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn push_text(out: &mut Vec<u8>, t: &str) {
    push_bytes(out, t.as_bytes());
}

/// The bytes [`push_bytes`] wrote at the front of `b`, taken off it.
fn take_bytes<'b>(b: &mut &'b [u8]) -> Option<&'b [u8]> {
    let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let bytes = b.get(4..4 + n)?;
    *b = &b[4 + n..];
    Some(bytes)
}

/// A row as bytes for the sorter: each cell (text, suffix), the outcome,
/// the IAM line and the candidates.
fn encode_row(out: &mut Vec<u8>, row: &Row) {
    out.clear();
    for cell in &row.cells {
        push_text(out, &cell.text);
        out.push(SUFFIXES.iter().position(|&x| x == cell.suffix).unwrap_or(0) as u8);
    }
    out.push(outcome_index(row.outcome) as u8);
    match &row.iam {
        None => out.push(0),
        Some(iam) => {
            out.push(1);
            push_text(out, iam);
        }
    }
    out.extend_from_slice(&(row.iam_candidates.len() as u32).to_le_bytes());
    for c in &row.iam_candidates {
        push_text(out, c);
    }
}

/// The row [`encode_row`] wrote; `None` for bytes it did not write.
fn decode_row(mut b: &[u8]) -> Option<Row> {
    fn byte(b: &mut &[u8]) -> Option<usize> {
        let (&first, rest) = b.split_first()?;
        *b = rest;
        Some(usize::from(first))
    }
    fn number(b: &mut &[u8]) -> Option<usize> {
        let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        *b = &b[4..];
        Some(n)
    }
    fn text(b: &mut &[u8]) -> Option<String> {
        String::from_utf8(take_bytes(b)?.to_vec()).ok()
    }
    let mut cells: [Cell; NCOLS] = Default::default();
    for cell in &mut cells {
        cell.text = text(&mut b)?;
        cell.suffix = SUFFIXES.get(byte(&mut b)?)?;
    }
    let outcome = *Outcome::ALL.get(byte(&mut b)?)?;
    let iam = match byte(&mut b)? {
        0 => None,
        _ => Some(text(&mut b)?),
    };
    let n = number(&mut b)?;
    let iam_candidates = (0..n).map(|_| text(&mut b)).collect::<Option<Vec<_>>>()?;
    Some(Row {
        cells,
        outcome,
        iam,
        iam_candidates,
    })
}

/// The line under a correlated session: `exact arn:… (instance_ip, time,
/// policy)`; `None` for sessions IAM correlation does not apply to.
fn iam_line(a: &IamAttribution) -> Option<String> {
    match a.kind {
        MatchKind::NotApplicable => None,
        MatchKind::Ambiguous => Some(format!(
            "ambiguous: {} candidates ({})",
            a.candidate_count,
            a.candidates
                .iter()
                .map(|c| c.principal_arn.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        MatchKind::None => Some(format!(
            "none{}",
            a.reason
                .as_deref()
                .map_or_else(String::new, |r| format!(": {r}"))
        )),
        MatchKind::Exact | MatchKind::Probable => {
            let best = a.best.as_ref()?;
            Some(format!(
                "{} {} ({})",
                a.kind,
                best.principal_arn,
                best.evidence.join(", ")
            ))
        }
    }
}

/// Appends a rendered cell, padded to `width`, after a separator.
fn push_cell(
    line: &mut String,
    i: usize,
    text: &str,
    w: usize,
    width: usize,
    colour: Option<&str>,
) {
    if i > 0 {
        line.push_str(SEP);
    }
    let pad = width.saturating_sub(w);
    if COLUMNS[i].right {
        line.extend(std::iter::repeat_n(' ', pad));
    }
    match colour {
        Some(code) => {
            line.push_str(code);
            line.push_str(text);
            line.push_str(RESET);
        }
        None => line.push_str(text),
    }
    if !COLUMNS[i].right {
        line.extend(std::iter::repeat_n(' ', pad));
    }
}

/// `2026-11-28 16:22:45` (UTC, seconds truncated).
fn format_start(ms: i64) -> String {
    match chrono::DateTime::from_timestamp(ms.div_euclid(1000), 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => "-".to_owned(),
    }
}

/// `10.0.0.7:5432`, `[::1]:5432`, `[local]`, `host.example:5432`.
fn format_client(addr: Option<&str>, port: Option<u16>) -> String {
    match (addr, port) {
        (None, _) => "-".to_owned(),
        (Some(a), None) => a.to_owned(),
        (Some(a), Some(_)) if a.starts_with('[') => a.to_owned(),
        (Some(a), Some(p)) if a.contains(':') => format!("[{a}]:{p}"),
        (Some(a), Some(p)) => format!("{a}:{p}"),
    }
}

/// `70ms`, `3.2s`, `4m05s`, `1h02m`, `2d03h` (rounded).
fn human_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let tenths = ms.saturating_add(50) / 100;
    if tenths < 600 {
        return format!("{}.{}s", tenths / 10, tenths % 10);
    }
    let secs = ms.saturating_add(500) / 1000;
    if secs < 3600 {
        return format!("{}m{:02}s", secs / 60, secs % 60);
    }
    let mins = ms.saturating_add(30_000) / 60_000;
    if mins < 24 * 60 {
        return format!("{}h{:02}m", mins / 60, mins % 60);
    }
    let hours = ms.saturating_add(1_800_000) / 3_600_000;
    format!("{}d{:02}h", hours / 24, hours % 24)
}

/// Characters that must not reach a terminal as they are: C0, DEL, C1
/// (`char::is_control`), and invisible formatting characters that can hide
/// or reorder text (soft hyphen, Arabic letter mark, zero-width and bidi
/// controls, line/paragraph separators, word joiner and invisible
/// operators, BOM, interlinear annotation, tag characters).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}')
}

/// Appends `c`, escaped if needed; returns the columns it takes.
fn push_char(out: &mut String, c: char) -> usize {
    let before = out.len();
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        // A real backslash is doubled, so `a\nb` typed by a client never
        // looks like an escaped newline.
        '\\' => out.push_str("\\\\"),
        c if needs_escape(c) && (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => {
            out.push(c);
            return char_width(c);
        }
    }
    out.len() - before // escapes are ASCII
}

/// Columns one character takes (escapes aside): 2 for East Asian wide and
/// emoji, 0 for combining marks, else 1. An approximation of wcwidth that
/// keeps CJK names aligned; it never affects safety.
fn char_width(c: char) -> usize {
    match c {
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}' => 0,
        '\u{1100}'..='\u{115F}'
        | '\u{2E80}'..='\u{303E}'
        | '\u{3041}'..='\u{33FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{A000}'..='\u{A4CF}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FE30}'..='\u{FE4F}'
        | '\u{FF00}'..='\u{FF60}'
        | '\u{FFE0}'..='\u{FFE6}'
        | '\u{1F300}'..='\u{1F64F}'
        | '\u{1F900}'..='\u{1F9FF}'
        | '\u{20000}'..='\u{3FFFD}' => 2,
        _ => 1,
    }
}

/// Columns `text` takes once sanitized.
fn display_width(text: &str) -> usize {
    if shown_as_is(text) {
        return text.len();
    }
    let mut scratch = String::new();
    text.chars()
        .map(|c| {
            scratch.clear();
            push_char(&mut scratch, c)
        })
        .sum()
}

/// Printable ASCII without a backslash (most names, addresses and times):
/// shown as it is, one column a byte, so it skips the per-character path.
fn shown_as_is(text: &str) -> bool {
    text.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'\\')
}

/// `text` with every control and invisible formatting character replaced
/// by a visible escape (`\n`, `\t`, `\x1b`, `\u{202e}`): safe to print on a
/// terminal, one line.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_char(&mut out, c);
    }
    out
}

/// The sanitized cell cut to `width` columns: the text ends in `…` when
/// cut (never inside an escape), the suffix is always kept. Returns the
/// rendering and the columns it takes.
fn fit(cell: &Cell, width: usize) -> (String, usize) {
    let suffix_w = cell.suffix.chars().count();
    let room = width.saturating_sub(suffix_w);
    let mut out = String::new();
    let full = display_width(&cell.text);
    let used = if full <= room && shown_as_is(&cell.text) {
        out.push_str(&cell.text);
        full
    } else if full <= room {
        for c in cell.text.chars() {
            push_char(&mut out, c);
        }
        full
    } else {
        let budget = room.saturating_sub(1);
        let mut used = 0;
        let mut piece = String::new();
        for c in cell.text.chars() {
            piece.clear();
            let w = push_char(&mut piece, c);
            if used + w > budget {
                break;
            }
            out.push_str(&piece);
            used += w;
        }
        out.push('…');
        used + 1
    };
    out.push_str(cell.suffix);
    (out, used + suffix_w)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::{Event, EventKind, FailureClass, Provenance};
    use crate::session::stitch;

    const T0: i64 = 1_795_882_965_000; // 2026-11-28T16:22:45Z

    fn event(kind: EventKind, pid: u32, time: i64, line: u64) -> Event {
        let mut e = Event::new(kind, crate::name::Name::new("db1"));
        e.pid = Some(pid);
        e.time_ms = Some(time);
        e.source = Some(Provenance {
            input: crate::name::Name::new("pg.log"),
            line,
            event_id: None,
        });
        e
    }

    fn success(pid: u32, user: &str, app: &str, addr: &str, tls: Option<(&str, bool)>) -> Session {
        let mut r = event(EventKind::Received, pid, T0, 1);
        r.client_addr = Some(addr.into());
        r.client_port = Some(5432);
        let mut a = event(EventKind::Authorized, pid, T0 + 10, 2);
        a.user = Some(user.into());
        a.database = Some("app".into());
        a.application_name = Some(app.into());
        a.auth_method = Some("scram-sha-256".into());
        if let Some((proto, unverified)) = tls {
            a.ssl_protocol = Some(proto.into());
            a.ssl_unverified = unverified;
        }
        let mut d = event(EventKind::Disconnected, pid, T0 + 3200, 3);
        d.session_duration_ms = Some(3190);
        one(vec![r, a, d])
    }

    fn failure(pid: u32, user: &str) -> Session {
        let mut r = event(EventKind::Received, pid, T0, 1);
        r.client_addr = Some("[local]".into());
        let mut f = event(EventKind::AuthFailed, pid, T0 + 70, 2);
        f.user = Some(user.into());
        f.database = Some("postgres".into());
        f.failure_class = Some(FailureClass::Password);
        f.message = format!("password authentication failed for user \"{user}\"");
        one(vec![r, f])
    }

    fn abandoned(pid: u32) -> Session {
        let mut r = event(EventKind::Received, pid, T0, 1);
        r.client_addr = Some("192.0.2.9".into());
        r.client_port = Some(40000);
        one(vec![r])
    }

    fn one(events: Vec<Event>) -> Session {
        let mut s = stitch(events);
        assert_eq!(s.len(), 1);
        s.remove(0)
    }

    fn render(sessions: &[Session], colour: bool, width: Option<usize>) -> String {
        let mut t = TableWriter::new(Vec::new(), colour, width);
        for s in sessions {
            assert!(t.write(s).is_ok());
        }
        match t.finish() {
            Ok(buf) => String::from_utf8_lossy(&buf).into_owned(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Sessions written in any order come out as `sort_by_start` orders
    /// them, byte for byte the same whether the rows stayed in memory or
    /// were sorted in runs in a scratch file; rows round-trip through
    /// their encoding.
    #[test]
    fn rows_sorted_in_memory_or_on_disk_alike() {
        let mut rng = crate::summary::tests::Rng(3);
        let mut next = |n: u64| rng.below(n);
        let mut sessions = Vec::new();
        for i in 0..400u32 {
            let pid = 1000 + next(40) as u32;
            let mut s = match next(3) {
                0 => success(
                    pid,
                    "alice",
                    &"app".repeat(next(20) as usize),
                    "::1",
                    Some(("TLSv1.3", i % 2 == 0)),
                ),
                1 => failure(pid, "bob\u{202e}\n"),
                _ => abandoned(pid),
            };
            s.server = ["db1", "db10", "db1\0", "db"][next(4) as usize].into();
            s.start_ms = (next(5) != 0).then(|| T0 + next(4) as i64 * 1000 - 2000);
            s.suspect = next(10) == 0;
            if let Some(e) = s.evidence.first_mut() {
                e.line = u64::from(i);
                if i % 7 == 0 {
                    e.event_id = Some(format!("id{}", next(3)).into());
                }
            }
            sessions.push(s);
        }
        let mut sorted = sessions.clone();
        crate::session::sort_by_start(&mut sorted);
        let render_with = |list: &[Session], limit: usize| {
            let mut t = TableWriter::with_limit(Vec::new(), true, Some(120), limit);
            for s in list {
                t.write(s).unwrap();
            }
            String::from_utf8(t.finish().unwrap()).unwrap()
        };
        let want = render_with(&sorted, usize::MAX);
        assert!(want.contains("400 sessions"), "{want}");
        for limit in [1, 700, 50_000] {
            assert_eq!(render_with(&sessions, limit), want, "limit {limit}");
        }
        // Keys order like the sessions they come from.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for w in sorted.windows(2) {
            row_key(&mut a, &w[0], 0);
            row_key(&mut b, &w[1], 0);
            assert!(a <= b);
        }
        assert!(decode_row(b"short").is_none());
    }

    /// The ASCII fast path agrees with the per-character one.
    #[test]
    fn text_shown_as_is_needs_no_escape() {
        let mut texts: Vec<String> = (0u8..128).map(|b| char::from(b).to_string()).collect();
        texts.extend(
            ["app_scram", "127.0.0.1:44258", "a\\nb", "x\u{7f}", "é", ""].map(String::from),
        );
        for t in &texts {
            let mut slow = String::new();
            let width: usize = t.chars().map(|c| push_char(&mut slow, c)).sum();
            if shown_as_is(t) {
                assert_eq!((slow.as_str(), width), (t.as_str(), t.len()), "{t:?}");
            }
            assert_eq!(display_width(t), width, "{t:?}");
            assert_eq!(
                fit(
                    &Cell {
                        text: t.clone(),
                        suffix: ""
                    },
                    80
                )
                .0,
                slow,
                "{t:?}"
            );
        }
        assert!(shown_as_is("app_scram") && !shown_as_is("a\\b") && !shown_as_is("\u{7f}"));
    }

    #[test]
    fn aligned_table_with_footer() {
        let out = render(
            &[
                success(101, "alice", "psql", "::1", Some(("TLSv1.3", false))),
                failure(102, "bob"),
                abandoned(103),
            ],
            false,
            None,
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(
            lines[0].starts_with("START (UTC)          SERVER  PID  OUTCOME"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("2026-11-28 16:22:45  db1     101  success  "),
            "{out}"
        );
        assert!(lines[1].contains("[::1]:5432"), "{out}");
        assert!(lines[1].contains("TLSv1.3"), "{out}");
        assert!(lines[1].contains("client"), "{out}");
        assert!(lines[1].contains("3.2s"), "{out}");
        assert!(
            lines[2].contains("failure") && lines[2].contains("[local]"),
            "{out}"
        );
        // No session time from the server: no duration (log times are
        // often second-precision).
        assert!(
            lines[2].contains("password") && !lines[2].contains("70ms"),
            "{out}"
        );
        assert!(
            lines[3].contains("abandoned") && lines[3].contains("192.0.2.9:40000"),
            "{out}"
        );
        assert!(lines[3].contains("eof"), "{out}");
        assert_eq!(lines[4], "3 sessions (1 success, 1 failure, 1 abandoned)");
        // Columns line up: every column starts at the same offset.
        let at = |l: &str, needle: &str| l.find(needle).unwrap_or(usize::MAX);
        let client = at(lines[0], "CLIENT");
        assert_eq!(at(lines[1], "[::1]"), client);
        assert_eq!(at(lines[2], "[local]"), client);
        assert_eq!(at(lines[3], "192.0.2.9"), client);
        // Right-aligned duration ends where its header ends.
        let dur_end = at(lines[0], "DURATION") + "DURATION".len();
        assert_eq!(at(lines[1], "3.2s") + 4, dur_end);
        assert!(
            lines.iter().all(|l| !l.ends_with(' ')),
            "no trailing blanks"
        );
        assert!(!out.contains('\x1b'), "no colour when off");
    }

    #[test]
    fn empty_result_says_so() {
        assert_eq!(render(&[], false, None), "no sessions match\n");
        assert_eq!(render(&[], true, Some(80)), "no sessions match\n");
    }

    #[test]
    fn single_session_footer() {
        let out = render(&[abandoned(1)], false, None);
        assert!(
            out.ends_with("1 session (0 success, 0 failure, 1 abandoned)\n"),
            "{out}"
        );
    }

    #[test]
    fn colour_only_on_outcome_and_header() {
        let out = render(
            &[
                success(1, "a", "psql", "10.0.0.1", None),
                failure(2, "b"),
                abandoned(3),
            ],
            true,
            None,
        );
        assert!(out.contains("\x1b[32msuccess\x1b[0m"), "{out:?}");
        assert!(out.contains("\x1b[31mfailure\x1b[0m"), "{out:?}");
        assert!(out.contains("\x1b[33mabandoned\x1b[0m"), "{out:?}");
        assert!(out.starts_with("\x1b[1mSTART (UTC)"), "{out:?}");
        // Outside those, no escape codes.
        let stripped = out
            .replace("\x1b[32m", "")
            .replace("\x1b[31m", "")
            .replace("\x1b[33m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[0m", "");
        assert!(!stripped.contains('\x1b'));
        // Alignment is the same as without colour.
        assert_eq!(
            stripped,
            render(
                &[
                    success(1, "a", "psql", "10.0.0.1", None),
                    failure(2, "b"),
                    abandoned(3)
                ],
                false,
                None
            )
        );
    }

    #[test]
    fn colour_default() {
        let none = None::<&OsStr>;
        assert!(use_colour(true, none, Some(OsStr::new("xterm-256color"))));
        assert!(use_colour(true, none, none));
        assert!(!use_colour(false, none, none), "off when not a terminal");
        assert!(!use_colour(true, Some(OsStr::new("1")), none), "NO_COLOR");
        assert!(
            use_colour(true, Some(OsStr::new("")), none),
            "empty NO_COLOR is unset"
        );
        assert!(!use_colour(true, none, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn hostile_user_name_cannot_inject_rows_or_escapes() {
        let user = "eve\n2026-11-28 16:22:45  db1  1  success  postgres\x1b[31m\x1b]0;pwned\x07\t\r\u{202e}\u{7f}\u{9b}x";
        let s = failure(7, user);
        let out = render(&[s.clone(), abandoned(8)], false, None);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "header, 2 rows, footer, legend:\n{out}");
        assert!(
            lines[2].contains("abandoned") && lines[3].starts_with("2 sessions"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("2026-11-28 16:22:45  db1       7  failure    eve\\n2026-11-28"),
            "{out}"
        );
        assert_eq!(out.matches("eve").count(), 1, "{out}");
        assert!(
            !out.contains('\x1b')
                && !out.contains('\r')
                && !out.contains('\t')
                && !out.contains('\x07')
        );
        assert!(!out.contains('\u{202e}') && !out.contains('\u{7f}') && !out.contains('\u{9b}'));
        // With colour on, the only escapes are ours.
        let out = render(std::slice::from_ref(&s), true, None);
        assert_eq!(out.matches('\x1b').count(), 4, "{out:?}");

        assert_eq!(
            sanitize("a\nb\tc\x1b[31md\re\u{7f}\u{85}\u{202e}\u{200b}\u{e0041}\\n"),
            // The client's own backslash is doubled: it cannot pose as an escape.
            "a\\nb\\tc\\x1b[31md\\re\\x7f\\x85\\u{202e}\\u{200b}\\u{e0041}\\\\n"
        );
        assert_eq!(sanitize("José ñandú 日本"), "José ñandú 日本");
        // The escapes count in the width, so rows stay aligned.
        assert_eq!(display_width("a\nb"), 4);
    }

    #[test]
    fn long_values_are_cut_with_an_ellipsis() {
        let app = "x".repeat(500);
        let user = "u".repeat(100);
        let out = render(
            &[success(1, &user, &app, "10.0.0.1", None), failure(2, "bob")],
            false,
            None,
        );
        let lines: Vec<&str> = out.lines().collect();
        let expected_user = format!("{}…", "u".repeat(23));
        assert!(lines[1].contains(&format!("{expected_user}  app")), "{out}");
        assert!(lines[1].ends_with(&format!("{}…", "x".repeat(31))), "{out}");
        assert!(lines.iter().all(|l| l.chars().count() < 260), "{out}");
        assert!(
            out.ends_with("… value cut to fit; --format jsonl has it in full\n"),
            "{out}"
        );

        // Cuts never split an escape.
        let cell = Cell {
            text: "ab\x1bcdef".into(),
            suffix: "",
        };
        assert_eq!(fit(&cell, 5), ("ab…".to_owned(), 3));
        assert_eq!(fit(&cell, 7), ("ab\\x1b…".to_owned(), 7));
        // Width counts chars, not bytes; wide characters count two.
        let cell = Cell {
            text: "éééé".into(),
            suffix: "",
        };
        assert_eq!(fit(&cell, 4), ("éééé".to_owned(), 4));
        assert_eq!(fit(&cell, 3), ("éé…".to_owned(), 3));
        let cell = Cell {
            text: "日本語".into(),
            suffix: "",
        };
        assert_eq!(fit(&cell, 6), ("日本語".to_owned(), 6));
        assert_eq!(fit(&cell, 5), ("日本…".to_owned(), 5));
        assert_eq!(fit(&cell, 4), ("日…".to_owned(), 3));
        // Markers survive the cut.
        let cell = Cell {
            text: "TLSv1.3-but-long".into(),
            suffix: "?",
        };
        assert_eq!(fit(&cell, 8), ("TLSv1.…?".to_owned(), 8));
    }

    #[test]
    fn terminal_width_shrinks_text_columns() {
        let sessions = [
            success(1, &"u".repeat(20), &"a".repeat(30), "10.0.0.1", None),
            failure(2, "bob"),
        ];
        let wide = render(&sessions, false, None);
        let narrow = render(&sessions, false, Some(120));
        let longest = |s: &str| {
            s.lines()
                .take(3)
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(0)
        };
        assert!(longest(&wide) > 120);
        assert!(longest(&narrow) <= 120, "{narrow}");
        // Tiny terminals: columns stop at their minimum rather than vanish.
        let tiny = render(&sessions, false, Some(20));
        assert!(
            tiny.lines().nth(1).is_some_and(|l| l.contains("success")),
            "{tiny}"
        );
    }

    #[test]
    fn markers_and_legend() {
        let mut s = success(1, "alice", "psql", "10.0.0.1", Some(("TLSv1.3", true)));
        s.suspect = true;
        let out = render(&[s], false, None);
        assert!(out.contains("success!"), "{out}");
        assert!(out.contains("TLSv1.3?"), "{out}");
        assert!(
            out.contains("\n! a record of this session could not be trusted"),
            "{out}"
        );
        assert!(out.contains("\n? TLS unverified"), "{out}");
        let out = render(
            &[success(1, "alice", "psql", "10.0.0.1", None)],
            false,
            None,
        );
        assert!(
            !out.contains("\n!") && !out.contains("\n?") && !out.contains('…'),
            "{out}"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(human_duration(0), "0ms");
        assert_eq!(human_duration(70), "70ms");
        assert_eq!(human_duration(999), "999ms");
        assert_eq!(human_duration(1000), "1.0s");
        assert_eq!(human_duration(3190), "3.2s");
        assert_eq!(human_duration(59_949), "59.9s");
        assert_eq!(human_duration(59_960), "1m00s");
        assert_eq!(human_duration(245_000), "4m05s");
        assert_eq!(human_duration(3_720_000), "1h02m");
        assert_eq!(human_duration(86_399_000), "1d00h");
        assert_eq!(human_duration(2 * 86_400_000 + 3 * 3_600_000), "2d03h");
        assert_eq!(human_duration(u64::MAX), "213503982334d14h");
        assert_eq!(format_client(Some("10.0.0.1"), Some(5432)), "10.0.0.1:5432");
        assert_eq!(format_client(Some("::1"), Some(5432)), "[::1]:5432");
        assert_eq!(format_client(Some("::1"), None), "::1");
        assert_eq!(format_client(Some("[local]"), None), "[local]");
        assert_eq!(
            format_client(Some("app1.example.com"), Some(1)),
            "app1.example.com:1"
        );
        assert_eq!(format_client(None, Some(1)), "-");
        assert_eq!(format_start(T0), "2026-11-28 16:22:45");
        assert_eq!(format_start(T0 + 999), "2026-11-28 16:22:45");
        assert_eq!(format_start(i64::MAX), "-");
    }
}
