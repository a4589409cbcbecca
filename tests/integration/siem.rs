//! `pgtrail audit --format ocsf|ecs|cef` checked against the schemas they
//! claim, on every bundled sample:
//!
//! - OCSF: a validator reading the compiled OCSF 1.8.0 schema from
//!   `../shared/schemas/ocsf/` (required attributes, unknown attributes,
//!   types, enums and their captions, `type_uid`, class constraints,
//!   profiles), shown to reject broken events.
//! - ECS: every emitted field against the extract in `tests/data/ecs/`.
//! - CEF: a parser honouring the escapes; hostile names round-trip and
//!   never add a field or a line.
//! - Golden files in `tests/golden/<format>/` (`PGTRAIL_BLESS=1` rewrites them).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::{Map, Value};

use pgtrail::cloud::{CloudContext, IamAttribution, IamCandidate, MatchKind};
use pgtrail::event::{Event, EventKind, FailureClass, Provenance};
use pgtrail::session::{Session, stitch};
use pgtrail::sink::{cef, ecs, ocsf};

use crate::common::repo;

// ---------------------------------------------------------------- running

/// Runs `pgtrail audit -q --format <format> <input>`; returns stdout.
fn audit(format: &str, input: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(["audit", "-q", "--format", format, input])
        .current_dir(repo())
        .output()
        .expect("run pgtrail");
    assert!(
        output.status.success(),
        "{format} {input}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

/// Every bundled PostgreSQL log: `samples/**/postgresql.{log,csv,json}`
/// and `samples/prefixes/*.log`, relative to the repository.
fn sample_logs() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let in_prefixes = path.parent().is_some_and(|p| p.ends_with("prefixes"));
                if matches!(
                    name,
                    "postgresql.log" | "postgresql.csv" | "postgresql.json"
                ) || (in_prefixes && name.ends_with(".log"))
                {
                    out.push(path);
                }
            }
        }
    }
    let root = repo();
    let mut found = Vec::new();
    walk(&root.join("samples"), &mut found);
    let mut logs: Vec<String> = found
        .iter()
        .filter_map(|p| p.strip_prefix(&root).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    logs.sort();
    assert!(logs.len() >= 20, "samples missing: {logs:?}");
    logs
}

/// The sessions `--format jsonl` gives for an input, and how many of
/// them must produce a logoff (successes that ended).
fn session_counts(input: &str) -> (usize, usize) {
    let sessions = json_lines(&audit("jsonl", input));
    let ended = sessions
        .iter()
        .filter(|s| s["outcome"] == "success" && s["end_reason"] != "open")
        .count();
    (sessions.len(), ended)
}

// ---------------------------------------------------------- hand-built sessions

const T0: i64 = 1_795_882_963_000;

fn event(kind: EventKind, pid: u32, time: i64, line: u64) -> Event {
    let mut e = Event::new(kind, pgtrail::name::Name::new("prod-db"));
    e.pid = Some(pid);
    e.time_ms = Some(time);
    e.source = Some(Provenance {
        input: pgtrail::name::Name::new("/aws/rds/instance/prod-db/postgresql"),
        line,
        event_id: Some(Arc::from(format!("3782{line:04}").as_str())),
    });
    e
}

/// An RDS IAM login (PAM) from 10.0.4.17 that disconnected, with the
/// cloud context and an exact IAM attribution set by hand.
fn iam_session(user: &str) -> Session {
    let mut r = event(EventKind::Received, 901, T0, 1);
    r.client_addr = Some("10.0.4.17".into());
    r.client_port = Some(40112);
    let mut az = event(EventKind::Authorized, 901, T0 + 40, 2);
    az.user = Some(user.into());
    az.database = Some("appdb".into());
    az.application_name = Some("psql".into());
    az.auth_method = Some("pam".into());
    let mut d = event(EventKind::Disconnected, 901, T0 + 9_000, 3);
    d.session_duration_ms = Some(8_960);
    let mut s = stitch(vec![r, az, d]).remove(0);
    s.cloud = Some(Arc::new(CloudContext {
        account_id: Some("111122223333".into()),
        region: Some("eu-west-1".into()),
        db_resource_id: Some("db-ABCDEFGHIJKL01234".into()),
        db_instance_id: Some("prod-db".into()),
        host: Some("prod-db.abc123.eu-west-1.rds.amazonaws.com".into()),
        port: Some(5432),
        log_group: Some("/aws/rds/instance/prod-db/postgresql".into()),
    }));
    let best = IamCandidate {
        principal_arn: "arn:aws:sts::111122223333:assumed-role/app-role/i-0abc123def4567890".into(),
        role_arn: Some("arn:aws:iam::111122223333:role/app-role".into()),
        session_name: Some("i-0abc123def4567890".into()),
        source_identity: None,
        source_account: None,
        access_key_id: Some("ASIAEXAMPLEKEY000001".into()),
        assumed_at_ms: Some(T0 - 600_000),
        expires_at_ms: Some(T0 + 3_000_000),
        evidence: vec!["policy".into(), "time".into(), "instance_ip".into()],
        sources: vec!["cloudtrail.json:12".into()],
        score: 90,
        ..IamCandidate::default()
    };
    s.iam = Some(Box::new(IamAttribution {
        kind: MatchKind::Exact,
        best: Some(best.clone()),
        candidate_count: 1,
        candidates: vec![best],
        reason: Some("one instance with this address assumed the role".into()),
        policy_principals: Some(1),
        address_known: Some(true),
        foreign_account: None,
    }));
    s
}

/// A refused password login over a Unix socket, by a hostile user name,
/// on a suspect process.
fn hostile_failure(user: &str, database: &str, app: &str) -> Session {
    let mut r = event(EventKind::Received, 902, T0, 10);
    r.client_addr = Some("[local]".into());
    let mut f = event(EventKind::AuthFailed, 902, T0 + 3, 11);
    f.user = Some(user.into());
    f.database = Some(database.into());
    f.application_name = Some(app.into());
    f.failure_class = Some(FailureClass::Password);
    f.message = format!("password authentication failed for user \"{user}\"");
    let s = event(EventKind::Suspect, 902, T0 + 1, 12);
    let mut sessions = stitch(vec![r, s, f]);
    assert_eq!(sessions.len(), 1);
    let mut session = sessions.remove(0);
    session.application_name = Some(app.into());
    session
}

fn write_with(write: fn(&mut Vec<u8>, &Session) -> std::io::Result<()>, s: &Session) -> String {
    let mut buf = Vec::new();
    write(&mut buf, s).expect("write to a Vec");
    String::from_utf8(buf).expect("utf-8")
}

// ------------------------------------------------------------------- OCSF

/// The compiled OCSF schema and a validator for Authentication events.
struct Ocsf {
    schema: Value,
}

impl Ocsf {
    fn load() -> Ocsf {
        let path = repo().join("../shared/schemas/ocsf/ocsf-1.8.0-compiled.json.gz");
        let file = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("the OCSF schema is required at {}: {e}", path.display()));
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .expect("gunzip the OCSF schema");
        let schema: Value = serde_json::from_str(&text).expect("OCSF schema JSON");
        assert_eq!(schema["version"], "1.8.0");
        Ocsf { schema }
    }

    fn class(&self) -> &Value {
        &self.schema["classes"]["authentication"]
    }

    /// Every problem with `event` (empty when valid).
    fn validate(&self, event: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(obj) = event.as_object() else {
            return vec!["event is not an object".into()];
        };
        let class = self.class();
        let declared: BTreeSet<String> = event["metadata"]["profiles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let class_profiles: BTreeSet<&str> = class["profiles"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for p in &declared {
            if !class_profiles.contains(p.as_str()) {
                errors.push(format!(
                    "metadata.profiles: {p} is not a profile of the class"
                ));
            }
        }
        if obj.get("class_uid") != Some(&class["uid"]) {
            errors.push(format!("class_uid {:?} is not 3002", obj.get("class_uid")));
        }
        match (
            obj.get("class_uid").and_then(Value::as_i64),
            obj.get("activity_id").and_then(Value::as_i64),
            obj.get("type_uid").and_then(Value::as_i64),
        ) {
            (Some(c), Some(a), Some(t)) if t == c * 100 + a => {}
            other => errors.push(format!(
                "type_uid is not class_uid*100+activity_id: {other:?}"
            )),
        }
        // A declared profile brings its attributes (the compiled class
        // lists some profiles' attributes, e.g. `cloud`'s, only there).
        let mut attributes = class["attributes"].clone();
        if let Some(merged) = attributes.as_object_mut() {
            for p in declared
                .iter()
                .filter(|p| class_profiles.contains(p.as_str()))
            {
                let extra = self.schema["profiles"][p.as_str()]["attributes"].as_object();
                for (name, a) in extra.into_iter().flatten() {
                    if !merged.contains_key(name) {
                        let mut a = a.clone();
                        a["profile"] = Value::String(p.clone());
                        merged.insert(name.clone(), a);
                    }
                }
            }
        }
        self.check_object(
            &attributes,
            &class["constraints"],
            obj,
            "",
            &declared,
            &mut errors,
        );
        errors
    }

    fn check_object(
        &self,
        attributes: &Value,
        constraints: &Value,
        obj: &Map<String, Value>,
        path: &str,
        profiles: &BTreeSet<String>,
        errors: &mut Vec<String>,
    ) {
        let Some(attributes) = attributes.as_object() else {
            errors.push(format!("{path}: no attribute list in the schema"));
            return;
        };
        let profile_of = |a: &Value| a["profile"].as_str().map(str::to_owned);
        for (name, a) in attributes {
            let applies = profile_of(a).is_none_or(|p| profiles.contains(&p));
            if a["requirement"] == "required" && applies && !obj.contains_key(name) {
                errors.push(format!("{path}{name}: required attribute missing"));
            }
        }
        for (key, value) in obj {
            let at = format!("{path}{key}");
            let Some(a) = attributes.get(key) else {
                errors.push(format!("{at}: unknown attribute"));
                continue;
            };
            if !a["@deprecated"].is_null() {
                errors.push(format!("{at}: deprecated attribute"));
            }
            if let Some(p) = profile_of(a)
                && !profiles.contains(&p)
            {
                errors.push(format!("{at}: belongs to profile {p}, not declared"));
            }
            let is_array = a["is_array"].as_bool().unwrap_or(false);
            let type_name = a["type"].as_str().unwrap_or("");
            match (is_array, value) {
                (true, Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check_value(type_name, item, &format!("{at}[{i}]"), profiles, errors);
                    }
                }
                (true, _) => errors.push(format!("{at}: must be an array")),
                (false, Value::Array(_)) => errors.push(format!("{at}: must not be an array")),
                (false, _) => self.check_value(type_name, value, &at, profiles, errors),
            }
            if let Some(values) = a["enum"].as_object() {
                self.check_enum(obj, a, values, value, &at, errors);
            }
        }
        for (kind, names) in constraints.as_object().into_iter().flatten() {
            let present = names
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|n| obj.contains_key(*n))
                .count();
            let ok = match kind.as_str() {
                "at_least_one" => present >= 1,
                "just_one" => present == 1,
                _ => {
                    errors.push(format!("{path}: unknown constraint {kind}"));
                    true
                }
            };
            if !ok {
                errors.push(format!("{path}: constraint {kind} {names} not met"));
            }
        }
    }

    /// An enum value is one of the listed ids, and its sibling caption
    /// attribute (e.g. `status` for `status_id`) is the id's caption —
    /// or, for 99 (Other), the source's own label.
    fn check_enum(
        &self,
        obj: &Map<String, Value>,
        a: &Value,
        values: &Map<String, Value>,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let key = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => {
                errors.push(format!(
                    "{at}: enum value {other} is not a number or string"
                ));
                return;
            }
        };
        let Some(entry) = values.get(&key) else {
            errors.push(format!("{at}: {key} is not an allowed value"));
            return;
        };
        let Some(sibling) = a["sibling"].as_str() else {
            return;
        };
        let caption = entry["caption"].as_str().unwrap_or("");
        match obj.get(sibling).and_then(Value::as_str) {
            None if key == "99" => errors.push(format!("{at}: 99 (Other) without {sibling}")),
            None => {}
            Some("") if key == "99" => {
                errors.push(format!("{at}: 99 (Other) with an empty {sibling}"));
            }
            Some(_) if key == "99" => {}
            Some(label) if label != caption => {
                errors.push(format!(
                    "{at}: {key} is {caption:?} but {sibling} says {label:?}"
                ));
            }
            Some(_) => {}
        }
    }

    fn check_value(
        &self,
        type_name: &str,
        value: &Value,
        at: &str,
        profiles: &BTreeSet<String>,
        errors: &mut Vec<String>,
    ) {
        let types = &self.schema["types"];
        let ok = match type_name {
            "string_t" => value.is_string(),
            "integer_t" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            "long_t" => value.is_i64() || value.is_u64(),
            "float_t" => value.is_number(),
            "boolean_t" => value.is_boolean(),
            "json_t" => true,
            "object" => value.is_object(),
            _ if types.get(type_name).is_some() => {
                let t = &types[type_name];
                let base = t["type"].as_str().unwrap_or(type_name);
                if base == type_name {
                    errors.push(format!("{at}: type {type_name} has no base type"));
                    return;
                }
                self.check_value(base, value, at, profiles, errors);
                if let (Some(range), Some(n)) = (t["range"].as_array(), value.as_i64()) {
                    let (lo, hi) = (range[0].as_i64(), range[1].as_i64());
                    if lo.is_some_and(|lo| n < lo) || hi.is_some_and(|hi| n > hi) {
                        errors.push(format!("{at}: {n} outside {type_name} range"));
                    }
                }
                if let (Some(max), Some(s)) = (t["max_len"].as_u64(), value.as_str())
                    && s.len() as u64 > max
                {
                    errors.push(format!("{at}: longer than {max}"));
                }
                if type_name == "ip_t"
                    && value.as_str().is_some_and(|s| s.parse::<IpAddr>().is_err())
                {
                    errors.push(format!("{at}: {value} is not an IP address"));
                }
                return;
            }
            _ => match self.schema["objects"].get(type_name) {
                Some(object) => {
                    match value.as_object() {
                        Some(inner) => self.check_object(
                            &object["attributes"],
                            &object["constraints"],
                            inner,
                            &format!("{at}."),
                            profiles,
                            errors,
                        ),
                        None => errors.push(format!("{at}: must be a {type_name} object")),
                    }
                    return;
                }
                None => {
                    errors.push(format!("{at}: unknown type {type_name}"));
                    return;
                }
            },
        };
        if !ok {
            errors.push(format!("{at}: {value} is not a {type_name}"));
        }
    }
}

fn assert_valid(ocsf: &Ocsf, event: &Value, context: &str) {
    let errors = ocsf.validate(event);
    assert!(errors.is_empty(), "{context}: {errors:#?}\n{event}");
}

#[test]
fn ocsf_events_of_every_sample_validate_against_the_schema() {
    let schema = Ocsf::load();
    let mut figures = Vec::new();
    let mut total = 0;
    for input in sample_logs() {
        let events = json_lines(&audit("ocsf", &input));
        for e in &events {
            assert_valid(&schema, e, &input);
        }
        let (sessions, ended) = session_counts(&input);
        let logons = events.iter().filter(|e| e["activity_id"] == 1).count();
        let logoffs = events.iter().filter(|e| e["activity_id"] == 2).count();
        assert_eq!(logons, sessions, "{input}: one logon per attempt");
        assert_eq!(logoffs, ended, "{input}: one logoff per ended session");
        assert_eq!(logons + logoffs, events.len(), "{input}");
        assert!(logons > 0, "{input}: no events");
        // Every failure says why.
        for e in events.iter().filter(|e| e["status_id"] == 2) {
            assert!(
                e["status_detail"].is_string() && e["status_code"].is_string(),
                "{e}"
            );
        }
        total += events.len();
        figures.push(format!("{input}: {logons} logon + {logoffs} logoff"));
    }
    eprintln!("OCSF events validated: {total}\n{}", figures.join("\n"));
}

#[test]
fn ocsf_cloud_profile_and_iam_actor_validate() {
    let schema = Ocsf::load();
    let text = write_with(ocsf::write_session, &iam_session("iam_app"));
    let events = json_lines(&text);
    assert_eq!(events.len(), 2, "logon and logoff");
    for e in &events {
        assert_valid(&schema, e, "iam session");
        assert_eq!(
            e["metadata"]["profiles"],
            serde_json::json!(["cloud", "host"])
        );
        assert_eq!(e["cloud"]["provider"], "AWS");
        assert_eq!(e["cloud"]["region"], "eu-west-1");
        assert_eq!(e["cloud"]["account"]["uid"], "111122223333");
        assert_eq!(
            e["actor"]["user"]["uid"],
            "arn:aws:sts::111122223333:assumed-role/app-role/i-0abc123def4567890"
        );
        assert_eq!(e["actor"]["user"]["type"], "AssumedRole");
        assert_eq!(
            e["actor"]["session"]["issuer"],
            "arn:aws:iam::111122223333:role/app-role"
        );
        assert_eq!(
            e["actor"]["session"]["credential_uid"],
            "ASIAEXAMPLEKEY000001"
        );
        assert_eq!(e["service"]["uid"], "db-ABCDEFGHIJKL01234");
        assert_eq!(
            e["dst_endpoint"]["hostname"],
            "prod-db.abc123.eu-west-1.rds.amazonaws.com"
        );
        assert_eq!(e["dst_endpoint"]["port"], 5432);
        assert_eq!(e["auth_protocol"], "IAM database authentication (PAM)");
        assert_eq!(e["auth_protocol_id"], 99);
        assert_eq!(e["is_remote"], true);
        assert_eq!(e["logon_type_id"], 3);
        assert_eq!(
            e["metadata"]["log_name"],
            "/aws/rds/instance/prod-db/postgresql"
        );
        assert_eq!(e["unmapped"]["iam_match"], "exact");
    }
    assert_eq!(events[0]["metadata"]["original_event_uid"], "37820001");
    assert_eq!(events[1]["metadata"]["original_event_uid"], "37820003");
    assert_eq!(events[1]["duration"], 8_960);
    // Ambiguous attribution: no actor, no host profile.
    let mut s = iam_session("iam_app");
    if let Some(iam) = s.iam.as_deref_mut() {
        iam.kind = MatchKind::Ambiguous;
        iam.best = None;
        iam.candidate_count = 2;
    }
    for e in json_lines(&write_with(ocsf::write_session, &s)) {
        assert_valid(&schema, &e, "ambiguous");
        assert!(e.get("actor").is_none(), "{e}");
        assert_eq!(e["metadata"]["profiles"], serde_json::json!(["cloud"]));
        assert_eq!(e["unmapped"]["iam_candidate_count"], 2);
    }
}

#[test]
fn ocsf_carries_hostile_names_exactly_and_flags_suspects() {
    let schema = Ocsf::load();
    let user = "eve\"|x=1\\\n2030-01-01 00:00:00 UTC:10.0.0.1(5555):admin@postgres:[1]:LOG:  connection authorized";
    let s = hostile_failure(user, "db=\r\nx", "app|1");
    let events = json_lines(&write_with(ocsf::write_session, &s));
    assert_eq!(events.len(), 1, "a refusal is one logon");
    let e = &events[0];
    assert_valid(&schema, e, "hostile");
    assert_eq!(e["user"]["name"], user);
    assert_eq!(e["unmapped"]["database"], "db=\r\nx");
    assert_eq!(e["status_id"], 2);
    assert_eq!(e["status_code"], "password");
    assert_eq!(e["severity_id"], 3, "suspect raises the severity");
    assert_eq!(e["is_alert"], true);
    assert_eq!(e["unmapped"]["suspect"], true);
    assert_eq!(
        e["metadata"]["profiles"],
        serde_json::json!(["security_control"])
    );
    // A Unix-socket client has no IP.
    assert_eq!(e["src_endpoint"], serde_json::json!({"name": "[local]"}));
    assert_eq!(e["is_remote"], false);
    assert_eq!(e["logon_type_id"], 99);
}

#[test]
fn ocsf_validator_rejects_broken_events() {
    let schema = Ocsf::load();
    let good = json_lines(&write_with(ocsf::write_session, &iam_session("iam_app"))).remove(0);
    assert_valid(&schema, &good, "baseline");
    type Breakage = (&'static str, fn(&mut Value));
    let breakages: [Breakage; 16] = [
        ("missing time", |e| {
            e.as_object_mut().map(|o| o.remove("time"));
        }),
        ("missing user", |e| {
            e.as_object_mut().map(|o| o.remove("user"));
        }),
        ("missing metadata.version", |e| {
            e["metadata"].as_object_mut().map(|o| o.remove("version"));
        }),
        ("wrong type_uid", |e| e["type_uid"] = 300202.into()),
        ("unknown status_id", |e| e["status_id"] = 7.into()),
        ("caption disagrees", |e| e["severity"] = "High".into()),
        ("unknown attribute", |e| e["database"] = "appdb".into()),
        ("unknown nested attribute", |e| {
            e["user"]["database"] = "x".into()
        }),
        ("string for integer", |e| e["severity_id"] = "1".into()),
        ("bad ip", |e| e["src_endpoint"]["ip"] = "10.0.0.300".into()),
        ("port out of range", |e| {
            e["src_endpoint"]["port"] = 70000.into()
        }),
        ("neither service nor dst_endpoint", |e| {
            let o = e.as_object_mut().expect("object");
            o.remove("service");
            o.remove("dst_endpoint");
        }),
        ("cloud without its profile", |e| {
            e["metadata"]["profiles"] = serde_json::json!(["host"])
        }),
        ("actor without the host profile", |e| {
            e["metadata"]["profiles"] = serde_json::json!(["cloud"])
        }),
        ("user without name or uid", |e| {
            e["user"] = serde_json::json!({"type_id": 1, "type": "User"})
        }),
        ("scalar for an array", |e| {
            e["metadata"]["profiles"] = "cloud".into()
        }),
    ];
    for (what, break_it) in breakages {
        let mut bad = good.clone();
        break_it(&mut bad);
        assert!(
            !schema.validate(&bad).is_empty(),
            "validator accepted: {what}\n{bad}"
        );
    }
    // A cloud profile requires `cloud` once declared.
    let mut bad = good.clone();
    bad.as_object_mut().map(|o| o.remove("cloud"));
    assert!(schema.validate(&bad).iter().any(|e| e.contains("cloud")));
}

// -------------------------------------------------------------------- ECS

struct EcsFields {
    types: BTreeMap<String, (String, bool)>,
    allowed: BTreeMap<String, BTreeSet<String>>,
    authentication_types: BTreeSet<String>,
}

impl EcsFields {
    fn load() -> EcsFields {
        let text = std::fs::read_to_string(repo().join("tests/data/ecs/fields.json"))
            .expect("tests/data/ecs/fields.json");
        let v: Value = serde_json::from_str(&text).expect("ECS extract JSON");
        let strings = |v: &Value| -> BTreeSet<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        EcsFields {
            types: v["fields"]
                .as_object()
                .expect("fields")
                .iter()
                .map(|(k, f)| {
                    let ty = f["type"].as_str().expect("type").to_owned();
                    (k.clone(), (ty, f["array"].as_bool().unwrap_or(false)))
                })
                .collect(),
            allowed: v["allowed_values"]
                .as_object()
                .expect("allowed_values")
                .iter()
                .map(|(k, vs)| (k.clone(), strings(vs)))
                .collect(),
            authentication_types: strings(&v["expected_event_types"]["authentication"]),
        }
    }

    /// Every problem with one document (empty when valid).
    fn validate(&self, doc: &Value) -> Vec<String> {
        let mut leaves = Vec::new();
        flatten("", doc, &mut leaves);
        let mut errors = Vec::new();
        for (name, value) in &leaves {
            if name.starts_with("pgtrail.") {
                continue;
            }
            let Some((ty, is_array)) = self.types.get(name) else {
                errors.push(format!("{name}: not an ECS field of the extract"));
                continue;
            };
            let items: Vec<&Value> = match value {
                Value::Array(items) => {
                    if !is_array {
                        errors.push(format!("{name}: array for a scalar field"));
                    }
                    items.iter().collect()
                }
                v => vec![v],
            };
            for item in items {
                let ok = match ty.as_str() {
                    "keyword" | "match_only_text" | "constant_keyword" | "wildcard" => {
                        item.is_string()
                    }
                    "long" => item.is_i64() || item.is_u64(),
                    "float" | "scaled_float" => item.is_number(),
                    "boolean" => item.is_boolean(),
                    "ip" => item.as_str().is_some_and(|s| s.parse::<IpAddr>().is_ok()),
                    "date" => item
                        .as_str()
                        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
                    other => {
                        errors.push(format!("{name}: type {other} not handled"));
                        true
                    }
                };
                if !ok {
                    errors.push(format!("{name}: {item} is not a {ty}"));
                }
                if let Some(allowed) = self.allowed.get(name)
                    && !item.as_str().is_some_and(|s| allowed.contains(s))
                {
                    errors.push(format!("{name}: {item} is not an allowed value"));
                }
            }
        }
        let category = &doc["event"]["category"];
        if category
            .as_array()
            .is_some_and(|c| c.iter().any(|v| v == "authentication"))
        {
            for t in doc["event"]["type"].as_array().into_iter().flatten() {
                if !t
                    .as_str()
                    .is_some_and(|t| self.authentication_types.contains(t))
                {
                    errors.push(format!("event.type {t} is not expected for authentication"));
                }
            }
        }
        errors
    }
}

/// Dotted names of the leaves (arrays are leaves) of a JSON document.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

#[test]
fn ecs_documents_of_every_sample_use_known_fields() {
    let fields = EcsFields::load();
    let mut total = 0;
    for input in sample_logs() {
        let docs = json_lines(&audit("ecs", &input));
        let (sessions, ended) = session_counts(&input);
        assert_eq!(docs.len(), sessions + ended, "{input}");
        for d in &docs {
            let errors = fields.validate(d);
            assert!(errors.is_empty(), "{input}: {errors:#?}\n{d}");
            assert_eq!(d["ecs"]["version"], "8.12.0");
            assert_eq!(d["event"]["kind"], "event");
        }
        total += docs.len();
    }
    eprintln!("ECS documents validated: {total}");
}

#[test]
fn ecs_iam_and_hostile_documents_validate() {
    let fields = EcsFields::load();
    let docs = json_lines(&write_with(ecs::write_session, &iam_session("iam_app")));
    assert_eq!(docs.len(), 2);
    for d in &docs {
        assert!(fields.validate(d).is_empty(), "{:#?}", fields.validate(d));
        assert_eq!(d["cloud"]["provider"], "aws");
        assert_eq!(d["cloud"]["account"]["id"], "111122223333");
        assert_eq!(d["cloud"]["service"]["name"], "rds");
        assert_eq!(d["destination"]["port"], 5432);
        assert_eq!(
            d["pgtrail"]["iam"]["principal_arn"],
            "arn:aws:sts::111122223333:assumed-role/app-role/i-0abc123def4567890"
        );
        assert_eq!(d["pgtrail"]["iam"]["match"], "exact");
        assert!(d["related"]["user"].as_array().is_some_and(|u| {
            u.iter()
                .any(|x| x.as_str().is_some_and(|x| x.starts_with("arn:")))
        }));
    }
    assert_eq!(docs[0]["event"]["type"], serde_json::json!(["start"]));
    assert_eq!(docs[1]["event"]["type"], serde_json::json!(["end"]));
    assert_eq!(docs[1]["event"]["duration"], 8_960_000_000u64);
    let user = "bob\"\n2030-01-01 00:00:00 UTC:10.0.0.1(5555):admin@postgres:[1]:LOG:  x";
    let d = json_lines(&write_with(
        ecs::write_session,
        &hostile_failure(user, "appdb", "x"),
    ))
    .remove(0);
    assert!(fields.validate(&d).is_empty(), "{:#?}", fields.validate(&d));
    assert_eq!(d["user"]["name"], user);
    assert_eq!(d["event"]["outcome"], "failure");
    assert_eq!(d["tags"], serde_json::json!(["pgtrail_suspect"]));
    assert_eq!(d["source"], serde_json::json!({"address": "[local]"}));
    // The validator can fail.
    let mut bad = d.clone();
    bad["event"]["outcome"] = "denied".into();
    bad["source"]["ip"] = "local".into();
    bad["user"]["nickname"] = "b".into();
    bad["event"]["type"] = serde_json::json!(["access"]);
    bad["process"]["pid"] = "902".into();
    assert_eq!(
        fields.validate(&bad).len(),
        5,
        "{:#?}",
        fields.validate(&bad)
    );
}

// -------------------------------------------------------------------- CEF

/// One parsed CEF line.
#[derive(Debug)]
struct CefLine {
    header: Vec<String>,
    extensions: Vec<(String, String)>,
}

/// Parses a CEF line: seven header fields split on unescaped `|`, then
/// `key=value` pairs where a key is the word before an unescaped `=`.
fn parse_cef(line: &str) -> Result<CefLine, String> {
    let rest = line.strip_prefix("CEF:").ok_or("no CEF: prefix")?;
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = rest.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '|'))) => field.push(e),
                other => return Err(format!("bad header escape {other:?}")),
            },
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let ext = &rest[ext_start.ok_or("fewer than 7 header pipes")?..];
    // Unescape while remembering which `=` were real separators.
    let mut tokens: Vec<(char, bool)> = Vec::new(); // (char, is separator)
    let mut it = ext.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some('\\') => tokens.push(('\\', false)),
                Some('=') => tokens.push(('=', false)),
                Some('n') => tokens.push(('\n', false)),
                Some('r') => tokens.push(('\r', false)),
                other => return Err(format!("bad extension escape {other:?}")),
            },
            '=' => tokens.push(('=', true)),
            '\n' | '\r' => return Err("raw line break in extensions".into()),
            c => tokens.push((c, false)),
        }
    }
    let separators: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, (_, sep))| *sep)
        .map(|(i, _)| i)
        .collect();
    let mut extensions = Vec::new();
    let mut key_start = 0;
    for (n, &eq) in separators.iter().enumerate() {
        let key: String = tokens[key_start..eq].iter().map(|(c, _)| *c).collect();
        // The value runs to the space before the next key.
        let value_end = match separators.get(n + 1) {
            Some(&next) => {
                let space = tokens[eq + 1..next]
                    .iter()
                    .rposition(|(c, _)| *c == ' ')
                    .map(|p| eq + 1 + p)
                    .ok_or("two separators without a space between")?;
                key_start = space + 1;
                space
            }
            None => tokens.len(),
        };
        let value: String = tokens[eq + 1..value_end].iter().map(|(c, _)| *c).collect();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("bad key {key:?}"));
        }
        extensions.push((key, value));
    }
    Ok(CefLine { header, extensions })
}

/// The only keys pgtrail writes.
const CEF_KEYS: [&str; 41] = [
    "rt",
    "act",
    "cat",
    "outcome",
    "reason",
    "msg",
    "duser",
    "suser",
    "src",
    "c6a2",
    "c6a2Label",
    "shost",
    "spt",
    "app",
    "dproc",
    "dpid",
    "dhost",
    "dvchost",
    "dpt",
    "deviceExternalId",
    "externalId",
    "start",
    "end",
    "cn1",
    "cn1Label",
    "cs1",
    "cs1Label",
    "cs2",
    "cs2Label",
    "cs3",
    "cs3Label",
    "cs4",
    "cs4Label",
    "cs5",
    "cs5Label",
    "cs6",
    "cs6Label",
    "flexString1",
    "flexString1Label",
    "flexString2",
    "flexString2Label",
];

fn check_cef_line(line: &str) -> CefLine {
    let parsed = parse_cef(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(parsed.header.len(), 7, "{line}");
    assert_eq!(parsed.header[0], "0");
    assert_eq!(&parsed.header[1..3], ["pgtrail", "pgtrail"]);
    let mut seen = BTreeSet::new();
    for (k, _) in &parsed.extensions {
        assert!(CEF_KEYS.contains(&k.as_str()), "unexpected key {k}: {line}");
        assert!(seen.insert(k.clone()), "duplicate key {k}: {line}");
    }
    parsed
}

fn ext<'a>(line: &'a CefLine, key: &str) -> Option<&'a str> {
    line.extensions
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn cef_hostile_names_round_trip_without_adding_fields_or_lines() {
    let user = "eve|x=1 cs1=forged\\ \n2030-01-01 00:00:00 UTC:10.0.0.1(5555):admin@postgres:[1]:LOG:  connection authorized\rmore";
    let database = "db=x act=logoff \\n";
    let app = "CEF:0|evil|evil|1|2|3|10|src=6.6.6.6";
    let text = write_with(cef::write_session, &hostile_failure(user, database, app));
    assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
    assert!(!text.contains('\r'));
    let line = check_cef_line(text.trim_end_matches('\n'));
    assert_eq!(ext(&line, "duser"), Some(user));
    assert_eq!(ext(&line, "cs1"), Some(database));
    assert_eq!(ext(&line, "cs2"), Some(app));
    assert_eq!(ext(&line, "act"), Some("logon"));
    assert_eq!(ext(&line, "outcome"), Some("failure"));
    assert_eq!(ext(&line, "flexString2"), Some("suspect"));
    assert_eq!(ext(&line, "flexString1"), Some("[local]"));
    assert_eq!(ext(&line, "src"), None, "a Unix socket has no source IP");
    assert_eq!(line.header[4], "logon:failure");
    assert_eq!(line.header[6], "6");
    // The parser is strict enough to catch a naive writer.
    assert!(parse_cef("CEF:0|a|b|c|d|e|1|duser=a=b").is_err());
    assert!(parse_cef("CEF:0|a|b|c|d|e|1|duser=a\nrt=1").is_err());
    assert!(parse_cef("CEF:0|a|b|c|d|e|f").is_err());
    let naive = parse_cef("CEF:0|a|b|c|d|e|1|duser=x cs1=forged").expect("parses");
    assert_eq!(naive.extensions.len(), 2, "an unescaped `=` adds a field");
    // IPv6 and IAM.
    let s = iam_session("iam_app");
    let lines: Vec<CefLine> = write_with(cef::write_session, &s)
        .lines()
        .map(check_cef_line)
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        ext(&lines[0], "suser"),
        Some("arn:aws:sts::111122223333:assumed-role/app-role/i-0abc123def4567890")
    );
    assert_eq!(ext(&lines[0], "cs6"), Some("aws:eu-west-1:111122223333"));
    assert_eq!(
        ext(&lines[0], "dvchost"),
        Some("prod-db.abc123.eu-west-1.rds.amazonaws.com")
    );
    assert_eq!(ext(&lines[0], "dpt"), Some("5432"));
    assert_eq!(ext(&lines[1], "cn1"), Some("8960"));
    assert_eq!(ext(&lines[1], "act"), Some("logoff"));
}

#[test]
fn cef_lines_of_every_sample_parse_and_carry_the_names_exactly() {
    let mut total = 0;
    for input in sample_logs() {
        let text = audit("cef", &input);
        let sessions = json_lines(&audit("jsonl", &input));
        let by_id: BTreeMap<&str, &Value> = sessions
            .iter()
            .filter_map(|s| Some((s["session_id"].as_str()?, s)))
            .collect();
        let (n, ended) = session_counts(&input);
        assert_eq!(
            text.lines().count(),
            n + ended,
            "{input}: one line per event"
        );
        for l in text.lines() {
            let line = check_cef_line(l);
            let id = ext(&line, "externalId").expect("externalId");
            let session = by_id.get(id).unwrap_or_else(|| panic!("{id} unknown"));
            assert_eq!(
                ext(&line, "duser"),
                session["user"].as_str(),
                "{input}: {l}"
            );
            assert_eq!(
                ext(&line, "cs1"),
                session["database"].as_str(),
                "{input}: {l}"
            );
            assert_eq!(ext(&line, "cs2"), session["application_name"].as_str());
            total += 1;
        }
    }
    eprintln!("CEF lines parsed: {total}");
}

// ----------------------------------------------------------------- golden

const GOLDEN_SAMPLES: [(&str, &str); 5] = [
    ("samples/pg15/rds/postgresql.log", "pg15-rds-stderr"),
    ("samples/pg15/rds/postgresql.csv", "pg15-rds-csvlog"),
    ("samples/pg15/rds/postgresql.json", "pg15-rds-jsonlog"),
    (
        "samples/forging/pg15-rds/postgresql.log",
        "forging-pg15-rds-stderr",
    ),
    (
        "samples/forging/pg15-rds/postgresql.csv",
        "forging-pg15-rds-csvlog",
    ),
];

#[test]
fn golden_files_match_byte_for_byte() {
    let bless = std::env::var_os("PGTRAIL_BLESS").is_some_and(|v| v == "1");
    let mut mismatches = Vec::new();
    for format in ["ocsf", "ecs", "cef"] {
        let ext = if format == "cef" { "cef" } else { "jsonl" };
        for (input, name) in GOLDEN_SAMPLES {
            let actual = audit(format, input);
            let path = repo().join(format!("tests/golden/{format}/{name}.{ext}"));
            if bless {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(&path, &actual).expect("write golden file");
                continue;
            }
            let expected = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (PGTRAIL_BLESS=1 writes it)", path.display()));
            if expected != actual {
                let line = expected
                    .lines()
                    .zip(actual.lines())
                    .position(|(a, b)| a != b)
                    .map_or(expected.lines().count().min(actual.lines().count()), |n| n);
                mismatches.push(format!("{} differs at line {}", path.display(), line + 1));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{mismatches:#?}\nrerun with PGTRAIL_BLESS=1 if intended"
    );
}

// ----------------------------------------------------------------- follow

#[test]
fn follow_writes_sessions_while_the_file_grows() {
    use std::io::{BufRead, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let sample = "samples/pg15/rds/postgresql.log";
    let text = std::fs::read_to_string(repo().join(sample)).expect("sample");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let dir = std::env::temp_dir().join(format!("pgtrail-follow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("postgresql.log");
    // The first part ends with a session authorized but not ended yet.
    std::fs::write(&path, lines[..9].concat()).expect("first part");
    let path_text = path.to_str().expect("utf-8 temp path").to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args([
            "audit",
            "-q",
            "--follow",
            "--format",
            "ocsf",
            "--server",
            "pg15-rds",
            "--follow-exit-idle-ms",
            "4000",
            &path_text,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run pgtrail --follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut got: Vec<String> = Vec::new();
    // The established login is announced before its session ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.is_empty() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(line);
        }
    }
    let first: Value = serde_json::from_str(got.first().expect("an early logon")).expect("JSON");
    assert_eq!(first["activity_id"], 1, "{first}");
    assert_eq!(first["status_id"], 1);
    assert_eq!(first["session"]["uid"], "pg15-rds/3856/1795882963000");
    assert!(first["unmapped"].get("end_reason").is_none());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("append");
    file.write_all(lines[9..100].concat().as_bytes())
        .expect("append");
    file.flush().expect("flush");
    // Sessions of the first part arrive while pgtrail is still running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 10 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(line);
        }
    }
    assert!(got.len() >= 10, "only {} events streamed", got.len());
    assert!(
        child.try_wait().expect("poll child").is_none(),
        "pgtrail must still be following"
    );
    // The rest of the log, appended in two writes.
    file.write_all(lines[100..150].concat().as_bytes())
        .expect("append");
    file.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(600));
    file.write_all(lines[150..].concat().as_bytes())
        .expect("append");
    file.flush().expect("flush");
    let status = child.wait().expect("wait");
    assert!(status.success());
    reader.join().expect("reader");
    got.extend(rx.try_iter());
    let _ = std::fs::remove_dir_all(&dir);

    // The events of a plain run over the whole file, each exactly once;
    // identical except for logons announced before their session ended
    // (which cannot know how, or from which records, the session ends).
    let schema = Ocsf::load();
    let key = |v: &Value| v["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    let mut followed: BTreeMap<String, Value> = BTreeMap::new();
    for l in &got {
        let v: Value = serde_json::from_str(&l.replace(&path_text, sample)).expect("JSON");
        assert_valid(&schema, &v, "follow");
        assert!(
            followed.insert(key(&v), v).is_none(),
            "an event written twice"
        );
    }
    let whole: BTreeMap<String, Value> = json_lines(&audit("ocsf", sample))
        .into_iter()
        .map(|v| (key(&v), v))
        .collect();
    assert_eq!(
        followed.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>()
    );
    let mut differing = 0;
    for (id, v) in &followed {
        let plain = &whole[id];
        if v != plain {
            differing += 1;
            let mut v = v.clone();
            let mut plain = plain.clone();
            for e in [&mut v, &mut plain] {
                if let Some(u) = e["unmapped"].as_object_mut() {
                    u.remove("end_reason");
                    u.remove("evidence");
                }
            }
            assert_eq!(
                v, plain,
                "{id}: only the end and its evidence may be missing"
            );
        }
    }
    assert!(differing >= 1, "the early logon");
}

/// A file larger than one read round (4 MiB) is decoded piece by piece
/// and gives exactly the sessions of a plain run.
#[test]
fn follow_reads_a_large_existing_file_in_pieces() {
    let text =
        std::fs::read_to_string(repo().join("samples/pg15/rds/postgresql.log")).expect("sample");
    let dir = std::env::temp_dir().join(format!("pgtrail-follow-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("postgresql.log");
    // Copies of the sample with fresh pids: [3856] → [1003856] …
    let mut big = String::with_capacity(text.len() * 170);
    for copy in 1..=170u32 {
        for line in text.split_inclusive('\n') {
            big.push_str(&shift_pid(line, copy * 1_000_000));
        }
    }
    assert!(big.len() > 4 << 20, "{} bytes", big.len());
    std::fs::write(&path, &big).expect("write");
    let path_text = path.to_str().expect("utf-8 path");
    let run = |follow: bool| -> Vec<String> {
        let mut args = vec!["audit", "-q", "--format", "jsonl", "--server", "big"];
        if follow {
            args.extend(["--follow", "--follow-exit-idle-ms", "1000"]);
        }
        args.push(path_text);
        let output = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
            .args(&args)
            .output()
            .expect("run pgtrail");
        assert!(output.status.success());
        let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let followed = run(true);
    let plain = run(false);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(followed.len(), plain.len());
    assert_eq!(followed.len(), 64 * 170);
    assert!(followed == plain, "follow differs from a plain run");
}

/// The line with the `[pid]` of its RDS prefix increased by `by`.
fn shift_pid(line: &str, by: u32) -> String {
    let mut from = 0;
    while let Some(at) = line[from..].find(":[").map(|p| from + p + 2) {
        if let Some(len) = line[at..].find("]:")
            && let Ok(pid) = line[at..at + len].parse::<u32>()
        {
            return format!("{}{}{}", &line[..at], pid + by, &line[at + len..]);
        }
        from = at;
    }
    line.to_owned()
}

// ------------------------------------------------- correlated IAM sample

/// `pgtrail audit --format <format>` of `samples/iam` with every AWS input
/// of that recording (real correlation, not hand-set attributions).
fn audit_iam_sample(format: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args([
            "audit",
            "-q",
            "--format",
            format,
            "samples/iam/postgresql.log",
        ])
        .args(["--cloudtrail", "samples/iam/cloudtrail"])
        .args([
            "--iam-authorization",
            "samples/iam/aws/iam-authorization-app-account.json",
            "--iam-authorization",
            "samples/iam/aws/iam-authorization-security-account.json",
        ])
        .args([
            "--ec2-inventory",
            "samples/iam/aws/ec2-describe-instances.json",
            "--ec2-inventory",
            "samples/iam/aws/ec2-describe-network-interfaces.json",
        ])
        .args(["--aws-config", "samples/iam/aws-config.toml"])
        .current_dir(repo())
        .output()
        .expect("run pgtrail");
    assert!(
        output.status.success(),
        "{format}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

#[test]
fn correlated_iam_sample_validates_in_ocsf_and_ecs() {
    let schema = Ocsf::load();
    let events = json_lines(&audit_iam_sample("ocsf"));
    for e in &events {
        assert_valid(&schema, e, "samples/iam (correlated)");
        // The cloud profile comes from --aws-config, declared with it.
        assert_eq!(e["cloud"]["account"]["uid"], "123456789012", "{e}");
        assert!(
            e["metadata"]["profiles"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x == "cloud")),
            "{e}"
        );
    }
    // The exact and probable matches name their principal as the actor:
    // the instance-profile session of app-1 and alice's chained session.
    let actors: Vec<&str> = events
        .iter()
        .filter(|e| e["activity_id"] == 1)
        .filter_map(|e| e["actor"]["user"]["uid"].as_str())
        .collect();
    assert!(
        actors
            .iter()
            .any(|a| a.starts_with("arn:aws:sts::123456789012:assumed-role/pg-app-role/i-")),
        "{actors:?}"
    );
    assert!(
        actors.contains(&"arn:aws:sts::123456789012:assumed-role/pg-monitor-role/alice-monitor"),
        "{actors:?}"
    );

    let fields = EcsFields::load();
    let docs = json_lines(&audit_iam_sample("ecs"));
    assert_eq!(docs.len(), events.len(), "same logons and logoffs");
    for d in &docs {
        assert!(fields.validate(d).is_empty(), "{:#?}", fields.validate(d));
    }
    let matches: Vec<&str> = docs
        .iter()
        .filter_map(|d| d["pgtrail"]["iam"]["match"].as_str())
        .collect();
    for kind in ["exact", "ambiguous", "none"] {
        assert!(matches.contains(&kind), "{kind} missing in {matches:?}");
    }
}
