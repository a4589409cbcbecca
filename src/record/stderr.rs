//! The stderr decoder: physical lines → records, for any `log_line_prefix`.
//!
//! - A line that starts with TAB continues the previous physical record.
//! - DETAIL/HINT/CONTEXT/… lines attach to the preceding record of the same
//!   process.
//! - Unprefixed lines (PAM module output, the RDS auth proxy's curl trace)
//!   are emitted as `Unparsed::Foreign`, never glued onto a neighbour.
//! - A line whose prefix is cut by a newline inside `%u`/`%d` starts a
//!   suspect span: the following lines that complete the forged record are
//!   absorbed into one `Item::Suspect`, so forged text never becomes a record.
//! - The CloudWatch / S3-export wrapper (`2026-11-28T14:51:17.123Z `) is
//!   stripped from each line and kept as the ingestion time.

use std::borrow::Cow;
use std::collections::VecDeque;

use super::{Item, Label, Quiet, Record, Unparsed, text, text_within};
use crate::prefix::{LineMatch, Prefix, PrefixFields};
use crate::time;

/// Longest user or database name PostgreSQL keeps (NAMEDATALEN - 1).
const MAX_NAME: usize = 63;
/// Raw client text a forged record can spread over further lines: two names
/// plus the prefix literals between them.
const MAX_FORGED_BYTES: usize = 2 * MAX_NAME + 16;
/// Records kept back so that a DETAIL line of another process's record
/// interleaved in between can still find its record.
pub(crate) const REORDER_WINDOW: usize = 16;

/// Decides whether a record header (label, message start) deserves the
/// second-reading check (see [`StderrOptions::check_ambiguity`]), or may be
/// a connection message at all ([`StderrOptions::may_matter`]).
pub type AmbiguityCheck<'o> = &'o dyn Fn(Label, &[u8]) -> bool;

/// Decoder settings.
pub struct StderrOptions<'o> {
    /// Physical lines longer than this are skipped and reported (`too_long`).
    pub max_line_bytes: usize,
    /// Called for each record header (label, message start); when it returns
    /// true and the prefix has client text, the line is checked for a second
    /// reading (`Record::prefix_ambiguous`). Lets the caller limit the check
    /// to connection messages.
    pub check_ambiguity: Option<AmbiguityCheck<'o>>,
    /// Called for each severity record header (label, message start); when
    /// it returns false the record becomes an [`Item::Quiet`]: counted,
    /// given its secondary lines, its text never converted.
    pub may_matter: Option<AmbiguityCheck<'o>>,
}

impl Default for StderrOptions<'_> {
    fn default() -> Self {
        StderrOptions {
            max_line_bytes: 1 << 20,
            check_ambiguity: None,
            may_matter: None,
        }
    }
}

/// One physical line: its number and its content (wrapper stripped).
#[derive(Clone, Copy)]
struct Line<'a> {
    number: u64,
    content: &'a [u8],
    ingest_ms: Option<i64>,
    too_long: bool,
}

#[derive(Clone)]
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
    number: u64,
    max_line_bytes: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let mut raw = &rest[..len];
        self.pos += (len + 1).min(rest.len());
        self.number += 1;
        if let [head @ .., b'\r'] = raw {
            raw = head;
        }
        let (ingest_ms, content) = strip_export_wrapper(raw);
        Some(Line {
            number: self.number,
            content,
            ingest_ms,
            too_long: raw.len() > self.max_line_bytes,
        })
    }
}

/// Strips a leading `YYYY-MM-DDTHH:MM:SS.sssZ ` (CloudWatch / S3 export).
pub fn strip_export_wrapper(line: &[u8]) -> (Option<i64>, &[u8]) {
    if line.len() > 20
        && line[10] == b'T'
        && let Some((ms, used)) = time::parse_iso_utc(line)
        && line.get(used) == Some(&b' ')
    {
        return (Some(ms), &line[used + 1..]);
    }
    (None, line)
}

/// A physical record being assembled: a header line and its TAB continuations.
struct Physical<'a> {
    /// The whole header line.
    header: &'a [u8],
    fields: PrefixFields<'a>,
    label: Label,
    first: &'a [u8],
    more: Vec<&'a [u8]>,
    line: u64,
    last_line: u64,
    ingest_ms: Option<i64>,
    ambiguous: bool,
    /// See [`Item::Quiet`].
    quiet: bool,
}

impl<'a> Physical<'a> {
    /// Whether [`Physical::text`] would have to repair bytes that are not
    /// UTF-8, without building the text.
    fn text_is_utf8(&self) -> bool {
        std::str::from_utf8(self.first).is_ok()
            && self.more.iter().all(|l| std::str::from_utf8(l).is_ok())
    }

    /// The item of a quiet header, with `invalid_utf8` as
    /// [`record_from_fields`] and [`Physical::text`] would have set it.
    fn quiet(&self) -> Quiet {
        // An ASCII line has nothing to repair in its fields or message.
        let invalid_utf8 = !(self.header.is_ascii()
            || text_fields(&self.fields)
                .into_iter()
                .flatten()
                .chain([self.first])
                .all(|part| std::str::from_utf8(part).is_ok()))
            || !self.more.iter().all(|l| std::str::from_utf8(l).is_ok());
        Quiet {
            pid: self.fields.pid,
            line: self.line,
            last_line: self.last_line,
            invalid_utf8,
        }
    }

    /// The header line as text, when it is UTF-8 (nearly always): its
    /// fields and message are then slices of it, checked once.
    fn header_text(&self) -> Option<&'a str> {
        simdutf8::basic::from_utf8(self.header).ok()
    }

    fn text(&self, header: Option<&'a str>) -> (Cow<'a, str>, bool) {
        if self.more.is_empty() {
            return text_within(header, self.first);
        }
        let mut joined = Vec::with_capacity(
            self.first.len() + self.more.iter().map(|l| l.len() + 1).sum::<usize>(),
        );
        joined.extend_from_slice(self.first);
        for cont in &self.more {
            joined.push(b'\n');
            joined.extend_from_slice(cont);
        }
        match String::from_utf8(joined) {
            Ok(s) => (Cow::Owned(s), false),
            Err(e) => (
                Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                true,
            ),
        }
    }
}

fn opt_text<'a>(
    header: Option<&'a str>,
    b: Option<&'a [u8]>,
    invalid: &mut bool,
) -> Option<Cow<'a, str>> {
    b.map(|b| {
        let (t, bad) = text_within(header, b);
        *invalid |= bad;
        t
    })
}

/// The prefix fields a record holds as text, in [`record_from_fields`]'s
/// order; a quiet record checks the same ones for UTF-8.
fn text_fields<'a>(f: &PrefixFields<'a>) -> [Option<&'a [u8]>; 5] {
    [
        f.user,
        f.database,
        f.application_name,
        f.client_addr,
        f.sqlstate,
    ]
}

/// `header`: the line the fields were read from, as text when it is UTF-8.
fn record_from_fields<'a>(
    header: Option<&'a str>,
    fields: &PrefixFields<'a>,
    label: Label,
    message: Cow<'a, str>,
    line: u64,
) -> Record<'a> {
    let mut record = Record::new(label, message, line);
    set_fields(&mut record, header, fields);
    record
}

/// Sets what the prefix says on a record just made (`Record::new` or
/// `Record::reset`).
fn set_fields<'a>(record: &mut Record<'a>, header: Option<&'a str>, fields: &PrefixFields<'a>) {
    let mut invalid = false;
    let [user, database, application_name, client_addr, sqlstate] = text_fields(fields);
    record.time_ms = fields.time_ms;
    record.pid = fields.pid;
    record.user = opt_text(header, user, &mut invalid);
    record.database = opt_text(header, database, &mut invalid);
    record.application_name = opt_text(header, application_name, &mut invalid);
    record.client_addr = opt_text(header, client_addr, &mut invalid);
    record.client_port = fields.client_port;
    record.sqlstate = opt_text(header, sqlstate, &mut invalid);
    record.invalid_utf8 = invalid;
}

/// Output queue: keeps items in first-line order while secondary lines find
/// their record.
struct Queue<'a, 'e> {
    items: VecDeque<Item<'a>>,
    emit: &'e mut Emit<'a, 'e>,
    /// Record boxes the consumer handed back, reused for the next records
    /// (no allocation per record): the boxes themselves are the point.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Record<'a>>>,
}

/// What [`decode_recycling`] hands items to: it may give a record's box
/// back for reuse.
pub type Emit<'a, 'e> = dyn FnMut(Item<'a>) -> Option<Box<Record<'a>>> + 'e;

/// Boxes kept for reuse: the reorder window's worth.
const SPARE_BOXES: usize = REORDER_WINDOW + 2;

impl<'a> Queue<'a, '_> {
    fn push(&mut self, item: Item<'a>) {
        self.items.push_back(item);
        while self.items.len() > REORDER_WINDOW {
            if let Some(front) = self.items.pop_front() {
                self.emit(front);
            }
        }
    }

    fn emit(&mut self, item: Item<'a>) {
        if let Some(spare) = (self.emit)(item)
            && self.spare.len() < SPARE_BOXES
        {
            self.spare.push(spare);
        }
    }

    /// A new record in a box, a reused one when there is one (reset in
    /// place, not moved in).
    fn boxed(&mut self, label: Label, message: Cow<'a, str>, line: u64) -> Box<Record<'a>> {
        match self.spare.pop() {
            Some(mut b) => {
                b.reset(label, message, line);
                b
            }
            None => Box::new(Record::new(label, message, line)),
        }
    }

    fn flush(&mut self) {
        while let Some(front) = self.items.pop_front() {
            self.emit(front);
        }
    }

    /// Attaches a secondary line to the latest record of the same process.
    /// Returns the physical record back if there is none.
    fn attach(&mut self, physical: Physical<'a>) -> Result<(), Box<Physical<'a>>> {
        let pid = physical.fields.pid;
        let target = self.items.iter_mut().rev().find_map(|item| match item {
            Item::Record(r) if r.pid == pid && r.label.is_severity() => Some(Ok(r)),
            Item::Quiet(q) if q.pid == pid => Some(Err(q)),
            _ => None,
        });
        let record = match target {
            Some(Ok(record)) => record,
            Some(Err(quiet)) => {
                quiet.invalid_utf8 |= !physical.text_is_utf8();
                quiet.last_line = quiet.last_line.max(physical.last_line);
                return Ok(());
            }
            None => return Err(Box::new(physical)),
        };
        let (body, invalid) = physical.text(None);
        record.invalid_utf8 |= invalid;
        record.last_line = record.last_line.max(physical.last_line);
        let slot = match physical.label {
            Label::Detail => &mut record.detail,
            Label::Hint => &mut record.hint,
            Label::Context => &mut record.context,
            _ => return Ok(()),
        };
        *slot = Some(match slot.take() {
            None => body,
            Some(previous) => Cow::Owned(format!("{previous}\n{body}")),
        });
        Ok(())
    }
}

/// Decodes stderr-format text. `first_line` is the number of the line before
/// `buf` (0 for a whole file).
pub fn decode<'a>(
    buf: &'a [u8],
    prefix: &Prefix,
    first_line: u64,
    options: &StderrOptions<'_>,
    emit: &mut dyn FnMut(Item<'a>),
) {
    decode_recycling(buf, prefix, first_line, options, &mut |item| {
        emit(item);
        None
    });
}

/// [`decode`], where `emit` may hand a record's box back once it is done
/// with the record: the box then holds a later record (the hot path
/// allocates no box per record).
pub fn decode_recycling<'a, 'e>(
    buf: &'a [u8],
    prefix: &Prefix,
    first_line: u64,
    options: &StderrOptions<'_>,
    emit: &'e mut Emit<'a, 'e>,
) {
    let mut queue = Queue {
        items: VecDeque::new(),
        emit,
        spare: Vec::new(),
    };
    let mut lines = Lines {
        buf,
        pos: 0,
        number: first_line,
        max_line_bytes: options.max_line_bytes,
    };
    let mut current: Option<Physical<'a>> = None;
    // TAB lines that follow a suspect span belong to it.
    let mut in_suspect = false;

    while let Some(line) = lines.next() {
        if line.too_long {
            finish(&mut current, &mut queue);
            in_suspect = false;
            let shown = &line.content[..line.content.len().min(200)];
            queue.push(Item::Unparsed {
                reason: Unparsed::TooLong,
                line: line.number,
                text: Cow::Owned(String::from_utf8_lossy(shown).into_owned()),
            });
            continue;
        }
        if let Some(cont) = line.content.strip_prefix(b"\t") {
            if in_suspect && let Some(Item::Suspect { head, tail_lines }) = queue.items.back_mut() {
                head.message.to_mut().push('\n');
                head.message
                    .to_mut()
                    .push_str(&String::from_utf8_lossy(cont));
                tail_lines.push(line.number);
                head.last_line = line.number;
                continue;
            }
            if let Some(physical) = current.as_mut() {
                physical.more.push(cont);
                physical.last_line = line.number;
                continue;
            }
            let (t, _) = text(line.content);
            queue.push(Item::Unparsed {
                reason: Unparsed::Foreign,
                line: line.number,
                text: t,
            });
            continue;
        }
        in_suspect = false;
        match prefix.parse_line(line.content) {
            LineMatch::Header {
                fields,
                label,
                body,
                body_start,
            } => {
                finish(&mut current, &mut queue);
                let quiet =
                    label.is_severity() && options.may_matter.is_some_and(|may| !may(label, body));
                // Cheapest test first: most lines hold one severity label, and
                // then no second reading exists, whatever the message.
                let ambiguous = !quiet
                    && prefix.could_be_ambiguous(line.content, fields.prefix_end)
                    && options
                        .check_ambiguity
                        .is_some_and(|check| check(label, body))
                    && prefix.is_ambiguous(line.content, fields.prefix_end, body_start);
                current = Some(Physical {
                    header: line.content,
                    fields,
                    label,
                    first: body,
                    more: Vec::new(),
                    line: line.number,
                    last_line: line.number,
                    ingest_ms: line.ingest_ms,
                    ambiguous,
                    quiet,
                });
            }
            LineMatch::Broken { fields } => {
                finish(&mut current, &mut queue);
                let suspect = absorb_forged_tail(prefix, line, fields, &mut lines);
                queue.push(suspect);
                in_suspect = true;
            }
            LineMatch::NoMatch => {
                finish(&mut current, &mut queue);
                let (t, _) = text(line.content);
                queue.push(Item::Unparsed {
                    reason: Unparsed::Foreign,
                    line: line.number,
                    text: t,
                });
            }
        }
    }
    finish(&mut current, &mut queue);
    queue.flush();
}

/// Turns the finished physical record into a record or attaches it.
fn finish<'a>(current: &mut Option<Physical<'a>>, queue: &mut Queue<'a, '_>) {
    let Some(physical) = current.take() else {
        return;
    };
    let physical = if physical.label.is_severity() {
        physical
    } else {
        match queue.attach(physical) {
            Ok(()) => return,
            // A DETAIL without its record (cut off at the start of the
            // input): keep it as a record of its own.
            Err(orphan) => *orphan,
        }
    };
    if physical.quiet {
        queue.push(Item::Quiet(physical.quiet()));
        return;
    }
    let header = physical.header_text();
    let (message, invalid) = physical.text(header);
    let mut record = queue.boxed(physical.label, message, physical.line);
    set_fields(&mut record, header, &physical.fields);
    record.invalid_utf8 |= invalid;
    record.last_line = physical.last_line;
    record.ingest_time_ms = physical.ingest_ms;
    record.prefix_ambiguous = physical.ambiguous;
    queue.push(Item::Record(record));
}

/// After a broken prefix at `first`, finds the physical lines that complete
/// the record: the longest run of following lines (within the bytes a client
/// could have put in `%u`/`%d`) whose joined text parses as one header with
/// names no longer than PostgreSQL allows. Consumes them from `lines`.
fn absorb_forged_tail<'a>(
    prefix: &Prefix,
    first: Line<'a>,
    head: PrefixFields<'a>,
    lines: &mut Lines<'a>,
) -> Item<'a> {
    let ForgedTail { mut joined, end } = forged_tail(prefix, &first, lines);
    let (text_len, tail_lines) = match end {
        Some((after, len, tail_lines)) => {
            *lines = after;
            (len, tail_lines)
        }
        None => (first.content.len(), Vec::new()),
    };
    joined.truncate(text_len);
    let message = match String::from_utf8(joined) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let mut record = record_from_fields(None, &head, Label::Log, Cow::Owned(message), first.number);
    record.last_line = tail_lines.last().copied().unwrap_or(first.number);
    record.ingest_time_ms = first.ingest_ms;
    Item::Suspect {
        head: Box::new(record),
        tail_lines,
    }
}

/// The forged span that a broken line starts, as [`absorb_forged_tail`]
/// reads it.
struct ForgedTail<'a> {
    /// The broken line and the lines looked at after it, joined by `\n`.
    joined: Vec<u8>,
    /// Where the span ends, if it takes any line: the reader after its last
    /// line, the span's length in `joined`, and its lines' numbers.
    end: Option<(Lines<'a>, usize, Vec<u64>)>,
}

/// Finds the lines that the broken line `first` takes after it (see
/// [`absorb_forged_tail`]), leaving `lines` where it is.
fn forged_tail<'a>(prefix: &Prefix, first: &Line<'a>, lines: &Lines<'a>) -> ForgedTail<'a> {
    let mut joined: Vec<u8> = first.content.to_vec();
    let mut look = lines.clone();
    let mut absorbed_bytes = 0usize;
    let mut end: Option<(Lines<'a>, usize, Vec<u64>)> = None;
    let mut tail: Vec<u64> = Vec::new();
    while let Some(next) = look.next() {
        if next.too_long {
            break;
        }
        joined.push(b'\n');
        let joined_len_before = joined.len();
        joined.extend_from_slice(next.content);
        tail.push(next.number);
        if let LineMatch::Header { fields, body, .. } = prefix.parse_line(&joined) {
            let fits = |name: Option<&[u8]>| name.is_none_or(|n| n.len() <= MAX_NAME);
            if fits(fields.user) && fits(fields.database) && memchr::memchr(b'\n', body).is_none() {
                end = Some((look.clone(), joined.len(), tail.clone()));
            }
        }
        absorbed_bytes += joined.len() - joined_len_before + 1;
        if absorbed_bytes > MAX_FORGED_BYTES {
            break;
        }
    }
    ForgedTail { joined, end }
}

/// The decoder's own walk over a buffer, for the framer: which lines the
/// decoder reads as lines of their own, and which a forged span takes (the
/// lines after a broken prefix line that complete its record). The framer's
/// quick rule keeps cuts 1 KiB away from any broken line; where broken lines
/// come closer together than that (forged names at that rate, which any
/// client can cause), this walk tells the lines after a span, where a cut is
/// exact, from the lines inside one.
pub(crate) struct SpanWalk<'a, 'p> {
    prefix: &'p Prefix,
    lines: Lines<'a>,
}

impl<'a, 'p> SpanWalk<'a, 'p> {
    /// A walk over `buf` from `from`, a point where decoding starts afresh
    /// (the start of a chunk), with the decoder's line length limit.
    pub(crate) fn new(
        buf: &'a [u8],
        from: usize,
        prefix: &'p Prefix,
        max_line_bytes: usize,
    ) -> Self {
        SpanWalk {
            prefix,
            lines: Lines {
                buf,
                pos: from,
                number: 0,
                max_line_bytes,
            },
        }
    }

    /// Whether the line that starts at `pos` is read as a line of its own,
    /// not as part of a forged span. `pos` is a line start at or after every
    /// position asked before.
    pub(crate) fn own_line(&mut self, pos: usize) -> bool {
        while self.lines.pos < pos {
            let Some(line) = self.lines.next() else {
                return false;
            };
            if line.too_long || line.content.starts_with(b"\t") {
                continue;
            }
            if let LineMatch::Broken { .. } = self.prefix.parse_line(line.content)
                && let Some((after, _, _)) = forged_tail(self.prefix, &line, &self.lines).end
            {
                self.lines = after;
            }
        }
        self.lines.pos == pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(prefix: &str, input: &str) -> Vec<Item<'static>> {
        let p = Prefix::compile(prefix).unwrap();
        let input: &'static str = Box::leak(input.to_string().into_boxed_str());
        let mut out = Vec::new();
        decode(
            input.as_bytes(),
            &p,
            0,
            &StderrOptions::default(),
            &mut |i| out.push(i),
        );
        out
    }

    const RDS: &str = "%t:%r:%u@%d:[%p]:";

    /// Reusing the boxes the consumer hands back changes no item: every
    /// RDS sample and every forging sample decode to the same items either
    /// way, with the boxes really reused.
    #[test]
    fn recycled_boxes_give_the_same_items() {
        let p = Prefix::compile(RDS).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let mut files = Vec::new();
        let dirs = std::fs::read_dir(&root)
            .unwrap()
            .chain(std::fs::read_dir(root.join("forging")).unwrap());
        for dir in dirs.flatten() {
            for name in ["rds/postgresql.log", "postgresql.log"] {
                let path = dir.path().join(name);
                if path.is_file() {
                    files.push(path);
                }
            }
        }
        let mut reused = 0;
        for path in &files {
            let text = std::fs::read(path).unwrap();
            let mut plain = Vec::new();
            decode(&text, &p, 0, &StderrOptions::default(), &mut |i| {
                plain.push(format!("{i:?}"))
            });
            let mut recycled = Vec::new();
            let mut seen = std::collections::HashSet::new();
            decode_recycling(&text, &p, 0, &StderrOptions::default(), &mut |i| {
                recycled.push(format!("{i:?}"));
                match i {
                    Item::Record(r) => {
                        if !seen.insert(&*r as *const Record<'_> as usize) {
                            reused += 1;
                        }
                        Some(r)
                    }
                    _ => None,
                }
            });
            assert_eq!(recycled, plain, "{}", path.display());
        }
        assert!(files.len() >= 12, "{files:?}");
        assert!(reused > 100, "{reused}");
    }

    #[test]
    fn detail_with_tab_continuation_attaches() {
        let items = decode_all(
            RDS,
            "2026-11-28 14:51:20 UTC:127.0.0.1(35708):nosuchuser@appdb:[29077]:FATAL:  password authentication failed for user \"nosuchuser\"\n\
             2026-11-28 14:51:20 UTC:127.0.0.1(35708):nosuchuser@appdb:[29077]:DETAIL:  Role \"nosuchuser\" does not exist.\n\
             \tConnection matched file \"/var/lib/postgresql/16/main/pg_hba.conf\" line 6: \"host    appdb       all         127.0.0.1/32    scram-sha-256\"\n",
        );
        assert_eq!(items.len(), 1);
        let Item::Record(r) = &items[0] else { panic!() };
        assert_eq!(r.label, Label::Fatal);
        assert_eq!(r.line, 1);
        assert_eq!(r.last_line, 3);
        assert_eq!(
            r.detail.as_deref(),
            Some(
                "Role \"nosuchuser\" does not exist.\nConnection matched file \"/var/lib/postgresql/16/main/pg_hba.conf\" line 6: \"host    appdb       all         127.0.0.1/32    scram-sha-256\""
            )
        );
    }

    #[test]
    fn foreign_lines_stay_separate() {
        let items = decode_all(
            RDS,
            "* Connected to rdsauthproxy (10.0.0.1) port 1108 (#0)\n\
             < HTTP/1.1 403 Forbidden\n\
             2023-03-17 08:19:37 UTC:10.0.0.5(50249):app@postgres:[4319]:LOG:  pam_authenticate failed: Permission denied\n",
        );
        assert_eq!(items.len(), 3);
        assert!(matches!(
            &items[0],
            Item::Unparsed {
                reason: Unparsed::Foreign,
                line: 1,
                ..
            }
        ));
        assert!(
            matches!(&items[1], Item::Unparsed { reason: Unparsed::Foreign, line: 2, text } if text == "< HTTP/1.1 403 Forbidden")
        );
        let Item::Record(r) = &items[2] else { panic!() };
        assert_eq!(r.message, "pam_authenticate failed: Permission denied");
    }

    #[test]
    fn forged_newline_in_user_becomes_one_suspect() {
        // Live output of PostgreSQL 10–18 (shared reference §6).
        let items = decode_all(
            RDS,
            "2026-11-28 14:51:29 UTC:127.0.0.1(35956):evil\"\n\
             2030-01-01 00:00:00 UTC:10.0.0.1(5555):admin@postgres:[1]@template1:[29600]:FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"evil\"\n\
             \t2030-01-01 00:00:00 UTC:10.0.0.1(5555):admin@postgres:[1]\", database \"template1\", no encryption\n\
             2026-11-28 14:51:30 UTC:127.0.0.1(35957):alice@appdb:[29601]:LOG:  connection authorized: user=alice database=appdb\n",
        );
        assert_eq!(items.len(), 2, "{items:#?}");
        let Item::Suspect { head, tail_lines } = &items[0] else {
            panic!("{:?}", items[0])
        };
        assert_eq!(head.line, 1);
        assert_eq!(tail_lines, &vec![2, 3]);
        assert_eq!(head.client_addr.as_deref(), Some("127.0.0.1"));
        let Item::Record(r) = &items[1] else { panic!() };
        assert_eq!(r.user.as_deref(), Some("alice"));
    }

    #[test]
    fn export_wrapper_is_stripped() {
        let items = decode_all(
            RDS,
            "2023-03-10T11:10:07.123Z 2023-03-10 11:10:07 UTC:82.214.175.74(13708):[unknown]@[unknown]:[835]:LOG:  connection received: host=82.214.175.74 port=13708\n",
        );
        let Item::Record(r) = &items[0] else { panic!() };
        assert_eq!(r.ingest_time_ms, Some(1_678_446_607_123));
        assert_eq!(r.pid, Some(835));
    }

    /// The items of `input`, decoded loudly and with every severity
    /// record whose message does not start with "connection" quiet.
    fn loud_and_quiet(input: &[u8]) -> (Vec<Item<'_>>, Vec<Item<'_>>) {
        let p = Prefix::compile(RDS).unwrap();
        let connection = |_: Label, body: &[u8]| body.starts_with(b"connection");
        let mut runs = [Vec::new(), Vec::new()];
        for (quiet, out) in runs.iter_mut().enumerate() {
            let options = StderrOptions {
                may_matter: (quiet == 1).then_some(&connection as AmbiguityCheck<'_>),
                ..StderrOptions::default()
            };
            decode(input, &p, 0, &options, &mut |item| out.push(item));
        }
        let [loud, quiet] = runs;
        (loud, quiet)
    }

    #[test]
    fn a_quiet_record_keeps_its_secondary_lines_and_utf8_verdict() {
        let input = b"2026-11-28 16:22:42 UTC:127.0.0.1(5432):app@db:[7]:LOG:  connection authorized: user=app database=db\n\
2026-11-28 16:22:42 UTC:127.0.0.1(5432):app@db:[7]:LOG:  duration: 0.1 ms  statement: select 1\n\
2026-11-28 16:22:42 UTC:127.0.0.1(5432):app@db:[7]:DETAIL:  parameters: $1 = '\xff'\n\
2026-11-28 16:22:42 UTC:127.0.0.1(5432):app\xfe@db:[8]:LOG:  statement: select\n\
\t2\n\
2026-11-28 16:22:42 UTC:127.0.0.1(5432):app@db:[9]:LOG:  statement: select '\xc3\xa9'\n\
2026-11-28 16:22:42 UTC:127.0.0.1(5432):app@db:[9]:ERROR:  syntax error at\n\
\tend \x80\n";
        let (loud, quiet) = loud_and_quiet(input);
        let loud: Vec<&Record<'_>> = loud
            .iter()
            .map(|item| match item {
                Item::Record(r) => &**r,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(loud.len(), 5);
        assert_eq!(quiet.len(), loud.len());
        // The connection record is the same in both runs; its DETAIL went
        // to the statement in both.
        let Item::Record(first) = &quiet[0] else {
            panic!("{:?}", quiet[0])
        };
        assert_eq!(**first, *loud[0]);
        assert_eq!(first.detail, None);
        for (l, q) in loud[1..].iter().zip(&quiet[1..]) {
            let Item::Quiet(q) = q else { panic!("{q:?}") };
            assert_eq!(
                (l.line, l.last_line, l.pid, l.invalid_utf8),
                (q.line, q.last_line, q.pid, q.invalid_utf8),
                "{l:?}"
            );
        }
        let invalid: Vec<bool> = loud.iter().map(|r| r.invalid_utf8).collect();
        assert_eq!(invalid, [false, true, true, false, true]);
    }

    #[test]
    fn too_long_and_orphan_tab() {
        let p = Prefix::compile(RDS).unwrap();
        let long = format!("\tcontinued\n{}\n", "x".repeat(100));
        let mut out = Vec::new();
        let options = StderrOptions {
            max_line_bytes: 50,
            ..StderrOptions::default()
        };
        decode(long.as_bytes(), &p, 0, &options, &mut |i| {
            out.push(format!("{i:?}"))
        });
        assert_eq!(out.len(), 2);
        assert!(out[0].contains("Foreign"));
        assert!(out[1].contains("TooLong"));
    }
}
