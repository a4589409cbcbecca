//! Compiles a `log_line_prefix` into a matcher for stderr/syslog lines, and
//! loads the named presets from `grammars/prefixes.toml`.
//!
//! Matching is backtracking over the compiled pieces, on borrowed bytes, with
//! no allocation. Free-text escapes (`%u`, `%d`, `%a`, …) take the shortest
//! text that lets the rest of the prefix and a `SEVERITY:` label match. The
//! common line is matched first on one path without backtracking, which
//! gives the full search's answer whenever it succeeds; `%t`/`%m` go through
//! a per-thread cache of the last second parsed.
//!
//! `%u` and `%d` are printed raw by PostgreSQL: a newline inside them breaks a
//! record over several physical lines (log forging). [`Prefix::parse_line`]
//! reports such a line as [`LineMatch::Broken`] when the part of the prefix
//! before the first raw field matched but the line cannot be completed.

use std::cell::RefCell;

use crate::record::Label;
use crate::time;

/// One `%` escape of `log_line_prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    ApplicationName,
    User,
    Database,
    RemoteHostPort,
    RemoteHost,
    LocalAddr,
    BackendType,
    Pid,
    LeaderPid,
    TimeSeconds,
    TimeMillis,
    Epoch,
    PsDisplay,
    SqlState,
    SessionId,
    LineNumber,
    SessionStart,
    VirtualXid,
    Xid,
    QueryId,
}

impl Escape {
    fn from_letter(c: u8) -> Option<Escape> {
        Some(match c {
            b'a' => Escape::ApplicationName,
            b'u' => Escape::User,
            b'd' => Escape::Database,
            b'r' => Escape::RemoteHostPort,
            b'h' => Escape::RemoteHost,
            b'L' => Escape::LocalAddr,
            b'b' => Escape::BackendType,
            b'p' => Escape::Pid,
            b'P' => Escape::LeaderPid,
            b't' => Escape::TimeSeconds,
            b'm' => Escape::TimeMillis,
            b'n' => Escape::Epoch,
            b'i' => Escape::PsDisplay,
            b'e' => Escape::SqlState,
            b'c' => Escape::SessionId,
            b'l' => Escape::LineNumber,
            b's' => Escape::SessionStart,
            b'v' => Escape::VirtualXid,
            b'x' => Escape::Xid,
            b'Q' => Escape::QueryId,
            _ => return None,
        })
    }

    /// Escapes whose text a client chooses without escaping (newlines included).
    fn is_raw_client_text(self) -> bool {
        matches!(self, Escape::User | Escape::Database)
    }

    /// Escapes matched as free text (shortest first).
    fn is_free_text(self) -> bool {
        matches!(
            self,
            Escape::ApplicationName
                | Escape::User
                | Escape::Database
                | Escape::RemoteHost
                | Escape::LocalAddr
                | Escape::BackendType
                | Escape::PsDisplay
                | Escape::VirtualXid
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Escape {
        escape: Escape,
        padded: bool,
    },
    /// `%q`: non-session processes stop the prefix here.
    StopIfNoSession,
}

/// A piece as [`Prefix::match_first_path`] takes it, resolved when the
/// prefix is compiled: the literal that must follow an escape is at hand,
/// and the escapes it reads directly are told apart from the rest.
#[derive(Debug, Clone)]
enum Step {
    Literal(Box<[u8]>),
    StopIfNoSession,
    /// `%t` or `%m`, not padded.
    Time {
        next: Option<Box<[u8]>>,
    },
    /// `%p`, `%l` or `%x`, not padded: digits (only `%p` is kept).
    Digits {
        pid: bool,
        next: Option<Box<[u8]>>,
    },
    /// `%r`, not padded.
    HostPort {
        next: Option<Box<[u8]>>,
    },
    /// A free-text escape, not padded.
    FreeText {
        escape: Escape,
        next: Option<Box<[u8]>>,
    },
    /// Any other escape, through `for_each_end`: a padded one (several
    /// candidate ends), or one with a single end.
    Other {
        escape: Escape,
        padded: bool,
        next: Option<Box<[u8]>>,
    },
}

impl Step {
    /// The step of `pieces[idx]`.
    fn of(pieces: &[Piece], idx: usize) -> Step {
        let next = match pieces.get(idx + 1) {
            Some(Piece::Literal(lit)) => Some(lit.as_slice().into()),
            _ => None,
        };
        match &pieces[idx] {
            Piece::Literal(lit) => Step::Literal(lit.as_slice().into()),
            Piece::StopIfNoSession => Step::StopIfNoSession,
            Piece::Escape {
                escape: Escape::TimeSeconds | Escape::TimeMillis,
                padded: false,
            } => Step::Time { next },
            Piece::Escape {
                escape: escape @ (Escape::Pid | Escape::LineNumber | Escape::Xid),
                padded: false,
            } => Step::Digits {
                pid: *escape == Escape::Pid,
                next,
            },
            Piece::Escape {
                escape: Escape::RemoteHostPort,
                padded: false,
            } => Step::HostPort { next },
            Piece::Escape {
                escape,
                padded: false,
            } if escape.is_free_text() => Step::FreeText {
                escape: *escape,
                next,
            },
            Piece::Escape { escape, padded } => Step::Other {
                escape: *escape,
                padded: *padded,
                next,
            },
        }
    }
}

/// A compiled `log_line_prefix`.
#[derive(Debug, Clone)]
pub struct Prefix {
    text: String,
    pieces: Vec<Piece>,
    /// The pieces as [`Prefix::match_first_path`] walks them.
    path: Box<[Step]>,
    /// Index of the first `%u`/`%d` piece, if any.
    first_raw: Option<usize>,
    has_time: bool,
    has_pid: bool,
    has_app: bool,
    /// The literals a label follows in every reading (the prefix's last
    /// piece, and the piece before each `%q`), when each is a literal of
    /// two bytes or more: [`Prefix::could_be_ambiguous`] then looks for
    /// labels only after them. `None`: any colon may end a label.
    label_guards: Option<Box<[LabelGuard]>>,
}

/// A literal a label follows in every reading of a prefix (see
/// [`Prefix::could_be_ambiguous`]), found through its rarest byte.
#[derive(Debug, Clone)]
struct LabelGuard {
    literal: Box<[u8]>,
    /// The index in `literal` of the byte searched for: punctuation such
    /// as `]` rather than `:`, letters or digits, and any of those rather
    /// than a space (the first among equals).
    anchor: usize,
}

impl LabelGuard {
    fn new(literal: &[u8]) -> Self {
        let rarity = |b: u8| match b {
            b' ' => 0,
            b':' => 1,
            _ if b.is_ascii_alphanumeric() => 1,
            _ => 2,
        };
        let anchor = (0..literal.len())
            .max_by_key(|&i| (rarity(literal[i]), std::cmp::Reverse(i)))
            .unwrap_or(0);
        LabelGuard {
            literal: literal.into(),
            anchor,
        }
    }

    /// How many times the literal is directly followed by a label in
    /// `line`, counting up to `limit`.
    /// A label at `known` is not looked at (nor counted).
    fn labels_after(&self, line: &[u8], limit: usize, known: Option<usize>) -> usize {
        let mut found = 0;
        for hit in memchr::memchr_iter(self.literal[self.anchor], line) {
            let Some(start) = hit.checked_sub(self.anchor) else {
                continue;
            };
            let label = start + self.literal.len();
            // A label starts with an uppercase letter: most hits stop here.
            if Some(label) != known
                && line.get(label).is_some_and(u8::is_ascii_uppercase)
                && lit_at(line, start, &self.literal)
                && match_label(line, label).is_some()
            {
                found += 1;
                if found == limit {
                    break;
                }
            }
        }
        found
    }
}

/// Why [`Prefix::match_first_path`] found no header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missed {
    /// Before any piece with several candidate readings: no reading exists,
    /// and no head of a broken record either.
    Surely,
    /// After one: another reading may exist.
    Maybe,
}

/// A prefix that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixError {
    pub prefix: String,
    pub reason: String,
}

impl std::fmt::Display for PrefixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid log_line_prefix {:?}: {}",
            self.prefix, self.reason
        )
    }
}

impl std::error::Error for PrefixError {}

/// What the prefix said about a line. Text fields borrow from the line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixFields<'a> {
    pub time_ms: Option<i64>,
    pub pid: Option<u32>,
    pub user: Option<&'a [u8]>,
    pub database: Option<&'a [u8]>,
    pub application_name: Option<&'a [u8]>,
    pub client_addr: Option<&'a [u8]>,
    pub client_port: Option<u16>,
    pub sqlstate: Option<&'a [u8]>,
    pub session_id: Option<&'a [u8]>,
    /// Where the prefix ends in the line: the offset of the severity label
    /// the reading found (0 before a reading is complete).
    pub prefix_end: usize,
}

/// The result of matching one physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineMatch<'a> {
    /// A record header: prefix fields, the label, and the text after `LABEL:  `.
    Header {
        fields: PrefixFields<'a>,
        label: Label,
        body: &'a [u8],
        /// Offset of `body` within the line.
        body_start: usize,
    },
    /// The prefix started (everything before the first `%u`/`%d` matched)
    /// but the line ends before a complete header: a raw field contained a
    /// newline.
    Broken { fields: PrefixFields<'a> },
    /// Not a record header (foreign text).
    NoMatch,
}

/// Longest text a free-text escape may take (PostgreSQL caps names at 63
/// bytes; `\xNN` cleaning can quadruple an application name).
const MAX_FREE_TEXT: usize = 512;

impl Prefix {
    /// Compiles a `log_line_prefix` string (every escape of PostgreSQL 9.6–18,
    /// with optional padding such as `%-20u`).
    pub fn compile(text: &str) -> Result<Prefix, PrefixError> {
        let err = |reason: String| PrefixError {
            prefix: text.to_string(),
            reason,
        };
        let bytes = text.as_bytes();
        let mut pieces: Vec<Piece> = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c != b'%' {
                literal.push(c);
                i += 1;
                continue;
            }
            i += 1;
            let Some(&next) = bytes.get(i) else {
                return Err(err("ends with a lone '%'".into()));
            };
            if next == b'%' {
                literal.push(b'%');
                i += 1;
                continue;
            }
            // Optional padding: -?digits
            let pad_start = i;
            if bytes.get(i) == Some(&b'-') {
                i += 1;
            }
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let padded = i > pad_start;
            let Some(&letter) = bytes.get(i) else {
                return Err(err("ends inside an escape".into()));
            };
            i += 1;
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            if letter == b'q' {
                pieces.push(Piece::StopIfNoSession);
                continue;
            }
            let escape = Escape::from_letter(letter)
                .ok_or_else(|| err(format!("unknown escape %{}", letter as char)))?;
            pieces.push(Piece::Escape { escape, padded });
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let escapes = || {
            pieces.iter().filter_map(|p| match p {
                Piece::Escape { escape, .. } => Some(*escape),
                _ => None,
            })
        };
        let has_time = escapes()
            .any(|e| matches!(e, Escape::TimeSeconds | Escape::TimeMillis | Escape::Epoch));
        let has_pid = escapes().any(|e| e == Escape::Pid);
        let has_app = escapes().any(|e| e == Escape::ApplicationName);
        let first_raw = pieces
            .iter()
            .position(|p| matches!(p, Piece::Escape { escape, .. } if escape.is_raw_client_text()));
        let label_guards = label_guards(&pieces);
        let path = (0..pieces.len()).map(|i| Step::of(&pieces, i)).collect();
        Ok(Prefix {
            text: text.to_string(),
            pieces,
            path,
            first_raw,
            has_time,
            has_pid,
            has_app,
            label_guards,
        })
    }

    /// The prefix as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the prefix has `%u` or `%d`, so lines can be forged.
    pub fn has_raw_client_fields(&self) -> bool {
        self.first_raw.is_some()
    }

    /// True when the prefix has `%a`, `%u` or `%d`: text a client chooses.
    pub fn has_client_text(&self) -> bool {
        self.first_raw.is_some() || self.has_app
    }

    pub fn has_time(&self) -> bool {
        self.has_time
    }

    pub fn has_pid(&self) -> bool {
        self.has_pid
    }

    /// Matches one physical line (without its newline).
    pub fn parse_line<'a>(&self, line: &'a [u8]) -> LineMatch<'a> {
        let mut fields = PrefixFields::default();
        let found = match self.match_first_path(line, &mut fields) {
            Ok(found) => Some(found),
            // Neither the full search nor `match_head` can do better.
            Err(Missed::Surely) => return LineMatch::NoMatch,
            Err(Missed::Maybe) => {
                fields = PrefixFields::default();
                self.match_from(0, line, 0, &mut fields, None)
            }
        };
        if let Some((label, body_start)) = found {
            return LineMatch::Header {
                fields,
                label,
                body: &line[body_start..],
                body_start,
            };
        }
        if let Some(first_raw) = self.first_raw {
            let mut head = PrefixFields::default();
            if self.match_head(line, first_raw, &mut head) {
                return LineMatch::Broken { fields: head };
            }
        }
        LineMatch::NoMatch
    }

    /// A cheap necessary condition for [`Prefix::is_ambiguous`]: the prefix
    /// has client text and the line holds a second label where a reading's
    /// prefix could end (the common line has one, and then no second
    /// reading exists): right after one of the literals that end the
    /// prefix when they are long enough, else before any colon (`LABEL:`).
    /// `prefix_end` is where the line's reading found its label.
    pub fn could_be_ambiguous(&self, line: &[u8], prefix_end: usize) -> bool {
        if !self.has_client_text() {
            return false;
        }
        match &self.label_guards {
            // Every reading's label follows one of the guards. A second
            // reading has its label elsewhere than the first's (the same
            // label would start the same body): one more label after a
            // guard is needed, and the known one is not even looked at.
            Some(guards) => guards
                .iter()
                .any(|guard| guard.labels_after(line, 1, Some(prefix_end)) > 0),
            None => label_colons(line) >= 2,
        }
    }

    /// True when `line` has a second complete header parse whose message
    /// starts elsewhere than `body_start`: client text in the prefix (`%a`,
    /// `%u`, `%d`) imitates a severity label, so the line cannot be trusted.
    /// `prefix_end` and `body_start` are those of the line's reading.
    pub fn is_ambiguous(&self, line: &[u8], prefix_end: usize, body_start: usize) -> bool {
        if !self.could_be_ambiguous(line, prefix_end) {
            return false;
        }
        let mut fields = PrefixFields::default();
        self.match_from(0, line, 0, &mut fields, Some(body_start))
            .is_some()
    }

    /// Matches the pieces before index `end` (the first raw client field),
    /// whatever follows them. The head must contain a time or a pid, to tell
    /// a broken record from foreign text.
    fn match_head<'a>(&self, line: &'a [u8], end: usize, fields: &mut PrefixFields<'a>) -> bool {
        let distinctive = self.pieces[..end].iter().any(|p| {
            matches!(
                p,
                Piece::Escape {
                    escape: Escape::TimeSeconds | Escape::TimeMillis | Escape::Epoch | Escape::Pid,
                    ..
                }
            )
        });
        distinctive && self.match_pieces_until(0, end, line, 0, fields)
    }

    /// Matches pieces[idx..end] at `pos`, whatever follows.
    fn match_pieces_until<'a>(
        &self,
        idx: usize,
        end: usize,
        line: &'a [u8],
        pos: usize,
        fields: &mut PrefixFields<'a>,
    ) -> bool {
        if idx == end {
            return true;
        }
        match &self.pieces[idx] {
            Piece::Literal(lit) => {
                lit_at(line, pos, lit)
                    && self.match_pieces_until(idx + 1, end, line, pos + lit.len(), fields)
            }
            Piece::StopIfNoSession => self.match_pieces_until(idx + 1, end, line, pos, fields),
            Piece::Escape { escape, padded } => {
                let mut matched = false;
                for_each_end(
                    *escape,
                    *padded,
                    line,
                    pos,
                    self.next_literal(idx),
                    &mut |stop| {
                        let saved = fields.clone();
                        record_field(*escape, &line[pos..stop], fields);
                        matched = self.match_pieces_until(idx + 1, end, line, stop, fields);
                        if !matched {
                            *fields = saved;
                        }
                        matched
                    },
                );
                matched
            }
        }
    }

    fn next_literal(&self, idx: usize) -> Option<&[u8]> {
        match self.pieces.get(idx + 1) {
            Some(Piece::Literal(lit)) => Some(lit),
            _ => None,
        }
    }

    /// The search of [`Prefix::match_from`] without backtracking, for the
    /// common line: each escape takes its first candidate end that the next
    /// literal accepts, and `%q` goes on with the prefix. The candidates
    /// before that one fail at once in the full search too (its next step is
    /// that literal), so when this path reaches a label it is the first
    /// solution the full search finds, with the same fields. When it fails
    /// (say a user or database name holding the next separator, or a
    /// non-session process), [`Missed`] says whether the full search could
    /// find another reading: only if the path went through a piece with
    /// several candidates (free text, `%r`, padding, `%q`). Before one, both
    /// searches take the same single steps and fail at the same piece (most
    /// lines of a foreign format, when presets are tried on them).
    fn match_first_path<'a>(
        &self,
        line: &'a [u8],
        fields: &mut PrefixFields<'a>,
    ) -> Result<(Label, usize), Missed> {
        let mut pos = 0;
        let mut choices = false;
        let missed = |choices: bool| {
            if choices {
                Missed::Maybe
            } else {
                Missed::Surely
            }
        };
        let accepts = |next: &Option<Box<[u8]>>, end: usize| {
            next.as_deref().is_none_or(|lit| lit_at(line, end, lit))
        };
        for step in &self.path {
            match step {
                Step::Literal(lit) => {
                    if !lit_at(line, pos, lit) {
                        return Err(missed(choices));
                    }
                    pos += lit.len();
                }
                Step::StopIfNoSession => choices = true,
                Step::Time { next } => {
                    // The one candidate end of a timestamp, parsed once
                    // (the general path parses it again to record it).
                    let (ms, used) =
                        parse_pg_timestamp_cached(&line[pos..]).ok_or(missed(choices))?;
                    let end = pos + used;
                    if !accepts(next, end) {
                        return Err(missed(choices));
                    }
                    fields.time_ms = Some(ms);
                    pos = end;
                }
                // The common escapes without `for_each_end`'s callback: the
                // same first acceptable end, found directly.
                Step::Digits { pid, next } => {
                    let digits = line[pos..]
                        .iter()
                        .take_while(|c| c.is_ascii_digit())
                        .count();
                    let end = pos + digits;
                    if digits == 0 || !accepts(next, end) {
                        return Err(missed(choices));
                    }
                    // What `record_field` keeps of `%p`; `%l` and `%x`
                    // are not kept.
                    if *pid {
                        fields.pid = parse_u32(&line[pos..end]);
                    }
                    pos = end;
                }
                Step::HostPort { next } => {
                    choices = true;
                    let n = host_port_ends(&line[pos..])
                        .find(|&n| accepts(next, pos + n))
                        .ok_or(missed(choices))?;
                    record_field(Escape::RemoteHostPort, &line[pos..pos + n], fields);
                    pos += n;
                }
                Step::FreeText { escape, next } => {
                    choices = true;
                    let n = FreeTextEnds::new(&line[pos..], next.as_deref())
                        .find(|&n| accepts(next, pos + n))
                        .ok_or(missed(choices))?;
                    record_field(*escape, &line[pos..pos + n], fields);
                    pos += n;
                }
                Step::Other {
                    escape,
                    padded,
                    next,
                } => {
                    // Unpadded free text and `%r` are steps of their own:
                    // here only padding gives several candidate ends.
                    choices |= *padded;
                    let mut chosen = None;
                    for_each_end(*escape, *padded, line, pos, next.as_deref(), &mut |end| {
                        if accepts(next, end) {
                            chosen = Some(end);
                        }
                        chosen.is_some()
                    });
                    let end = chosen.ok_or(missed(choices))?;
                    record_field(*escape, &line[pos..end], fields);
                    pos = end;
                }
            }
        }
        label_at(line, pos, fields, None).ok_or(missed(choices))
    }

    /// Backtracking match of pieces[idx..] then the label. Returns the label
    /// and the body offset. `avoid` rejects a solution whose body starts at
    /// that offset (used to look for a second parse).
    fn match_from<'a>(
        &self,
        idx: usize,
        line: &'a [u8],
        pos: usize,
        fields: &mut PrefixFields<'a>,
        avoid: Option<usize>,
    ) -> Option<(Label, usize)> {
        let Some(piece) = self.pieces.get(idx) else {
            return label_at(line, pos, fields, avoid);
        };
        match piece {
            Piece::Literal(lit) => {
                if lit_at(line, pos, lit) {
                    self.match_from(idx + 1, line, pos + lit.len(), fields, avoid)
                } else {
                    None
                }
            }
            Piece::StopIfNoSession => {
                if let Some(found) = self.match_from(idx + 1, line, pos, fields, avoid) {
                    return Some(found);
                }
                // A non-session process: the prefix ends here.
                label_at(line, pos, fields, avoid)
            }
            Piece::Escape { escape, padded } => {
                let mut found = None;
                for_each_end(
                    *escape,
                    *padded,
                    line,
                    pos,
                    self.next_literal(idx),
                    &mut |end| {
                        let saved = fields.clone();
                        record_field(*escape, &line[pos..end], fields);
                        found = self.match_from(idx + 1, line, end, fields, avoid);
                        if found.is_none() {
                            *fields = saved;
                        }
                        found.is_some()
                    },
                );
                found
            }
        }
    }
}

/// The literals that end the prefix in a reading, for
/// [`Prefix::label_guards`]: the last piece and the piece before each `%q`
/// (the prefix of a non-session process ends there); `None` when one of
/// them is not a literal of two bytes or more (a one-byte literal such as
/// `' '` is everywhere, an escape can end anywhere).
fn label_guards(pieces: &[Piece]) -> Option<Box<[LabelGuard]>> {
    let ends = pieces
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p, Piece::StopIfNoSession))
        .map(|(i, _)| i)
        .chain([pieces.len()]);
    let mut guards: Vec<&[u8]> = Vec::new();
    for end in ends {
        match end.checked_sub(1).map(|i| &pieces[i]) {
            Some(Piece::Literal(lit)) if lit.len() >= 2 => {
                if !guards.contains(&&lit[..]) {
                    guards.push(lit);
                }
            }
            _ => return None,
        }
    }
    Some(guards.into_iter().map(LabelGuard::new).collect())
}

/// True when the prefix literal `lit` is at `pos` in `line`. Most literals
/// are one or two bytes (`:`, `@`, `:[`, `] `), compared in place rather
/// than through `memcmp`.
#[inline]
fn lit_at(line: &[u8], pos: usize, lit: &[u8]) -> bool {
    match *lit {
        [a] => line.get(pos) == Some(&a),
        [a, b] => line.get(pos) == Some(&a) && line.get(pos + 1) == Some(&b),
        _ => line.get(pos..).is_some_and(|rest| rest.starts_with(lit)),
    }
}

/// The severity label at `pos`, where the prefix ended: the label and the
/// body offset, the SQLSTATE written with it stored into `fields`; none
/// when the body would start at `avoid` (looking for a second parse).
fn label_at<'a>(
    line: &'a [u8],
    pos: usize,
    fields: &mut PrefixFields<'a>,
    avoid: Option<usize>,
) -> Option<(Label, usize)> {
    let (label, body_start, sqlstate) = match_label(line, pos)?;
    if avoid == Some(body_start) {
        return None;
    }
    if sqlstate.is_some() {
        fields.sqlstate = sqlstate;
    }
    fields.prefix_end = pos;
    Some((label, body_start))
}

/// How many `LABEL:` tokens (a severity word or secondary label directly
/// followed by a colon) the line contains, counting up to 2.
///
/// Every header line is checked, so the colons are found eight bytes at a
/// time (one `memchr` call per colon cost 9 % of an audit run), and a colon
/// is looked at only when the byte two before it is an uppercase letter, as
/// in every label (`LOG:`, `DEBUG1:`, three bytes or more).
fn label_colons(line: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let is_label_colon = |colon: usize| {
        colon >= 3 && line[colon - 2].is_ascii_uppercase() && is_label_word_before(line, colon)
    };
    let mut found = 0;
    let mut words = line.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_le_bytes(bytes) ^ (ONES * u64::from(b':'));
        // The high bit of each byte of `x` that is zero (exact: no borrow
        // crosses bytes).
        let mut colons = !(((x & LOW7) + LOW7) | x | LOW7);
        while colons != 0 {
            let colon = base + colons.trailing_zeros() as usize / 8;
            if is_label_colon(colon) {
                found += 1;
                if found == 2 {
                    return found;
                }
            }
            colons &= colons - 1;
        }
        base += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        if b == b':' && is_label_colon(base + i) {
            found += 1;
            if found == 2 {
                break;
            }
        }
    }
    found
}

/// True when the run of uppercase letters and digits that ends at `colon`
/// ends with a severity word or secondary label. Not only the whole run:
/// free text may end right before the label (`%u` with no literal after
/// it), so `x:[1]:LOGDETAIL:` can be read with the label `DETAIL`.
fn is_label_word_before(line: &[u8], colon: usize) -> bool {
    /// The longest label (`BACKTRACE`, `STATEMENT`) and the shortest (`LOG`).
    const LONGEST: usize = 9;
    const SHORTEST: usize = 3;
    let word_start = line[..colon]
        .iter()
        .rposition(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
        .map_or(0, |i| i + 1);
    let longest_start = word_start.max(colon.saturating_sub(LONGEST));
    (longest_start..=colon.saturating_sub(SHORTEST))
        .any(|start| Label::parse(&line[start..colon]).is_some())
}

thread_local! {
    /// This thread's last `%t`/`%m` second: a matcher is shared by the
    /// decoding threads, and the lines each one reads come in time order.
    static STAMPS: RefCell<time::TimestampCache> =
        const { RefCell::new(time::TimestampCache::new()) };
}

/// [`time::parse_pg_timestamp`] through this thread's [`time::TimestampCache`].
fn parse_pg_timestamp_cached(b: &[u8]) -> Option<(i64, usize)> {
    STAMPS.with_borrow_mut(|cache| cache.parse_pg_timestamp(b))
}

/// Stores an escape's text into the fields (trimming padding).
#[inline(always)]
fn record_field<'a>(escape: Escape, raw: &'a [u8], fields: &mut PrefixFields<'a>) {
    let text = trim_spaces(raw);
    let unknown = |t: &'a [u8]| -> Option<&'a [u8]> {
        if t.is_empty() || t == b"[unknown]" {
            None
        } else {
            Some(t)
        }
    };
    match escape {
        Escape::TimeSeconds | Escape::TimeMillis => {
            fields.time_ms = parse_pg_timestamp_cached(text).map(|(ms, _)| ms);
        }
        Escape::Epoch => fields.time_ms = time::parse_epoch(text).map(|(ms, _)| ms),
        Escape::Pid => fields.pid = parse_u32(text),
        Escape::User => fields.user = unknown(text),
        Escape::Database => fields.database = unknown(text),
        Escape::ApplicationName => fields.application_name = unknown(text),
        Escape::RemoteHostPort => {
            if text == b"[local]" {
                fields.client_addr = Some(text);
            } else if let Some(open) = memchr::memrchr(b'(', text) {
                fields.client_addr = Some(&text[..open]);
                fields.client_port = text
                    .get(open + 1..text.len().saturating_sub(1))
                    .and_then(parse_u32)
                    .and_then(|p| u16::try_from(p).ok());
            }
        }
        Escape::RemoteHost if !text.is_empty() => fields.client_addr = Some(text),
        Escape::SqlState => fields.sqlstate = Some(text),
        Escape::SessionId => {
            fields.session_id = Some(text);
            // `%c` is `start.pid` in hex: the pid for prefixes without `%p`.
            if fields.pid.is_none()
                && let Some(dot) = memchr::memchr(b'.', text)
                && let Ok(hex) = std::str::from_utf8(&text[dot + 1..])
            {
                fields.pid = u32::from_str_radix(hex, 16).ok();
            }
        }
        _ => {}
    }
}

fn trim_spaces(mut b: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' '] = b {
        b = rest;
    }
    b
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    u32::try_from(v).ok()
}

/// Calls `try_end` with each candidate end offset for an escape starting at
/// `pos`, best first, until it returns true. No allocation.
fn for_each_end(
    escape: Escape,
    padded: bool,
    line: &[u8],
    pos: usize,
    next_literal: Option<&[u8]>,
    try_end: &mut dyn FnMut(usize) -> bool,
) {
    let mut start = pos;
    if padded {
        while line.get(start) == Some(&b' ') {
            start += 1;
        }
    }
    let rest = &line[start..];
    let mut last_tried = usize::MAX;
    // Returns true when the caller should stop.
    let mut push = |n: usize| -> bool {
        let mut end = start + n;
        if padded {
            while line.get(end) == Some(&b' ') {
                end += 1;
            }
        }
        if end == last_tried {
            return false;
        }
        last_tried = end;
        try_end(end)
    };
    match escape {
        Escape::TimeSeconds | Escape::TimeMillis => {
            if let Some((_, used)) = parse_pg_timestamp_cached(rest) {
                push(used);
            }
        }
        Escape::SessionStart => {
            if let Some((_, used)) = time::parse_pg_timestamp(rest) {
                push(used);
            }
        }
        Escape::Epoch => {
            if let Some((_, used)) = time::parse_epoch(rest) {
                push(used);
            }
        }
        Escape::Pid | Escape::LineNumber | Escape::Xid => {
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            if n > 0 {
                push(n);
            }
        }
        Escape::LeaderPid => {
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            push(n);
        }
        Escape::QueryId => {
            let sign = usize::from(rest.first() == Some(&b'-'));
            let n = rest[sign..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n > 0 {
                push(sign + n);
            }
        }
        Escape::SqlState
            if rest.len() >= 5
                && rest[..5]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            push(5);
        }
        Escape::SessionId => {
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_hexdigit() || **c == b'.')
                .count();
            if n > 0 {
                push(n);
            }
        }
        Escape::RemoteHostPort => {
            for n in host_port_ends(rest) {
                if push(n) {
                    return;
                }
            }
        }
        _ if escape.is_free_text() => {
            for n in FreeTextEnds::new(rest, next_literal) {
                if push(n) {
                    return;
                }
            }
        }
        _ => {}
    }
}

/// The candidate lengths of `%r` text at the start of `rest`, best first:
/// `[local]`, then each `host(port)` (the port is digits in parentheses),
/// then nothing (non-session processes print nothing).
fn host_port_ends(rest: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let local = rest.starts_with(b"[local]").then_some(7);
    let limit = rest.len().min(MAX_FREE_TEXT);
    let mut from = 0;
    let ports = std::iter::from_fn(move || {
        while let Some(open) = memchr::memchr(b'(', &rest[from..limit]) {
            let open = from + open;
            from = open + 1;
            let digits = rest[open + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if open > 0 && digits > 0 && rest.get(open + 1 + digits) == Some(&b')') {
                return Some(open + digits + 2);
            }
        }
        None
    });
    local.into_iter().chain(ports).chain(std::iter::once(0))
}

/// The candidate lengths of free text at the start of `rest`, shortest
/// first, up to [`MAX_FREE_TEXT`]: with a next literal, only the empty text
/// and the offsets where that literal's first byte is; without, every
/// length.
struct FreeTextEnds<'a> {
    rest: &'a [u8],
    limit: usize,
    stop: Option<u8>,
    from: usize,
}

impl<'a> FreeTextEnds<'a> {
    fn new(rest: &'a [u8], next_literal: Option<&[u8]>) -> Self {
        FreeTextEnds {
            rest,
            limit: rest.len().min(MAX_FREE_TEXT),
            stop: next_literal.and_then(|l| l.first().copied()),
            from: 0,
        }
    }
}

impl Iterator for FreeTextEnds<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let n = self.from;
        if n > self.limit {
            return None;
        }
        let end = match self.stop {
            Some(byte) if n > 0 => n + memchr::memchr(byte, &self.rest[n..self.limit])?,
            _ => n,
        };
        self.from = end + 1;
        Some(end)
    }
}

/// After the prefix: `SEVERITY:` then one or two spaces, and with verbose
/// error logging an `SQLSTATE: ` code. Returns (label, body offset, sqlstate).
fn match_label(line: &[u8], pos: usize) -> Option<(Label, usize, Option<&[u8]>)> {
    let rest = &line[pos..];
    let word_len = rest
        .iter()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        .count();
    if word_len == 0 || rest.get(word_len) != Some(&b':') {
        return None;
    }
    let label = Label::parse(&rest[..word_len])?;
    let mut at = word_len + 1;
    let spaces = rest[at..]
        .iter()
        .take(2)
        .take_while(|c| **c == b' ')
        .count();
    if spaces == 0 && at < rest.len() {
        return None;
    }
    at += spaces;
    let mut sqlstate = None;
    if rest.len() >= at + 7
        && rest[at..at + 5]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && rest[at..at + 5].iter().any(u8::is_ascii_digit)
        && &rest[at + 5..at + 7] == b": "
    {
        sqlstate = Some(&rest[at..at + 5]);
        at += 7;
    }
    Some((label, pos + at, sqlstate))
}

/// A named prefix from `grammars/prefixes.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Preset {
    pub name: String,
    pub prefix: String,
    pub description: String,
    #[serde(default)]
    pub samples: Vec<String>,
}

#[derive(serde::Deserialize)]
struct PresetFile {
    preset: Vec<Preset>,
}

/// The presets shipped in `grammars/prefixes.toml`, in file order.
pub fn presets() -> &'static [Preset] {
    static PRESETS: std::sync::OnceLock<Vec<Preset>> = std::sync::OnceLock::new();
    PRESETS.get_or_init(|| {
        let text = include_str!("../grammars/prefixes.toml");
        match toml::from_str::<PresetFile>(text) {
            Ok(file) => file.preset,
            // The file is part of the build and covered by tests.
            Err(e) => panic!("grammars/prefixes.toml: {e}"),
        }
    })
}

/// Looks up a preset by name.
pub fn preset(name: &str) -> Option<&'static Preset> {
    presets().iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(prefix: &str, line: &str) -> (PrefixFields<'static>, Label, String) {
        let p = Prefix::compile(prefix).unwrap();
        let line: &'static str = Box::leak(line.to_string().into_boxed_str());
        match p.parse_line(line.as_bytes()) {
            LineMatch::Header {
                fields,
                label,
                body,
                ..
            } => (fields, label, String::from_utf8_lossy(body).into_owned()),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn rds_prefix() {
        let (f, label, body) = header(
            "%t:%r:%u@%d:[%p]:",
            "2019-09-29 10:13:24 UTC:10.0.1.7(43300):pgmonitor@pgbench:[29443]:FATAL:  PAM authentication failed for user \"pgmonitor\"",
        );
        assert_eq!(label, Label::Fatal);
        assert_eq!(f.pid, Some(29443));
        assert_eq!(f.user, Some(&b"pgmonitor"[..]));
        assert_eq!(f.database, Some(&b"pgbench"[..]));
        assert_eq!(f.client_addr, Some(&b"10.0.1.7"[..]));
        assert_eq!(f.client_port, Some(43300));
        assert_eq!(body, "PAM authentication failed for user \"pgmonitor\"");
    }

    #[test]
    fn rds_prefix_ipv6_unknown_and_background() {
        let (f, _, _) = header(
            "%t:%r:%u@%d:[%p]:",
            "2026-11-28 14:51:17 UTC:::1(34249):[unknown]@[unknown]:[29001]:LOG:  connection received: host=::1 port=34249",
        );
        assert_eq!(f.client_addr, Some(&b"::1"[..]));
        assert_eq!(f.client_port, Some(34249));
        assert_eq!(f.user, None);
        let (f, label, body) = header(
            "%t:%r:%u@%d:[%p]:",
            "2019-10-22 03:09:45 UTC::@:[25852]:LOG:  automatic vacuum of table",
        );
        assert_eq!(
            (f.pid, label, f.client_addr),
            (Some(25852), Label::Log, None)
        );
        assert_eq!(body, "automatic vacuum of table");
    }

    #[test]
    fn user_with_at_sign_and_colon() {
        let (f, _, body) = header(
            "%t:%r:%u@%d:[%p]:",
            "2026-11-28 14:51:17 UTC:[local]:a@b:c@db:[7]:LOG:  x",
        );
        assert_eq!(f.pid, Some(7));
        assert_eq!(body, "x");
        assert_eq!(f.client_addr, Some(&b"[local]"[..]));
    }

    #[test]
    fn debian_prefix_with_q() {
        let (f, label, _) = header(
            "%m [%p] %q%u@%d ",
            "2026-11-28 14:57:29.156 UTC [4691] alice@pamdb LOG:  pam_authenticate failed: Authentication failure",
        );
        assert_eq!((f.pid, label), (Some(4691), Label::Log));
        assert_eq!(f.user, Some(&b"alice"[..]));
        let (f, label, body) = header(
            "%m [%p] %q%u@%d ",
            "2026-11-28 14:57:21.812 UTC [4600] LOG:  checkpoint starting: time",
        );
        assert_eq!((f.pid, label, f.user), (Some(4600), Label::Log, None));
        assert_eq!(body, "checkpoint starting: time");
    }

    #[test]
    fn padding_and_verbose_sqlstate() {
        let (f, label, body) = header(
            "%m [%-6p] %e ",
            "2026-11-28 14:57:21.812 UTC [42    ] 28P01 FATAL:  28P01: password authentication failed",
        );
        assert_eq!((f.pid, label), (Some(42), Label::Fatal));
        assert_eq!(f.sqlstate, Some(&b"28P01"[..]));
        assert_eq!(body, "password authentication failed");
    }

    #[test]
    fn forged_newline_in_user_is_broken() {
        let p = Prefix::compile("%t:%r:%u@%d:[%p]:").unwrap();
        let m = p.parse_line(b"2026-11-28 14:51:29 UTC:127.0.0.1(35956):evil\"");
        assert!(matches!(m, LineMatch::Broken { .. }), "{m:?}");
        assert_eq!(
            p.parse_line(b"* Connected to rdsauthproxy (10.0.0.1) port 1108 (#0)"),
            LineMatch::NoMatch
        );
    }

    #[test]
    fn application_name_imitating_a_label_is_ambiguous() {
        let p = Prefix::compile("%m [%p] %q%u@%d %a ").unwrap();
        let line = b"2026-11-28 14:57:29.156 UTC [4691] alice@db x LOG:  connection authorized: user=admin LOG:  disconnection";
        let LineMatch::Header {
            fields, body_start, ..
        } = p.parse_line(line)
        else {
            panic!()
        };
        assert!(p.is_ambiguous(line, fields.prefix_end, body_start));
        let honest =
            b"2026-11-28 14:57:29.156 UTC [4691] alice@db psql LOG:  disconnection: session time";
        let LineMatch::Header {
            fields, body_start, ..
        } = p.parse_line(honest)
        else {
            panic!()
        };
        assert!(!p.is_ambiguous(honest, fields.prefix_end, body_start));
    }

    #[test]
    fn labels_are_looked_for_after_the_literals_that_end_a_prefix() {
        let guards = |text: &str| {
            Prefix::compile(text).unwrap().label_guards.map(|g| {
                g.iter()
                    .map(|g| String::from_utf8_lossy(&g.literal).into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(guards("%t:%r:%u@%d:[%p]:"), Some(vec!["]:".into()]));
        assert_eq!(
            guards("%m [%p]: %q%u@%d: "),
            Some(vec!["]: ".into(), ": ".into()])
        );
        assert_eq!(
            guards("%m [%p] %q[user=%u,db=%d,app=%a] "),
            Some(vec!["] ".into()])
        );
        // A one-byte literal, an escape or nothing before a label: any
        // colon may end one.
        assert_eq!(guards("%m [%p] %q%u@%d "), None);
        assert_eq!(guards("%m %u"), None);
        assert_eq!(guards("%q%u:: "), None);

        // Each is found through its rarest byte.
        let anchor = |lit: &[u8]| LabelGuard::new(lit).anchor;
        assert_eq!(anchor(b"]:"), 0);
        assert_eq!(anchor(b": "), 0);
        assert_eq!(anchor(b"ab]: "), 2);
        assert_eq!(anchor(b"|x|"), 0);
        let guard = LabelGuard::new(b"]]");
        assert_eq!(guard.labels_after(b"]]]LOG:  x ]]FATAL:  y", 5, None), 2);
        assert_eq!(guard.labels_after(b"]]]LOG:  x ]]FATAL:  y", 1, None), 1);
        assert_eq!(guard.labels_after(b"]]]LOG:  x ]]FATAL:  y", 5, Some(3)), 1);
        assert_eq!(guard.labels_after(b"]]]LOG:  x ]]FATAL:  y", 5, Some(2)), 2);
        assert_eq!(guard.labels_after(b"]LOG:  ]] LOG:  ]]", 5, None), 0);

        let p = Prefix::compile("%t:%r:%u@%d:[%p]:").unwrap();
        let line = |user: &str| {
            format!(
                "2026-11-28 16:22:42 UTC:10.0.1.7(43210):{user}@db:[24601]:LOG:  connection received"
            )
        };
        let could_be_ambiguous = |user: &str| {
            let line = line(user);
            let LineMatch::Header { fields, .. } = p.parse_line(line.as_bytes()) else {
                panic!("{line}")
            };
            p.could_be_ambiguous(line.as_bytes(), fields.prefix_end)
        };
        assert!(!could_be_ambiguous("alice"));
        assert!(!could_be_ambiguous("ERROR:LOG:x"));
        assert!(could_be_ambiguous("x@y:[1]:LOG:  z"));
        assert!(could_be_ambiguous("]:FATAL:  "));
        // No spaces after the colon: not a label where a prefix ends.
        assert!(!could_be_ambiguous("]:FATAL:x"));
    }

    #[test]
    fn rejects_bad_prefixes() {
        assert!(Prefix::compile("%t %").is_err());
        assert!(Prefix::compile("%k").is_err());
    }

    /// What a server would print for each escape, for the round-trip test.
    struct Sample {
        secs: i64,
        millis: i64,
        pid: u32,
        user: String,
        database: String,
        app: String,
        host: String,
        port: u16,
    }

    fn format_line(prefix: &Prefix, s: &Sample, label: &str, message: &str) -> String {
        let stamp = |with_ms: bool| {
            let dt = chrono::DateTime::from_timestamp(s.secs, 0).unwrap();
            if with_ms {
                format!("{}.{:03} UTC", dt.format("%Y-%m-%d %H:%M:%S"), s.millis)
            } else {
                format!("{} UTC", dt.format("%Y-%m-%d %H:%M:%S"))
            }
        };
        let mut out = String::new();
        for piece in &prefix.pieces {
            match piece {
                Piece::Literal(l) => out.push_str(std::str::from_utf8(l).unwrap()),
                Piece::StopIfNoSession => {}
                Piece::Escape { escape, .. } => out.push_str(&match escape {
                    Escape::ApplicationName => s.app.clone(),
                    Escape::User => s.user.clone(),
                    Escape::Database => s.database.clone(),
                    Escape::RemoteHostPort => format!("{}({})", s.host, s.port),
                    Escape::RemoteHost => s.host.clone(),
                    Escape::LocalAddr => "127.0.0.1".into(),
                    Escape::BackendType => "client backend".into(),
                    Escape::Pid => s.pid.to_string(),
                    Escape::LeaderPid => String::new(),
                    Escape::TimeSeconds => stamp(false),
                    Escape::TimeMillis => stamp(true),
                    Escape::Epoch => format!("{}.{:03}", s.secs, s.millis),
                    Escape::PsDisplay => "idle".into(),
                    Escape::SqlState => "00000".into(),
                    Escape::SessionId => format!("{:x}.{:x}", s.secs, s.pid),
                    Escape::LineNumber => "3".into(),
                    Escape::SessionStart => stamp(false),
                    Escape::VirtualXid => "3/7".into(),
                    Escape::Xid => "0".into(),
                    Escape::QueryId => "-8259055824528607182".into(),
                }),
            }
        }
        format!("{out}{label}:  {message}")
    }

    proptest::proptest! {
        #[test]
        fn every_preset_round_trips(
            secs in 946_684_800i64..4_102_444_800,
            millis in 0i64..1000,
            pid in 1u32..4_194_304,
            user in "[a-z_][a-z0-9_]{0,20}",
            database in "[a-z_][a-z0-9_]{0,20}",
            app in "[a-z0-9][a-z0-9 ._-]{0,20}[a-z0-9]",
            host in proptest::prop_oneof!["10\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}", "::1", "fe80::[0-9a-f]{1,4}"],
            port in 1u16..,
            label in proptest::prop_oneof!["LOG", "FATAL", "DETAIL", "ERROR"],
            message in "[a-z][a-z =:,\"()]{0,40}",
        ) {
            let sample = Sample { secs, millis, pid, user, database, app, host, port };
            for preset in presets() {
                let prefix = Prefix::compile(&preset.prefix).unwrap();
                let line = format_line(&prefix, &sample, &label, &message);
                let LineMatch::Header { fields, label: got, body, .. } = prefix.parse_line(line.as_bytes()) else {
                    panic!("{}: no header parse of {line:?}", preset.name);
                };
                proptest::prop_assert_eq!(got.as_str(), label.as_str(), "{}", preset.name);
                proptest::prop_assert_eq!(body, message.as_bytes(), "{}", preset.name);
                let has = |e: Escape| prefix.pieces.iter().any(|p| matches!(p, Piece::Escape { escape, .. } if *escape == e));
                if has(Escape::Pid) {
                    proptest::prop_assert_eq!(fields.pid, Some(sample.pid));
                }
                if has(Escape::TimeMillis) || has(Escape::Epoch) {
                    proptest::prop_assert_eq!(fields.time_ms, Some(sample.secs * 1000 + sample.millis));
                } else if has(Escape::TimeSeconds) {
                    proptest::prop_assert_eq!(fields.time_ms, Some(sample.secs * 1000));
                }
                if has(Escape::User) {
                    proptest::prop_assert_eq!(fields.user, Some(sample.user.as_bytes()), "{}", preset.name);
                }
                if has(Escape::Database) {
                    proptest::prop_assert_eq!(fields.database, Some(sample.database.as_bytes()), "{}", preset.name);
                }
                if has(Escape::ApplicationName) {
                    proptest::prop_assert_eq!(fields.application_name, Some(sample.app.as_bytes()), "{}", preset.name);
                }
                if has(Escape::RemoteHostPort) {
                    proptest::prop_assert_eq!(fields.client_addr, Some(sample.host.as_bytes()));
                    proptest::prop_assert_eq!(fields.client_port, Some(sample.port));
                } else if has(Escape::RemoteHost) {
                    proptest::prop_assert_eq!(fields.client_addr, Some(sample.host.as_bytes()));
                }
            }
        }
    }

    /// The full backtracking search alone, as `parse_line` did before the
    /// first-path shortcut.
    fn full_search<'a>(p: &Prefix, line: &'a [u8]) -> Option<(PrefixFields<'a>, Label, usize)> {
        let mut fields = PrefixFields::default();
        p.match_from(0, line, 0, &mut fields, None)
            .map(|(label, body_start)| (fields, label, body_start))
    }

    /// The first path, when it succeeds, and `parse_line` agree with the
    /// full search on `line`, fields included; and so do the ambiguity
    /// decisions built on its answer.
    fn assert_same_as_full_search(p: &Prefix, line: &[u8]) {
        let full = full_search(p, line);
        // The cheap condition of the second-reading check holds wherever
        // a second reading exists.
        if let Some((first_fields, _, body_start)) = &full {
            let mut fields = PrefixFields::default();
            if p.match_from(0, line, 0, &mut fields, Some(*body_start))
                .is_some()
            {
                assert!(
                    p.could_be_ambiguous(line, first_fields.prefix_end),
                    "{}: second reading missed: {}",
                    p.as_str(),
                    String::from_utf8_lossy(line)
                );
            }
        }
        let mut fields = PrefixFields::default();
        let first = p.match_first_path(line, &mut fields);
        if first == Err(Missed::Surely) {
            assert_eq!(
                full,
                None,
                "{}: {}",
                p.as_str(),
                String::from_utf8_lossy(line)
            );
            if let Some(first_raw) = p.first_raw {
                let mut head = PrefixFields::default();
                assert!(
                    !p.match_head(line, first_raw, &mut head),
                    "{}: {}",
                    p.as_str(),
                    String::from_utf8_lossy(line)
                );
            }
        }
        if let Ok((label, body_start)) = first {
            assert_eq!(
                Some((fields, label, body_start)),
                full,
                "{}: {}",
                p.as_str(),
                String::from_utf8_lossy(line)
            );
        }
        let got = match p.parse_line(line) {
            LineMatch::Header {
                fields,
                label,
                body_start,
                ..
            } => Some((fields, label, body_start)),
            _ => None,
        };
        assert_eq!(
            got,
            full,
            "{}: {}",
            p.as_str(),
            String::from_utf8_lossy(line)
        );
    }

    /// User and database names a client could choose to imitate separators,
    /// labels and whole prefixes.
    const TRICKY_NAMES: &[&str] = &[
        "alice",
        "",
        "[unknown]",
        "a:b",
        "a@b",
        "a@b:c",
        "x:[1]:LOG",
        "x:[1]:LOG:  ",
        "u@d:[7]:FATAL:  forged",
        "[",
        "]",
        "[9]",
        "]:",
        "(",
        "h(5432)",
        "a b",
        " ",
        "LOG:  x",
        " LOG:  x",
        "alice@db LOG:  x",
        "alice@db [1] LOG:  x",
        "1.2.3.4(99):a@b:[5]:",
        "2026-11-28 14:51:17 UTC:",
        "@",
        ":",
        "::",
        "@@",
    ];

    /// [`label_colons`] as first written: one `memchr` per colon.
    fn label_colons_reference(line: &[u8]) -> usize {
        let mut found = 0;
        for colon in memchr::memchr_iter(b':', line) {
            if is_label_word_before(line, colon) {
                found += 1;
                if found == 2 {
                    break;
                }
            }
        }
        found
    }

    #[test]
    fn label_colons_agrees_with_one_memchr_per_colon() {
        let lines: [&[u8]; 11] = [
            b"",
            b":",
            b"LOG:",
            b"LOG:LOG:",
            b"2026-11-28 16:22:42 UTC:10.0.1.7(43210):app@db:[24601]:LOG:  connection received: host=::1",
            b"2026-11-28 16:22:42 UTC::FATAL:@db:[1]:LOG:  x",
            b"x DEBUG5: y LOCATION: z",
            b"ABCLOG: DEBUG6: WARNING:",
            b"\xff\xfeERROR:\x80STATEMENT:",
            b"x:[1]:LOGDETAIL:  LOG:  x",
            b"ABACKTRACE:XSTATEMENT:",
        ];
        for line in lines {
            assert_eq!(label_colons(line), label_colons_reference(line), "{line:?}");
        }
        // A label glued to the free text before it still counts.
        assert_eq!(label_colons(b"x:[1]:LOGDETAIL:  LOG:  x"), 2);
        assert_eq!(label_colons(b"UTC:ABACKTRACE:"), 1);
        assert_eq!(label_colons(b"UTC:LO:OG:"), 0);
    }

    #[test]
    fn free_text_at_the_end_of_the_prefix_takes_the_shortest_reading() {
        // No literal between `%u` and the label: the user is what comes
        // before the first label that completes the line (it was once the
        // last candidate's, which left such lines unparsed).
        let (fields, label, body) = header(
            "%m %u",
            "2026-11-28 14:57:21.812 UTC aliceLOG:  connection received: host=::1 port=5432",
        );
        assert_eq!(fields.user, Some(&b"alice"[..]));
        assert_eq!(label, Label::Log);
        assert_eq!(body, "connection received: host=::1 port=5432");
    }

    /// `%r` read by the first path gives what the full search gives, for
    /// hosts with spaces, parentheses, long or missing ports, and `[local]`.
    #[test]
    fn first_path_reads_tricky_host_port_text_as_the_full_search() {
        let hosts = [
            "10.0.1.7(43300)",
            "[local]",
            "[local](5)",
            "",
            " ",
            "a (5)",
            "  (5)",
            " lead(6)",
            "(7)",
            "h(1)(2)",
            "h(1):(2)",
            "h(99999999999)",
            "h(70000)",
            "h()",
            "h(5",
            "h(5)x",
            "h(5):x(6)",
            "::1(443)",
        ];
        for text in ["%t:%r:%u@%d:[%p]:", "%m %r %u ", "%r%p ", "%m [%p] %r"] {
            let prefix = Prefix::compile(text).unwrap();
            for host in hosts {
                let line = match text {
                    "%t:%r:%u@%d:[%p]:" => {
                        format!("2026-11-28 14:57:21 UTC:{host}:alice@db:[42]:LOG:  x")
                    }
                    "%m %r %u " => format!("2026-11-28 14:57:21.123 UTC {host} alice LOG:  x"),
                    "%r%p " => format!("{host}42 LOG:  x"),
                    _ => format!("2026-11-28 14:57:21.123 UTC [42] {host}LOG:  x"),
                };
                assert_same_as_full_search(&prefix, line.as_bytes());
            }
        }
    }

    #[test]
    fn first_path_agrees_with_full_search_on_tricky_names() {
        let mut sample = Sample {
            secs: 1_764_341_841,
            millis: 812,
            pid: 4691,
            user: String::new(),
            database: String::new(),
            app: "psql".into(),
            host: "10.0.1.7".into(),
            port: 43300,
        };
        let mut prefixes: Vec<String> = presets().iter().map(|p| p.prefix.clone()).collect();
        prefixes.extend(
            [
                "%t:%r:%u@%d:[%p]:",
                "%m [%p] %q%u@%d %a ",
                "%m [%-6p] %e ",
                "%u%d ",
                "%u:%d:",
                "%m %c %p %u %d ",
                "%q%u@%d ",
                "%-10u|%10d|",
                "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
                "%m %u",
                "%m [%p] %a",
                "%p%u",
                "%m [%p]: %q%u@%d: ",
            ]
            .map(String::from),
        );
        for text in &prefixes {
            let prefix = Prefix::compile(text).unwrap();
            for user in TRICKY_NAMES {
                for database in TRICKY_NAMES {
                    sample.user = user.to_string();
                    sample.database = database.to_string();
                    for (label, message) in [
                        ("LOG", "connection authorized: user=a database=b"),
                        ("FATAL", "28P01: password authentication failed"),
                        ("DETAIL", "LOG:  x"),
                    ] {
                        let line = format_line(&prefix, &sample, label, message);
                        assert_same_as_full_search(&prefix, line.as_bytes());
                        // Cut lines: a newline inside a raw field.
                        for cut in [line.len() / 3, line.len() / 2, line.len() - 3] {
                            if let Some(head) = line.as_bytes().get(..cut) {
                                assert_same_as_full_search(&prefix, head);
                            }
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn first_path_agrees_with_full_search(
            user in "[a-z:@\\[\\]( )0-9A-Z]{0,12}",
            database in "[a-z:@\\[\\]( )0-9A-Z]{0,12}",
            app in "[a-z:@ LOGFATL]{0,12}",
            message in "[a-zLOG: ]{0,20}",
        ) {
            let sample = Sample {
                secs: 1_764_341_841,
                millis: 7,
                pid: 100_312,
                user,
                database,
                app,
                host: "127.0.0.1".into(),
                port: 44538,
            };
            for preset in presets() {
                let prefix = Prefix::compile(&preset.prefix).unwrap();
                let line = format_line(&prefix, &sample, "LOG", &message);
                assert_same_as_full_search(&prefix, line.as_bytes());
            }
        }
    }

    proptest::proptest! {
        /// What detection does: every preset tried on lines written with
        /// another one, whole or cut short.
        #[test]
        fn every_preset_agrees_with_full_search_on_other_presets_lines(
            from in 0..64usize,
            cut in 0..160usize,
            user in "[a-z:@\\[\\]( )0-9A-Z]{0,8}",
            message in "[a-zLOG: ]{0,16}",
        ) {
            let all = presets();
            let writer = Prefix::compile(&all[from % all.len()].prefix).unwrap();
            let sample = Sample {
                secs: 1_764_341_841,
                millis: 7,
                pid: 100_312,
                user,
                database: "appdb".into(),
                app: "psql".into(),
                host: "10.0.1.7".into(),
                port: 44538,
            };
            let line = format_line(&writer, &sample, "LOG", &message);
            let line = &line.as_bytes()[..cut.min(line.len())];
            for preset in all {
                let prefix = Prefix::compile(&preset.prefix).unwrap();
                assert_same_as_full_search(&prefix, line);
            }
        }

        #[test]
        fn label_colons_agrees_on_any_line(line in "[A-Z0-9a-z: ]{0,40}") {
            proptest::prop_assert_eq!(
                label_colons(line.as_bytes()),
                label_colons_reference(line.as_bytes())
            );
        }
    }

    #[test]
    fn every_preset_compiles_and_parses_its_samples() {
        for preset in presets() {
            let prefix =
                Prefix::compile(&preset.prefix).unwrap_or_else(|e| panic!("{}: {e}", preset.name));
            for sample in &preset.samples {
                assert!(
                    matches!(
                        prefix.parse_line(sample.as_bytes()),
                        LineMatch::Header { .. }
                    ),
                    "preset {}: sample does not parse: {sample}",
                    preset.name
                );
            }
        }
    }
}
