//! CloudWatch Logs data read offline, recognised by content:
//!
//! - subscription-filter payloads: gzip(JSON) with `messageType`
//!   `DATA_MESSAGE` (its `logEvents` are kept) or `CONTROL_MESSAGE` (a
//!   health check: counted, not emitted); raw, base64-encoded (one blob per
//!   line, as a Kinesis record's data), inside the Lambda envelope
//!   `{"awslogs":{"data":…}}`, the Firehose transform input
//!   `{"records":[{"data":…}]}` or a Lambda Kinesis event
//!   `{"Records":[{"kinesis":{"data":…}}]}`; several payloads (gzip members,
//!   JSON objects) concatenated without separators, as Firehose writes them
//!   to S3. The event `id` is a string in AWS and a number in moto.
//! - the JSON printed by `aws logs filter-log-events` (`events[]` with
//!   `logStreamName`, `eventId`, `ingestionTime`) and `aws logs
//!   get-log-events` (`events[]` without stream or id: the caller names the
//!   stream; provenance is the index in `events[]`).
//! - the RDS `iam-db-auth-error` log (see [`crate::iam_auth`]), plain or as
//!   an S3 export.
//!
//! S3 exports of PostgreSQL logs (`<ISO time> <message>` lines) need nothing
//! here: the stderr decoder strips that wrapper.

use std::fmt;
use std::io::Read;

use serde_json::Value;

use super::events::CwEvent;

/// What the first bytes of an input look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// JSON or base64 data of one of the CloudWatch shapes above.
    CloudWatchJson,
    /// Lines of the RDS `iam-db-auth-error` log.
    IamAuthErrors,
}

/// JSON keys that only CloudWatch shapes have (PostgreSQL's jsonlog has none).
const MARKERS: &[&str] = &[
    "\"messageType\"",
    "\"logEvents\"",
    "\"awslogs\"",
    "\"nextForwardToken\"",
    "\"searchedLogStreams\"",
    "\"recordId\"",
    "\"kinesis\"",
];

/// Recognises the CloudWatch shapes by their first bytes (decompressed).
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &head[start..head.len().min(start + 4096)];
    if head.starts_with(b"H4sI") {
        // base64 of the gzip magic and deflate method.
        return Some(Sniffed::CloudWatchJson);
    }
    if head.starts_with(b"{") {
        let text = String::from_utf8_lossy(head);
        if MARKERS.iter().any(|m| text.contains(m)) || events_array(&text) {
            return Some(Sniffed::CloudWatchJson);
        }
        return None;
    }
    if crate::iam_auth::looks_like(head) {
        return Some(Sniffed::IamAuthErrors);
    }
    None
}

/// `"events"` followed by `:` and `[`: the CLI output.
fn events_array(text: &str) -> bool {
    text.match_indices("\"events\"").any(|(at, key)| {
        let rest = text[at + key.len()..].trim_start();
        rest.strip_prefix(':')
            .is_some_and(|r| r.trim_start().starts_with('['))
    })
}

/// The events found in an offline CloudWatch input.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<CwEvent>,
    /// `DATA_MESSAGE` payloads read.
    pub data_messages: usize,
    /// `CONTROL_MESSAGE` payloads skipped.
    pub control_messages: usize,
    /// CLI outputs (`{"events":[…]}` documents) read.
    pub cli_documents: usize,
    /// Why decoding stopped early (what was decoded before still counts).
    pub error: Option<PayloadError>,
}

/// Why a payload could not be decoded (completely).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub message: String,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn fail(message: impl Into<String>) -> PayloadError {
    PayloadError {
        message: message.into(),
    }
}

/// Decodes an offline CloudWatch input. `default_stream` names the stream
/// of `get-log-events` output (which does not carry it).
pub fn decode(bytes: &[u8], default_stream: &str) -> Decoded {
    let mut out = Decoded::default();
    if let Err(e) = decode_into(bytes, default_stream, &mut out, 0) {
        out.error = Some(e);
    }
    out
}

/// Nesting bound (base64 inside JSON inside gzip …): no input can recurse forever.
const MAX_DEPTH: usize = 4;

fn decode_into(
    bytes: &[u8],
    default_stream: &str,
    out: &mut Decoded,
    depth: usize,
) -> Result<(), PayloadError> {
    if depth > MAX_DEPTH {
        return Err(fail("payload nested too deeply"));
    }
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Ok(());
    };
    let bytes = &bytes[start..];
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let data = gunzip(bytes)?;
        return decode_into(&data, default_stream, out, depth + 1);
    }
    if !bytes.starts_with(b"{") && !bytes.starts_with(b"[") {
        // base64 blobs, one per line.
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let data = base64_decode(line)
                .ok_or_else(|| fail(format!("line {}: neither JSON nor base64", n + 1)))?;
            decode_into(&data, default_stream, out, depth + 1)?;
        }
        return Ok(());
    }
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    loop {
        let offset = values.byte_offset();
        match values.next() {
            None => return Ok(()),
            Some(Ok(value)) => decode_value(&value, default_stream, out, depth)
                .map_err(|e| fail(format!("JSON value at byte {}: {e}", start + offset)))?,
            Some(Err(e)) => {
                return Err(fail(format!("bad JSON after byte {}: {e}", start + offset)));
            }
        }
    }
}

fn data_field(
    value: &Value,
    default_stream: &str,
    out: &mut Decoded,
    depth: usize,
) -> Result<(), PayloadError> {
    let data = value
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("record without a \"data\" string"))?;
    let raw = base64_decode(data.as_bytes()).ok_or_else(|| fail("\"data\" is not base64"))?;
    decode_into(&raw, default_stream, out, depth + 1)
}

fn decode_value(
    value: &Value,
    default_stream: &str,
    out: &mut Decoded,
    depth: usize,
) -> Result<(), PayloadError> {
    if let Some(array) = value.as_array() {
        for v in array {
            decode_value(v, default_stream, out, depth)?;
        }
        return Ok(());
    }
    if let Some(envelope) = value.get("awslogs") {
        return data_field(envelope, default_stream, out, depth);
    }
    if let Some(records) = value.get("records").and_then(Value::as_array) {
        for r in records {
            data_field(r, default_stream, out, depth)?;
        }
        return Ok(());
    }
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        for r in records {
            let kinesis = r
                .get("kinesis")
                .ok_or_else(|| fail("Records[] entry without \"kinesis\""))?;
            data_field(kinesis, default_stream, out, depth)?;
        }
        return Ok(());
    }
    if let Some(kind) = value.get("messageType").and_then(Value::as_str) {
        return match kind {
            "CONTROL_MESSAGE" => {
                out.control_messages += 1;
                Ok(())
            }
            "DATA_MESSAGE" => {
                out.data_messages += 1;
                let group = value.get("logGroup").and_then(Value::as_str);
                let stream = value
                    .get("logStream")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail("DATA_MESSAGE without logStream"))?;
                let events = value
                    .get("logEvents")
                    .and_then(Value::as_array)
                    .ok_or_else(|| fail("DATA_MESSAGE without logEvents"))?;
                for e in events {
                    let event = event_from(e, group, Some(stream), "id", out.events.len())?;
                    out.events.push(event);
                }
                Ok(())
            }
            other => Err(fail(format!("unknown messageType {other:?}"))),
        };
    }
    if let Some(events) = value.get("events").and_then(Value::as_array) {
        out.cli_documents += 1;
        for e in events {
            let stream = e
                .get("logStreamName")
                .and_then(Value::as_str)
                .unwrap_or(default_stream);
            let event = event_from(e, None, Some(stream), "eventId", out.events.len())?;
            out.events.push(event);
        }
        return Ok(());
    }
    Err(fail(
        "not a CloudWatch Logs shape (no messageType, awslogs, records or events)",
    ))
}

fn event_from(
    e: &Value,
    group: Option<&str>,
    stream: Option<&str>,
    id_key: &str,
    seq: usize,
) -> Result<CwEvent, PayloadError> {
    let timestamp_ms = e
        .get("timestamp")
        .and_then(Value::as_i64)
        .ok_or_else(|| fail("event without a numeric timestamp"))?;
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("event without a message string"))?;
    let event_id = match e.get(id_key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(CwEvent {
        group: group.filter(|g| !g.is_empty()).map(str::to_owned),
        stream: stream.unwrap_or_default().to_owned(),
        event_id,
        timestamp_ms,
        ingestion_ms: e.get("ingestionTime").and_then(Value::as_i64),
        message: message.to_owned(),
        seq: seq as u64,
    })
}

/// Every gzip member, decompressed.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut data = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut data)
        .map_err(|e| fail(format!("gzip data corrupt or truncated: {e}")))?;
    Ok(data)
}

/// Standard base64 (padding optional; whitespace not allowed inside).
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let text = text.trim_ascii();
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cloudwatch/fixtures/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).expect("fixture")
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b))
                << (8 * (3 - chunk.len()));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn aws_doc_data_message() {
        let bytes = fixture("subscription-data.json");
        assert_eq!(sniff(&bytes), Some(Sniffed::CloudWatchJson));
        let d = decode(&bytes, "x");
        assert!(d.error.is_none(), "{:?}", d.error);
        assert_eq!((d.data_messages, d.events.len()), (1, 1));
        let e = &d.events[0];
        assert_eq!(e.group.as_deref(), Some("CloudTrail/logs"));
        assert_eq!(e.stream, "111111111111_CloudTrail/logs_us-east-1");
        assert_eq!(
            e.event_id.as_deref(),
            Some("3195310660696698337880902507980421114328961542429EXAMPLE")
        );
        assert_eq!(e.timestamp_ms, 1_432_826_855_000);
        assert!(e.message.starts_with("{\"eventVersion\":\"1.03\""));
    }

    #[test]
    fn control_message_is_counted_not_emitted_also_gzipped_and_concatenated() {
        let control = fixture("subscription-control.json");
        let d = decode(&control, "x");
        assert_eq!((d.control_messages, d.events.len()), (1, 0));
        // Firehose to S3: gzip members back to back, no separator.
        let mut both = gz(&control);
        both.extend(gz(&fixture("subscription-data.json")));
        let d = decode(&both, "x");
        assert!(d.error.is_none(), "{:?}", d.error);
        assert_eq!(
            (d.control_messages, d.data_messages, d.events.len()),
            (1, 1, 1)
        );
        // JSON objects back to back (after the outer gunzip by `source`).
        let mut joined = control.clone();
        joined.extend(fixture("subscription-data.json"));
        let d = decode(&joined, "x");
        assert_eq!((d.control_messages, d.data_messages), (1, 1));
    }

    #[test]
    fn lambda_envelope_and_base64_lines() {
        let bytes = fixture("lambda-envelope.json");
        assert_eq!(sniff(&bytes), Some(Sniffed::CloudWatchJson));
        let d = decode(&bytes, "x");
        assert!(d.error.is_none(), "{:?}", d.error);
        let ids: Vec<&str> = d
            .events
            .iter()
            .filter_map(|e| e.event_id.as_deref())
            .collect();
        assert_eq!(ids, ["eventId1", "eventId2"]);
        assert_eq!(d.events[1].message, "[ERROR] Second test message");
        assert_eq!(d.events[0].group.as_deref(), Some("testLogGroup"));
        // Kinesis record data as base64 text, one per line.
        let data = gz(&fixture("subscription-data.json"));
        let text = format!(
            "{}\n{}\n",
            b64(&data),
            b64(&gz(&fixture("subscription-control.json")))
        );
        assert_eq!(sniff(text.as_bytes()), Some(Sniffed::CloudWatchJson));
        let d = decode(text.as_bytes(), "x");
        assert!(d.error.is_none(), "{:?}", d.error);
        assert_eq!((d.data_messages, d.control_messages), (1, 1));
        // Firehose transform input.
        let firehose = format!(
            "{{\"invocationId\":\"i\",\"records\":[{{\"recordId\":\"r1\",\"data\":\"{}\"}}]}}",
            b64(&data)
        );
        assert_eq!(decode(firehose.as_bytes(), "x").events.len(), 1);
    }

    #[test]
    fn cli_outputs() {
        let bytes = fixture("filter-log-events.json");
        assert_eq!(sniff(&bytes), Some(Sniffed::CloudWatchJson));
        let d = decode(&bytes, "x");
        assert_eq!(d.cli_documents, 1);
        let e = &d.events[1];
        assert_eq!(e.stream, "2024/05/09/[$LATEST]abc1024");
        assert_eq!(
            e.event_id.as_deref(),
            Some("00001544141707904000000130886135001961903807164184002560")
        );
        assert_eq!(e.ingestion_ms, Some(1_712_568_070_017));
        let bytes = fixture("get-log-events.json");
        assert_eq!(sniff(&bytes), Some(Sniffed::CloudWatchJson));
        let mut d = decode(&bytes, "mydb");
        assert_eq!(d.events.len(), 3);
        assert!(
            d.events
                .iter()
                .all(|e| e.stream == "mydb" && e.event_id.is_none())
        );
        // Identical events without ids are both kept.
        assert_eq!(
            crate::cloudwatch::events::order_and_dedupe(&mut d.events),
            0
        );
        assert_eq!(d.events.len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = sniff(&bytes);
            let _ = decode(&bytes, "s");
            let mut json = br#"{"messageType":"DATA_MESSAGE","logStream":"s","logEvents":["#.to_vec();
            json.extend_from_slice(&bytes);
            let _ = decode(&json, "s");
            let _ = decode(&gz(&bytes), "s");
            let text = String::from_utf8_lossy(&bytes);
            let _ = crate::iam_auth::parse_line(&text);
            let _ = crate::iam_auth::parse_line(&format!("2025-09-22T12:02:30,806 [ERROR] Failed to x the connection request for user {text}"));
        }
    }

    #[test]
    fn moto_numeric_ids_and_bad_input() {
        let moto = br#"{"logEvents":[{"id":12,"timestamp":1,"message":"subscribed event"}],"logGroup":"g","logStream":"s","messageType":"DATA_MESSAGE","owner":"123456789012","subscriptionFilters":["to-kinesis"]}"#;
        let d = decode(moto, "x");
        assert_eq!(d.events[0].event_id.as_deref(), Some("12"));
        // Truncated gzip, bad JSON, unknown shapes: errors, never a panic.
        let data = gz(moto);
        let d = decode(&data[..data.len() / 2], "x");
        assert!(d.error.unwrap().message.contains("gzip"));
        let d = decode(b"{\"messageType\":\"DATA_MESSAGE\",\"logStream\":", "x");
        assert!(d.error.unwrap().message.contains("bad JSON"));
        let d = decode(b"{\"events\":[{\"message\":\"no time\"}]}", "x");
        assert!(d.error.unwrap().message.contains("timestamp"));
        let d = decode(b"{\"foo\":1}", "x");
        assert!(d.error.is_some());
        assert!(decode(b"not base64 !!", "x").error.is_some());
        assert_eq!(
            sniff(b"{\"timestamp\":\"2026-11-28 14:00:00.000 UTC\",\"message\":\"x\"}"),
            None
        );
        assert_eq!(sniff(b"2026-11-28 16:22:42 UTC::@:[3847]:LOG:  x\n"), None);
        assert_eq!(base64_decode(b"aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode(b"aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64_decode(b"a"), None);
    }
}
