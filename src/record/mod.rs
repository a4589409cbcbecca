//! `Record<'a>`: one PostgreSQL log record, decoded from any format, borrowing
//! from the input buffer. One decoder per format lives in a submodule; they do
//! no I/O and hand records to a callback.

use std::borrow::Cow;

pub mod csvlog;
pub mod jsonlog;
pub mod stderr;
pub mod syslog;

/// The severity or the secondary label of a physical stderr line.
///
/// `Detail` … `Backtrace` only appear while decoding stderr/syslog; the
/// assembler folds them into the preceding primary record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Debug,
    Log,
    Info,
    Notice,
    Warning,
    Error,
    Fatal,
    Panic,
    Detail,
    Hint,
    Query,
    Context,
    Location,
    Statement,
    Backtrace,
}

impl Label {
    /// Recognises a severity word or secondary label as PostgreSQL prints it
    /// (`DEBUG1`…`DEBUG5` included).
    pub fn parse(word: &[u8]) -> Option<Label> {
        Some(match word {
            b"LOG" => Label::Log,
            b"FATAL" => Label::Fatal,
            b"DETAIL" => Label::Detail,
            b"ERROR" => Label::Error,
            b"WARNING" => Label::Warning,
            b"HINT" => Label::Hint,
            b"STATEMENT" => Label::Statement,
            b"CONTEXT" => Label::Context,
            b"NOTICE" => Label::Notice,
            b"INFO" => Label::Info,
            b"PANIC" => Label::Panic,
            b"QUERY" => Label::Query,
            b"LOCATION" => Label::Location,
            b"BACKTRACE" => Label::Backtrace,
            b"DEBUG" | b"DEBUG1" | b"DEBUG2" | b"DEBUG3" | b"DEBUG4" | b"DEBUG5" => Label::Debug,
            _ => return None,
        })
    }

    /// True for the labels that start a record (severities).
    pub fn is_severity(self) -> bool {
        !matches!(
            self,
            Label::Detail
                | Label::Hint
                | Label::Query
                | Label::Context
                | Label::Location
                | Label::Statement
                | Label::Backtrace
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Debug => "DEBUG",
            Label::Log => "LOG",
            Label::Info => "INFO",
            Label::Notice => "NOTICE",
            Label::Warning => "WARNING",
            Label::Error => "ERROR",
            Label::Fatal => "FATAL",
            Label::Panic => "PANIC",
            Label::Detail => "DETAIL",
            Label::Hint => "HINT",
            Label::Query => "QUERY",
            Label::Context => "CONTEXT",
            Label::Location => "LOCATION",
            Label::Statement => "STATEMENT",
            Label::Backtrace => "BACKTRACE",
        }
    }
}

/// One log record. Text fields are `Cow`: borrowed when the input needed no
/// unescaping and was valid UTF-8, owned otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// Milliseconds since the Unix epoch, UTC.
    pub time_ms: Option<i64>,
    pub pid: Option<u32>,
    pub user: Option<Cow<'a, str>>,
    pub database: Option<Cow<'a, str>>,
    pub application_name: Option<Cow<'a, str>>,
    /// IP text, host name, or `[local]`.
    pub client_addr: Option<Cow<'a, str>>,
    pub client_port: Option<u16>,
    pub label: Label,
    pub sqlstate: Option<Cow<'a, str>>,
    /// The message; continuation lines are joined with `\n`, their leading TAB removed.
    pub message: Cow<'a, str>,
    pub detail: Option<Cow<'a, str>>,
    pub hint: Option<Cow<'a, str>>,
    /// CONTEXT text: present on records raised from SQL (PL/pgSQL `RAISE`),
    /// never on a genuine connection message.
    pub context: Option<Cow<'a, str>>,
    /// stderr/syslog only: client text in the prefix (`%a`, `%u`, `%d`) makes
    /// a second reading of this line possible (see `Prefix::is_ambiguous`).
    pub prefix_ambiguous: bool,
    /// 1-based physical line of the record's first line within its input.
    pub line: u64,
    /// Last physical line the record spans (DETAIL lines included).
    pub last_line: u64,
    /// The bytes were not all UTF-8; text was converted lossily.
    pub invalid_utf8: bool,
    /// Ingestion time from a CloudWatch / S3-export wrapper.
    pub ingest_time_ms: Option<i64>,
    /// True when the format carries `application_name` in its own field
    /// (csvlog, jsonlog), so text inside the message cannot pose as it.
    pub structured: bool,
}

impl<'a> Record<'a> {
    /// A record with only a label and message, at `line`.
    pub fn new(label: Label, message: Cow<'a, str>, line: u64) -> Self {
        Record {
            time_ms: None,
            pid: None,
            user: None,
            database: None,
            application_name: None,
            client_addr: None,
            client_port: None,
            label,
            sqlstate: None,
            message,
            detail: None,
            hint: None,
            context: None,
            prefix_ambiguous: false,
            line,
            last_line: line,
            invalid_utf8: false,
            ingest_time_ms: None,
            structured: false,
        }
    }

    /// Makes a reused record what [`Record::new`] makes, in place (a record
    /// is large: building one and moving it into its box cost a copy). The
    /// pattern names every field, so a new field cannot be left stale.
    pub fn reset(&mut self, label: Label, message: Cow<'a, str>, line: u64) {
        let Record {
            time_ms,
            pid,
            user,
            database,
            application_name,
            client_addr,
            client_port,
            label: old_label,
            sqlstate,
            message: old_message,
            detail,
            hint,
            context,
            prefix_ambiguous,
            line: old_line,
            last_line,
            invalid_utf8,
            ingest_time_ms,
            structured,
        } = self;
        *time_ms = None;
        *pid = None;
        *user = None;
        *database = None;
        *application_name = None;
        *client_addr = None;
        *client_port = None;
        *old_label = label;
        *sqlstate = None;
        *old_message = message;
        *detail = None;
        *hint = None;
        *context = None;
        *prefix_ambiguous = false;
        *old_line = line;
        *last_line = line;
        *invalid_utf8 = false;
        *ingest_time_ms = None;
        *structured = false;
    }
}

/// Why a physical line or row produced no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unparsed {
    /// Text with no log prefix (PAM module output, the RDS auth proxy's
    /// curl trace, anything else written to the server's stderr).
    Foreign,
    /// A csv row with a column count no PostgreSQL version writes, or an
    /// unparseable field.
    BadCsv,
    /// A jsonlog line that is not a JSON object of the expected shape.
    BadJson,
    /// Longer than the configured line limit; skipped.
    TooLong,
    /// A syslog line whose payload is not a PostgreSQL record.
    BadSyslog,
}

impl Unparsed {
    pub fn as_str(self) -> &'static str {
        match self {
            Unparsed::Foreign => "foreign",
            Unparsed::BadCsv => "bad_csv",
            Unparsed::BadJson => "bad_json",
            Unparsed::TooLong => "too_long",
            Unparsed::BadSyslog => "bad_syslog",
        }
    }
}

/// What a decoder hands to its callback.
#[derive(Debug, Clone, PartialEq)]
///
/// Records are boxed: an item is moved several times on its way (into the
/// decoder's reorder queue, out of it, into the extractor), and a record is
/// 280 bytes.
pub enum Item<'a> {
    Record(Box<Record<'a>>),
    /// A stderr/syslog record whose message cannot be a connection message
    /// (its level and first bytes start none of the catalogue's templates,
    /// see `Catalog::may_classify`): the statements, durations and
    /// checkpoints a busy server mostly logs. Only what the statistics count
    /// and what its secondary lines need is kept; its text is never
    /// converted.
    Quiet(Quiet),
    /// A line or row that is not a record; `text` is kept so foreign lines
    /// (e.g. an RDS auth-proxy `HTTP/1.1 403 Forbidden`) stay visible.
    Unparsed {
        reason: Unparsed,
        line: u64,
        text: Cow<'a, str>,
    },
    /// A stderr record whose prefix was broken by a newline inside a
    /// client-controlled field (§6 log forging). `head` carries what the
    /// trustworthy part of the prefix said (time, client, the broken line
    /// number) and, as its message, the text of every absorbed line;
    /// `tail_lines` are the physical lines absorbed as its dangling tail.
    Suspect {
        head: Box<Record<'a>>,
        tail_lines: Vec<u64>,
    },
}

/// See [`Item::Quiet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    pub pid: Option<u32>,
    /// 1-based physical line of the record's first line, and its last
    /// (secondary lines included).
    pub line: u64,
    pub last_line: u64,
    /// Some of what a record would have converted (the prefix's text
    /// fields, the message, its secondary lines) is not UTF-8.
    pub invalid_utf8: bool,
}

/// Converts bytes to text, borrowing when valid UTF-8. The flag says whether
/// a lossy conversion happened.
pub fn text(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (String::from_utf8_lossy(bytes), true),
    }
}

/// [`text`] of `part`, read as a slice of `whole` (text already checked)
/// when `part` lies inside it on character boundaries: one UTF-8 check per
/// line instead of one per field. Anything else is checked on its own.
pub fn text_within<'a>(whole: Option<&'a str>, part: &'a [u8]) -> (Cow<'a, str>, bool) {
    let inside = whole.and_then(|whole| {
        // An address inside `whole` is `whole`'s own memory: the slice taken
        // from `whole` is `part`'s very bytes. (`get` checks the bounds, so
        // this is not `range_within`, which checks them again.)
        let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        whole.get(start..start.checked_add(part.len())?)
    });
    match inside {
        Some(s) => (Cow::Borrowed(s), false),
        None => text(part),
    }
}

/// Where `part` lies within `whole`, when it is a slice of it (by address:
/// no comparison of bytes).
pub fn range_within(whole: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_record_is_a_new_one() {
        let text = |s: &str| Some(Cow::Owned(s.to_owned()));
        let mut used = Record::new(Label::Fatal, Cow::Borrowed("old"), 7);
        used.time_ms = Some(1);
        used.pid = Some(2);
        used.user = text("u");
        used.database = text("d");
        used.application_name = text("a");
        used.client_addr = text("c");
        used.client_port = Some(3);
        used.sqlstate = text("28000");
        used.detail = text("detail");
        used.hint = text("hint");
        used.context = text("context");
        used.prefix_ambiguous = true;
        used.last_line = 9;
        used.invalid_utf8 = true;
        used.ingest_time_ms = Some(4);
        used.structured = true;
        used.reset(Label::Log, Cow::Borrowed("new"), 11);
        assert_eq!(used, Record::new(Label::Log, Cow::Borrowed("new"), 11));
    }

    #[test]
    fn text_within_a_checked_line_equals_text_of_the_part() {
        let line = "t:app_é@db:[7]:LOG:  connection received".as_bytes();
        let whole = std::str::from_utf8(line).ok();
        let e = line.iter().position(|&b| b == 0xc3).unwrap();
        // Every slice of the line, on or off character boundaries.
        for start in 0..=line.len() {
            for end in start..=line.len() {
                let part = &line[start..end];
                assert_eq!(text_within(whole, part), text(part), "{start}..{end}");
            }
        }
        // Cut inside `é`: repaired and flagged, as `text` does.
        let (cut, invalid) = text_within(whole, &line[e..e + 1]);
        assert!(invalid);
        assert_eq!(cut, "\u{fffd}");
        // A part from elsewhere is checked on its own.
        let other = b"elsewhere\xff".to_vec();
        assert_eq!(text_within(whole, &other), text(&other));
        assert_eq!(text_within(None, &line[2..5]), text(&line[2..5]));
    }
}
