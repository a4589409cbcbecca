//! Data-driven checks over the real logs in `samples/`: every directory with
//! a `ground-truth.jsonl` (written by `samples/record.py` from what the
//! workload did, not from the log) must parse into exactly the events that
//! the ground truth implies, in every format recorded there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{parse_file, repo, str_field};

fn ground_truth_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut stack = vec![repo().join("samples")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "ground-truth.jsonl") {
                dirs.push(dir.clone());
            }
        }
    }
    dirs.sort();
    dirs
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// The log files of a sample directory: every file except the ground truth,
/// metadata and notes.
fn logs_in(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !matches!(name, "ground-truth.jsonl" | "meta.json" | "README.md")
                && !name.ends_with(".md")
        })
        .collect();
    logs.sort();
    logs
}

fn expected_kind_counts(truth: &[Value]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for attempt in truth {
        if let Some(events) = attempt.get("events").and_then(Value::as_object) {
            for (kind, n) in events {
                *counts.entry(kind.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
        }
    }
    counts.retain(|_, n| *n > 0);
    counts
}

type FailureKey = (String, String, String);

fn expected_failures(truth: &[Value]) -> BTreeMap<FailureKey, u64> {
    let mut out = BTreeMap::new();
    for attempt in truth
        .iter()
        .filter(|a| str_field(a, "outcome") == Some("failure"))
    {
        let key = (
            str_field(attempt, "user").unwrap_or("").to_string(),
            str_field(attempt, "failure_class")
                .unwrap_or("")
                .to_string(),
            str_field(attempt, "client").unwrap_or("").to_string(),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

/// Refusals: `auth_failed` events, and `protocol` events at FATAL (a
/// malformed or unsupported startup refused by the server).
fn actual_failures(events: &[Value]) -> BTreeMap<FailureKey, u64> {
    let mut out = BTreeMap::new();
    let refused = |e: &&Value| {
        str_field(e, "event") == Some("auth_failed")
            || (str_field(e, "event") == Some("protocol")
                && str_field(e, "severity") == Some("FATAL"))
    };
    for e in events.iter().filter(refused) {
        let key = (
            str_field(e, "user").unwrap_or("").to_string(),
            str_field(e, "failure_class").unwrap_or("").to_string(),
            str_field(e, "client_addr").unwrap_or("").to_string(),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

/// What a stderr/syslog log must show instead of a forged attempt's
/// `auth_failed`: one `suspect` event.
fn is_forged(attempt: &Value) -> bool {
    attempt
        .get("forged_lines")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty())
}

fn is_line_format(log: &Path) -> bool {
    !matches!(
        log.extension().and_then(|e| e.to_str()),
        Some("csv" | "json")
    )
}

/// Ground truth as a line-based (stderr/syslog) log shows it: forged
/// attempts' refusals become `suspect` events.
fn as_seen_in_lines(truth: &[Value]) -> Vec<Value> {
    truth
        .iter()
        .map(|attempt| {
            let mut attempt = attempt.clone();
            if is_forged(&attempt) {
                if let Some(events) = attempt.get_mut("events").and_then(Value::as_object_mut) {
                    events.remove("auth_failed");
                    events.insert("suspect".into(), Value::from(1));
                }
                attempt["outcome"] = Value::from("suspect");
            }
            attempt
        })
        .collect()
}

fn line_numbers(v: &Value, key: &str) -> Vec<u64> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// `path:line` → line.
fn source_line(source: &str) -> Option<u64> {
    source.rsplit(':').next()?.parse().ok()
}

/// Forging checks on one log of a `samples/forging/*` directory.
fn check_forging(
    name: &str,
    log: &Path,
    truth: &[Value],
    events: &[Value],
    failures: &mut Vec<String>,
) {
    for e in events {
        let forged = str_field(e, "user") == Some("admin")
            || str_field(e, "time").is_some_and(|t| t.starts_with("2030"))
            || str_field(e, "client_addr").is_some_and(|c| c.starts_with("10.0.0."));
        if forged {
            failures.push(format!("{name}: forged content became an event: {e}"));
        }
    }
    if is_line_format(log) {
        for attempt in truth.iter().filter(|a| is_forged(a)) {
            let mut lines = line_numbers(attempt, "forged_lines");
            lines.extend(line_numbers(attempt, "tainted_continuation_lines"));
            for e in events {
                let line = str_field(e, "source").and_then(source_line);
                if str_field(e, "event") != Some("suspect")
                    && line.is_some_and(|l| lines.contains(&l))
                {
                    failures.push(format!("{name}: a forged line became an event: {e}"));
                }
            }
            let covered = events
                .iter()
                .filter(|e| str_field(e, "event") == Some("suspect"))
                .any(|e| {
                    let related: Vec<u64> = e
                        .get("related_sources")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().and_then(source_line))
                                .collect()
                        })
                        .unwrap_or_default();
                    lines.iter().all(|l| related.contains(l))
                });
            if !covered {
                failures.push(format!(
                    "{name}: no suspect event covers forged lines {lines:?}"
                ));
            }
        }
    }
    // The application name that imitates the TLS suffix.
    for attempt in truth {
        let Some(pid) = attempt.get("backend_pid").and_then(Value::as_u64) else {
            continue;
        };
        let authorized: Vec<&Value> = events
            .iter()
            .filter(|e| {
                str_field(e, "event") == Some("authorized")
                    && e.get("pid").and_then(Value::as_u64) == Some(pid)
            })
            .collect();
        let [event] = authorized.as_slice() else {
            failures.push(format!(
                "{name}: expected one authorized event for pid {pid}"
            ));
            continue;
        };
        let real_tls = attempt.get("ssl") == Some(&Value::Bool(true));
        let unverified = event.get("ssl_unverified") == Some(&Value::Bool(true));
        if is_line_format(log) {
            if !unverified {
                failures.push(format!("{name}: pid {pid}: TLS fields after an application name must be unverified: {event}"));
            }
        } else {
            let has_tls = event.get("ssl_protocol").is_some();
            if unverified
                || has_tls != real_tls
                || str_field(event, "application_name") != str_field(attempt, "application_name")
            {
                failures.push(format!(
                    "{name}: pid {pid}: csv/json must settle TLS (real: {real_tls}): {event}"
                ));
            }
        }
    }
}

/// `key: expected → actual` for every key whose counts differ.
fn diff<K: Ord + std::fmt::Debug>(
    expected: &BTreeMap<K, u64>,
    actual: &BTreeMap<K, u64>,
) -> String {
    let keys: std::collections::BTreeSet<&K> = expected.keys().chain(actual.keys()).collect();
    keys.into_iter()
        .filter(|k| expected.get(k) != actual.get(k))
        .map(|k| {
            format!(
                "{k:?}: {} → {}",
                expected.get(k).unwrap_or(&0),
                actual.get(k).unwrap_or(&0)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn every_sample_matches_its_ground_truth() {
    let dirs = ground_truth_dirs();
    assert!(!dirs.is_empty(), "no samples/**/ground-truth.jsonl found");
    let mut failures = Vec::new();
    let mut checked = 0;
    for dir in &dirs {
        let truth = read_jsonl(&dir.join("ground-truth.jsonl"));
        let forging = dir.components().any(|c| c.as_os_str() == "forging");
        for log in logs_in(dir) {
            let seen = if is_line_format(&log) {
                as_seen_in_lines(&truth)
            } else {
                truth.clone()
            };
            let expected = expected_kind_counts(&seen);
            let expected_fail = expected_failures(&seen);
            checked += 1;
            let (code, events, stderr) = parse_file(&log);
            let name = log
                .strip_prefix(repo())
                .unwrap_or(&log)
                .display()
                .to_string();
            if code != 0 {
                failures.push(format!("{name}: exit {code}: {stderr}"));
                continue;
            }
            let mut actual: BTreeMap<String, u64> = BTreeMap::new();
            for e in &events {
                *actual
                    .entry(str_field(e, "event").unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            if actual != expected {
                failures.push(format!(
                    "{name}: events by kind: {}",
                    diff(&expected, &actual)
                ));
            }
            let actual_fail = actual_failures(&events);
            if actual_fail != expected_fail {
                failures.push(format!(
                    "{name}: failures by (user, class, client): {}",
                    diff(&expected_fail, &actual_fail)
                ));
            }
            for e in &events {
                if e.get("source").is_none() {
                    failures.push(format!("{name}: event without source: {e}"));
                }
            }
            if forging {
                check_forging(&name, &log, &truth, &events, &mut failures);
            }
        }
    }
    assert!(checked > 0, "sample directories had no logs");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Auto-detection picks the right preset for real lines written with each
/// preset's prefix (samples/prefixes, recorded by samples/record-prefixes.sh).
#[test]
fn detection_picks_each_preset_on_its_own_lines() {
    let dir = repo().join("samples/prefixes");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("samples/prefixes").flatten() {
        let path = entry.path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let (code, events, stderr) = parse_file(&path);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains(&format!("preset '{name}'")),
            "{name}: {stderr}"
        );
        // Every recorded attempt is visible: received, authorized and the
        // refused connection to a missing database, with a pid.
        for kind in ["received", "authorized", "disconnected", "auth_failed"] {
            assert!(
                events
                    .iter()
                    .any(|e| str_field(e, "event") == Some(kind) && e.get("pid").is_some()),
                "{name}: no {kind} event with a pid"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} preset samples");
}
