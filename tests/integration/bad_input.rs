//! Bad and unusual input, built by transforming the real logs in
//! `samples/`: compressed, truncated, wrapped as CloudWatch exports,
//! corrupted. pgtrail must report clearly, lose nothing it read, and never
//! panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

use crate::common::{parse_file, pgtrail, repo, str_field};

const RDS_LOG: &str = "samples/pg15/rds/postgresql.log";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgtrail-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

fn sample_bytes() -> Vec<u8> {
    std::fs::read(repo().join(RDS_LOG)).expect("sample")
}

/// Events without the fields that legitimately differ between two forms of
/// the same log (where it came from, when it was ingested, the server label).
fn comparable(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(map) = e.as_object_mut() {
                for key in ["source", "related_sources", "ingest_time", "server"] {
                    map.remove(key);
                }
            }
            e
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[test]
fn gzip_is_detected_by_content_and_gives_the_same_events() {
    let (_, plain, _) = parse_file(&repo().join(RDS_LOG));
    let path = scratch("no-extension");
    std::fs::write(&path, gzip(&sample_bytes())).expect("write");
    let (code, events, stderr) = parse_file(&path);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(comparable(&events), comparable(&plain));
}

#[test]
fn truncated_gzip_names_file_and_offset_and_keeps_what_was_read() {
    let compressed = gzip(&sample_bytes());
    let path = scratch("truncated.log.gz");
    std::fs::write(&path, &compressed[..compressed.len() * 2 / 3]).expect("write");
    let (code, events, stderr) = parse_file(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("truncated.log.gz"), "{stderr}");
    assert!(stderr.contains("compressed byte"), "{stderr}");
    assert!(
        !events.is_empty(),
        "events read before the error must still count"
    );
}

#[test]
fn cloudwatch_export_wrapper_is_stripped_and_kept_as_ingestion_time() {
    let (_, plain, _) = parse_file(&repo().join(RDS_LOG));
    let mut wrapped = Vec::new();
    for line in sample_bytes()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        wrapped.extend_from_slice(b"2026-11-28T16:30:00.123Z ");
        wrapped.extend_from_slice(line);
        wrapped.push(b'\n');
    }
    let path = scratch("export.log");
    std::fs::write(&path, wrapped).expect("write");
    let (code, events, stderr) = parse_file(&path);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(comparable(&events), comparable(&plain));
    assert!(
        events
            .iter()
            .all(|e| str_field(e, "ingest_time") == Some("2026-11-28T16:30:00.123Z"))
    );
}

#[test]
fn invalid_utf8_is_kept_lossily_and_flagged() {
    let text = String::from_utf8(sample_bytes()).expect("utf-8 sample");
    let bytes = text
        .replacen("user=app_md5", "user=app_\u{FFFD}", 1)
        .replacen('\u{FFFD}', "\u{1}", 1);
    let mut bytes = bytes.into_bytes();
    let at = bytes.iter().position(|&b| b == 1).expect("marker");
    bytes[at] = 0xff;
    let path = scratch("latin1.log");
    std::fs::write(&path, bytes).expect("write");
    let (code, events, stderr) = parse_file(&path);
    assert_eq!(code, 0, "{stderr}");
    let flagged: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("invalid_utf8") == Some(&Value::Bool(true)))
        .collect();
    assert_eq!(flagged.len(), 1, "{stderr}");
    assert!(str_field(flagged[0], "user").is_some_and(|u| u.contains('\u{FFFD}')));
    assert!(stderr.contains("invalid UTF-8 records: 1"), "{stderr}");
}

#[test]
fn over_long_lines_are_counted_and_skipped() {
    let mut bytes = sample_bytes();
    bytes.extend_from_slice(&vec![b'x'; 5000]);
    bytes.push(b'\n');
    let path = scratch("long.log");
    std::fs::write(&path, &bytes).expect("write");
    let (code, events, stderr) = pgtrail(&[
        "parse",
        "--max-line-bytes",
        "4096",
        path.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("too_long 1"), "{stderr}");
    let (_, plain, _) = parse_file(&repo().join(RDS_LOG));
    assert_eq!(events.len(), plain.len());
}

#[test]
fn unrecognised_input_exits_3_and_lists_what_was_tried() {
    let path = scratch("notes.txt");
    std::fs::write(&path, "shopping list\neggs\nmilk\n").expect("write");
    let (code, events, stderr) = parse_file(&path);
    assert_eq!(code, 3, "{stderr}");
    assert!(events.is_empty());
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert!(
        stderr.contains("rds") && stderr.contains("--prefix"),
        "{stderr}"
    );
}

#[test]
fn missing_input_exits_1_naming_it() {
    let (code, _, stderr) = pgtrail(&["parse", "/nonexistent/postgresql.log"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/postgresql.log"), "{stderr}");
}

#[test]
fn stdin_is_read_when_given_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(["parse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let bytes = sample_bytes();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let output = child.wait_with_output().expect("wait");
    writer.join().expect("join").expect("write stdin");
    assert_eq!(output.status.code(), Some(0));
    let lines = String::from_utf8_lossy(&output.stdout).lines().count();
    let (_, plain, _) = parse_file(&repo().join(RDS_LOG));
    assert_eq!(lines, plain.len());
}

#[test]
fn an_explicit_prefix_overrides_detection() {
    let (code, events, stderr) = pgtrail(&["parse", "--prefix", "%t:%r:%u@%d:[%p]:", RDS_LOG]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!events.is_empty());
    let (code, _, stderr) = pgtrail(&["parse", "--prefix", "%k", RDS_LOG]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("%k"), "{stderr}");
}

/// Corrupting real logs in many small ways must never panic, and every
/// input byte must be accounted for (records + unrecognised lines).
#[test]
fn mutated_samples_never_panic() {
    use pgtrail::message::Catalog;
    use pgtrail::pipeline::{self, ParseOptions};
    let catalog = Catalog::builtin();
    let samples: Vec<&Path> = vec![
        Path::new("samples/pg15/rds/postgresql.log"),
        Path::new("samples/pg15/rds/postgresql.csv"),
        Path::new("samples/pg15/rds/postgresql.json"),
        Path::new("samples/pg15/syslog/postgresql.log"),
        Path::new("samples/forging/pg15-debian/postgresql.log"),
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for sample in samples {
        let original = std::fs::read(repo().join(sample)).expect("sample");
        let options = ParseOptions::default();
        let Ok(detected) = pipeline::detect(&original, &options, catalog) else {
            panic!("{}: not detected", sample.display());
        };
        for _ in 0..200 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 8 {
                let at = (next() as usize) % bytes.len().max(1);
                match next() % 5 {
                    0 => bytes[at] = b'\n',
                    1 => bytes[at] = b'\t',
                    2 => bytes[at] = (next() & 0xff) as u8,
                    3 => bytes.truncate(at),
                    _ => bytes.insert(at, b'"'),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let _ = pipeline::detect(&bytes, &options, catalog);
            let parsed =
                pipeline::parse_bytes(&bytes, &detected, &options, catalog, "s".into(), "m".into());
            assert!(
                parsed.stats.records + parsed.stats.unparsed_total() > 0
                    || bytes.iter().all(u8::is_ascii_whitespace)
            );
        }
    }
}

/// A reader that went away is not an error: with stdout or stderr a pipe
/// whose reader is gone (`pgtrail … | head`, `2>&1 | head`), every command
/// stops quietly with exit code 0 instead of panicking or reporting an
/// output error.
#[test]
fn closed_stdout_or_stderr_is_not_a_failure() {
    for command in ["parse", "audit", "summary"] {
        for closed in ["stdout", "stderr"] {
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgtrail"));
            cmd.args([command, "samples/"]).current_dir(repo());
            if command == "audit" {
                cmd.args(["--format", "jsonl"]);
            }
            if closed == "stdout" {
                cmd.stdout(writer).stderr(Stdio::null());
            } else {
                cmd.stdout(Stdio::null()).stderr(writer);
            }
            let status = cmd.status().expect("run pgtrail");
            assert_eq!(status.code(), Some(0), "{command} with {closed} closed");
        }
    }
}
