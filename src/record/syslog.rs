//! PostgreSQL logging through syslog, as rsyslog writes it to a file.
//!
//! `unwrap_syslog` turns such a file back into the stderr-format text
//! PostgreSQL sent (log_line_prefix included), which the stderr decoder then
//! reads; `line_map` takes its line numbers back to the syslog file.
//!
//! What PostgreSQL does (`elog.c` `write_syslog()`, §4.6 of the reference):
//! the whole record — message line, DETAIL/HINT/… lines, each with its own
//! prefix — goes to one `write_syslog()` call with one sequence number.
//! That text always ends in `\n`, so with `syslog_split_messages=on` (the
//! default) every record is split: one `syslog()` call per line, and lines
//! longer than 900 bytes are cut into several chunks, at the last
//! whitespace before the limit when there is one (the next chunk then
//! starts with that whitespace), otherwise hard at ~900 bytes. Chunks are
//! tagged `[seq-chunk] ` (`syslog_sequence_numbers=on`, the default) or
//! `[chunk] `. With splitting off, a record is one call tagged `[seq] ` or
//! not at all, and its newlines reach the file as rsyslog's `#012` escape.
//!
//! Rebuilding a record from its chunks (keyed by host, pid and seq, since
//! lines of different processes interleave), chunk k>1 is joined to the
//! previous one as follows:
//! - it starts with TAB (or rsyslog's `#011`): a new physical line, the
//!   continuation of a multi-line message;
//! - it starts with other whitespace: the rest of the previous line, cut at
//!   a word boundary — appended without separator;
//! - it starts with anything else: a new physical line of the same record
//!   (`…DETAIL:  …`, `…STATEMENT:  …`, with its prefix) — unless the
//!   previous chunk is a hard cut (≥ 897 bytes with no whitespace after its
//!   first byte, the only case where PostgreSQL cuts mid-word), which is
//!   appended without separator.
//!
//! Known ambiguities: a >900-byte line cut exactly at a TAB reads as a
//! continuation line (an extra `\n` inside the message, never a new
//! record); a line whose last chunk is 897–900 bytes of one unbroken token
//! would take a following DETAIL-style line as its own tail; rsyslog escapes control characters as `#ooo` and `#` itself is
//! not escaped, so a literal `#011` in the text also reads as a TAB (and
//! `#012` as a newline in unsplit records, which can only arise when
//! `syslog_split_messages=off`). Lines from other programs, lines that do
//! not parse as syslog and rsyslog's own `message repeated` lines are
//! returned in `unparsed`. Anyone on the host can write syslog lines under
//! any program name, so syslog input is only as trustworthy as the host.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::time::{parse_datetime_prefix, zone_offset_minutes};

/// PostgreSQL's `PG_SYSLOG_LIMIT`.
const PG_SYSLOG_LIMIT: usize = 900;
/// A chunk this long may have been cut mid-character (`pg_mbcliplen`
/// removes at most 3 bytes of a UTF-8 character).
const HARD_CUT_MIN: usize = PG_SYSLOG_LIMIT - 3;

/// The stderr-format text rebuilt from a syslog file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unwrapped {
    /// PostgreSQL's text, one rebuilt physical line per `\n`-terminated line.
    pub text: Vec<u8>,
    /// `line_map[i]`: the 1-based syslog file line output line `i + 1` came
    /// from (its first chunk).
    pub line_map: Vec<u64>,
    /// Lines that are not PostgreSQL syslog lines: (1-based line, text).
    pub unparsed: Vec<(u64, String)>,
    /// Per output line: the syslog header's time in UTC milliseconds, when
    /// the header carries a full RFC 3339 timestamp (traditional
    /// `Nov 28 14:57:29` headers have no year or zone: `None`).
    pub line_time_ms: Vec<Option<i64>>,
    /// Per output line: the pid from the syslog tag (`postgres[4691]:`),
    /// written by the syslog client library, not by PostgreSQL's prefix.
    pub line_pid: Vec<u32>,
}

/// The fields of one syslog line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Header<'a> {
    time_ms: Option<i64>,
    host: &'a [u8],
    ident: &'a [u8],
    /// From `ident[pid]:`; `None` for a bare `ident:` tag.
    pid: Option<u32>,
    msg: &'a [u8],
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Nov 28 14:57:29 ` / `Nov  8 14:57:29 ` → bytes used (no year, no zone).
fn traditional_time(b: &[u8]) -> Option<usize> {
    let month = b.get(..3)?;
    if !MONTHS.iter().any(|m| &m[..] == month) || b.get(3) != Some(&b' ') {
        return None;
    }
    let day_ok = match (b.get(4)?, b.get(5)?) {
        (b' ', d) => d.is_ascii_digit(),
        (d1, d2) => d1.is_ascii_digit() && d2.is_ascii_digit(),
    };
    let t = b.get(6..16)?;
    let time_ok = t[0] == b' '
        && t[1..3].iter().all(u8::is_ascii_digit)
        && t[3] == b':'
        && t[4..6].iter().all(u8::is_ascii_digit)
        && t[6] == b':'
        && t[7..9].iter().all(u8::is_ascii_digit)
        && t[9] == b' ';
    (day_ok && time_ok).then_some(16)
}

/// `2026-11-28T14:57:29.156789+00:00 ` → (UTC ms, bytes used).
fn rfc3339_time(b: &[u8]) -> Option<(i64, usize)> {
    if b.get(10) != Some(&b'T') {
        return None;
    }
    let (local_ms, used) = parse_datetime_prefix(b)?;
    let rest = &b[used..];
    // `Z`, `+01:00` (rsyslog) or `+0100` (journalctl -o short-iso).
    let zone_len = match (rest.first()?, rest.get(3)) {
        (b'Z', _) => 1,
        (b'+' | b'-', Some(b':')) => 6,
        (b'+' | b'-', _) => 5,
        _ => return None,
    };
    let offset = zone_offset_minutes(rest.get(..zone_len)?)?;
    if rest.get(zone_len) != Some(&b' ') {
        return None;
    }
    Some((local_ms - offset * 60_000, used + zone_len + 1))
}

/// Parses `<time> <host> <ident>[<pid>]: <msg>` (or `<ident>: <msg>`).
fn parse_header(line: &[u8]) -> Option<Header<'_>> {
    let (time_ms, used) = match traditional_time(line) {
        Some(used) => (None, used),
        None => rfc3339_time(line).map(|(ms, used)| (Some(ms), used))?,
    };
    let rest = &line[used..];
    let host_len = memchr::memchr(b' ', rest)?;
    if host_len == 0 {
        return None;
    }
    let host = &rest[..host_len];
    let tag = &rest[host_len + 1..];
    let end = tag.iter().position(|&c| matches!(c, b'[' | b':' | b' '))?;
    let ident = &tag[..end];
    if ident.first().is_none_or(u8::is_ascii_digit) {
        return None;
    }
    let (pid, after) = if tag[end] == b'[' {
        let digits = tag[end + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let pid = parse_u64(&tag[end + 1..end + 1 + digits]).and_then(|p| u32::try_from(p).ok())?;
        (Some(pid), tag[end + 1 + digits..].strip_prefix(b"]")?)
    } else {
        (None, &tag[end..])
    };
    let msg = after.strip_prefix(b":")?;
    let msg = msg.strip_prefix(b" ").unwrap_or(msg);
    Some(Header {
        time_ms,
        host,
        ident,
        pid,
        msg,
    })
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0')))
}

/// PostgreSQL's own tag at the start of the message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tag {
    /// `[seq-chunk] `: sequence numbers on, record split.
    Chunk { seq: u64, chunk: u64 },
    /// `[n] `: either `[seq] ` (split off) or `[chunk] ` (numbers off).
    Bare(u64),
    /// No tag: sequence numbers and splitting both off.
    None,
}

fn parse_tag(msg: &[u8]) -> (Tag, &[u8]) {
    let untagged = (Tag::None, msg);
    let Some(inner) = msg.strip_prefix(b"[") else {
        return untagged;
    };
    let Some(close) = memchr::memchr(b']', inner) else {
        return untagged;
    };
    let content = match &inner[close + 1..] {
        [] => &[][..],
        [b' ', content @ ..] => content,
        _ => return untagged,
    };
    let label = &inner[..close];
    let tag = match memchr::memchr(b'-', label) {
        Some(dash) => match (parse_u64(&label[..dash]), parse_u64(&label[dash + 1..])) {
            (Some(seq), Some(chunk)) => Tag::Chunk { seq, chunk },
            _ => return untagged,
        },
        None => match parse_u64(label) {
            Some(n) => Tag::Bare(n),
            None => return untagged,
        },
    };
    (tag, content)
}

fn is_postgres_ident(ident: &[u8]) -> bool {
    let has = |word: &[u8]| {
        ident
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    has(b"postgres") || has(b"postmaster")
}

/// C `isspace()` in the C locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Replaces rsyslog's `#011` escape with TAB (borrowing when there is none).
fn unescape_tabs(content: &[u8]) -> Cow<'_, [u8]> {
    let finder = memchr::memmem::find_iter(content, b"#011");
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for i in finder {
        let out = out.get_or_insert_with(|| Vec::with_capacity(content.len()));
        out.extend_from_slice(&content[copied..i]);
        out.push(b'\t');
        copied = i + 4;
    }
    match out {
        None => Cow::Borrowed(content),
        Some(mut out) => {
            out.extend_from_slice(&content[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Length of a chunk as PostgreSQL sent it: each remaining rsyslog `#ooo`
/// escape stands for one byte.
fn sent_len(chunk: &[u8]) -> usize {
    let escapes = memchr::memchr_iter(b'#', chunk)
        .filter(|&i| {
            chunk
                .get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        })
        .count();
    chunk.len() - 3 * escapes
}

/// True when PostgreSQL could have cut the line right after this chunk in
/// the middle of a word: only when it found no whitespace to cut at.
fn is_hard_cut(chunk: &[u8]) -> bool {
    chunk.len() >= HARD_CUT_MIN
        && !chunk.iter().skip(1).any(|&c| is_c_space(c))
        && sent_len(chunk) >= HARD_CUT_MIN
}

/// One parsed line of the syslog file.
enum Parsed<'a> {
    Blank,
    Pg {
        header: Header<'a>,
        pid: u32,
        tag: Tag,
        content: &'a [u8],
    },
    Other {
        number: u64,
        raw: &'a [u8],
    },
}

fn parse_line(number: u64, raw: &[u8]) -> Parsed<'_> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Blank;
    }
    // PostgreSQL opens syslog with LOG_PID: no pid, not PostgreSQL.
    let Some((header, pid)) = parse_header(raw).and_then(|h| Some((h, h.pid?))) else {
        return Parsed::Other { number, raw };
    };
    let (tag, content) = parse_tag(header.msg);
    let from_postgres = match tag {
        Tag::Chunk { .. } => true,
        Tag::Bare(_) | Tag::None => is_postgres_ident(header.ident),
    };
    if !from_postgres || (tag == Tag::None && header.msg.starts_with(b"message repeated ")) {
        return Parsed::Other { number, raw };
    }
    Parsed::Pg {
        header,
        pid,
        tag,
        content,
    }
}

fn lines(buf: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let mut number = 0u64;
    body.split(|&c| c == b'\n')
        .filter(move |_| !buf.is_empty())
        .map(move |raw| {
            number += 1;
            (number, raw.strip_suffix(b"\r").unwrap_or(raw))
        })
}

/// No next line.
const END: usize = usize::MAX;

/// One rebuilt physical line; lines of one record are linked by `next`.
struct PhysLine<'a> {
    bytes: Cow<'a, [u8]>,
    number: u64,
    time_ms: Option<i64>,
    pid: u32,
    next: usize,
}

/// A record's first and last physical line (indices into the line list).
struct Span {
    first: usize,
    last: usize,
}

/// The record a (host, pid) is currently sending in chunks.
struct Open {
    record: usize,
    seq: Option<u64>,
    chunk: u64,
    prev_hard_cut: bool,
}

/// Decides what `[n] ` tags are: chunk numbers (sequence numbers off,
/// splitting on) when records keep starting at `[1]` or later chunks start
/// with whitespace; otherwise sequence numbers of unsplit records.
fn bare_tags_are_chunks(buf: &[u8]) -> bool {
    let mut ones = 0usize;
    let mut ws_continuation = false;
    for (n, raw) in lines(buf) {
        if let Parsed::Pg {
            tag: Tag::Bare(k),
            content,
            ..
        } = parse_line(n, raw)
        {
            if k == 1 {
                ones += 1;
            } else if content.first().is_some_and(|&c| is_c_space(c))
                || content.starts_with(b"#011")
            {
                ws_continuation = true;
            }
        }
    }
    ones >= 2 || (ones == 1 && ws_continuation)
}

/// Rebuilds PostgreSQL's stderr-format text from a syslog file; see the
/// module documentation for the joining rules.
pub fn unwrap_syslog<'a>(buf: &'a [u8]) -> Unwrapped {
    let mut out = Unwrapped::default();
    let mut phys: Vec<PhysLine<'a>> = Vec::new();
    let mut records: Vec<Span> = Vec::new();
    // Open records by (host index, pid); hosts are few, looked up linearly.
    let mut hosts: Vec<&'a [u8]> = Vec::new();
    let mut open: HashMap<(usize, u32), Open> = HashMap::new();
    let mut bare_is_chunk: Option<bool> = None;

    for (number, raw) in lines(buf) {
        let (header, pid, tag, content) = match parse_line(number, raw) {
            Parsed::Blank => continue,
            Parsed::Other { number, raw } => {
                out.unparsed
                    .push((number, String::from_utf8_lossy(raw).into_owned()));
                continue;
            }
            Parsed::Pg {
                header,
                pid,
                tag,
                content,
            } => (header, pid, tag, content),
        };
        let host = match hosts.iter().rposition(|h| *h == header.host) {
            Some(i) => i,
            None => {
                hosts.push(header.host);
                hosts.len() - 1
            }
        };
        let key = (host, pid);
        let line = |bytes: Cow<'a, [u8]>| PhysLine {
            bytes,
            number,
            time_ms: header.time_ms,
            pid,
            next: END,
        };
        let (seq, chunk) = match tag {
            Tag::Chunk { seq, chunk } => (Some(seq), chunk),
            Tag::Bare(n) if *bare_is_chunk.get_or_insert_with(|| bare_tags_are_chunks(buf)) => {
                (None, n)
            }
            Tag::Bare(_) | Tag::None => {
                // A whole record in one line; its newlines are `#012`.
                open.remove(&key);
                let first = phys.len();
                let mut rest = content;
                loop {
                    let end = memchr::memmem::find(rest, b"#012");
                    let piece = &rest[..end.unwrap_or(rest.len())];
                    let next = phys.len() + 1;
                    phys.push(PhysLine {
                        next,
                        ..line(unescape_tabs(piece))
                    });
                    match end {
                        Some(i) if i + 4 < rest.len() => rest = &rest[i + 4..],
                        _ => break,
                    }
                }
                let last = phys.len() - 1;
                phys[last].next = END;
                records.push(Span { first, last });
                continue;
            }
        };
        let bytes = unescape_tabs(content);
        let hard_cut = is_hard_cut(&bytes);
        let continues = open
            .get(&key)
            .filter(|o| chunk > 1 && o.seq == seq && chunk > o.chunk);
        let record = match continues {
            Some(o) => {
                let span = &mut records[o.record];
                let same_line = match bytes.first() {
                    None => true,
                    Some(b'\t') => false,
                    Some(&c) if is_c_space(c) => true,
                    Some(_) => o.prev_hard_cut,
                };
                if same_line {
                    phys[span.last].bytes.to_mut().extend_from_slice(&bytes);
                } else {
                    phys.push(line(bytes));
                    phys[span.last].next = phys.len() - 1;
                    span.last = phys.len() - 1;
                }
                o.record
            }
            None => {
                // Chunk 1, or a chunk whose start was lost: a new record.
                phys.push(line(bytes));
                records.push(Span {
                    first: phys.len() - 1,
                    last: phys.len() - 1,
                });
                records.len() - 1
            }
        };
        open.insert(
            key,
            Open {
                record,
                seq,
                chunk,
                prev_hard_cut: hard_cut,
            },
        );
    }

    out.text.reserve(buf.len());
    for span in &records {
        let mut i = span.first;
        while i != END {
            let line = &phys[i];
            out.text.extend_from_slice(&line.bytes);
            out.text.push(b'\n');
            out.line_map.push(line.number);
            out.line_time_ms.push(line.time_ms);
            out.line_pid.push(line.pid);
            i = line.next;
        }
    }
    out
}

/// Auto-detection: the first non-blank line is a syslog line
/// (`<time> <host> <ident>[<pid>]: …`, traditional or RFC 3339 time) and
/// one of the first complete lines comes from PostgreSQL.
pub fn looks_like_syslog(first_lines: &[u8]) -> bool {
    // Only lines known to be complete.
    let complete = match memchr::memrchr(b'\n', first_lines) {
        Some(i) => &first_lines[..=i],
        None => return false,
    };
    let mut first = true;
    for (n, raw) in lines(complete).take(200) {
        match parse_line(n, raw) {
            Parsed::Blank => continue,
            Parsed::Pg { .. } => return true,
            Parsed::Other { raw, .. } => {
                if first && parse_header(raw).is_none() {
                    return false;
                }
            }
        }
        first = false;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test input is built from the formats as documented (PostgreSQL's
    // write_syslog(), rsyslog's traditional and RFC 3339 file formats);
    // no real syslog sample was available when these tests were written.

    fn text(u: &Unwrapped) -> &str {
        std::str::from_utf8(&u.text).unwrap()
    }

    #[test]
    fn headers() {
        let h = parse_header(b"Nov 28 14:57:29 db1 postgres[4691]: [5-1] LOG:  x").unwrap();
        assert_eq!(
            (h.host, h.ident, h.pid, h.msg, h.time_ms),
            (
                &b"db1"[..],
                &b"postgres"[..],
                Some(4691),
                &b"[5-1] LOG:  x"[..],
                None
            )
        );
        let h = parse_header(b"Nov  8 04:57:29 db1 postgres[1]: LOG:  x").unwrap();
        assert_eq!(h.msg, b"LOG:  x");
        let h = parse_header(b"2026-11-28T14:57:29.156789+01:00 db1 postgres[4691]: [5-1] LOG:  x")
            .unwrap();
        assert_eq!(
            crate::time::format_rfc3339_ms(h.time_ms.unwrap()),
            "2026-11-28T13:57:29.156Z"
        );
        assert!(parse_header(b"2026-11-28 14:57:29.156 UTC [4691] LOG:  x").is_none());
        let h = parse_header(b"Nov 28 14:57:29 db1 kernel: [ 12.3] usb").unwrap();
        assert_eq!(
            (h.ident, h.pid, h.msg),
            (&b"kernel"[..], None, &b"[ 12.3] usb"[..])
        );
        let h = parse_header(b"2026-11-28T14:57:29+0100 db1 postgres[7]: x").unwrap();
        assert_eq!(
            crate::time::format_rfc3339_ms(h.time_ms.unwrap()),
            "2026-11-28T13:57:29.000Z"
        );
        assert!(parse_header(b"2026-11-28T14:51:17.123Z 2026-11-28 14:51:17 UTC:10.0.0.1(5432):u@d:[835]:LOG:  x").is_none());
        assert_eq!(
            parse_tag(b"[5-2] \tFROM t"),
            (Tag::Chunk { seq: 5, chunk: 2 }, &b"\tFROM t"[..])
        );
        assert_eq!(parse_tag(b"[7] LOG:  x"), (Tag::Bare(7), &b"LOG:  x"[..]));
        assert_eq!(parse_tag(b"[local] x"), (Tag::None, &b"[local] x"[..]));
    }

    #[test]
    fn traditional_record_with_detail_and_tab_continuation() {
        let log = "\
Nov 28 14:57:29 db1 postgres[4691]: [5-1] 2026-11-28 14:57:29.156 UTC [4691] alice@pamdb LOG:  statement: SELECT 1
Nov 28 14:57:29 db1 postgres[4691]: [5-2] #011FROM t
Nov 28 14:57:29 db1 postgres[4691]: [5-3] \tWHERE x = 1
Nov 28 14:57:30 db1 postgres[4692]: [3-1] 2026-11-28 14:57:30.001 UTC [4692] bob@appdb FATAL:  password authentication failed for user \"bob\"
Nov 28 14:57:30 db1 postgres[4692]: [3-2] 2026-11-28 14:57:30.001 UTC [4692] bob@appdb DETAIL:  Connection matched pg_hba.conf line 6: \"host all all 0.0.0.0/0 md5\"
";
        let u = unwrap_syslog(log.as_bytes());
        assert_eq!(
            text(&u),
            "\
2026-11-28 14:57:29.156 UTC [4691] alice@pamdb LOG:  statement: SELECT 1
\tFROM t
\tWHERE x = 1
2026-11-28 14:57:30.001 UTC [4692] bob@appdb FATAL:  password authentication failed for user \"bob\"
2026-11-28 14:57:30.001 UTC [4692] bob@appdb DETAIL:  Connection matched pg_hba.conf line 6: \"host all all 0.0.0.0/0 md5\"
"
        );
        assert_eq!(u.line_map, [1, 2, 3, 4, 5]);
        assert_eq!(u.line_pid, [4691, 4691, 4691, 4692, 4692]);
        assert!(u.unparsed.is_empty());
        assert!(looks_like_syslog(log.as_bytes()));
    }

    /// Splits one stderr-format record the way write_syslog() does.
    fn pg_chunks(record: &str) -> Vec<String> {
        let mut line = record.as_bytes();
        let mut out = Vec::new();
        while !line.is_empty() {
            if line[0] == b'\n' {
                line = &line[1..];
                continue;
            }
            let nl = line.iter().position(|&c| c == b'\n').unwrap_or(line.len());
            let mut len = nl.min(PG_SYSLOG_LIMIT);
            if len < line.len()
                && !is_c_space(line[len])
                && let Some(i) = (1..len).rev().find(|&i| is_c_space(line[i]))
            {
                len = i;
            }
            out.push(String::from_utf8(line[..len].to_vec()).unwrap());
            line = &line[len..];
        }
        out
    }

    #[test]
    fn long_lines_split_mid_line_are_rejoined_without_separator() {
        let words: String = (0..300).map(|i| format!("w{i} ")).collect();
        let token: String = "x".repeat(2000);
        let record = format!(
            "2026-11-28 14:57:29.156 UTC [77] LOG:  statement: SELECT '{words}'\n\tAND '{token}'\n2026-11-28 14:57:29.156 UTC [77] DETAIL:  short\n"
        );
        let chunks = pg_chunks(&record);
        assert!(chunks.len() >= 6, "{}", chunks.len());
        let mut log = String::new();
        for (i, c) in chunks.iter().enumerate() {
            log.push_str(&format!(
                "2026-11-28T14:57:29.156789+00:00 db1 postgres[77]: [9-{}] {}\n",
                i + 1,
                c.replace('\t', "#011")
            ));
            // Another backend's line interleaved after each chunk.
            log.push_str(&format!("2026-11-28T14:57:29.157000+00:00 db1 postgres[78]: [2-1] 2026-11-28 14:57:29.157 UTC [78] LOG:  line {i}\n"));
        }
        let u = unwrap_syslog(log.as_bytes());
        let expected_first = format!(
            "2026-11-28 14:57:29.156 UTC [77] LOG:  statement: SELECT '{words}'\n\tAND '{token}'\n2026-11-28 14:57:29.156 UTC [77] DETAIL:  short\n"
        );
        assert!(text(&u).starts_with(&expected_first), "{}", text(&u));
        // The first record's three lines map to its chunk lines; pid 78's
        // records follow in the order they started.
        let chunk_lines: Vec<u64> = (0..chunks.len() as u64).map(|i| 2 * i + 1).collect();
        let detail_line = *chunk_lines.last().unwrap();
        let tab_line = 2 * chunks.iter().position(|c| c.starts_with('\t')).unwrap() as u64 + 1;
        assert_eq!(u.line_map[..3], [1, tab_line, detail_line]);
        assert_eq!(
            u.line_map[3..].to_vec(),
            (0..chunks.len() as u64)
                .map(|i| 2 * i + 2)
                .collect::<Vec<_>>()
        );
        assert!(u.line_time_ms.iter().all(Option::is_some));
    }

    #[test]
    fn interleaved_pids_and_foreign_lines() {
        let log = "\
Nov 28 14:57:29 db1 postgres[10]: [1-1] LOG:  connection received: host=10.0.0.1 port=5000
Nov 28 14:57:29 db1 postgres[11]: [4-1] ERROR:  relation \"t\" does not exist at character 15
Nov 28 14:57:29 db1 CRON[999]: (root) CMD (run-parts /etc/cron.hourly)
Nov 28 14:57:29 db1 postgres[10]: [2-1] LOG:  connection authorized: user=alice database=appdb
Nov 28 14:57:29 db1 postgres[11]: [4-2] STATEMENT:  select * from t

garbage without header
Nov 28 14:57:29 db1 postgres[11]: message repeated 2 times: [ [4-1] ERROR: x]
";
        let u = unwrap_syslog(log.as_bytes());
        assert_eq!(
            text(&u),
            "\
LOG:  connection received: host=10.0.0.1 port=5000
ERROR:  relation \"t\" does not exist at character 15
STATEMENT:  select * from t
LOG:  connection authorized: user=alice database=appdb
"
        );
        assert_eq!(u.line_map, [1, 2, 5, 4]);
        let unparsed: Vec<u64> = u.unparsed.iter().map(|(n, _)| *n).collect();
        assert_eq!(unparsed, [3, 7, 8]);
        assert_eq!(u.unparsed[1].1, "garbage without header");
    }

    #[test]
    fn without_sequence_numbers_and_without_splitting() {
        // syslog_sequence_numbers=off, split on: every record starts at [1].
        let log = "\
Nov 28 14:57:29 db1 postgres[10]: [1] LOG:  statement: SELECT 1
Nov 28 14:57:29 db1 postgres[10]: [2] #011FROM t
Nov 28 14:57:29 db1 postgres[10]: [1] LOG:  disconnection: session time: 0:00:01.000
";
        let u = unwrap_syslog(log.as_bytes());
        assert_eq!(
            text(&u),
            "LOG:  statement: SELECT 1\n\tFROM t\nLOG:  disconnection: session time: 0:00:01.000\n"
        );
        assert_eq!(u.line_map, [1, 2, 3]);

        // Splitting off: whole records, newlines escaped as #012.
        let log = "\
Nov 28 14:57:29 db1 postgres[10]: [41] LOG:  statement: SELECT 1#012#011FROM t
Nov 28 14:57:29 db1 postgres[10]: [42] FATAL:  password authentication failed for user \"bob\"#012DETAIL:  Role \"bob\" does not exist.
Nov 28 14:57:30 db1 postgres[10]: LOG:  untagged
";
        let u = unwrap_syslog(log.as_bytes());
        assert_eq!(
            text(&u),
            "LOG:  statement: SELECT 1\n\tFROM t\nFATAL:  password authentication failed for user \"bob\"\nDETAIL:  Role \"bob\" does not exist.\nLOG:  untagged\n"
        );
        assert_eq!(u.line_map, [1, 1, 2, 2, 3]);
    }

    #[test]
    fn orphan_chunks_and_chunk_restarts() {
        // The file starts in the middle of a record; then the same pid
        // starts a new record with the same seq's chunk 1 lost.
        let log = "\
Nov 28 14:57:29 db1 postgres[10]: [5-2] #011FROM t
Nov 28 14:57:29 db1 postgres[10]: [6-1] LOG:  a
Nov 28 14:57:29 db1 postgres[10]: [6-1] LOG:  b
Nov 28 14:57:29 db2 postgres[10]: [6-2] DETAIL:  other host, no open record
";
        let u = unwrap_syslog(log.as_bytes());
        assert_eq!(
            text(&u),
            "\tFROM t\nLOG:  a\nLOG:  b\nDETAIL:  other host, no open record\n"
        );
        assert_eq!(u.line_map, [1, 2, 3, 4]);
    }

    #[test]
    fn detection() {
        assert!(looks_like_syslog(
            b"Nov 28 14:57:29 db1 postgres[1]: [1-1] LOG:  x\n"
        ));
        assert!(looks_like_syslog(
            b"Nov 28 14:57:29 db1 CRON[2]: x\nNov 28 14:57:29 db1 postgres[1]: LOG:  x\n"
        ));
        assert!(!looks_like_syslog(b"Nov 28 14:57:29 db1 CRON[2]: x\n"));
        assert!(!looks_like_syslog(b"2026-11-28 14:57:29.156 UTC [4691] LOG:  x\nNov 28 14:57:29 db1 postgres[1]: LOG:  x\n"));
        assert!(!looks_like_syslog(
            b"Nov 28 14:57:29 db1 postgres[1]: [1-1] LOG:  cut"
        ));
        assert!(!looks_like_syslog(b""));
        // rsyslog's own restart line (no pid) first, then PostgreSQL.
        assert!(looks_like_syslog(
            b"Nov 28 00:00:01 db1 rsyslogd: [origin software=\"rsyslogd\"] rsyslogd was HUPed\nNov 28 14:57:29 db1 postgres[1]: [1-1] LOG:  x\n"
        ));
        let u = unwrap_syslog(b"Nov 28 14:57:29 db1 postgres: [1-1] LOG:  no pid\n");
        assert_eq!(u.unparsed.len(), 1);
    }

    #[test]
    fn never_panics_on_garbage() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\n",
            b"Nov 28 14:57:29 ",
            b"Nov 28 14:57:29 h p[",
            b"Nov 28 14:57:29 h p[99999999999]: x",
            b"Nov 28 14:57:29 h postgres[1]: [",
            b"Nov 28 14:57:29 h postgres[1]: [1-99999999999999999999] x",
            b"\xff\xfe\n2026-11-28T14:57:29+99:99 h postgres[1]: x",
        ];
        for input in inputs {
            let u = unwrap_syslog(input);
            let lines = u.text.iter().filter(|&&c| c == b'\n').count();
            assert_eq!(lines, u.line_map.len());
            let _ = looks_like_syslog(input);
        }
    }

    /// The real rsyslog recording under `samples/*/syslog/` rebuilds into
    /// stderr text that the stderr decoder reads with no unparsed line.
    #[test]
    fn real_sample_rebuilds_cleanly() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let Ok(specs) = crate::source::expand(&[samples]) else {
            return; // no samples in this checkout
        };
        for spec in specs {
            let crate::source::InputSpec::Path(path) = spec else {
                continue;
            };
            let in_syslog_dir = path
                .parent()
                .and_then(|p| p.file_name())
                .is_some_and(|n| n == "syslog");
            if !in_syslog_dir || path.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            assert!(looks_like_syslog(&bytes), "{}", path.display());
            let u = unwrap_syslog(&bytes);
            assert!(
                u.unparsed.is_empty(),
                "{}: {:?}",
                path.display(),
                u.unparsed
            );
            let file_lines = bytes.iter().filter(|&&b| b == b'\n').count();
            assert!(u.line_map.windows(2).all(|w| w[0] != w[1]));
            assert!(u.line_map.len() <= file_lines && u.line_map.len() + 10 >= file_lines / 2);

            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path.with_file_name("meta.json")).unwrap())
                    .unwrap();
            let prefix =
                crate::prefix::Prefix::compile(meta["log_line_prefix"].as_str().unwrap()).unwrap();
            let mut records = 0;
            crate::record::stderr::decode(&u.text, &prefix, 0, &Default::default(), &mut |item| {
                match item {
                    crate::record::Item::Record(r) => {
                        assert!(r.pid.is_some_and(|p| p == u.line_pid[r.line as usize - 1]));
                        records += 1;
                    }
                    other => panic!("{}: {other:?}", path.display()),
                }
            });
            assert!(records > 0);
            // Every syslog line is accounted for: mapped, or a chunk joined to a mapped line.
            let text = std::str::from_utf8(&u.text).unwrap();
            assert!(!text.contains("#011"));
            if let Some(i) = text.find("segment080-segment0") {
                // A >900-byte line cut mid-word by PostgreSQL is whole again.
                assert!(
                    text[i..].starts_with("segment080-segment081-segment082"),
                    "{}",
                    &text[i..i + 60]
                );
            }
        }
    }

    proptest::proptest! {
        /// Arbitrary syslog-ish lines: no panic; each non-blank line is
        /// either unparsed or PostgreSQL text, never both, never lost.
        #[test]
        fn never_panics_never_drops_a_line(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["Nov 28 14:57:29 db1 ", "2026-11-28T14:57:29.1+00:00 db2 ", "", "Nov  2 01:02:03 "]),
                    proptest::sample::select(vec!["postgres[10]: ", "postgres[11]: ", "CRON[5]: ", "x: ", "pg[1]:"]),
                    proptest::sample::select(vec!["[1-1] ", "[1-2] ", "[2-1] ", "[1] ", "[2] ", "", "[", "message repeated 2 times: "]),
                    proptest::sample::select(vec!["LOG:  x", "#011cont", " mid", "DETAIL:  d", "", "#012", "\u{e9}", "\r"]),
                ),
                0..16,
            ),
        ) {
            let input: String = lines.iter().map(|(a, b, c, d)| format!("{a}{b}{c}{d}\n")).collect();
            let u = unwrap_syslog(input.as_bytes());
            proptest::prop_assert_eq!(u.text.iter().filter(|&&b| b == b'\n').count(), u.line_map.len());
            proptest::prop_assert_eq!(u.line_map.len(), u.line_pid.len());
            proptest::prop_assert_eq!(u.line_map.len(), u.line_time_ms.len());
            let unparsed: Vec<u64> = u.unparsed.iter().map(|(n, _)| *n).collect();
            proptest::prop_assert!(u.line_map.iter().all(|n| !unparsed.contains(n)));
            let pg_lines = input
                .lines()
                .enumerate()
                .filter(|(i, l)| !l.trim().is_empty() && !unparsed.contains(&(*i as u64 + 1)))
                .count();
            let mut mapped = u.line_map.clone();
            mapped.dedup();
            proptest::prop_assert!(mapped.len() <= pg_lines);
            let _ = looks_like_syslog(input.as_bytes());
        }
    }
}
