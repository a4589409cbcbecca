//! `pgtrail audit` and `pgtrail summary` as users run them, on the real
//! samples: output formats, every filter, findings and their thresholds,
//! exit codes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::{pgtrail, repo, str_field};

const RDS: &str = "samples/pg15/rds/postgresql.log";

fn truth() -> Vec<Value> {
    std::fs::read_to_string(repo().join("samples/pg15/rds/ground-truth.jsonl"))
        .expect("truth")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn audit(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "-q", "--format", "jsonl"];
    all.extend_from_slice(args);
    let (code, sessions, stderr) = pgtrail(&all);
    assert_eq!(code, 0, "{stderr}");
    sessions
}

#[test]
fn audit_gives_one_record_per_attempt_with_evidence() {
    let sessions = audit(&[RDS]);
    assert_eq!(sessions.len(), truth().len());
    let ids: BTreeSet<&str> = sessions
        .iter()
        .filter_map(|s| str_field(s, "session_id"))
        .collect();
    assert_eq!(ids.len(), sessions.len(), "session ids must be unique");
    for s in &sessions {
        assert!(
            s["evidence"].as_array().is_some_and(|e| !e.is_empty()),
            "{s}"
        );
        assert!(matches!(
            str_field(s, "outcome"),
            Some("success" | "failure" | "abandoned")
        ));
        assert!(
            str_field(s, "start").is_some_and(|t| t.ends_with('Z')),
            "{s}"
        );
    }
    // Field names of the interface.
    let first = sessions[0].as_object().expect("object");
    for key in [
        "session_id",
        "server",
        "pid",
        "start",
        "end",
        "duration_ms",
        "outcome",
        "user",
        "database",
        "client_addr",
        "client_port",
        "auth_method",
        "end_reason",
        "evidence",
    ] {
        assert!(first.contains_key(key), "missing {key}: {}", sessions[0]);
    }
}

/// The same workload logged as stderr, csvlog and jsonlog gives the same
/// sessions (apart from where the evidence lives and what only structured
/// formats can verify).
#[test]
fn audit_is_the_same_in_every_format() {
    let strip = |sessions: Vec<Value>| -> Vec<Value> {
        sessions
            .into_iter()
            .map(|mut s| {
                let map = s.as_object_mut().expect("object");
                for key in [
                    "evidence",
                    "ssl_protocol",
                    "ssl_cipher",
                    "ssl_bits",
                    "ssl_unverified",
                    "start",
                    "end",
                ] {
                    map.remove(key);
                }
                s
            })
            .collect()
    };
    let stderr = strip(audit(&[RDS, "--server", "x"]));
    for other in [
        "samples/pg15/rds/postgresql.csv",
        "samples/pg15/rds/postgresql.json",
    ] {
        let sessions = strip(audit(&[other, "--server", "x"]));
        let ids = |v: &[Value]| {
            v.iter()
                .map(|s| s["session_id"].to_string())
                .collect::<Vec<_>>()
        };
        // Session ids carry the start time, whose precision differs (%t vs ms).
        let no_ids = |v: Vec<Value>| -> Vec<Value> {
            v.into_iter()
                .map(|mut s| {
                    s.as_object_mut().expect("object").remove("session_id");
                    s
                })
                .collect()
        };
        assert_eq!(ids(&stderr).len(), ids(&sessions).len(), "{other}");
        assert_eq!(no_ids(stderr.clone()), no_ids(sessions), "{other}");
    }
}

#[test]
fn filters_select_and_combine() {
    let t = truth();
    let by_user = |u: &str| {
        t.iter()
            .filter(|a| {
                str_field(a, "user") == Some(u) && str_field(a, "outcome") != Some("abandoned")
            })
            .count()
    };

    let sessions = audit(&[RDS, "--user", "iam_app"]);
    assert_eq!(sessions.len(), by_user("iam_app"));
    assert!(
        sessions
            .iter()
            .all(|s| str_field(s, "user") == Some("iam_app"))
    );

    let sessions = audit(&[RDS, "--user", "ghost_*"]);
    assert_eq!(sessions.len(), 3, "glob");

    let sessions = audit(&[RDS, "--outcome", "failure", "--failure-class", "pam"]);
    assert_eq!(sessions.len(), 4);
    assert!(
        sessions
            .iter()
            .all(|s| str_field(s, "auth_method") == Some("pam"))
    );

    let sessions = audit(&[RDS, "--client", "::1"]);
    let expected = t
        .iter()
        .filter(|a| str_field(a, "client") == Some("::1"))
        .count();
    assert_eq!(sessions.len(), expected);

    let sessions = audit(&[RDS, "--client", "127.0.0.0/8", "--client", "local"]);
    let expected = t
        .iter()
        .filter(|a| matches!(str_field(a, "client"), Some("127.0.0.1" | "[local]")))
        .count();
    assert_eq!(sessions.len(), expected);

    let sessions = audit(&[RDS, "--database", "md5db", "--outcome", "success"]);
    assert!(!sessions.is_empty());
    assert!(
        sessions
            .iter()
            .all(|s| str_field(s, "database") == Some("md5db")
                && str_field(s, "outcome") == Some("success"))
    );

    let sessions = audit(&[RDS, "--app", "pgtrail nightly report"]);
    assert_eq!(sessions.len(), 1);
}

/// A session that started before --since is still whole: filtering happens
/// after stitching.
#[test]
fn time_filters_keep_sessions_whole() {
    let all = audit(&[RDS]);
    let terminated = all
        .iter()
        .find(|s| str_field(s, "end_reason") == Some("terminated"))
        .expect("a terminated session in the sample");
    let start = str_field(terminated, "start").expect("start");
    let end = str_field(terminated, "end").expect("end");
    assert!(start < end, "the session spans time: {terminated}");
    let sessions = audit(&[RDS, "--since", end]);
    let found = sessions
        .iter()
        .find(|s| s["session_id"] == terminated["session_id"])
        .expect("a session active at --since is kept");
    assert_eq!(found, terminated, "and it is complete");
    assert!(sessions.len() < all.len());
    let before = audit(&[RDS, "--until", start]);
    assert!(
        before
            .iter()
            .all(|s| str_field(s, "start").is_some_and(|t| t <= start))
    );
    let (code, _, stderr) = pgtrail(&["audit", RDS, "--since", "yesterday-ish"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("yesterday-ish"), "{stderr}");
}

#[test]
fn csv_and_table_formats() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args([
            "audit",
            "-q",
            "--format",
            "csv",
            "--outcome",
            "failure",
            RDS,
        ])
        .current_dir(repo())
        .output()
        .expect("run");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    assert_eq!(&headers[0], "session_id");
    let rows = reader.records().count();
    let failures = truth()
        .iter()
        .filter(|a| str_field(a, "outcome") == Some("failure"))
        .count();
    assert_eq!(rows, failures);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(["audit", "-q", "--format", "table", "--color", "never", RDS])
        .current_dir(repo())
        .output()
        .expect("run");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(text.starts_with("START (UTC)"), "{text}");
    assert!(
        text.contains(&format!("{} sessions (", truth().len())),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour when --color never");
}

fn summary(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["summary", "-q", "--format", "json"];
    all.extend_from_slice(args);
    let (code, docs, stderr) = {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_pgtrail"))
            .args(&all)
            .current_dir(repo())
            .output()
            .expect("run");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stdout).expect("utf-8"),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let doc = serde_json::from_str(&docs).unwrap_or_else(|e| panic!("{e}: {docs} {stderr}"));
    (code, doc)
}

#[test]
fn summary_counts_attempts_exactly() {
    let (code, doc) = summary(&[RDS]);
    assert_eq!(code, 0);
    let t = truth();
    let count = |o: &str| {
        t.iter()
            .filter(|a| str_field(a, "outcome") == Some(o))
            .count() as u64
    };
    let totals = &doc["totals"];
    assert_eq!(totals["attempts"].as_u64(), Some(t.len() as u64));
    assert_eq!(totals["success"].as_u64(), Some(count("success")));
    assert_eq!(totals["failure"].as_u64(), Some(count("failure")));
    assert_eq!(totals["abandoned"].as_u64(), Some(count("abandoned")));
    // Failures per class equal the ground truth's.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for a in t
        .iter()
        .filter(|a| str_field(a, "outcome") == Some("failure"))
    {
        *expected
            .entry(str_field(a, "failure_class").unwrap_or("").to_string())
            .or_default() += 1;
    }
    let actual: BTreeMap<String, u64> = doc["by_failure_class"]
        .as_array()
        .expect("by_failure_class")
        .iter()
        .map(|r| {
            (
                str_field(r, "key").unwrap_or("").to_string(),
                r["failure"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(actual, expected);
    // Abandoned attempts per client.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for a in t
        .iter()
        .filter(|a| str_field(a, "outcome") == Some("abandoned"))
    {
        *expected
            .entry(str_field(a, "client").unwrap_or("").to_string())
            .or_default() += 1;
    }
    let actual: BTreeMap<String, u64> = doc["by_client"]
        .as_array()
        .expect("by_client")
        .iter()
        .filter(|r| r["abandoned"].as_u64().unwrap_or(0) > 0)
        .map(|r| {
            (
                str_field(r, "key").unwrap_or("").to_string(),
                r["abandoned"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(actual, expected);
}

fn kinds(doc: &Value) -> BTreeSet<String> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| str_field(f, "kind").map(str::to_owned))
        .collect()
}

#[test]
fn findings_fire_at_their_thresholds_on_real_failures() {
    // The sample has 4 PAM failures for iam_app within a second.
    let (_, doc) = summary(&[RDS, "--iam-failures", "4"]);
    assert!(kinds(&doc).contains("repeated_iam_failures"), "{doc}");
    let (_, doc) = summary(&[RDS, "--iam-failures", "5"]);
    assert!(!kinds(&doc).contains("repeated_iam_failures"));
    // 12 credential failures from 127.0.0.1 for 8 users within seconds.
    let (_, doc) = summary(&[RDS]);
    let k = kinds(&doc);
    assert!(
        k.contains("brute_force_client") && k.contains("password_spraying"),
        "{k:?}"
    );
    let spraying = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| str_field(f, "kind") == Some("password_spraying"))
        .expect("spraying");
    assert_eq!(str_field(spraying, "subject"), Some("127.0.0.1"));
    assert!(
        spraying["sessions"]
            .as_array()
            .is_some_and(|s| s.len() >= 5)
    );
    let (_, doc) = summary(&[
        RDS,
        "--spraying-users",
        "9",
        "--brute-force-client-failures",
        "13",
    ]);
    let k = kinds(&doc);
    assert!(
        !k.contains("password_spraying") && !k.contains("brute_force_client"),
        "{k:?}"
    );
}

#[test]
fn fail_on_findings_sets_exit_code_5() {
    let (code, _) = summary(&["--fail-on-findings", RDS]);
    assert_eq!(code, 5);
    let (code, _) = summary(&["--fail-on-findings=high", RDS, "--user", "iam_app"]);
    assert_eq!(code, 0, "only a low finding for iam_app");
    let (code, _) = summary(&[RDS]);
    assert_eq!(code, 0);
}

/// PostgreSQL with `log_destination = 'stderr,csvlog,jsonlog'` writes every
/// message three times; the bundled samples were recorded that way. Read
/// together, every session is reported three times, and pgtrail says so.
#[test]
fn one_log_written_to_several_destinations_is_named_on_stderr() {
    let dir = "samples/pg16/rds";
    let (code, sessions, stderr) = pgtrail(&["audit", "-q", "--format", "jsonl", dir]);
    assert_eq!(code, 0, "{stderr}");
    let (_, one, _) = pgtrail(&[
        "audit",
        "-q",
        "--format",
        "jsonl",
        "samples/pg16/rds/postgresql.csv",
    ]);
    assert_eq!(sessions.len(), 3 * one.len(), "nothing is dropped");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("pgtrail: warning: server pg16-rds:"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    for name in ["postgresql.csv", "postgresql.json", "postgresql.log"] {
        assert!(warning.contains(&format!("{dir}/{name}")), "{warning}");
    }
    assert!(warning.contains("reported 3 times"), "{warning}");

    // Each destination takes its own time stamp: in this sample one
    // connection is a second later in csvlog than in stderr, and the three
    // are still recognised.
    let (_, _, stderr) = pgtrail(&["audit", "-q", "samples/pg15/rds"]);
    assert!(
        stderr.contains(
            "samples/pg15/rds/postgresql.json and samples/pg15/rds/postgresql.log begin with"
        ),
        "{stderr}"
    );

    // Different logs of one server (here: two servers' logs under one
    // --server name) are not the same log.
    let (_, _, stderr) = pgtrail(&[
        "audit",
        "-q",
        "--server",
        "one",
        "samples/pg16/rds/postgresql.csv",
        "samples/pg17/rds/postgresql.csv",
    ]);
    assert!(!stderr.contains("warning: server"), "{stderr}");
    // One file alone: nothing to say.
    let (_, _, stderr) = pgtrail(&["audit", "-q", "samples/pg16/rds/postgresql.csv"]);
    assert!(!stderr.contains("warning"), "{stderr}");
}
