//! Sessions stitched from the real samples must equal the ground truth:
//! per (user, outcome, failure class, client) exactly, and abandoned
//! attempts per client. Plus the stitching edge cases on real lines: pid
//! reuse, a session spanning two hourly files, two servers with the same
//! pids.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgtrail::event::{Event, Name};
use pgtrail::message::Catalog;
use pgtrail::pipeline::{self, ParseOptions};
use pgtrail::session::{Outcome, Session, stitch};
use serde_json::Value;

use crate::common::{repo, str_field};

fn events_of(bytes: &[u8], server: &str, input: &str) -> Vec<Event> {
    let catalog = Catalog::builtin();
    let options = ParseOptions::default();
    let detected = pipeline::detect(bytes, &options, catalog).expect("detected");
    pipeline::parse_bytes(
        bytes,
        &detected,
        &options,
        catalog,
        Name::new(server),
        Name::new(input),
    )
    .events
}

fn sessions_of(path: &Path) -> Vec<Session> {
    let bytes = std::fs::read(path).expect("read");
    stitch(events_of(&bytes, "s", &path.display().to_string()))
}

type Key = (String, String, String, String);

fn key(user: Option<&str>, outcome: &str, class: Option<&str>, client: Option<&str>) -> Key {
    (
        user.unwrap_or("").to_string(),
        outcome.to_string(),
        class.unwrap_or("").to_string(),
        client.unwrap_or("").to_string(),
    )
}

fn truth_of(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("ground-truth.jsonl"))
        .expect("ground truth")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn count<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, u64> {
    let mut map = BTreeMap::new();
    for k in keys {
        *map.entry(k).or_default() += 1;
    }
    map
}

fn sample_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for version in std::fs::read_dir(repo().join("samples"))
        .expect("samples")
        .flatten()
    {
        if version.file_name() == "forging" || version.file_name() == "prefixes" {
            continue;
        }
        for dir in std::fs::read_dir(version.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if dir.path().join("ground-truth.jsonl").exists() {
                dirs.push(dir.path());
            }
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn sessions_match_the_ground_truth_in_every_sample() {
    let mut problems = Vec::new();
    let dirs = sample_dirs();
    assert!(dirs.len() >= 10, "{dirs:?}");
    for dir in dirs {
        let truth = truth_of(&dir);
        // An abandoned attempt's only record is `connection received`,
        // written before the startup packet names a user: the log cannot
        // say who it was.
        let expected = count(truth.iter().map(|a| {
            let abandoned = str_field(a, "outcome") == Some("abandoned");
            key(
                if abandoned {
                    None
                } else {
                    str_field(a, "user")
                },
                str_field(a, "outcome").unwrap_or(""),
                str_field(a, "failure_class"),
                str_field(a, "client"),
            )
        }));
        let expected_abandoned = count(
            truth
                .iter()
                .filter(|a| str_field(a, "outcome") == Some("abandoned"))
                .map(|a| str_field(a, "client").unwrap_or("").to_string()),
        );
        for log in std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.path())
        {
            let name = log.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.starts_with("postgresql") {
                continue;
            }
            let sessions = sessions_of(&log);
            let actual = count(sessions.iter().map(|s| {
                key(
                    s.user.as_deref(),
                    s.outcome.as_str(),
                    s.failure_class.map(|c| c.as_str()),
                    s.client_addr.as_deref(),
                )
            }));
            let actual_abandoned = count(
                sessions
                    .iter()
                    .filter(|s| s.outcome == Outcome::Abandoned)
                    .map(|s| s.client_addr.as_deref().unwrap_or("").to_string()),
            );
            let label = log
                .strip_prefix(repo())
                .unwrap_or(&log)
                .display()
                .to_string();
            if actual != expected {
                let keys: std::collections::BTreeSet<&Key> =
                    expected.keys().chain(actual.keys()).collect();
                let diff: Vec<String> = keys
                    .into_iter()
                    .filter(|k| expected.get(k) != actual.get(k))
                    .map(|k| {
                        format!(
                            "{k:?}: {} → {}",
                            expected.get(k).unwrap_or(&0),
                            actual.get(k).unwrap_or(&0)
                        )
                    })
                    .collect();
                problems.push(format!("{label}: {}", diff.join("; ")));
            }
            if actual_abandoned != expected_abandoned {
                problems.push(format!(
                    "{label}: abandoned per client {expected_abandoned:?} → {actual_abandoned:?}"
                ));
            }
            for s in &sessions {
                if s.evidence.is_empty() {
                    problems.push(format!(
                        "{label}: session without evidence: {}",
                        s.session_id
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The real lines of the first successful session of the RDS-prefix sample.
fn one_session_lines() -> Vec<String> {
    let path = repo().join("samples/pg15/rds/postgresql.log");
    let sessions = sessions_of(&path);
    let first = sessions
        .iter()
        .find(|s| s.outcome == Outcome::Success && s.evidence.len() == 4)
        .expect("a complete session");
    let text = std::fs::read_to_string(&path).expect("sample");
    let lines: Vec<&str> = text.lines().collect();
    first
        .evidence
        .iter()
        .map(|p| lines[p.line as usize - 1].to_string())
        .collect()
}

#[test]
fn pid_reuse_starts_a_new_attempt() {
    let lines = one_session_lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    // The same backend pid twice in a row, the first attempt cut after
    // `authorized` (no disconnection), the second complete.
    let mut text = lines[..3].join("\n");
    text.push('\n');
    text.push_str(&lines.join("\n"));
    text.push('\n');
    let sessions = stitch(events_of(text.as_bytes(), "s", "reuse.log"));
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    assert!(sessions.iter().all(|s| s.outcome == Outcome::Success));
    assert_eq!(sessions[0].end_reason.map(|r| r.as_str()), Some("open"));
    assert_eq!(sessions[1].end_reason.map(|r| r.as_str()), Some("client"));
    assert_ne!(sessions[0].session_id, sessions[1].session_id);
}

#[test]
fn a_session_spanning_two_hourly_files_in_any_order() {
    let lines = one_session_lines();
    let first = format!("{}\n", lines[..2].join("\n"));
    let second = format!("{}\n", lines[2..].join("\n"));
    // Given the later file first.
    let mut events = events_of(second.as_bytes(), "db1", "postgresql.log.2026-11-28-17");
    events.extend(events_of(
        first.as_bytes(),
        "db1",
        "postgresql.log.2026-11-28-16",
    ));
    let sessions = stitch(events);
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let s = &sessions[0];
    assert_eq!(s.outcome, Outcome::Success);
    assert_eq!(s.end_reason.map(|r| r.as_str()), Some("client"));
    assert_eq!(s.evidence.len(), 4);
    let inputs: std::collections::BTreeSet<&str> = s.evidence.iter().map(|p| &*p.input).collect();
    assert_eq!(inputs.len(), 2, "evidence must name both files");
}

#[test]
fn two_servers_with_the_same_pids_stay_apart() {
    let lines = one_session_lines();
    let text = format!("{}\n", lines.join("\n"));
    let mut events = events_of(text.as_bytes(), "db1", "a.log");
    events.extend(events_of(text.as_bytes(), "db2", "b.log"));
    let sessions = stitch(events);
    assert_eq!(sessions.len(), 2);
    let servers: Vec<&str> = sessions.iter().map(|s| &*s.server).collect();
    assert!(servers.contains(&"db1") && servers.contains(&"db2"));
    assert!(
        sessions
            .iter()
            .all(|s| s.outcome == Outcome::Success && s.evidence.len() == 4)
    );
}
