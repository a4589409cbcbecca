//! Sessions as OCSF 1.8.0 Authentication events (class 3002), JSON Lines:
//! one Logon (activity 1) per connection attempt and one Logoff
//! (activity 2) per session that ended (see [`auth_event`]).
//!
//! This module owns the OCSF wire shape. Mapping decisions (docs/siem.md
//! has the full table):
//!
//! - `status_id` 1 Success / 2 Failure; an abandoned attempt (the client
//!   went away before authenticating) is 99 Other with `status`
//!   `Abandoned` — its result is known, just neither success nor refusal.
//!   `status_code` is pgtrail's failure class, `status_detail` the
//!   server's message and the notes that explained it.
//! - `severity_id` 1 Informational (successes, logoffs, abandoned), 2 Low
//!   (refused), 3 Medium (a record of the session could not be trusted).
//! - `user` is required: an attempt that never named a user has
//!   `user.name` "" (the constraint wants a name or a uid).
//! - `src_endpoint.name` is the client as PostgreSQL logged it (the
//!   compiled 1.8.0 schema's endpoint constraint wants a name or a uid);
//!   `ip`/`port` only for IP clients: a Unix-socket client (`[local]`) has
//!   no IP, `is_remote` false and `logon_type_id` 99 "Local (Unix-domain socket)".
//! - `dst_endpoint` is always present (`name` = pgtrail's server label,
//!   plus host/port/instance when the cloud context knows them) and
//!   `service` is `postgresql` with the DB resource id as `uid`: the
//!   class's at-least-one constraint holds either way.
//! - The `cloud` profile (`cloud.provider` AWS, region, account) only when
//!   the account or region is known, declared in `metadata.profiles`.
//! - The IAM principal, when correlated to one candidate, is the `actor`
//!   (`actor.user.uid` = principal ARN, `actor.session` = the STS
//!   credentials); OCSF 1.8.0 defines `actor` in the `host` profile, so
//!   `host` is declared with it.
//! - A suspect session is an alert: `is_alert` true with the
//!   `security_control` profile declared, severity Medium, and
//!   `unmapped.suspect`.
//! - pgtrail-specific fields (outcome, failure class and detail, end
//!   reason, database, application name, TLS, evidence, IAM match quality)
//!   go in `unmapped`.
//! - `time` is required; when the log gave no time at all it is 0 and
//!   `unmapped.time_unknown` is true.

use std::io::{self, Write};

use serde::Serialize;

use super::auth_event::{self, Activity, AuthEvent, Client, Part, Severity};
use super::sessions::EvidenceList;
use crate::cloud::{IamCandidate, MatchKind};
use crate::session::{Outcome, Session};
use crate::time::format_rfc3339_ms;

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.8.0";
const CLASS_UID: u32 = 3002;
const CATEGORY_UID: u32 = 3;

#[derive(Serialize)]
struct OcsfEvent<'s> {
    activity_id: u8,
    activity_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    class_uid: u32,
    class_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<String>,
    time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    message: String,
    user: User<'s>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Endpoint<'s>>,
    dst_endpoint: Endpoint<'s>,
    service: Service<'s>,
    session: OcsfSession<'s>,
    logon_process: LogonProcess,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_protocol_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logon_type_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logon_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_remote: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_alert: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Actor<'s>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud: Option<Cloud<'s>>,
    metadata: Metadata<'s>,
    unmapped: Unmapped<'s>,
}

#[derive(Serialize)]
struct User<'s> {
    name: &'s str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    type_id: Option<u8>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Account<'s>>,
}

#[derive(Serialize)]
struct Account<'s> {
    uid: &'s str,
    type_id: u8,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'s> Account<'s> {
    fn aws(uid: &'s str) -> Self {
        Account {
            uid,
            type_id: 10,
            kind: "AWS Account",
        }
    }
}

#[derive(Serialize, Default)]
struct Endpoint<'s> {
    name: &'s str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance_uid: Option<&'s str>,
}

#[derive(Serialize)]
struct Service<'s> {
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'s str>,
}

#[derive(Serialize, Default)]
struct OcsfSession<'s> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_uid: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_remote: Option<bool>,
}

#[derive(Serialize)]
struct LogonProcess {
    pid: u32,
    name: &'static str,
}

#[derive(Serialize)]
struct Actor<'s> {
    user: User<'s>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<OcsfSession<'s>>,
}

#[derive(Serialize)]
struct Cloud<'s> {
    provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Account<'s>>,
}

#[derive(Serialize)]
struct Metadata<'s> {
    version: &'static str,
    product: Product,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_name: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_time: Option<String>,
    uid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_event_uid: Option<String>,
    correlation_uid: &'s str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_uid: Option<&'s str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profiles: Vec<&'static str>,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

const PRODUCT: Product = Product {
    name: "pgtrail",
    vendor_name: "pgtrail",
    version: env!("CARGO_PKG_VERSION"),
};

/// pgtrail's own fields, which OCSF has no attribute for.
#[derive(Serialize)]
struct Unmapped<'s> {
    server: &'s str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_detail: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_name: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_method: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hba_line: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_protocol: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_cipher: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_bits: Option<u32>,
    #[serde(skip_serializing_if = "is_false")]
    ssl_unverified: bool,
    #[serde(skip_serializing_if = "is_false")]
    suspect: bool,
    #[serde(skip_serializing_if = "is_false")]
    time_unknown: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    iam_match: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iam_candidate_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iam_reason: Option<&'s str>,
    evidence: EvidenceList<'s>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Informational => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
    }
}

fn status(outcome: Outcome) -> (u8, &'static str) {
    match outcome {
        Outcome::Success => (1, "Success"),
        Outcome::Failure => (2, "Failure"),
        Outcome::Abandoned => (99, "Abandoned"),
    }
}

/// The IAM candidate to show as the actor: only a single chosen one.
fn chosen_principal(s: &Session) -> Option<&IamCandidate> {
    let iam = s.iam.as_deref()?;
    match iam.kind {
        MatchKind::Exact | MatchKind::Probable => iam.best.as_ref(),
        MatchKind::Ambiguous | MatchKind::None | MatchKind::NotApplicable => None,
    }
}

fn actor(c: &IamCandidate) -> Actor<'_> {
    let (account, kind) = auth_event::arn_parts(&c.principal_arn);
    Actor {
        user: User {
            name: c
                .session_name
                .as_deref()
                .unwrap_or_else(|| c.principal_arn.rsplit('/').next().unwrap_or_default()),
            uid: Some(&c.principal_arn),
            type_id: Some(99),
            kind: Some(kind.unwrap_or("Other")),
            account: account.map(Account::aws),
        },
        session: Some(OcsfSession {
            uid: None,
            created_time: c.assumed_at_ms,
            expiration_time: c.expires_at_ms,
            issuer: c.role_arn.as_deref(),
            credential_uid: c.access_key_id.as_deref(),
            is_remote: None,
        }),
    }
}

impl<'s> OcsfEvent<'s> {
    fn new(ev: AuthEvent<'s>) -> Self {
        let s = ev.session;
        let (activity_id, activity_name, type_name) = match ev.activity {
            Activity::Logon => (1u8, "Logon", "Authentication: Logon"),
            Activity::Logoff => (2u8, "Logoff", "Authentication: Logoff"),
        };
        let (severity_id, severity) = severity(ev.severity());
        let (status_id, status) = status(ev.outcome());
        let time = ev.time_ms();
        let client = Client::of(s);
        let cloud_ctx = s.cloud.as_deref();
        let aws_known = cloud_ctx.filter(|c| c.account_id.is_some() || c.region.is_some());
        let principal = chosen_principal(s);
        let mut profiles = Vec::new();
        if aws_known.is_some() {
            profiles.push("cloud");
        }
        if principal.is_some() {
            profiles.push("host");
        }
        if s.suspect {
            profiles.push("security_control");
        }
        let (auth_protocol_id, auth_protocol) = match auth_event::auth_protocol(s) {
            Some((id, label)) => (Some(id), Some(label)),
            None => (None, None),
        };
        let (logon_type_id, logon_type) = match client {
            Some(Client::Local) => (Some(99), Some("Local (Unix-domain socket)")),
            Some(_) => (Some(3), Some("Network")),
            None => (None, None),
        };
        let is_remote = client.map(Client::is_remote);
        let logoff = ev.activity == Activity::Logoff;
        let iam = s.iam.as_deref();
        OcsfEvent {
            activity_id,
            activity_name,
            category_uid: CATEGORY_UID,
            category_name: "Identity & Access Management",
            class_uid: CLASS_UID,
            class_name: "Authentication",
            type_uid: CLASS_UID * 100 + u32::from(activity_id),
            type_name,
            severity_id,
            severity,
            status_id,
            status,
            status_code: if logoff {
                None
            } else {
                s.failure_class.map(|c| c.as_str())
            },
            status_detail: ev.status_detail(),
            time: time.unwrap_or(0),
            start_time: if logoff { s.start_ms } else { None },
            end_time: if logoff { s.end_ms } else { None },
            duration: ev.duration_ms(),
            message: ev.message(),
            user: User {
                name: s.user.as_deref().unwrap_or_default(),
                uid: None,
                type_id: None,
                kind: None,
                account: None,
            },
            src_endpoint: s.client_addr.as_deref().map(|name| Endpoint {
                name,
                ip: client.and_then(Client::ip).map(|ip| ip.to_string()),
                hostname: match client {
                    Some(Client::Host(h)) => Some(h),
                    _ => None,
                },
                port: s.client_port,
                instance_uid: None,
            }),
            dst_endpoint: Endpoint {
                name: &s.server,
                ip: None,
                hostname: cloud_ctx.and_then(|c| c.host.as_deref()),
                port: cloud_ctx.and_then(|c| c.port),
                instance_uid: cloud_ctx.and_then(|c| c.db_instance_id.as_deref()),
            },
            service: Service {
                name: "postgresql",
                uid: cloud_ctx.and_then(|c| c.db_resource_id.as_deref()),
            },
            session: OcsfSession {
                uid: Some(&s.session_id),
                created_time: s.start_ms,
                expiration_time: None,
                issuer: Some(&s.server),
                credential_uid: None,
                is_remote,
            },
            logon_process: LogonProcess {
                pid: s.pid,
                name: "postgres",
            },
            auth_protocol_id,
            auth_protocol,
            logon_type_id,
            logon_type,
            is_remote,
            is_alert: s.suspect.then_some(true),
            actor: principal.map(actor),
            cloud: aws_known.map(|c| Cloud {
                provider: "AWS",
                region: c.region.as_deref(),
                account: c.account_id.as_deref().map(Account::aws),
            }),
            metadata: Metadata {
                version: OCSF_VERSION,
                product: PRODUCT,
                log_name: cloud_ctx
                    .and_then(|c| c.log_group.as_deref())
                    .or_else(|| ev.record().map(|p| &*p.input)),
                original_time: time.map(format_rfc3339_ms).filter(|t| !t.is_empty()),
                uid: ev.event_id(),
                original_event_uid: ev.record().map(|p| match &p.event_id {
                    Some(id) => id.to_string(),
                    None => p.to_string(),
                }),
                correlation_uid: &s.session_id,
                tenant_uid: aws_known.and_then(|c| c.account_id.as_deref()),
                profiles,
            },
            unmapped: Unmapped {
                server: &s.server,
                outcome: s.outcome.as_str(),
                failure_class: s.failure_class.map(|c| c.as_str()),
                failure_detail: s.failure_detail.as_deref(),
                end_reason: s.end_reason.map(|r| r.as_str()),
                database: s.database.as_deref(),
                application_name: s.application_name.as_deref(),
                auth_method: s.auth_method.as_deref(),
                identity: s.identity.as_deref(),
                hba_line: s.hba_line.as_deref(),
                ssl_protocol: s.ssl_protocol.as_deref(),
                ssl_cipher: s.ssl_cipher.as_deref(),
                ssl_bits: s.ssl_bits,
                ssl_unverified: s.ssl_unverified,
                suspect: s.suspect,
                time_unknown: time.is_none(),
                iam_match: iam.map(|i| i.kind.as_str()),
                iam_candidate_count: iam
                    .filter(|i| i.kind != MatchKind::NotApplicable)
                    .map(|i| i.candidate_count),
                iam_reason: iam.and_then(|i| i.reason.as_deref()),
                evidence: EvidenceList(&s.evidence),
            },
        }
    }
}

/// Writes the events of one session (logon, then logoff if it ended), one
/// JSON object per line.
pub fn write_session<W: Write>(out: &mut W, session: &Session) -> io::Result<()> {
    write_events(out, session, Part::All)
}

/// Writes the events of `part` of one session, one JSON object per line.
pub fn write_events<W: Write>(out: &mut W, session: &Session, part: Part) -> io::Result<()> {
    auth_event::write_json_lines(out, session, part, OcsfEvent::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::{Event, EventKind, Provenance};
    use crate::session::stitch;

    fn events_of(s: &Session) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        assert!(write_session(&mut out, s).is_ok());
        String::from_utf8_lossy(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect()
    }

    fn received(time: Option<i64>) -> Event {
        let mut r = Event::new(EventKind::Received, crate::name::Name::new("db1"));
        r.pid = Some(9);
        r.time_ms = time;
        r.client_addr = Some("10.0.0.9".into());
        r.source = Some(Provenance {
            input: crate::name::Name::new("pg.log"),
            line: 4,
            event_id: None,
        });
        r
    }

    #[test]
    fn an_abandoned_attempt_is_one_logon_with_status_other() {
        let s = stitch(vec![received(Some(5_000))]).remove(0);
        let events = events_of(&s);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e["type_uid"], 300201);
        assert_eq!(e["status_id"], 99);
        assert_eq!(e["status"], "Abandoned");
        assert_eq!(e["severity_id"], 1);
        assert_eq!(e["time"], 5_000);
        assert_eq!(e["user"]["name"], "");
        assert_eq!(e["is_remote"], true);
        assert_eq!(e["metadata"]["original_event_uid"], "pg.log:4");
        assert_eq!(e["unmapped"]["outcome"], "abandoned");
        assert!(e.get("cloud").is_none() && e["metadata"].get("profiles").is_none());
    }

    #[test]
    fn a_log_without_times_says_so() {
        let s = stitch(vec![received(None)]).remove(0);
        let e = &events_of(&s)[0];
        assert_eq!(e["time"], 0);
        assert_eq!(e["unmapped"]["time_unknown"], true);
        assert!(e["metadata"].get("original_time").is_none());
    }
}
