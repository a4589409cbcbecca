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

fn actual_failures(events: &[Value]) -> BTreeMap<FailureKey, u64> {
    let mut out = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| str_field(e, "event") == Some("auth_failed"))
    {
        let key = (
            str_field(e, "user").unwrap_or("").to_string(),
            str_field(e, "failure_class").unwrap_or("").to_string(),
            str_field(e, "client_addr").unwrap_or("").to_string(),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

#[test]
fn every_sample_matches_its_ground_truth() {
    let dirs = ground_truth_dirs();
    assert!(!dirs.is_empty(), "no samples/**/ground-truth.jsonl found");
    let mut failures = Vec::new();
    let mut checked = 0;
    for dir in &dirs {
        let truth = read_jsonl(&dir.join("ground-truth.jsonl"));
        let expected = expected_kind_counts(&truth);
        let expected_fail = expected_failures(&truth);
        for log in logs_in(dir) {
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
                    "{name}: events by kind\n  expected {expected:?}\n  actual   {actual:?}"
                ));
            }
            let actual_fail = actual_failures(&events);
            if actual_fail != expected_fail {
                failures.push(format!(
                    "{name}: failures by (user, class, client)\n  expected {expected_fail:?}\n  actual   {actual_fail:?}"
                ));
            }
            for e in &events {
                if e.get("source").is_none() {
                    failures.push(format!("{name}: event without source: {e}"));
                }
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
