//! csvlog decoder (`log_destination = csvlog`, PostgreSQL 9.6–18).
//!
//! One record is one RFC 4180 row, read with the `csv` crate: quoted fields
//! may span lines and double their quotes, so a client-controlled user name
//! with a newline or a `"` cannot forge a row (unlike stderr, §6).
//!
//! Column layouts (§4.4 of the reference): 23 columns (9.6–12), 24 (13, adds
//! `backend_type`), 26 (14–18, adds `leader_pid` and `query_id`). Anything
//! else is `Unparsed::BadCsv`.
//!
//! Robustness: a row that does not decode (bad column count, bad time, pid
//! or severity) is emitted as `BadCsv` with its raw text. When such a row
//! spans several lines (typically an unterminated quote from a truncated
//! write swallowing the rows after it), decoding resynchronises at the first
//! following line that starts like a csvlog row, so one broken row does not
//! hide the rest of the file.

use std::borrow::Cow;

use csv::{ByteRecord, ReaderBuilder};

use super::{Item, Label, Record, Unparsed, text};
use crate::time::{parse_iso_utc, parse_pg_timestamp};

const LOG_TIME: usize = 0;
const USER_NAME: usize = 1;
const DATABASE_NAME: usize = 2;
const PROCESS_ID: usize = 3;
const CONNECTION_FROM: usize = 4;
const ERROR_SEVERITY: usize = 11;
const SQL_STATE_CODE: usize = 12;
const MESSAGE: usize = 13;
const DETAIL: usize = 14;
const HINT: usize = 15;
const CONTEXT: usize = 18;
const APPLICATION_NAME: usize = 22;

/// Column counts written by some PostgreSQL version.
fn known_width(n: usize) -> bool {
    matches!(n, 23 | 24 | 26)
}

fn reader<R: std::io::Read>(input: R) -> csv::Reader<R> {
    ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input)
}

/// Splits an optional CloudWatch / S3-export wrapper
/// (`2026-11-28T14:51:17.123Z `) off the first field.
fn strip_wrapper(field: &[u8]) -> (Option<i64>, &[u8]) {
    match parse_iso_utc(field) {
        Some((ms, used)) if field.get(used) == Some(&b' ') => (Some(ms), &field[used + 1..]),
        _ => (None, field),
    }
}

/// Parses a whole `log_time` field (after any wrapper).
fn parse_log_time(field: &[u8]) -> Option<i64> {
    match parse_pg_timestamp(field) {
        Some((ms, used)) if used == field.len() => Some(ms),
        _ => None,
    }
}

/// True when `b` begins like a csvlog row: optional wrapper, a `%m`
/// timestamp, then a comma.
fn starts_like_row(b: &[u8]) -> bool {
    let b = match parse_iso_utc(b) {
        Some((_, used)) if b.get(used) == Some(&b' ') => &b[used + 1..],
        _ => b,
    };
    matches!(parse_pg_timestamp(b), Some((_, used)) if b.get(used) == Some(&b','))
}

/// `"host:port"` → (host, port), split at the last colon so IPv6 works
/// (`::1:39667` → `::1`, 39667); `[local]` and port-less values keep the
/// whole text as the address.
fn split_host_port(b: &[u8]) -> (Option<&[u8]>, Option<u16>) {
    if b.is_empty() {
        return (None, None);
    }
    if let Some(i) = memchr::memrchr(b':', b) {
        let (host, port) = (&b[..i], &b[i + 1..]);
        let numeric = !port.is_empty() && port.len() <= 5 && port.iter().all(u8::is_ascii_digit);
        if numeric
            && !host.is_empty()
            && !host.ends_with(b":")
            && let Some(p) = std::str::from_utf8(port)
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
        {
            return (Some(host), Some(p));
        }
    }
    (Some(b), None)
}

/// Copies a field into an owned `Cow`, lossily if it is not UTF-8.
fn owned(b: &[u8], lossy: &mut bool) -> Cow<'static, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Owned(s.to_owned()),
        Err(_) => {
            *lossy = true;
            Cow::Owned(String::from_utf8_lossy(b).into_owned())
        }
    }
}

fn owned_opt(b: &[u8], lossy: &mut bool) -> Option<Cow<'static, str>> {
    if b.is_empty() {
        None
    } else {
        Some(owned(b, lossy))
    }
}

fn parse_pid(b: &[u8]) -> Result<Option<u32>, ()> {
    if b.is_empty() {
        return Ok(None);
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .map(Some)
        .ok_or(())
}

/// What makes a row a csvlog record: a known column count, a `log_time`,
/// a pid and a severity. `None` for any other row.
struct Head {
    ingest_time_ms: Option<i64>,
    time_ms: i64,
    pid: Option<u32>,
    label: Label,
}

fn head(row: &ByteRecord) -> Option<Head> {
    if !known_width(row.len()) {
        return None;
    }
    let field = |i: usize| row.get(i).unwrap_or(b"");
    let (ingest_time_ms, log_time) = strip_wrapper(field(LOG_TIME));
    Some(Head {
        ingest_time_ms,
        time_ms: parse_log_time(log_time)?,
        pid: parse_pid(field(PROCESS_ID)).ok()?,
        label: Label::parse(field(ERROR_SEVERITY)).filter(|l| l.is_severity())?,
    })
}

/// Builds a record from one row, or `None` if the row is not a csvlog record.
fn build(row: &ByteRecord, line: u64, last_line: u64) -> Option<Record<'static>> {
    let Head {
        ingest_time_ms,
        time_ms,
        pid,
        label,
    } = head(row)?;
    let field = |i: usize| row.get(i).unwrap_or(b"");
    let mut lossy = false;
    let (host, client_port) = split_host_port(field(CONNECTION_FROM));
    let mut r = Record::new(label, owned(field(MESSAGE), &mut lossy), line);
    r.time_ms = Some(time_ms);
    r.pid = pid;
    r.user = owned_opt(field(USER_NAME), &mut lossy);
    r.database = owned_opt(field(DATABASE_NAME), &mut lossy);
    r.application_name = owned_opt(field(APPLICATION_NAME), &mut lossy);
    r.client_addr = host.map(|h| owned(h, &mut lossy));
    r.client_port = client_port;
    r.sqlstate = owned_opt(field(SQL_STATE_CODE), &mut lossy);
    r.detail = owned_opt(field(DETAIL), &mut lossy);
    r.hint = owned_opt(field(HINT), &mut lossy);
    r.context = owned_opt(field(CONTEXT), &mut lossy);
    r.last_line = last_line;
    r.invalid_utf8 = lossy;
    r.ingest_time_ms = ingest_time_ms;
    r.structured = true;
    Some(r)
}

fn count_newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

fn trim_line_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}

/// Tracks the physical line number of a byte offset, moving forward only.
struct LineCursor<'a> {
    buf: &'a [u8],
    offset: usize,
    line: u64,
}

impl LineCursor<'_> {
    fn line_at(&mut self, offset: usize) -> u64 {
        if offset > self.offset {
            self.line += count_newlines(&self.buf[self.offset..offset]);
            self.offset = offset;
        }
        self.line
    }
}

/// Decodes csvlog rows from `buf`, handing each record or unparsed row to
/// `emit`. `first_line` is the number of the line before `buf` (0 for a
/// whole file), as for the stderr decoder.
///
/// `line`/`last_line` are the physical lines where a row starts and ends
/// (newlines inside quoted fields count). Rows that are not csvlog records
/// become `Item::Unparsed { reason: BadCsv, .. }` carrying the row's first
/// line and raw text. Empty and whitespace-only lines are skipped.
pub fn decode<'a>(buf: &'a [u8], first_line: u64, emit: &mut dyn FnMut(Item<'a>)) {
    let mut cursor = LineCursor {
        buf,
        offset: 0,
        line: first_line + 1,
    };
    walk(buf, &mut |visit| match visit {
        Visit::Row { row, start, end } => {
            let line = cursor.line_at(start);
            let last_line = line + count_newlines(trim_line_end(&buf[start..end]));
            match build(row, line, last_line) {
                Some(record) => {
                    emit(Item::Record(Box::new(record)));
                    true
                }
                None => false,
            }
        }
        Visit::Bad {
            start,
            raw_end,
            resync,
            ..
        } => {
            emit(Item::Unparsed {
                reason: Unparsed::BadCsv,
                line: cursor.line_at(start),
                text: text(trim_line_end(&buf[start..resync.unwrap_or(raw_end)])).0,
            });
            true
        }
        Visit::Failed { start } => {
            // Not expected from an in-memory reader; never lose the rest.
            let rest = trim_line_end(&buf[start..]);
            if !rest.is_empty() {
                emit(Item::Unparsed {
                    reason: Unparsed::BadCsv,
                    line: cursor.line_at(start),
                    text: text(rest).0,
                });
            }
            true
        }
    });
}

/// Offsets of `buf` where decoding may start afresh and read the same rows
/// as decoding all of `buf` does (for cutting it into chunks that decode in
/// parallel): the ends of rows, on the decoder's own reading of them, that
/// end with a newline before the end of `buf`. Counting quotes is not
/// enough: the csv reader reads a stray quote (a damaged file) otherwise,
/// and the decoder starts reading again inside a broken row that spans
/// lines (see [`decode`]); a cut inside such a row's first reading would
/// make the chunk before it read the row differently, so none is made
/// there.
pub fn row_ends(buf: &[u8], each: &mut dyn FnMut(usize)) {
    match regular_row_ends(buf) {
        Some(ends) => ends.into_iter().for_each(each),
        None => walked_row_ends(buf, each),
    }
}

/// [`row_ends`] of a buffer whose quoting is regular (RFC 4180: a quote
/// opens a field, is doubled inside it, or closes it before a comma or a
/// line end) and whose rows that span lines are all records, found by
/// looking at quotes and newlines only: then the csv reader ends a row at
/// each newline outside quotes and the decoder never starts again inside
/// a row. PostgreSQL writes such files; `None` for any other (a damaged
/// one), which [`walked_row_ends`] reads row by row.
fn regular_row_ends(buf: &[u8]) -> Option<Vec<usize>> {
    let mut ends = Vec::new();
    let mut row_start = 0;
    let mut in_quotes = false;
    let mut spans_lines = false;
    let mut at = 0;
    // One csv reader for every row checked (making one builds its tables).
    let mut rows = reader(std::io::Cursor::new(buf));
    let mut row = ByteRecord::new();
    while let Some(found) = memchr::memchr2(b'"', b'\n', &buf[at..]) {
        let p = at + found;
        at = p + 1;
        if buf[p] == b'\n' {
            if in_quotes {
                spans_lines = true;
                continue;
            }
            if spans_lines {
                let start = std::io::SeekFrom::Start(row_start as u64);
                let read = rows.seek_raw(start, csv::Position::new()).is_ok()
                    && matches!(rows.read_byte_record(&mut row), Ok(true));
                // The row must read as one csv row (which ends after the CR
                // of a CRLF) and be a record.
                let end = row_start + rows.position().byte() as usize;
                let one_row = end == at || (end + 1 == at && buf[end - 1] == b'\r');
                if !(read && one_row && head(&row).is_some()) {
                    return None;
                }
            }
            if at < buf.len() {
                ends.push(at);
            }
            row_start = at;
            spans_lines = false;
        } else if !in_quotes {
            // A quote opens a field only where the field starts.
            if p > 0 && !matches!(buf[p - 1], b',' | b'\n' | b'\r') {
                return None;
            }
            in_quotes = true;
        } else {
            match buf.get(p + 1) {
                Some(b'"') => at = p + 2,
                Some(b',' | b'\n' | b'\r') | None => in_quotes = false,
                Some(_) => return None,
            }
        }
    }
    Some(ends)
}

/// [`row_ends`] by reading the rows as the decoder does.
fn walked_row_ends(buf: &[u8], each: &mut dyn FnMut(usize)) {
    // No cut before this offset (the end of a broken row read again).
    let mut not_before = 0;
    let mut cut = |end: usize, not_before: usize| {
        // After a CR, the csv reader leaves the LF of a CRLF for the next
        // row (which skips it): the cut goes after both.
        let end = match buf.get(end.wrapping_sub(1)..=end) {
            Some([b'\r', b'\n']) => end + 1,
            _ => end,
        };
        if end >= not_before && end < buf.len() && buf[end - 1] == b'\n' {
            each(end);
        }
    };
    walk(buf, &mut |visit| match visit {
        Visit::Row { row, start, end } => {
            // Only a row that spans lines can be read again from inside.
            let spans_lines = memchr::memchr(b'\n', trim_line_end(&buf[start..end])).is_some();
            let record = !spans_lines || head(row).is_some();
            if record {
                cut(end, not_before);
            }
            record
        }
        Visit::Bad { end, resync, .. } => {
            match resync {
                Some(_) => not_before = not_before.max(end),
                None => cut(end, not_before),
            }
            true
        }
        Visit::Failed { .. } => true,
    });
}

/// What [`walk`] shows its visitor.
enum Visit<'r> {
    /// A row that is not blank: from `start` (after any blank lines before
    /// it) to `end` (after its line end). The visitor answers whether it is
    /// a csvlog record.
    Row {
        row: &'r ByteRecord,
        start: usize,
        end: usize,
    },
    /// The row from `start` to `end` is not a record. Its text ends at
    /// `raw_end` (before its line end), or at `resync`, a later line inside
    /// it that starts like a row, where reading starts again.
    Bad {
        start: usize,
        end: usize,
        raw_end: usize,
        resync: Option<usize>,
    },
    /// The csv reader failed at `start`; nothing after it is read.
    Failed { start: usize },
}

/// Reads the rows of `buf` as the decoder does, for the decoder and for
/// [`row_ends`], so that both agree on where rows are. A row that is not a
/// record and spans lines (typically an unterminated quote from a truncated
/// write swallowing the rows after it) is read again from the first line
/// inside it that starts like a csvlog row, so one broken row does not
/// hide the rest of the file. The visitor's answer to `Bad` and `Failed`
/// is not used.
fn walk(buf: &[u8], visit: &mut dyn FnMut(Visit<'_>) -> bool) {
    let mut row = ByteRecord::new();
    // Byte offset where the current csv reader starts; moves on resync.
    let mut base = 0usize;
    'readers: while base < buf.len() {
        let mut rdr = reader(&buf[base..]);
        loop {
            let more = rdr.read_byte_record(&mut row);
            let end = base + rdr.position().byte() as usize;
            let start_guess = base + row.position().map_or(0, |p| p.byte() as usize);
            match more {
                Ok(true) => {}
                Ok(false) => break 'readers,
                Err(_) => {
                    visit(Visit::Failed {
                        start: start_guess.min(buf.len()),
                    });
                    break 'readers;
                }
            }
            // The csv position includes skipped blank lines before the row.
            let mut start = start_guess.min(end);
            while start < end && matches!(buf[start], b'\n' | b'\r') {
                start += 1;
            }
            let raw = trim_line_end(&buf[start..end]);
            if row.len() == 1 && raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if visit(Visit::Row {
                row: &row,
                start,
                end,
            }) {
                continue;
            }
            let resync = memchr::memchr_iter(b'\n', raw)
                .map(|i| start + i + 1)
                .find(|&p| starts_like_row(&buf[p..]));
            visit(Visit::Bad {
                start,
                end,
                raw_end: start + raw.len(),
                resync,
            });
            if let Some(p) = resync {
                base = p;
                continue 'readers;
            }
        }
    }
}

/// Auto-detection: true when the first row of `first_lines` reads as a
/// csvlog row (23, 24 or 26 columns and a valid `log_time`, optionally
/// behind a CloudWatch wrapper). A first row cut off by the end of
/// `first_lines` is accepted if what is there fits (≤ 26 columns, numeric
/// pid).
pub fn looks_like_csvlog(first_lines: &[u8]) -> bool {
    let mut rdr = reader(first_lines);
    let mut row = ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut row) {
            Ok(true) => {}
            _ => return false,
        }
        let blank = row.len() == 1
            && row
                .get(0)
                .is_some_and(|f| f.iter().all(u8::is_ascii_whitespace));
        if !blank {
            break;
        }
    }
    let (_, log_time) = strip_wrapper(row.get(LOG_TIME).unwrap_or(b""));
    if parse_log_time(log_time).is_none() {
        return false;
    }
    let end = rdr.position().byte() as usize;
    let terminated = end > 0 && matches!(first_lines.get(end - 1), Some(b'\n' | b'\r'));
    if terminated {
        known_width(row.len())
    } else {
        row.len() > PROCESS_ID
            && row.len() <= 26
            && row.get(PROCESS_ID).is_some_and(|p| parse_pid(p).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339_ms;

    /// Real PG 14 rows from §4.4 of the reference (26 columns).
    const ROW14_RECEIVED: &str = r#"2026-11-28 14:53:24.616 UTC,,,32516,"127.0.0.1:38996",6b0aeae4.7f04,1,"",2026-11-28 14:53:24 UTC,,0,LOG,00000,"connection received: host=127.0.0.1 port=38996",,,,,,,,,"","not initialized",,0"#;
    const ROW14_AUTHORIZED: &str = r#"2026-11-28 14:53:24.620 UTC,"alice","appdb",32516,"127.0.0.1:38996",6b0aeae4.7f04,3,"authentication",2026-11-28 14:53:24 UTC,3/39,0,LOG,00000,"connection authorized: user=alice database=appdb application_name=psql-audit",,,,,,,,,"","client backend",,0"#;

    fn decode_all(input: &str) -> Vec<Item<'_>> {
        let mut out = Vec::new();
        decode(input.as_bytes(), 0, &mut |i| out.push(i));
        out
    }

    fn record<'a>(item: &'a Item<'a>) -> &'a Record<'a> {
        match item {
            Item::Record(r) => r,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    /// The same row as written by 13 (24 columns: no leader_pid/query_id)
    /// and by 9.6–12 (23 columns: no backend_type either), built from the
    /// column table in §4.4.
    fn narrower(row: &str, columns: usize) -> String {
        let mut rdr = reader(row.as_bytes());
        let mut rec = ByteRecord::new();
        assert!(rdr.read_byte_record(&mut rec).unwrap());
        assert_eq!(rec.len(), 26);
        let mut w = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(vec![]);
        let fields: Vec<&[u8]> = rec.iter().take(columns).collect();
        w.write_record(fields).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn real_pg14_rows() {
        let input = format!("{ROW14_RECEIVED}\n{ROW14_AUTHORIZED}\n");
        let items = decode_all(&input);
        assert_eq!(items.len(), 2);
        let r = record(&items[0]);
        assert_eq!(
            format_rfc3339_ms(r.time_ms.unwrap()),
            "2026-11-28T14:53:24.616Z"
        );
        assert_eq!(r.user, None);
        assert_eq!(r.database, None);
        assert_eq!(r.pid, Some(32516));
        assert_eq!(r.client_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.client_port, Some(38996));
        assert_eq!(r.label, Label::Log);
        assert_eq!(r.sqlstate.as_deref(), Some("00000"));
        assert_eq!(r.message, "connection received: host=127.0.0.1 port=38996");
        assert_eq!(r.application_name, None);
        assert_eq!((r.line, r.last_line), (1, 1));
        assert!(r.structured);
        assert!(!r.invalid_utf8);
        assert_eq!(r.ingest_time_ms, None);

        let r = record(&items[1]);
        assert_eq!(r.user.as_deref(), Some("alice"));
        assert_eq!(r.database.as_deref(), Some("appdb"));
        assert_eq!(
            r.message,
            "connection authorized: user=alice database=appdb application_name=psql-audit"
        );
        assert_eq!((r.line, r.last_line), (2, 2));
    }

    #[test]
    fn all_column_layouts() {
        for columns in [23, 24, 26] {
            let row = narrower(ROW14_AUTHORIZED, columns);
            let items = decode_all(&row);
            assert_eq!(items.len(), 1, "{columns} columns");
            let r = record(&items[0]);
            assert_eq!(r.user.as_deref(), Some("alice"), "{columns} columns");
            assert_eq!(r.pid, Some(32516));
            assert!(looks_like_csvlog(row.as_bytes()), "{columns} columns");
        }
    }

    #[test]
    fn bad_column_count_is_bad_csv_with_line() {
        let bad = narrower(ROW14_AUTHORIZED, 25);
        let input = format!("{ROW14_RECEIVED}\n{bad}{ROW14_AUTHORIZED}\n");
        let items = decode_all(&input);
        assert_eq!(items.len(), 3);
        match &items[1] {
            Item::Unparsed { reason, line, text } => {
                assert_eq!(*reason, Unparsed::BadCsv);
                assert_eq!(*line, 2);
                assert!(text.starts_with("2026-11-28 14:53:24.620 UTC,alice"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(record(&items[2]).line, 3);
    }

    #[test]
    fn multi_line_quoted_fields_and_forged_user() {
        // A DETAIL with an embedded newline, then a user name holding a quote
        // and a newline followed by text that imitates a whole row: the csv
        // reader keeps it inside the field.
        let detail_row = r#"2026-11-28 14:53:25.001 UTC,"bob","appdb",32517,"10.0.0.5:40000",6b0aeae5.7f05,2,"authentication",2026-11-28 14:53:25 UTC,3/40,0,FATAL,28P01,"password authentication failed for user ""bob""","Connection matched file ""/etc/pg_hba.conf"" line 6:
	""host all all 10.0.0.0/8 scram-sha-256""",,,,,,,,"","client backend",,0"#;
        let forged_user = "x\"\n2026-11-28 14:53:26.000 UTC,\"admin\",\"appdb\",1,\"1.2.3.4:5\",a.b,1,\"\",2026-11-28 14:53:26 UTC,,0,LOG,00000,\"connection authorized: user=admin\"";
        let forged_csv = forged_user.replace('"', "\"\"");
        let forged_row = format!(
            r#"2026-11-28 14:53:26.002 UTC,"{forged_csv}","appdb",32518,"[local]",6b0aeae6.7f06,2,"authentication",2026-11-28 14:53:26 UTC,3/41,0,FATAL,28000,"role ""x"" does not exist",,,,,,,,,"","client backend",,0"#
        );
        let input = format!("{detail_row}\n{forged_row}\n{ROW14_RECEIVED}\n");
        let items = decode_all(&input);
        assert_eq!(items.len(), 3, "{items:#?}");
        let r = record(&items[0]);
        assert_eq!(r.label, Label::Fatal);
        assert_eq!(r.sqlstate.as_deref(), Some("28P01"));
        assert_eq!(r.message, "password authentication failed for user \"bob\"");
        assert_eq!(
            r.detail.as_deref(),
            Some(
                "Connection matched file \"/etc/pg_hba.conf\" line 6:\n\t\"host all all 10.0.0.0/8 scram-sha-256\""
            )
        );
        assert_eq!((r.line, r.last_line), (1, 2));

        let r = record(&items[1]);
        assert_eq!(r.user.as_deref(), Some(forged_user));
        assert_eq!(r.client_addr.as_deref(), Some("[local]"));
        assert_eq!(r.client_port, None);
        assert_eq!((r.line, r.last_line), (3, 4));

        assert_eq!(record(&items[2]).line, 5);
    }

    #[test]
    fn ipv6_and_hostnames() {
        assert_eq!(
            split_host_port(b"::1:39667"),
            (Some(&b"::1"[..]), Some(39667))
        );
        assert_eq!(
            split_host_port(b"fe80::1%eth0:5432"),
            (Some(&b"fe80::1%eth0"[..]), Some(5432))
        );
        assert_eq!(
            split_host_port(b"db.example.com:5432"),
            (Some(&b"db.example.com"[..]), Some(5432))
        );
        assert_eq!(split_host_port(b"[local]"), (Some(&b"[local]"[..]), None));
        assert_eq!(split_host_port(b""), (None, None));
        let row = ROW14_RECEIVED.replace("127.0.0.1:38996", "::1:39667");
        let items = decode_all(&row);
        let r = record(&items[0]);
        assert_eq!(r.client_addr.as_deref(), Some("::1"));
        assert_eq!(r.client_port, Some(39667));
    }

    #[test]
    fn wrapper_time_pid_and_severity() {
        let wrapped = format!("2026-11-28T14:53:25.000Z {ROW14_RECEIVED}\n");
        let items = decode_all(&wrapped);
        let r = record(&items[0]);
        assert_eq!(
            format_rfc3339_ms(r.ingest_time_ms.unwrap()),
            "2026-11-28T14:53:25.000Z"
        );
        assert_eq!(
            format_rfc3339_ms(r.time_ms.unwrap()),
            "2026-11-28T14:53:24.616Z"
        );
        assert!(looks_like_csvlog(wrapped.as_bytes()));

        for broken in [
            ROW14_RECEIVED.replace("2026-11-28 14:53:24.616 UTC,", "yesterday,"),
            ROW14_RECEIVED.replace(",32516,", ",12ab,"),
            ROW14_RECEIVED.replace(",LOG,", ",DETAIL,"),
        ] {
            let items = decode_all(&broken);
            assert!(
                matches!(
                    items[..],
                    [Item::Unparsed {
                        reason: Unparsed::BadCsv,
                        line: 1,
                        ..
                    }]
                ),
                "{broken}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_lossy_not_fatal() {
        let mut input = ROW14_AUTHORIZED
            .replace("\"alice\"", "\"al\u{1}ice\"")
            .into_bytes();
        let at = input.iter().position(|&b| b == 1).unwrap();
        input[at] = 0xff;
        let mut items = Vec::new();
        decode(&input, 0, &mut |i| items.push(i));
        let r = record(&items[0]);
        assert!(r.invalid_utf8);
        assert_eq!(r.user.as_deref(), Some("al\u{fffd}ice"));
    }

    #[test]
    fn unterminated_quote_resyncs_and_first_line_offset() {
        // A row cut off inside its message (a crashed write), then good rows.
        let cut = &ROW14_AUTHORIZED[..120];
        let input = format!("\n{cut}\n{ROW14_RECEIVED}\n\n{ROW14_AUTHORIZED}\n");
        let mut items = Vec::new();
        decode(input.as_bytes(), 9, &mut |i| items.push(i));
        assert_eq!(items.len(), 3, "{items:#?}");
        assert!(
            matches!(&items[0], Item::Unparsed { reason: Unparsed::BadCsv, line: 11, text } if text == cut)
        );
        assert_eq!(record(&items[1]).line, 12);
        assert_eq!(record(&items[2]).line, 14);
    }

    #[test]
    fn garbage_never_panics_and_never_vanishes() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"\n\n",
            b"\"",
            b"a,b,c\n\"unterminated",
            b"\xff\xfe,\"\n\"\n",
            b",,,,,,,,,,,,,,,,,,,,,,,\n",
        ];
        for input in inputs {
            let mut n = 0;
            decode(input, 0, &mut |i| {
                assert!(matches!(
                    i,
                    Item::Unparsed {
                        reason: Unparsed::BadCsv,
                        ..
                    }
                ));
                n += 1;
            });
            let visible = input.iter().any(|b| !b.is_ascii_whitespace());
            assert_eq!(n > 0, visible, "{input:?}");
            assert!(!looks_like_csvlog(input));
        }
    }

    #[test]
    fn detection() {
        assert!(looks_like_csvlog(ROW14_RECEIVED.as_bytes()));
        assert!(looks_like_csvlog(&ROW14_RECEIVED.as_bytes()[..100]));
        assert!(!looks_like_csvlog(b"2026-11-28 14:53:24.616 UTC [32516] LOG:  connection received: host=127.0.0.1 port=38996\n"));
        assert!(!looks_like_csvlog(
            b"{\"timestamp\":\"2026-11-28 14:55:04.312 UTC\"}\n"
        ));
    }

    /// Every `*.csv` under `samples/` (real recordings, see each
    /// `meta.json`) decodes with no unparsed row.
    #[test]
    fn real_samples_decode_cleanly() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let Ok(specs) = crate::source::expand(&[samples]) else {
            return; // no samples in this checkout
        };
        for spec in specs {
            let crate::source::InputSpec::Path(path) = spec else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "csv") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            assert!(looks_like_csvlog(&bytes), "{}", path.display());
            let (mut records, mut last) = (0, 0);
            decode(&bytes, 0, &mut |item| match item {
                Item::Record(r) => {
                    assert!(r.line > last, "{}: line order", path.display());
                    last = r.last_line;
                    records += 1;
                }
                other => panic!("{}: {other:?}", path.display()),
            });
            assert!(records > 0, "{}", path.display());
            assert_eq!(
                last as usize,
                bytes.iter().filter(|&&b| b == b'\n').count(),
                "{}",
                path.display()
            );
        }
    }

    /// Lines each item accounts for.
    fn span(item: &Item<'_>) -> (u64, u64) {
        match item {
            Item::Record(r) => (r.line, r.last_line),
            Item::Unparsed { line, text, .. } => (*line, line + text.matches('\n').count() as u64),
            Item::Suspect { head, .. } => (head.line, head.last_line),
            Item::Quiet(q) => (q.line, q.last_line),
        }
    }

    /// Decodes `buf` in the chunks the parallel engine cuts it into for
    /// `target` bytes (`frame::cut_points`), each from its own first line,
    /// as the engine does; items as text, to compare.
    fn decode_in_chunks(buf: &[u8], target: usize) -> Vec<String> {
        let mut items = Vec::new();
        let mut cuts = crate::frame::cut_points(buf, &crate::frame::Framing::Csv, target);
        cuts.push(buf.len());
        let (mut from, mut lines) = (0, 0);
        for cut in cuts {
            let chunk = &buf[from..cut];
            decode(chunk, lines, &mut |item| items.push(format!("{item:?}")));
            lines += count_newlines(chunk);
            from = cut;
        }
        items
    }

    fn decode_whole(buf: &[u8]) -> Vec<String> {
        let mut items = Vec::new();
        decode(buf, 0, &mut |item| items.push(format!("{item:?}")));
        items
    }

    /// A damaged file reads the same in chunks of any size (found by
    /// fuzzing a real recording): one row with a stray quote in its message
    /// and cut short by a truncated write inside a quoted field. Its quotes
    /// are even, but the csv reader is still inside a quoted field at its
    /// end, so it reads on into the next row and the decoder then starts
    /// again at that row; chunks cut by counting quotes read the damaged
    /// row alone, as a record.
    #[test]
    fn a_damaged_row_reads_the_same_in_chunks() {
        let Some(real) = crate::sample_text("samples/forging/pg15-debian/postgresql.csv") else {
            return; // no samples in this checkout
        };
        let row = real
            .lines()
            .find(|l| l.contains(",4536,") && l.contains("connection authorized"))
            .expect("the sample's authorized row");
        let stray = row.replacen("SSL enabled", "SSL en\"bled", 1);
        let cut = stray.find("\"clie").expect("application type") + 5;
        let damaged = real.replacen(row, &stray[..cut], 1);
        let whole = decode_whole(damaged.as_bytes());
        assert!(whole.iter().any(|i| i.contains("BadCsv")), "{whole:#?}");
        for target in [1, 64, 300, 4096, 1 << 19] {
            assert_eq!(
                decode_in_chunks(damaged.as_bytes(), target),
                whole,
                "target {target}"
            );
        }
    }

    proptest::proptest! {
        /// Decoding in chunks gives what decoding the whole gives, for any
        /// mix of rows, stray quotes and line ends, and any chunk size.
        #[test]
        fn chunks_read_like_the_whole(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    ROW14_RECEIVED, ROW14_AUTHORIZED, "\n", "\r\n", "\r", "\"", "\"\"", ",", " ", "x",
                    "2026-11-28 14:53:24.616 UTC,", "\n2026-11-28 14:53:24.616 UTC,",
                ]),
                0..40,
            ),
            target in 1usize..400,
        ) {
            let input = tokens.concat().into_bytes();
            proptest::prop_assert_eq!(decode_in_chunks(&input, target), decode_whole(&input));
        }

        /// Where the quoting is regular, looking at quotes and newlines
        /// finds the ends of the rows the decoder reads, and otherwise only
        /// ends of lines the decoder skips as blank (after any lone CR,
        /// which ends a csv row too): cutting there changes nothing.
        #[test]
        fn regular_quoting_finds_the_decoders_rows(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    ROW14_RECEIVED, ROW14_AUTHORIZED, "\n", "\r\n", "\r", "\"", "\"\"", ",", " ", "x",
                    ",\"a\nb\"", ",\"\"\"\"", "2026-11-28 14:53:24.616 UTC,",
                ]),
                0..40,
            ),
        ) {
            let input = tokens.concat().into_bytes();
            if let Some(regular) = regular_row_ends(&input) {
                let mut walked = Vec::new();
                walked_row_ends(&input, &mut |end| walked.push(end));
                for end in &walked {
                    proptest::prop_assert!(regular.contains(end), "{regular:?} {walked:?}");
                }
                for &end in regular.iter().filter(|end| !walked.contains(end)) {
                    let line = &input[..end - 1];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let line = &line[memchr::memrchr2(b'\n', b'\r', line).map_or(0, |i| i + 1)..];
                    proptest::prop_assert!(
                        line.iter().all(u8::is_ascii_whitespace),
                        "{end} in {regular:?}, not in {walked:?}"
                    );
                }
            }
        }

        /// Any mix of row fragments, quotes, separators and line ends:
        /// no panic, items in line order, and every line with visible
        /// content is covered by an item. (A lone CR ends a csv row too, so
        /// two items may share a line.)
        #[test]
        fn never_panics_never_drops_a_line(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    ROW14_RECEIVED, ROW14_AUTHORIZED, "\n", "\r\n", "\r", "\"", "\"\"", ",", " ", "x",
                    "2026-11-28 14:53:24.616 UTC,", "2026-11-28T14:53:25.000Z ", "\u{e9}", "\t",
                ]),
                0..24,
            ),
            invalid in proptest::option::of(0usize..400),
        ) {
            let mut input = tokens.concat().into_bytes();
            if let Some(at) = invalid.filter(|&at| at < input.len()) {
                input[at] = 0xff;
            }
            let mut covered = Vec::new();
            decode(&input, 0, &mut |item| covered.push(span(&item)));
            for w in covered.windows(2) {
                proptest::prop_assert!(w[0].1 <= w[1].0, "{covered:?}");
            }
            for (i, line) in input.split(|&b| b == b'\n').enumerate() {
                let n = i as u64 + 1;
                let visible = line.iter().any(|b| !b.is_ascii_whitespace());
                let hit = covered.iter().any(|&(a, b)| a <= n && n <= b);
                proptest::prop_assert!(!visible || hit, "line {n} not covered: {covered:?}");
            }
            let _ = looks_like_csvlog(&input);
        }
    }
}
