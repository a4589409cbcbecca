//! IAM correlation on `samples/iam` (a real PostgreSQL log recorded with
//! the AWS side made against moto, see its README): every scenario's known
//! answer, the findings, the output shapes, the errors, and the public real
//! CloudTrail records.

use std::collections::BTreeSet;
use std::process::Command;

use pgtrail::iam::cloudtrail::{CloudTrailIndex, SessionKind};
use serde_json::Value;

use crate::common::{pgtrail, repo, str_field};

const S: &str = "samples/iam";

fn iam_args() -> Vec<String> {
    [
        "--cloudtrail",
        "samples/iam/cloudtrail",
        "--iam-authorization",
        "samples/iam/aws/iam-authorization-app-account.json",
        "--iam-authorization",
        "samples/iam/aws/iam-authorization-security-account.json",
        "--ec2-inventory",
        "samples/iam/aws/ec2-describe-instances.json",
        "--ec2-inventory",
        "samples/iam/aws/ec2-describe-network-interfaces.json",
        "--aws-config",
        "samples/iam/aws-config.toml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(cmd: &str, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let mut args: Vec<String> = vec![cmd.into(), format!("{S}/postgresql.log"), "-q".into()];
    args.extend(iam_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    pgtrail(&refs)
}

fn ground_truth() -> Vec<Value> {
    std::fs::read_to_string(repo().join(S).join("iam-ground-truth.jsonl"))
        .expect("iam-ground-truth.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("ground truth line"))
        .collect()
}

/// Sessions in start order (the workload was serial, one attempt a second).
fn sessions(extra: &[&str]) -> Vec<Value> {
    let (code, mut out, stderr) = run(
        "audit",
        &["--format", "jsonl"]
            .iter()
            .chain(extra)
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{stderr}");
    out.sort_by_key(|s| str_field(s, "start").unwrap_or("").to_owned());
    out
}

#[test]
fn iam_every_scenario_gets_its_known_answer() {
    let truth = ground_truth();
    let out = sessions(&[]);
    assert_eq!(out.len(), truth.len());
    for (t, s) in truth.iter().zip(&out) {
        let scenario = str_field(t, "scenario").unwrap_or("?");
        assert_eq!(
            str_field(s, "client_addr"),
            str_field(t, "client"),
            "{scenario}"
        );
        assert_eq!(str_field(s, "user"), str_field(t, "user"), "{scenario}");
        assert_eq!(
            str_field(s, "outcome"),
            str_field(t, "outcome"),
            "{scenario}"
        );
        let iam = &s["iam"];
        assert_eq!(
            str_field(iam, "match"),
            str_field(t, "iam_match"),
            "{scenario}: {iam}"
        );
        if let Some(p) = str_field(t, "iam_principal") {
            assert_eq!(str_field(iam, "principal_arn"), Some(p), "{scenario}");
            assert_eq!(iam["candidates"], 1, "{scenario}");
        }
        if let Some(k) = str_field(t, "iam_access_key_id") {
            assert_eq!(str_field(iam, "access_key_id"), Some(k), "{scenario}");
        }
        if let Some(expected) = t.get("iam_candidates").and_then(Value::as_array) {
            let got: BTreeSet<&str> = iam["candidate_list"]
                .as_array()
                .expect("ambiguous lists its tied candidates")
                .iter()
                .filter_map(|c| str_field(c, "principal_arn"))
                .collect();
            let want: BTreeSet<&str> = expected.iter().filter_map(Value::as_str).collect();
            assert_eq!(got, want, "{scenario}");
            assert_eq!(iam["candidates"], 2, "{scenario}");
        }
        if str_field(t, "iam_match") == Some("none") {
            assert!(iam.get("principal_arn").is_none(), "{scenario}");
            assert!(str_field(iam, "reason").is_some(), "{scenario}");
        }
    }
}

#[test]
fn iam_evidence_and_chain_of_the_seed_scenarios() {
    let truth = ground_truth();
    let out = sessions(&["--explain"]);
    let by = |scenario: &str| {
        let i = truth
            .iter()
            .position(|t| str_field(t, "scenario") == Some(scenario))
            .expect("scenario");
        &out[i]["iam"]
    };
    // Same-account instance profile: address (instance and same key) and time.
    let app = by("app_instance_profile");
    let evidence: Vec<&str> = app["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(evidence, ["policy", "time", "instance_ip", "same_key_ip"]);
    let sources: Vec<&str> = app["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        sources
            .iter()
            .any(|s| s.contains("CloudTrail_us-east-1") && s.contains(".json.gz#")),
        "{sources:?}"
    );
    assert!(
        sources
            .iter()
            .any(|s| s.starts_with("samples/iam/aws/ec2-describe-instances.json#i-")),
        "{sources:?}"
    );
    assert!(
        sources
            .iter()
            .any(|s| s.starts_with("samples/iam/cloudtrail/lookup-events.json#")),
        "{sources:?}"
    );
    assert!(
        sources.iter().any(|s| s.contains("policy/pg-app-connect")),
        "{sources:?}"
    );
    assert_eq!(
        str_field(app, "role_arn"),
        Some("arn:aws:iam::123456789012:role/pg-app-role")
    );
    assert!(str_field(app, "expires_at").is_some_and(|t| t.ends_with('Z')));

    // Cross-account chain alice -> pg-mgmt-role -> pg-monitor-role.
    let mon = by("cross_account_monitor");
    assert_eq!(str_field(mon, "source_account"), Some("444455556666"));
    assert_eq!(str_field(mon, "source_identity"), Some("alice"));
    let chain: Vec<&str> = mon["chain"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        chain,
        [
            "arn:aws:iam::444455556666:user/alice",
            "arn:aws:sts::444455556666:assumed-role/pg-mgmt-role/alice-mgmt",
            "arn:aws:sts::123456789012:assumed-role/pg-monitor-role/alice-monitor",
        ]
    );
    let sources: Vec<&str> = mon["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        sources
            .iter()
            .any(|s| s.starts_with("samples/iam/cloudtrail/security-account.jsonl:")),
        "{sources:?}"
    );

    // The stolen-token case lists the contradicted candidate with --explain.
    let stolen = by("token_from_unknown_address");
    let list = stolen["candidate_list"].as_array().expect("explained");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["contradicted"], true);
    assert!(list[0]["evidence"].as_array().unwrap().iter().any(|e| {
        e.as_str()
            .is_some_and(|e| e.starts_with("address_mismatch"))
    }));
    assert_eq!(stolen["candidates"], 0);

    // Through the proxy: the interface is named, nobody is chosen.
    let proxy = by("shared_role_via_proxy");
    assert!(proxy["evidence"].as_array().unwrap().iter().any(|e| {
        e.as_str()
            .is_some_and(|e| e.starts_with("via_interface (eni-"))
    }));
}

/// `summary --format json` with the IAM inputs: (exit code, document).
fn summary_json(extra: &[&str]) -> (i32, Value) {
    let mut args: Vec<String> = vec![
        "summary".into(),
        format!("{S}/postgresql.log"),
        "-q".into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(iam_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(&args)
        .current_dir(repo())
        .output()
        .expect("run");
    let doc = serde_json::from_slice(&o.stdout).expect("summary JSON");
    (o.status.code().unwrap_or(-1), doc)
}

#[test]
fn iam_summary_findings() {
    let (code, doc) = summary_json(&[]);
    assert_eq!(code, 0);
    let findings = doc["findings"].as_array().expect("findings");
    let of = |kind: &str| -> Vec<&Value> {
        findings
            .iter()
            .filter(|f| str_field(f, "kind") == Some(kind))
            .collect()
    };
    let no_policy = of("iam_login_no_policy");
    assert_eq!(no_policy.len(), 1);
    assert_eq!(str_field(no_policy[0], "subject"), Some("iam_report"));
    assert_eq!(str_field(no_policy[0], "severity"), Some("medium"));
    let cross = of("iam_cross_account_login");
    assert_eq!(cross.len(), 1);
    assert_eq!(
        str_field(cross[0], "subject"),
        Some("arn:aws:sts::123456789012:assumed-role/pg-monitor-role/alice-monitor")
    );
    assert!(
        str_field(cross[0], "summary")
            .unwrap_or("")
            .contains("444455556666")
    );
    let unknown = of("iam_unknown_address");
    assert_eq!(unknown.len(), 1);
    assert_eq!(str_field(unknown[0], "subject"), Some("127.0.0.99"));
    assert_eq!(str_field(unknown[0], "severity"), Some("high"));
    // --fail-on-findings sees them.
    let (code, _) = summary_json(&["--fail-on-findings=high"]);
    assert_eq!(code, 5);
    // Without IAM inputs none of them exists.
    let o = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args([
            "summary",
            "samples/iam/postgresql.log",
            "-q",
            "--format",
            "json",
        ])
        .current_dir(repo())
        .output()
        .expect("run");
    let plain: Value = serde_json::from_slice(&o.stdout).expect("summary JSON");
    let kinds: Vec<&str> = plain["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| str_field(f, "kind"))
        .collect();
    assert!(kinds.iter().all(|k| !k.starts_with("iam_")), "{kinds:?}");
}

#[test]
fn iam_output_unchanged_without_inputs_and_only_adds_iam_with_them() {
    let (code, plain, _) = pgtrail(&[
        "audit",
        "samples/iam/postgresql.log",
        "-q",
        "--format",
        "jsonl",
    ]);
    assert_eq!(code, 0);
    assert!(plain.iter().all(|s| s.get("iam").is_none()));
    let (_, mut with, _) = run("audit", &["--format", "jsonl"]);
    assert_eq!(plain.len(), with.len());
    for (p, w) in plain.iter().zip(with.iter_mut()) {
        assert!(w.as_object_mut().and_then(|o| o.remove("iam")).is_some());
        assert_eq!(p, w);
    }
    // CSV: the IAM columns only with IAM inputs.
    let csv = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
            .args(args)
            .current_dir(repo())
            .output()
            .expect("run");
        String::from_utf8(o.stdout).expect("utf-8")
    };
    let plain_csv = csv(&[
        "audit",
        "samples/iam/postgresql.log",
        "-q",
        "--format",
        "csv",
    ]);
    assert!(!plain_csv.contains("iam_match"));
    let mut args = vec![
        "audit".to_owned(),
        "samples/iam/postgresql.log".into(),
        "-q".into(),
        "--format".into(),
        "csv".into(),
    ];
    args.extend(iam_args());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let iam_csv = csv(&refs);
    let mut reader = csv::Reader::from_reader(iam_csv.as_bytes());
    let header = reader.headers().expect("header").clone();
    let m = header
        .iter()
        .position(|h| h == "iam_match")
        .expect("iam_match column");
    let p = header
        .iter()
        .position(|h| h == "iam_principal_arn")
        .expect("column");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(&rows[0][m], "exact");
    assert!(rows[0][p].contains("assumed-role/pg-app-role/i-"));
}

/// Session tokens of the CloudTrail inputs never reach any output.
#[test]
fn iam_no_credentials_in_output() {
    let mut tokens = Vec::new();
    let text = std::fs::read_to_string(repo().join(S).join("cloudtrail/security-account.jsonl"))
        .expect("read");
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("json");
        tokens.push(
            v["responseElements"]["credentials"]["sessionToken"]
                .as_str()
                .expect("token")
                .to_owned(),
        );
    }
    assert!(!tokens.is_empty());
    for format in ["jsonl", "csv", "table"] {
        let mut args = vec![
            "audit".to_owned(),
            format!("{S}/postgresql.log"),
            "--format".into(),
            format.into(),
            "--explain".into(),
            "--correlate-all".into(),
        ];
        args.extend(iam_args());
        let o = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
            .args(&args)
            .current_dir(repo())
            .output()
            .expect("run");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            all.contains("alice-monitor"),
            "{format}: correlated output expected"
        );
        for t in &tokens {
            assert!(
                !all.contains(t.as_str()),
                "{format}: a session token leaked"
            );
        }
        assert!(!all.contains("sessionToken") && !all.contains("SecretAccessKey"));
    }
}

#[test]
fn iam_correlate_all_and_table_line() {
    let out = sessions(&["--correlate-all"]);
    let pw = out
        .iter()
        .find(|s| str_field(s, "user") == Some("app_scram"))
        .expect("password login");
    assert_eq!(str_field(&pw["iam"], "match"), Some("not_applicable"));
    let mut args = vec![
        "audit".to_owned(),
        format!("{S}/postgresql.log"),
        "-q".into(),
        "--format".into(),
        "table".into(),
    ];
    args.extend(iam_args());
    let o = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(&args)
        .current_dir(repo())
        .output()
        .expect("run");
    let table = String::from_utf8(o.stdout).expect("utf-8");
    assert!(table.contains("└ iam: exact arn:aws:sts::123456789012:assumed-role/pg-monitor-role/alice-monitor (policy, time, caller_ip)"), "{table}");
    assert!(table.contains("└ iam: ambiguous: 2 candidates"), "{table}");
    assert_eq!(table.matches("└ iam:").count(), 7, "{table}");
    assert!(!table.contains("candidate:"), "{table}");
    args.push("--explain".into());
    let o = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(&args)
        .current_dir(repo())
        .output()
        .expect("run");
    let table = String::from_utf8(o.stdout).expect("utf-8");
    assert!(
        table.contains("candidate: arn:aws:sts::123456789012:assumed-role/pg-app-role/i-")
            && table.contains("address_mismatch (instance i-"),
        "{table}"
    );
}

#[test]
fn iam_input_errors_name_the_file() {
    let log = format!("{S}/postgresql.log");
    // Missing file: exit 1, named; the logs are still read.
    let (code, out, stderr) = pgtrail(&[
        "audit",
        &log,
        "-q",
        "--format",
        "jsonl",
        "--cloudtrail",
        "no/such/trail.json",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no/such/trail.json"), "{stderr}");
    assert_eq!(out.len(), 8);
    // The wrong kind of export: exit 3, named.
    let (code, _, stderr) = pgtrail(&[
        "audit",
        &log,
        "-q",
        "--format",
        "jsonl",
        "--iam-authorization",
        "samples/iam/aws/ec2-describe-instances.json",
    ]);
    assert_eq!(code, 3);
    assert!(stderr.contains("samples/iam/aws/ec2-describe-instances.json: not `aws iam get-account-authorization-details`"), "{stderr}");
    let (code, _, stderr) = pgtrail(&[
        "audit",
        &log,
        "-q",
        "--format",
        "jsonl",
        "--cloudtrail",
        "samples/iam/aws-config.toml",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("samples/iam/aws-config.toml"), "{stderr}");
    let (code, _, stderr) = pgtrail(&[
        "audit",
        &log,
        "-q",
        "--format",
        "jsonl",
        "--aws-config",
        "samples/iam/postgresql.log",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("samples/iam/postgresql.log:"), "{stderr}");
    // A bad line in a CloudTrail file: a warning naming file and line, the rest is used.
    let dir = std::env::temp_dir().join(format!("pgtrail-iam-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let good = std::fs::read_to_string(repo().join(S).join("cloudtrail/security-account.jsonl"))
        .expect("read");
    let bad = dir.join("trail.jsonl");
    std::fs::write(&bad, format!("{{\"eventName\": broken\n{good}")).expect("write");
    let bad_path = bad.to_str().expect("utf-8");
    let (code, out, stderr) = pgtrail(&[
        "audit",
        &log,
        "--format",
        "jsonl",
        "--cloudtrail",
        bad_path,
        "--cloudtrail",
        "samples/iam/cloudtrail/AWSLogs",
        "--iam-authorization",
        "samples/iam/aws/iam-authorization-app-account.json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("{bad_path}:1: bad JSON")),
        "{stderr}"
    );
    assert!(out.iter().any(|s| {
        str_field(&s["iam"], "principal_arn").is_some_and(|p| p.ends_with("alice-monitor"))
    }));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The public real records (OTRF, AWS docs, Stratus Red Team) parse into
/// the sessions they describe.
#[test]
fn iam_public_cloudtrail_records() {
    let mut idx = CloudTrailIndex::new();
    idx.read_path(&repo().join(S).join("public"))
        .expect("public records");
    idx.finish();
    assert_eq!(idx.stats.events, 4);
    assert_eq!(idx.stats.bad_records, 0, "{:?}", idx.stats.errors);
    let by_key = |k: &str| idx.sessions.iter().find(|s| s.access_key_id == k).expect(k);
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .expect("time")
            .timestamp_millis()
    };

    let otrf = by_key("ASIA5FLZVX4OLY6BJN4L");
    assert_eq!(otrf.session_name.as_deref(), Some("i-044b1baf4c96e1b62"));
    assert_eq!(otrf.caller_ip.as_deref(), Some("ec2.amazonaws.com"));
    assert_eq!(otrf.invoked_by.as_deref(), Some("ec2.amazonaws.com"));
    assert_eq!(
        otrf.start_ms,
        ms("2020-09-14T00:50:17Z"),
        "@timestamp stands in for eventTime"
    );
    assert_eq!(otrf.expires_ms, ms("2020-09-14T07:01:26Z"));
    assert_eq!(
        otrf.principal_arn.as_deref(),
        Some(
            "arn:aws:sts::123456789123:assumed-role/MordorLogCollectorStack-LogCollectorRole-1JJTG88NNY4KN/i-044b1baf4c96e1b62"
        )
    );

    let cross = by_key("AKIAQRSTUVWXYZEXAMPLE");
    assert_eq!(cross.caller_account.as_deref(), Some("777788889999"));
    assert_eq!(cross.account.as_deref(), Some("111122223333"));
    assert_eq!(cross.source_identity.as_deref(), Some("JohnDoe"));
    assert_eq!(cross.expires_ms, ms("2014-07-18T16:07:39Z"));
    assert_eq!(
        cross.principal_arn.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/EC2-dev/JohnDoe-EC2-dev")
    );

    let chained = by_key("ASIAWHOJDLGPOEXAMPLE");
    assert_eq!(chained.caller_key.as_deref(), Some("AKIAI44QH8DHBEXAMPLE"));
    assert_eq!(chained.caller_type.as_deref(), Some("AssumedRole"));
    assert_eq!(chained.expires_ms, ms("2019-10-02T23:12:29Z"));
    assert_eq!(
        chained.parent, None,
        "the first session of the chain is not in the file"
    );

    let fed = by_key("ASIASTJKC5GCM7ZE6LUP");
    assert_eq!(fed.kind, SessionKind::GetFederationToken);
    assert_eq!(fed.session_name.as_deref(), Some("stratus_red_team"));
    assert_eq!(
        fed.principal_arn.as_deref(),
        Some("arn:aws:sts::742491224508:federated-user/stratus_red_team")
    );
    assert_eq!(
        fed.caller_arn.as_deref(),
        Some("arn:aws:iam::742491224508:user/stratus-red-team-user-federation-user")
    );
    assert_eq!(fed.expires_ms, ms("2024-11-30T20:43:17Z"));
    // The anonymised, invalid IP is kept as text, not taken as an address.
    assert_eq!(fed.caller_ip.as_deref(), Some("255.090.254.5"));
    assert!(
        idx.addresses
            .iter()
            .all(|a| a.to_string() != "255.90.254.5")
    );
}
