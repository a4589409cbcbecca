//! jsonlog decoder (`log_destination = jsonlog`, PostgreSQL 15+).
//!
//! One JSON object per line (§4.5 of the reference). Keys whose value is
//! NULL are omitted by PostgreSQL, so every field is optional here; unknown
//! keys are ignored, duplicate keys make the line `BadJson`. Strings that
//! need no unescaping borrow from the input buffer.
//!
//! A CloudWatch / S3-export wrapper (`2026-11-28T14:51:17.123Z {…}`) is
//! stripped and kept as `ingest_time_ms`.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use super::{Item, Label, Record, Unparsed, text};
use crate::time::{parse_iso_utc, parse_pg_timestamp};

/// Deserializes an optional string, borrowing when it has no escapes.
/// (`Option<Cow<str>>` with a plain `#[serde(borrow)]` would always copy.)
fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

/// The keys of a jsonlog line that pgtrail uses.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    dbname: Option<Cow<'a, str>>,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    remote_host: Option<Cow<'a, str>>,
    #[serde(default)]
    remote_port: Option<u16>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    error_severity: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    state_code: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    detail: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    hint: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    context: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    application_name: Option<Cow<'a, str>>,
}

fn non_empty(s: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    s.filter(|s| !s.is_empty())
}

/// Parses one JSON object into a record; `None` if it is not a jsonlog line
/// (not an object, wrong types, no parseable `timestamp`, or no known
/// `error_severity`).
fn parse_line(json: &str, line: u64) -> Option<Record<'_>> {
    let l: Line<'_> = serde_json::from_str(json).ok()?;
    let ts = l.timestamp?;
    let time_ms = match parse_pg_timestamp(ts.as_bytes()) {
        Some((ms, used)) if used == ts.len() => ms,
        _ => return None,
    };
    let label = Label::parse(l.error_severity?.as_bytes()).filter(|l| l.is_severity())?;
    let mut r = Record::new(label, l.message.unwrap_or(Cow::Borrowed("")), line);
    r.time_ms = Some(time_ms);
    r.pid = l.pid;
    r.user = non_empty(l.user);
    r.database = non_empty(l.dbname);
    r.application_name = non_empty(l.application_name);
    r.client_addr = non_empty(l.remote_host);
    r.client_port = l.remote_port;
    // jsonlog omits `state_code` exactly when it is 00000.
    r.sqlstate = Some(l.state_code.unwrap_or(Cow::Borrowed("00000")));
    r.detail = l.detail;
    r.hint = l.hint;
    r.context = l.context;
    r.structured = true;
    Some(r)
}

fn own(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// Detaches a record from the temporary string it was parsed from.
fn into_owned(r: Record<'_>) -> Record<'static> {
    Record {
        user: r.user.map(own),
        database: r.database.map(own),
        application_name: r.application_name.map(own),
        client_addr: r.client_addr.map(own),
        sqlstate: r.sqlstate.map(own),
        message: own(r.message),
        detail: r.detail.map(own),
        hint: r.hint.map(own),
        context: r.context.map(own),
        ..r
    }
}

/// Splits a CloudWatch / S3-export wrapper off a line whose payload is a
/// JSON object.
fn strip_wrapper(line: &[u8]) -> (Option<i64>, &[u8]) {
    match parse_iso_utc(line) {
        Some((ms, used)) if line.get(used) == Some(&b' ') && line.get(used + 1) == Some(&b'{') => {
            (Some(ms), &line[used + 1..])
        }
        _ => (None, line),
    }
}

fn decode_line<'a>(raw: &'a [u8], line: u64) -> Item<'a> {
    let (ingest_time_ms, body) = strip_wrapper(raw);
    let record = match std::str::from_utf8(body) {
        Ok(json) => parse_line(json, line),
        Err(_) => {
            let json = String::from_utf8_lossy(body);
            parse_line(&json, line).map(|r| Record {
                invalid_utf8: true,
                ..into_owned(r)
            })
        }
    };
    match record {
        Some(r) => Item::Record(Box::new(Record {
            ingest_time_ms,
            ..r
        })),
        None => Item::Unparsed {
            reason: Unparsed::BadJson,
            line,
            text: text(raw).0,
        },
    }
}

/// Decodes jsonlog lines from `buf`; `first_line` is the number of the line
/// before `buf` (0 for a whole file), as for the stderr decoder. Whitespace-only lines are skipped; every other line that
/// is not a jsonlog object becomes `Item::Unparsed { reason: BadJson, .. }`.
pub fn decode<'a>(buf: &'a [u8], first_line: u64, emit: &mut dyn FnMut(Item<'a>)) {
    let mut line = first_line + 1;
    let mut start = 0;
    while start < buf.len() {
        let end = memchr::memchr(b'\n', &buf[start..]).map_or(buf.len(), |i| start + i);
        let mut raw = &buf[start..end];
        if let [rest @ .., b'\r'] = raw {
            raw = rest;
        }
        if !raw.iter().all(u8::is_ascii_whitespace) {
            emit(decode_line(raw, line));
        }
        line += 1;
        start = end + 1;
    }
}

/// Auto-detection: the first non-blank line (after any wrapper) is a
/// jsonlog object. If that line is cut off by the end of `first_lines`,
/// it must at least begin with `{"timestamp":"<valid timestamp>`.
pub fn looks_like_jsonlog(first_lines: &[u8]) -> bool {
    let mut start = 0;
    while start < first_lines.len() {
        let nl = memchr::memchr(b'\n', &first_lines[start..]).map(|i| start + i);
        let raw = &first_lines[start..nl.unwrap_or(first_lines.len())];
        if raw.iter().all(u8::is_ascii_whitespace) {
            match nl {
                Some(nl) => {
                    start = nl + 1;
                    continue;
                }
                None => return false,
            }
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if nl.is_some() {
            return matches!(decode_line(raw, 1), Item::Record(_));
        }
        let (_, body) = strip_wrapper(raw);
        return body
            .strip_prefix(b"{\"timestamp\":\"")
            .and_then(parse_pg_timestamp)
            .is_some();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339_ms;

    /// Real PG 18 line from §4.5 of the reference.
    const REAL18: &str = r#"{"timestamp":"2026-11-28 14:55:04.312 UTC","user":"alice","dbname":"appdb","pid":1991,"remote_host":"127.0.0.1","remote_port":49608,"session_id":"6b0aeb48.7c7","line_num":2,"ps":"authentication","session_start":"2026-11-28 14:55:04 UTC","vxid":"1/7","txid":0,"error_severity":"LOG","message":"connection authenticated: identity=\"alice\" method=scram-sha-256 (/var/lib/postgresql/18/main/pg_hba.conf:6)","backend_type":"client backend","query_id":0}"#;

    /// `connection received` over a Unix socket, built from the §4.5 rules:
    /// no user, dbname, remote_port, state_code or application_name.
    const RECEIVED_LOCAL: &str = r#"{"timestamp":"2026-11-28 14:55:04.300 UTC","pid":1991,"remote_host":"[local]","session_id":"6b0aeb48.7c7","line_num":1,"ps":"","session_start":"2026-11-28 14:55:04 UTC","txid":0,"error_severity":"LOG","message":"connection received: host=[local]","backend_type":"not initialized","query_id":0}"#;

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

    #[test]
    fn real_pg18_line_borrows() {
        let items = decode_all(REAL18);
        let r = record(&items[0]);
        assert_eq!(
            format_rfc3339_ms(r.time_ms.unwrap()),
            "2026-11-28T14:55:04.312Z"
        );
        assert_eq!(r.user.as_deref(), Some("alice"));
        assert!(matches!(r.user, Some(Cow::Borrowed(_))));
        assert_eq!(r.database.as_deref(), Some("appdb"));
        assert_eq!(r.pid, Some(1991));
        assert_eq!(r.client_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.client_port, Some(49608));
        assert_eq!(r.label, Label::Log);
        assert_eq!(r.sqlstate.as_deref(), Some("00000"));
        // Escaped quotes force an owned copy.
        assert!(matches!(r.message, Cow::Owned(_)));
        assert_eq!(
            r.message,
            "connection authenticated: identity=\"alice\" method=scram-sha-256 (/var/lib/postgresql/18/main/pg_hba.conf:6)"
        );
        assert_eq!(r.application_name, None);
        assert!(r.structured);
        assert!(!r.invalid_utf8);
        assert_eq!((r.line, r.last_line), (1, 1));
        assert!(looks_like_jsonlog(REAL18.as_bytes()));
    }

    #[test]
    fn missing_keys() {
        let items = decode_all(RECEIVED_LOCAL);
        let r = record(&items[0]);
        assert_eq!(r.user, None);
        assert_eq!(r.database, None);
        assert_eq!(r.client_addr.as_deref(), Some("[local]"));
        assert_eq!(r.client_port, None);
        assert_eq!(r.application_name, None);
        assert_eq!(r.detail, None);

        let fatal = r#"{"timestamp":"2026-11-28 14:55:05.000 UTC","user":"bob","dbname":"appdb","pid":1992,"remote_host":"::1","remote_port":50000,"error_severity":"FATAL","state_code":"28P01","message":"password authentication failed for user \"bob\"","detail":"Connection matched file \"/etc/pg_hba.conf\" line 6:\n\t\"host all all ::1/128 scram-sha-256\"","application_name":"psql","extra":{"nested":[1,2,3]}}"#;
        let items = decode_all(fatal);
        let r = record(&items[0]);
        assert_eq!(r.label, Label::Fatal);
        assert_eq!(r.sqlstate.as_deref(), Some("28P01"));
        assert_eq!(r.application_name.as_deref(), Some("psql"));
        assert_eq!(r.client_addr.as_deref(), Some("::1"));
        assert!(r.detail.as_deref().unwrap().contains("line 6:\n\t\"host"));
    }

    #[test]
    fn wrapper_is_stripped() {
        let input = format!("2026-11-28T14:55:06.123Z {REAL18}\r\n");
        let items = decode_all(&input);
        let r = record(&items[0]);
        assert_eq!(
            format_rfc3339_ms(r.ingest_time_ms.unwrap()),
            "2026-11-28T14:55:06.123Z"
        );
        assert_eq!(
            format_rfc3339_ms(r.time_ms.unwrap()),
            "2026-11-28T14:55:04.312Z"
        );
        assert!(looks_like_jsonlog(input.as_bytes()));
        assert!(looks_like_jsonlog(&input.as_bytes()[..80]));
    }

    #[test]
    fn garbage_is_bad_json_and_blank_lines_are_skipped() {
        let input = format!(
            "\n   \n{REAL18}\nnot json\n[1,2]\n{{\"timestamp\":\"never\",\"error_severity\":\"LOG\"}}\n{{\"timestamp\":\"2026-11-28 14:55:04.312 UTC\",\"error_severity\":\"LOUD\"}}\n{{\"timestamp\":\"2026-11-28 14:55:04.312 UTC\",\"error_severity\":\"LOG\",\"pid\":\"12\"}}\n{{\"user\":\"a\",\"user\":\"b\",\"timestamp\":\"2026-11-28 14:55:04.312 UTC\",\"error_severity\":\"LOG\"}}\n{REAL18} trailing\n{REAL18}"
        );
        let items = decode_all(&input);
        let lines: Vec<(u64, bool)> = items
            .iter()
            .map(|i| match i {
                Item::Record(r) => (r.line, true),
                Item::Unparsed { reason, line, .. } => {
                    assert_eq!(*reason, Unparsed::BadJson);
                    (*line, false)
                }
                Item::Suspect { .. } | Item::Quiet(_) => panic!(),
            })
            .collect();
        assert_eq!(
            lines,
            [
                (3, true),
                (4, false),
                (5, false),
                (6, false),
                (7, false),
                (8, false),
                (9, false),
                (10, false),
                (11, true)
            ]
        );
        assert!(matches!(&items[1], Item::Unparsed { text, .. } if text == "not json"));
        assert!(!looks_like_jsonlog(b"not json\n"));
        assert!(!looks_like_jsonlog(b""));
        assert!(!looks_like_jsonlog(
            b"2026-11-28 14:55:04.312 UTC [1] LOG:  x\n"
        ));
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let mut input = REAL18
            .replace("\"alice\",\"dbname\"", "\"al\u{1}ice\",\"dbname\"")
            .into_bytes();
        let at = input.iter().position(|&b| b == 1).unwrap();
        input[at] = 0xff;
        let mut items = Vec::new();
        decode(&input, 6, &mut |i| items.push(i));
        let r = record(&items[0]);
        assert!(r.invalid_utf8);
        assert_eq!(r.user.as_deref(), Some("al\u{fffd}ice"));
        assert_eq!(r.line, 7);

        let mut items = Vec::new();
        decode(b"\xff\xfe garbage", 0, &mut |i| items.push(i));
        assert!(matches!(
            &items[..],
            [Item::Unparsed {
                reason: Unparsed::BadJson,
                line: 1,
                ..
            }]
        ));
    }

    /// Every `*.json` log under `samples/` (real recordings) decodes with no
    /// unparsed line, and where the same server also wrote csvlog, both
    /// formats give the same records.
    #[test]
    fn real_samples_decode_cleanly_and_match_csvlog() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let Ok(specs) = crate::source::expand(&[samples]) else {
            return; // no samples in this checkout
        };
        for spec in specs {
            let crate::source::InputSpec::Path(path) = spec else {
                continue;
            };
            // samples/iam holds AWS exports (CloudTrail, IAM, EC2), not logs.
            if path.extension().is_none_or(|e| e != "json")
                || path.file_name().is_some_and(|n| n == "meta.json")
                || path.components().any(|c| c.as_os_str() == "iam")
            {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            assert!(looks_like_jsonlog(&bytes), "{}", path.display());
            let mut json = Vec::new();
            decode(&bytes, 0, &mut |item| match item {
                Item::Record(r) => json.push(into_owned(*r)),
                other => panic!("{}: {other:?}", path.display()),
            });
            assert!(!json.is_empty(), "{}", path.display());

            let Ok(csv_bytes) = std::fs::read(path.with_extension("csv")) else {
                continue;
            };
            let mut csv = Vec::new();
            super::super::csvlog::decode(&csv_bytes, 0, &mut |item| {
                if let Item::Record(r) = item {
                    csv.push(*r);
                }
            });
            // A file being written may end mid-record; compare the common part.
            let n = json.len().min(csv.len());
            assert!(
                n + 1 >= json.len().max(csv.len()),
                "{}: {} json vs {} csv",
                path.display(),
                json.len(),
                csv.len()
            );
            fn key(r: &Record<'_>) -> String {
                let names = (&r.user, &r.database, &r.client_addr, &r.application_name);
                let texts = (&r.sqlstate, &r.message, &r.detail, &r.hint);
                format!(
                    "{:?}",
                    (r.time_ms, r.pid, r.client_port, r.label, names, texts)
                )
            }
            // The collector writes each destination separately: records of
            // the same millisecond may come in another order. Compare the
            // records as multisets.
            let mut json_keys: Vec<String> = json[..n].iter().map(key).collect();
            let mut csv_keys: Vec<String> = csv[..n].iter().map(key).collect();
            json_keys.sort();
            csv_keys.sort();
            assert_eq!(json_keys, csv_keys, "{}", path.display());
        }
    }

    proptest::proptest! {
        /// Arbitrary lines (invalid UTF-8 included): no panic, one item per
        /// non-blank line, in order.
        #[test]
        fn never_panics_never_drops_a_line(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(REAL18.as_bytes().to_vec()),
                    proptest::strategy::Just(format!("2026-11-28T14:55:06.123Z {RECEIVED_LOCAL}").into_bytes()),
                    proptest::string::bytes_regex("[ \\t{}\":,a-z0-9\\\\\\xff\\r]{0,40}").unwrap(),
                ],
                0..12,
            ),
        ) {
            let input = lines.join(&b'\n');
            let mut seen = Vec::new();
            decode(&input, 0, &mut |item| {
                seen.push(match item {
                    Item::Record(r) => r.line,
                    Item::Unparsed { line, .. } => line,
                    Item::Suspect { head, .. } => head.line,
                    Item::Quiet(q) => q.line,
                })
            });
            let expected: Vec<u64> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
                .map(|(i, _)| i as u64 + 1)
                .collect();
            proptest::prop_assert_eq!(seen, expected);
            let _ = looks_like_jsonlog(&input);
        }
    }
}
