//! Sessions as Elastic Common Schema (ECS 8.12) authentication events,
//! NDJSON: one `event.type: ["start"]` document per connection attempt and
//! one `["end"]` per session that ended (see
//! [`auth_event`]).
//!
//! This module owns the ECS wire shape. Mapping decisions (docs/siem.md
//! has the table):
//!
//! - `event.kind: event`, `event.category: ["authentication"]`,
//!   `event.outcome` success / failure / unknown (an abandoned attempt:
//!   neither logged in nor refused), `event.action` `logon` / `logoff`,
//!   `event.code` the failure class, `event.reason` the server's message.
//! - `event.id` is `<session_id>#logon|logoff` (stable and unique);
//!   `@timestamp` is the log's time (omitted when the log has none: no
//!   wall-clock time is ever written).
//! - `source.address` is the client as logged (`[local]` for a Unix
//!   socket), `source.ip`/`source.port` only for IP clients.
//! - The database and application name use the Filebeat PostgreSQL
//!   module's names `postgresql.log.database` / `application_name`.
//! - TLS goes to `tls.*` only when verified: TLS text that a client-chosen
//!   application name could have forged goes to `pgtrail.ssl_unverified`
//!   with the values under `pgtrail.tls_unverified.*`.
//! - ECS has no field for the IAM principal behind a database login (and
//!   `user.effective` means the reverse: the identity acted *as*), so it
//!   is the custom field set `pgtrail.iam.*`, and its ARN is in
//!   `related.user`.
//! - A suspect session gets `tags: ["pgtrail_suspect"]`,
//!   `pgtrail.suspect: true` and `event.severity` 3 (1 informational,
//!   2 refused).

use std::io::{self, Write};

use serde::Serialize;

use super::auth_event::{self, Activity, AuthEvent, Client, Part, Severity};
use super::sessions::EvidenceList;
use crate::cloud::MatchKind;
use crate::session::{Outcome, Session};
use crate::time::format_rfc3339_ms;

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.12.0";

#[derive(Serialize)]
struct EcsEvent<'s> {
    #[serde(rename = "@timestamp", skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    ecs: Ecs,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'static str>,
    event: Event,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'s>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source<'s>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<Destination<'s>>,
    #[serde(skip_serializing_if = "Related::is_empty")]
    related: Related<'s>,
    process: Process,
    service: Service<'s>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud: Option<Cloud<'s>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Tls<'s>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<Log<'s>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postgresql: Option<Postgresql<'s>>,
    pgtrail: Pgtrail<'s>,
}

#[derive(Serialize)]
struct Ecs {
    version: &'static str,
}

#[derive(Serialize)]
struct Event {
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    kind_of_change: [&'static str; 1],
    outcome: &'static str,
    action: &'static str,
    id: String,
    module: &'static str,
    dataset: &'static str,
    provider: &'static str,
    severity: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    /// Nanoseconds, as ECS wants.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
}

#[derive(Serialize)]
struct User<'s> {
    name: &'s str,
}

#[derive(Serialize)]
struct Source<'s> {
    address: &'s str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

#[derive(Serialize)]
struct Destination<'s> {
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

#[derive(Serialize)]
struct Related<'s> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user: Vec<&'s str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ip: Vec<String>,
}

impl Related<'_> {
    fn is_empty(&self) -> bool {
        self.user.is_empty() && self.ip.is_empty()
    }
}

#[derive(Serialize)]
struct Process {
    pid: u32,
    name: &'static str,
}

#[derive(Serialize)]
struct Service<'s> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'s str,
}

#[derive(Serialize)]
struct Cloud<'s> {
    provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Id<'s>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<Id<'s>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<Name>,
}

#[derive(Serialize)]
struct Id<'s> {
    id: &'s str,
}

#[derive(Serialize)]
struct Name {
    name: &'static str,
}

#[derive(Serialize)]
struct Tls<'s> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cipher: Option<&'s str>,
}

#[derive(Serialize)]
struct Log<'s> {
    file: LogFile<'s>,
}

#[derive(Serialize)]
struct LogFile<'s> {
    path: &'s str,
}

#[derive(Serialize)]
struct Postgresql<'s> {
    log: PostgresqlLog<'s>,
}

#[derive(Serialize)]
struct PostgresqlLog<'s> {
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_name: Option<&'s str>,
}

/// The custom field set: what neither ECS nor the PostgreSQL module names.
#[derive(Serialize)]
struct Pgtrail<'s> {
    session_id: &'s str,
    server: &'s str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_detail: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_method: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hba_line: Option<&'s str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notes: &'s [String],
    #[serde(skip_serializing_if = "is_false")]
    ssl_unverified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_unverified: Option<Tls<'s>>,
    #[serde(skip_serializing_if = "is_false")]
    suspect: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    iam: Option<Iam<'s>>,
    evidence: EvidenceList<'s>,
}

#[derive(Serialize)]
struct Iam<'s> {
    #[serde(rename = "match")]
    match_kind: &'static str,
    candidate_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_arn: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_name: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_identity: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_account: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'s str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assumed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn rfc3339(ms: Option<i64>) -> Option<String> {
    ms.map(format_rfc3339_ms).filter(|t| !t.is_empty())
}

/// `TLSv1.3` → (`1.3`, `tls`), as ECS splits it.
fn tls_fields(s: &Session) -> Option<Tls<'_>> {
    let protocol = s.ssl_protocol.as_deref();
    if protocol.is_none() && s.ssl_cipher.is_none() {
        return None;
    }
    let (version, version_protocol) = match protocol {
        Some(p) => match p.strip_prefix("TLSv").or_else(|| p.strip_prefix("SSLv")) {
            Some(v) => (
                Some(v),
                Some(if p.starts_with("TLS") { "tls" } else { "ssl" }),
            ),
            None => (Some(p), None),
        },
        None => (None, None),
    };
    Some(Tls {
        version,
        version_protocol,
        cipher: s.ssl_cipher.as_deref(),
    })
}

impl<'s> EcsEvent<'s> {
    fn new(ev: AuthEvent<'s>) -> Self {
        let s = ev.session;
        let client = Client::of(s);
        let cloud_ctx = s.cloud.as_deref();
        let logoff = ev.activity == Activity::Logoff;
        let iam = s.iam.as_deref();
        let principal = iam.and_then(|i| match i.kind {
            MatchKind::Exact | MatchKind::Probable => i.best.as_ref(),
            _ => None,
        });
        let mut related_users: Vec<&str> = Vec::new();
        if let Some(u) = s.user.as_deref() {
            related_users.push(u);
        }
        if let Some(id) = s
            .identity
            .as_deref()
            .filter(|id| Some(*id) != s.user.as_deref())
        {
            related_users.push(id);
        }
        if let Some(p) = principal {
            related_users.push(&p.principal_arn);
        }
        let tls = tls_fields(s);
        let (tls, tls_unverified) = if s.ssl_unverified {
            (None, tls)
        } else {
            (tls, None)
        };
        EcsEvent {
            timestamp: rfc3339(ev.time_ms()),
            ecs: Ecs {
                version: ECS_VERSION,
            },
            message: ev.message(),
            tags: if s.suspect {
                vec!["pgtrail_suspect"]
            } else {
                Vec::new()
            },
            event: Event {
                kind: "event",
                category: ["authentication"],
                kind_of_change: [if logoff { "end" } else { "start" }],
                outcome: match ev.outcome() {
                    Outcome::Success => "success",
                    Outcome::Failure => "failure",
                    Outcome::Abandoned => "unknown",
                },
                action: ev.activity.as_str(),
                id: ev.event_id(),
                module: "pgtrail",
                dataset: "pgtrail.authentication",
                provider: "postgresql",
                severity: match ev.severity() {
                    Severity::Informational => 1,
                    Severity::Low => 2,
                    Severity::Medium => 3,
                },
                code: if logoff {
                    None
                } else {
                    s.failure_class.map(|c| c.as_str())
                },
                reason: ev.status_detail(),
                start: if logoff { rfc3339(s.start_ms) } else { None },
                end: if logoff { rfc3339(s.end_ms) } else { None },
                duration: ev.duration_ms().map(|ms| ms.saturating_mul(1_000_000)),
            },
            user: s.user.as_deref().map(|name| User { name }),
            source: s.client_addr.as_deref().map(|address| Source {
                address,
                ip: client.and_then(Client::ip).map(|ip| ip.to_string()),
                domain: match client {
                    Some(Client::Host(h)) => Some(h),
                    _ => None,
                },
                port: s.client_port,
            }),
            destination: cloud_ctx
                .filter(|c| c.host.is_some() || c.port.is_some())
                .map(|c| Destination {
                    address: c.host.as_deref(),
                    domain: c.host.as_deref(),
                    port: c.port,
                }),
            related: Related {
                user: related_users,
                ip: client
                    .and_then(Client::ip)
                    .map(|ip| ip.to_string())
                    .into_iter()
                    .collect(),
            },
            process: Process {
                pid: s.pid,
                name: "postgres",
            },
            service: Service {
                kind: "postgresql",
                name: &s.server,
            },
            cloud: cloud_ctx
                .filter(|c| c.account_id.is_some() || c.region.is_some())
                .map(|c| Cloud {
                    provider: "aws",
                    region: c.region.as_deref(),
                    account: c.account_id.as_deref().map(|id| Id { id }),
                    instance: c.db_instance_id.as_deref().map(|id| Id { id }),
                    service: c.db_resource_id.as_ref().map(|_| Name { name: "rds" }),
                }),
            tls,
            log: ev.record().map(|p| Log {
                file: LogFile { path: &p.input },
            }),
            postgresql: (s.database.is_some() || s.application_name.is_some()).then_some(
                Postgresql {
                    log: PostgresqlLog {
                        database: s.database.as_deref(),
                        application_name: s.application_name.as_deref(),
                    },
                },
            ),
            pgtrail: Pgtrail {
                session_id: &s.session_id,
                server: &s.server,
                outcome: s.outcome.as_str(),
                failure_class: s.failure_class.map(|c| c.as_str()),
                failure_detail: s.failure_detail.as_deref(),
                end_reason: s.end_reason.map(|r| r.as_str()),
                auth_method: s.auth_method.as_deref(),
                identity: s.identity.as_deref(),
                hba_line: s.hba_line.as_deref(),
                notes: &s.notes,
                ssl_unverified: s.ssl_unverified,
                tls_unverified,
                suspect: s.suspect,
                iam: iam.filter(|i| i.kind != MatchKind::NotApplicable).map(|i| {
                    let best = principal;
                    Iam {
                        match_kind: i.kind.as_str(),
                        candidate_count: i.candidate_count,
                        reason: i.reason.as_deref(),
                        principal_arn: best.map(|b| b.principal_arn.as_str()),
                        role_arn: best.and_then(|b| b.role_arn.as_deref()),
                        session_name: best.and_then(|b| b.session_name.as_deref()),
                        source_identity: best.and_then(|b| b.source_identity.as_deref()),
                        source_account: best.and_then(|b| b.source_account.as_deref()),
                        access_key_id: best.and_then(|b| b.access_key_id.as_deref()),
                        assumed_at: rfc3339(best.and_then(|b| b.assumed_at_ms)),
                        expires_at: rfc3339(best.and_then(|b| b.expires_at_ms)),
                    }
                }),
                evidence: EvidenceList(&s.evidence),
            },
        }
    }
}

/// Writes the documents of one session (logon, then logoff if it ended),
/// one JSON object per line (NDJSON, ready for a filestream input).
pub fn write_session<W: Write>(out: &mut W, session: &Session) -> io::Result<()> {
    write_events(out, session, Part::All)
}

/// Writes the documents of `part` of one session, one JSON object per line.
pub fn write_events<W: Write>(out: &mut W, session: &Session, part: Part) -> io::Result<()> {
    auth_event::write_json_lines(out, session, part, EcsEvent::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::{Event, EventKind};
    use crate::session::stitch;

    fn tls_session(unverified: bool) -> serde_json::Value {
        let mut r = Event::new(EventKind::Received, crate::name::Name::new("db1"));
        r.pid = Some(3);
        r.time_ms = Some(10);
        let mut az = r.clone();
        az.kind = EventKind::Authorized;
        az.user = Some("alice".into());
        az.ssl_protocol = Some("TLSv1.3".into());
        az.ssl_cipher = Some("TLS_AES_256_GCM_SHA384".into());
        az.ssl_unverified = unverified;
        let s = stitch(vec![r, az]).remove(0);
        let mut out = Vec::new();
        assert!(write_session(&mut out, &s).is_ok());
        assert_eq!(
            out.iter().filter(|&&b| b == b'\n').count(),
            1,
            "open: no logoff"
        );
        serde_json::from_slice(&out).unwrap_or_default()
    }

    #[test]
    fn only_verified_tls_goes_to_the_tls_fields() {
        let verified = tls_session(false);
        assert_eq!(verified["tls"]["version"], "1.3");
        assert_eq!(verified["tls"]["version_protocol"], "tls");
        assert!(verified["pgtrail"].get("tls_unverified").is_none());
        let unverified = tls_session(true);
        assert!(unverified.get("tls").is_none());
        assert_eq!(unverified["pgtrail"]["ssl_unverified"], true);
        assert_eq!(
            unverified["pgtrail"]["tls_unverified"]["cipher"],
            "TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(unverified["event"]["outcome"], "success");
        assert_eq!(unverified["user"]["name"], "alice");
    }
}
