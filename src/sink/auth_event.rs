//! The logon/logoff view of a session that the SIEM sinks (`ocsf`, `ecs`,
//! `cef`) share, so the three formats agree on what an event is.
//!
//! - Every session is one **logon** event (the attempt, whatever its
//!   outcome), timed at the attempt's first record.
//! - A successful session that ended (disconnected, terminated, lost,
//!   server shutdown) is also one **logoff** event, timed at its end. A
//!   session still open at the end of the input (`end_reason: open`) has no
//!   logoff: it did not end in the log.
//! - Severity, the client's kind (IP, Unix socket, host name) and the
//!   authentication protocol are decided here once.
//!
//! Nothing here serialises: each sink owns its wire shape.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::event::Provenance;
use crate::session::{EndReason, Outcome, Session};

/// Which side of a session an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Logon,
    Logoff,
}

impl Activity {
    /// `logon` / `logoff`, as `event.action` and CEF `act`.
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Logon => "logon",
            Activity::Logoff => "logoff",
        }
    }
}

/// How alarming an event is, shared by the three formats (OCSF
/// `severity_id`, ECS `event.severity`, CEF severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Successful logons, logoffs, abandoned attempts.
    Informational,
    /// A refused logon.
    Low,
    /// A session with a record pgtrail could not trust (forged line,
    /// ambiguous prefix, connection text raised from SQL).
    Medium,
}

/// One SIEM event: a session seen as a logon or a logoff.
#[derive(Debug, Clone, Copy)]
pub struct AuthEvent<'s> {
    pub session: &'s Session,
    pub activity: Activity,
}

impl<'s> AuthEvent<'s> {
    /// When it happened (epoch ms): the attempt's start for a logon, the
    /// session's end for a logoff; the last record's time when that is
    /// all the log gave.
    pub fn time_ms(&self) -> Option<i64> {
        let s = self.session;
        match self.activity {
            Activity::Logon => s.start_ms.or(s.last_ms),
            Activity::Logoff => s.end_ms.or(s.last_ms),
        }
    }

    /// The record this event is about: the first record of the attempt
    /// for a logon, the last for a logoff (the disconnection).
    pub fn record(&self) -> Option<&'s Provenance> {
        match self.activity {
            Activity::Logon => self.session.evidence.first(),
            Activity::Logoff => self.session.evidence.last(),
        }
    }

    /// A stable, unique id for the event: the session id plus the activity.
    pub fn event_id(&self) -> String {
        format!("{}#{}", self.session.session_id, self.activity.as_str())
    }

    /// The outcome this event reports: a logoff is always a success (the
    /// session ended); a logon carries the session's outcome.
    pub fn outcome(&self) -> Outcome {
        match self.activity {
            Activity::Logon => self.session.outcome,
            Activity::Logoff => Outcome::Success,
        }
    }

    pub fn severity(&self) -> Severity {
        if self.session.suspect {
            Severity::Medium
        } else if self.outcome() == Outcome::Failure {
            Severity::Low
        } else {
            Severity::Informational
        }
    }

    /// A short human-readable sentence. For a refused logon it is the
    /// server's own message (which quotes the user name as logged).
    pub fn message(&self) -> String {
        let s = self.session;
        match (self.activity, s.outcome) {
            (Activity::Logoff, _) => match s.end_reason {
                Some(EndReason::Terminated) => "session terminated by the server".to_owned(),
                Some(EndReason::ConnectionLost) => "session ended: connection lost".to_owned(),
                Some(EndReason::ServerShutdown) => "session ended: server shut down".to_owned(),
                _ => "session ended: client disconnected".to_owned(),
            },
            (Activity::Logon, Outcome::Success) => "logon succeeded".to_owned(),
            (Activity::Logon, Outcome::Failure) => match &s.failure_message {
                Some(m) => format!("logon failed: {m}"),
                None => "logon failed".to_owned(),
            },
            (Activity::Logon, Outcome::Abandoned) => match &s.failure_message {
                Some(m) => format!("logon abandoned: {m}"),
                None => "logon abandoned: the client went away before authenticating".to_owned(),
            },
        }
    }

    /// Why a logon was refused or abandoned: the server's message, then
    /// the notes that explained it (the PAM error), `; `-separated.
    pub fn status_detail(&self) -> Option<String> {
        let s = self.session;
        if self.activity == Activity::Logoff || s.outcome == Outcome::Success {
            return None;
        }
        let mut parts: Vec<&str> = Vec::new();
        if let Some(m) = &s.failure_message {
            parts.push(m);
        }
        parts.extend(s.notes.iter().map(String::as_str));
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The session's duration (ms) for a logoff: the server's own session
    /// time, else end − start.
    pub fn duration_ms(&self) -> Option<u64> {
        if self.activity != Activity::Logoff {
            return None;
        }
        let s = self.session;
        s.duration_ms.or_else(|| match (s.start_ms, s.end_ms) {
            (Some(a), Some(b)) if b >= a => u64::try_from(b - a).ok(),
            _ => None,
        })
    }
}

/// Which of a session's events to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The logon, and the logoff if the session ended (a session written
    /// once, when it ends).
    All,
    /// Only the logon (a live input announcing an established login).
    Logon,
    /// What was not announced yet: the logoff if the session ended, or —
    /// if a refusal came after all — the logon with its real outcome.
    Rest,
}

/// The events of one session, in time order: the logon, then the logoff
/// when the session ended.
pub fn auth_events(session: &Session) -> impl Iterator<Item = AuthEvent<'_>> {
    events_of(session, Part::All)
}

/// The events of `part` of one session, in time order.
pub fn events_of(session: &Session, part: Part) -> impl Iterator<Item = AuthEvent<'_>> {
    let ended = session.outcome == Outcome::Success
        && session.end_reason.is_some_and(|r| r != EndReason::Open);
    let logon = match part {
        Part::All | Part::Logon => true,
        Part::Rest => session.outcome != Outcome::Success,
    };
    let logoff = ended && part != Part::Logon;
    let logon = logon.then_some(AuthEvent {
        session,
        activity: Activity::Logon,
    });
    let logoff = logoff.then_some(AuthEvent {
        session,
        activity: Activity::Logoff,
    });
    logon.into_iter().chain(logoff)
}

/// Writes the events of `part` of `session` as JSON Lines, each in the
/// wire shape `wire` makes of it (the OCSF and ECS sinks).
pub fn write_json_lines<'s, W: Write, T: Serialize>(
    out: &mut W,
    session: &'s Session,
    part: Part,
    wire: impl Fn(AuthEvent<'s>) -> T,
) -> io::Result<()> {
    for ev in events_of(session, part) {
        serde_json::to_writer(&mut *out, &wire(ev)).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Where a client connected from, as PostgreSQL logged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client<'s> {
    /// An IP address (`10.0.0.7`, `::1`).
    Ip(IpAddr),
    /// A Unix-domain socket (`[local]`).
    Local,
    /// A host name (`log_hostname = on`).
    Host(&'s str),
}

impl<'s> Client<'s> {
    pub fn of(session: &'s Session) -> Option<Client<'s>> {
        let text = session.client_addr.as_deref()?;
        if text == "[local]" {
            return Some(Client::Local);
        }
        Some(match text.parse::<IpAddr>() {
            Ok(ip) => Client::Ip(ip),
            Err(_) => Client::Host(text),
        })
    }

    /// Whether the connection came over the network from another machine:
    /// loopback addresses, `localhost` and Unix sockets are not remote.
    pub fn is_remote(self) -> bool {
        match self {
            Client::Ip(ip) => !ip.is_loopback(),
            Client::Local => false,
            Client::Host(name) => !name.eq_ignore_ascii_case("localhost"),
        }
    }

    pub fn ip(self) -> Option<IpAddr> {
        match self {
            Client::Ip(ip) => Some(ip),
            _ => None,
        }
    }
}

/// How the client authenticated, mapped to OCSF's `auth_protocol_id`
/// enumeration: the methods OCSF names get their id and caption, every
/// other one is 99 (Other) with a label. `pam` reads as RDS IAM
/// authentication when the server is known to run in AWS (RDS implements
/// IAM logins through PAM), else as plain PAM.
pub fn auth_protocol(session: &Session) -> Option<(u8, &'static str)> {
    let method = session.auth_method.as_deref()?;
    let in_aws = session.iam.is_some()
        || session
            .cloud
            .as_ref()
            .is_some_and(|c| c.account_id.is_some() || c.db_resource_id.is_some());
    Some(match method {
        "ldap" => (12, "LDAP"),
        "radius" => (10, "RADIUS"),
        // PostgreSQL's GSSAPI authentication is Kerberos.
        "gss" => (2, "Kerberos"),
        "oauth" => (6, "OAUTH 2.0"),
        "pam" if in_aws => (99, "IAM database authentication (PAM)"),
        "pam" => (99, "PAM"),
        "scram-sha-256" => (99, "scram-sha-256"),
        "md5" => (99, "md5"),
        "password" => (99, "password (cleartext)"),
        "trust" => (99, "trust (no authentication)"),
        "reject" => (99, "reject"),
        "cert" => (99, "TLS client certificate"),
        "ident" => (99, "ident"),
        "peer" => (99, "peer"),
        "sspi" => (99, "SSPI"),
        "bsd" => (99, "BSD authentication"),
        _ => (99, "other"),
    })
}

/// The account id and principal type in an IAM ARN
/// (`arn:aws:sts::111122223333:assumed-role/r/s` → `111122223333`,
/// `AssumedRole`), as CloudTrail's `userIdentity.type` names them.
pub fn arn_parts(arn: &str) -> (Option<&str>, Option<&'static str>) {
    let mut fields = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some(_service), Some(_region), Some(account), Some(rest)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return (None, None);
    };
    let kind = match rest.split('/').next() {
        Some("assumed-role") => Some("AssumedRole"),
        Some("user") => Some("IAMUser"),
        Some("federated-user") => Some("FederatedUser"),
        Some("role") => Some("Role"),
        Some("root") => Some("Root"),
        _ => None,
    };
    let account = (!account.is_empty()).then_some(account);
    (account, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::{Event, EventKind};
    use crate::session::stitch;

    fn event(kind: EventKind, pid: u32, time: i64, line: u64) -> Event {
        let mut e = Event::new(kind, crate::name::Name::new("db1"));
        e.pid = Some(pid);
        e.time_ms = Some(time);
        e.source = Some(Provenance {
            input: crate::name::Name::new("pg.log"),
            line,
            event_id: None,
        });
        e
    }

    #[test]
    fn logon_and_logoff_only_for_ended_successes() {
        let mut r = event(EventKind::Received, 1, 1000, 1);
        r.client_addr = Some("10.1.2.3".into());
        let az = event(EventKind::Authorized, 1, 1001, 2);
        let d = event(EventKind::Disconnected, 1, 5000, 3);
        let open_r = event(EventKind::Received, 2, 1000, 4);
        let open_az = event(EventKind::Authorized, 2, 1002, 5);
        let probe = event(EventKind::Received, 3, 1000, 6);
        let sessions = stitch(vec![r, az, d, open_r, open_az, probe]);
        let by_pid = |pid| sessions.iter().find(|s| s.pid == pid).expect("session");
        let ended: Vec<_> = auth_events(by_pid(1)).collect();
        assert_eq!(ended.len(), 2);
        assert_eq!(ended[0].activity, Activity::Logon);
        assert_eq!(ended[0].time_ms(), Some(1000));
        assert_eq!(ended[0].record().map(|p| p.line), Some(1));
        assert_eq!(ended[1].activity, Activity::Logoff);
        assert_eq!(ended[1].time_ms(), Some(5000));
        assert_eq!(ended[1].record().map(|p| p.line), Some(3));
        assert_eq!(ended[1].duration_ms(), Some(4000));
        assert_eq!(
            ended[1].event_id(),
            format!("{}#logoff", by_pid(1).session_id)
        );
        // Still open at the end of the input: no logoff.
        assert_eq!(auth_events(by_pid(2)).count(), 1);
        // Abandoned: only the logon, informational, with a reason.
        let probe: Vec<_> = auth_events(by_pid(3)).collect();
        assert_eq!(probe.len(), 1);
        assert_eq!(probe[0].outcome(), Outcome::Abandoned);
        assert_eq!(probe[0].severity(), Severity::Informational);
        assert!(probe[0].message().starts_with("logon abandoned"));
    }

    #[test]
    fn parts_split_an_announced_session() {
        let r = event(EventKind::Received, 1, 1000, 1);
        let az = event(EventKind::Authorized, 1, 1001, 2);
        let d = event(EventKind::Disconnected, 1, 5000, 3);
        let s = stitch(vec![r, az, d]).remove(0);
        let acts = |part| events_of(&s, part).map(|e| e.activity).collect::<Vec<_>>();
        assert_eq!(acts(Part::All), [Activity::Logon, Activity::Logoff]);
        assert_eq!(acts(Part::Logon), [Activity::Logon]);
        assert_eq!(acts(Part::Rest), [Activity::Logoff]);
        // Refused after all: the rest is the logon with its real outcome.
        let r = event(EventKind::Received, 2, 1000, 4);
        let f = event(EventKind::AuthFailed, 2, 1001, 5);
        let failed = stitch(vec![r, f]).remove(0);
        let rest: Vec<_> = events_of(&failed, Part::Rest).collect();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].outcome(), Outcome::Failure);
    }

    #[test]
    fn clients() {
        let mut s = stitch(vec![event(EventKind::Received, 1, 1, 1)]).remove(0);
        assert_eq!(Client::of(&s), None);
        for (text, remote) in [
            ("10.0.0.7", true),
            ("127.0.0.1", false),
            ("::1", false),
            ("fe80::1", true),
            ("[local]", false),
            ("db.example.com", true),
            ("localhost", false),
        ] {
            s.client_addr = Some(text.into());
            let client = Client::of(&s).expect("client");
            assert_eq!(client.is_remote(), remote, "{text}");
            assert_eq!(client.ip().is_some(), text.parse::<IpAddr>().is_ok());
        }
    }

    #[test]
    fn arns() {
        assert_eq!(
            arn_parts("arn:aws:sts::111122223333:assumed-role/app/i-0abc"),
            (Some("111122223333"), Some("AssumedRole"))
        );
        assert_eq!(
            arn_parts("arn:aws:iam::111122223333:user/alice"),
            (Some("111122223333"), Some("IAMUser"))
        );
        assert_eq!(arn_parts("not an arn"), (None, None));
    }
}
