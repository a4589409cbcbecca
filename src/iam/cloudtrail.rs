//! CloudTrail → IAM sessions and access-key activity.
//!
//! Reads CloudTrail from files and directories (gzip or not, detected by
//! content) in every shape it is exported in: S3 delivery files
//! (`{"Records":[…]}`), one event per line (as CloudTrail writes to
//! CloudWatch Logs, or JSON-lines datasets; also the `<ISO time> <event>`
//! lines of a CloudWatch Logs export to S3), JSON arrays of events, and
//! `aws cloudtrail lookup-events` output (`{"Events":[{"CloudTrailEvent":
//! "<JSON string>"}]}`). Digest files and Insights events are skipped by
//! shape. Events are deduplicated on `eventID`.
//!
//! Owns: the [`IamSession`]s issued by `AssumeRole`,
//! `AssumeRoleWithWebIdentity`, `AssumeRoleWithSAML`, `GetFederationToken`
//! and `GetSessionToken` (role, assumed-role ARN, session name, source
//! identity, accounts, issued access key id, caller address, start,
//! expiration, the parent session of a chained role), and every call made
//! with an access key ([`KeyUse`]: time, `sourceIPAddress`,
//! `vpcEndpointId`). Never keeps a session token or secret.
//!
//! Another source (a CloudWatch Logs group holding CloudTrail) feeds events
//! one by one through [`CloudTrailIndex::add_event_json`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

use super::InputError;
use super::json::{str_at, string_at};

/// How long a chain of IAM credentials may be used when the record does
/// not say (AssumeRole's default `DurationSeconds`).
const DEFAULT_ROLE_SECONDS: i64 = 3600;
/// GetFederationToken / GetSessionToken default: 12 hours.
const DEFAULT_TOKEN_SECONDS: i64 = 12 * 3600;

/// The STS call that issued a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionKind {
    AssumeRole,
    AssumeRoleWithWebIdentity,
    AssumeRoleWithSaml,
    GetFederationToken,
    GetSessionToken,
}

impl SessionKind {
    fn from_event(name: &str) -> Option<SessionKind> {
        Some(match name {
            "AssumeRole" => SessionKind::AssumeRole,
            "AssumeRoleWithWebIdentity" => SessionKind::AssumeRoleWithWebIdentity,
            "AssumeRoleWithSAML" => SessionKind::AssumeRoleWithSaml,
            "GetFederationToken" => SessionKind::GetFederationToken,
            "GetSessionToken" => SessionKind::GetSessionToken,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::AssumeRole => "AssumeRole",
            SessionKind::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            SessionKind::AssumeRoleWithSaml => "AssumeRoleWithSAML",
            SessionKind::GetFederationToken => "GetFederationToken",
            SessionKind::GetSessionToken => "GetSessionToken",
        }
    }

    /// A role session (as opposed to a user's federation/session token).
    pub fn is_role(self) -> bool {
        matches!(
            self,
            SessionKind::AssumeRole
                | SessionKind::AssumeRoleWithWebIdentity
                | SessionKind::AssumeRoleWithSaml
        )
    }
}

/// One set of temporary credentials issued by STS, as CloudTrail saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamSession {
    pub kind: SessionKind,
    /// `arn:aws:iam::<account>:role/<name>` (role sessions).
    pub role_arn: Option<String>,
    /// The principal as it acts: `…:assumed-role/<role>/<session>`,
    /// `…:federated-user/<name>`, or the IAM user for GetSessionToken.
    pub principal_arn: Option<String>,
    pub session_name: Option<String>,
    pub source_identity: Option<String>,
    /// The account the credentials belong to.
    pub account: Option<String>,
    /// `userIdentity` of the caller: type, ARN, account, access key id.
    pub caller_type: Option<String>,
    pub caller_arn: Option<String>,
    pub caller_account: Option<String>,
    pub caller_key: Option<String>,
    /// The service that called on the principal's behalf
    /// (`ec2.amazonaws.com` for instance profiles).
    pub invoked_by: Option<String>,
    /// The issued access key id (`ASIA…`).
    pub access_key_id: String,
    /// `sourceIPAddress` as logged: an IP or a service name.
    pub caller_ip: Option<String>,
    /// When the credentials were issued (`eventTime`), epoch ms.
    pub start_ms: i64,
    /// When they expire, epoch ms.
    pub expires_ms: i64,
    /// True when the record had no readable expiration and the default
    /// duration was assumed.
    pub expires_estimated: bool,
    /// The session whose key made this call (role chaining), an index
    /// into [`CloudTrailIndex::sessions`].
    pub parent: Option<usize>,
    /// Provenance of every record of this session (`file:line` or
    /// `file#eventID`).
    pub sources: Vec<String>,
}

impl IamSession {
    /// The principal whose identity policies bound this session: the role
    /// for role sessions, the calling IAM user for GetFederationToken and
    /// GetSessionToken (a federation token's own policy is not read).
    pub fn policy_arn(&self) -> Option<&str> {
        if self.kind.is_role() {
            self.role_arn.as_deref()
        } else {
            self.caller_arn.as_deref()
        }
    }
}

/// One call made with an access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub time_ms: i64,
    pub event_name: String,
    /// `sourceIPAddress` as logged.
    pub source_ip: String,
    pub vpc_endpoint_id: Option<String>,
    /// `userIdentity.arn` of the caller.
    pub principal_arn: Option<String>,
    pub source: String,
}

/// Counts of what was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudTrailStats {
    pub files: usize,
    pub events: usize,
    pub duplicates: usize,
    /// Digest files, Insights events, records that are not API calls.
    pub skipped: usize,
    /// Records that could not be parsed (also listed in `errors`).
    pub bad_records: usize,
    pub errors: Vec<String>,
}

/// Everything CloudTrail says that correlation needs.
#[derive(Debug, Default)]
pub struct CloudTrailIndex {
    /// Issued sessions, ordered by (start, access key id) after
    /// [`CloudTrailIndex::finish`].
    pub sessions: Vec<IamSession>,
    /// Calls per access key id, in time order after `finish`.
    pub key_uses: HashMap<String, Vec<KeyUse>>,
    /// Access keys seen per IAM user ARN (long-term keys).
    pub user_keys: HashMap<String, BTreeSet<String>>,
    /// Every `sourceIPAddress` that is an IP address.
    pub addresses: HashSet<IpAddr>,
    pub stats: CloudTrailStats,
    seen: HashSet<String>,
    by_key: HashMap<String, usize>,
    /// Policy principal ARN → sessions (after `finish`).
    by_principal: HashMap<String, Vec<usize>>,
}

/// Parses CloudTrail's `eventTime` (ISO 8601 / RFC 3339), epoch ms.
pub fn parse_event_time(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    crate::time::parse_iso_utc(text.as_bytes())
        .filter(|&(_, used)| used == text.len())
        .map(|(ms, _)| ms)
}

/// Parses `credentials.expiration` in any form CloudTrail has written:
/// `Jul 18, 2014 4:07:39 PM`, `Sep 14, 2020, 7:01:26 AM` (both UTC), or
/// ISO 8601. Epoch ms.
pub fn parse_expiration(text: &str) -> Option<i64> {
    let text = text.trim();
    for format in ["%b %d, %Y, %I:%M:%S %p", "%b %d, %Y %I:%M:%S %p"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    parse_event_time(text)
}

/// A CloudWatch Logs export to S3 writes `<ISO time> <message>` per line:
/// the event is the message.
fn strip_export_time(line: &str) -> &str {
    match line.split_once(' ') {
        Some((time, rest)) if rest.starts_with('{') && parse_event_time(time).is_some() => rest,
        _ => line,
    }
}

fn is_event(v: &Value) -> bool {
    v.get("eventName").is_some_and(Value::is_string)
        && (v.get("eventSource").is_some() || v.get("eventVersion").is_some())
}

impl CloudTrailIndex {
    pub fn new() -> Self {
        CloudTrailIndex::default()
    }

    /// Reads a file or directory of CloudTrail. Errors in single records
    /// are counted and listed in `stats.errors` (naming file and line or
    /// record); a file that cannot be read, or a named file that holds no
    /// CloudTrail at all, is an error.
    pub fn read_path(&mut self, path: &Path) -> Result<(), InputError> {
        let walked = path.is_dir();
        for (file, bytes) in super::read_files(path)? {
            match self.read_bytes(&file.display().to_string(), &bytes) {
                Ok(()) => self.stats.files += 1,
                Err(message) if walked => {
                    self.stats.skipped += 1;
                    self.stats
                        .errors
                        .push(format!("{}: skipped: {message}", file.display()));
                }
                Err(message) => return Err(InputError::unrecognised(&file, message)),
            }
        }
        Ok(())
    }

    /// Reads one (decompressed) file. `Err` when it is not CloudTrail.
    pub fn read_bytes(&mut self, label: &str, bytes: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(bytes);
        let trimmed = text.trim_start();
        if trimmed.is_empty() {
            return Err("empty".to_owned());
        }
        if let Ok(whole) = serde_json::from_str::<Value>(trimmed) {
            return self.read_document(label, &whole);
        }
        // One event per line.
        let mut events = 0usize;
        let mut bad = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let provenance = format!("{label}:{}", i + 1);
            match serde_json::from_str::<Value>(strip_export_time(line)) {
                Ok(v) if is_event(&v) => {
                    self.add_event(&provenance, &v);
                    events += 1;
                }
                Ok(_) => bad.push(format!("{provenance}: not a CloudTrail event")),
                Err(e) => bad.push(format!("{provenance}: bad JSON: {e}")),
            }
        }
        if events == 0 {
            return Err(match bad.first() {
                Some(first) => format!("not CloudTrail ({first})"),
                None => "not CloudTrail".to_owned(),
            });
        }
        self.stats.bad_records += bad.len();
        self.stats.errors.extend(bad);
        Ok(())
    }

    fn read_document(&mut self, label: &str, doc: &Value) -> Result<(), String> {
        if doc.get("digestStartTime").is_some() || doc.get("logFiles").is_some() {
            self.stats.skipped += 1;
            return Ok(());
        }
        if let Some(records) = doc.get("Records").and_then(Value::as_array) {
            for (i, r) in records.iter().enumerate() {
                let provenance = match str_at(r, &["eventID"]) {
                    Some(id) => format!("{label}#{id}"),
                    None => format!("{label}#Records[{i}]"),
                };
                self.add_checked(&provenance, r);
            }
            return Ok(());
        }
        if let Some(events) = doc.get("Events").and_then(Value::as_array) {
            for (i, e) in events.iter().enumerate() {
                let provenance = match str_at(e, &["EventId"]) {
                    Some(id) => format!("{label}#{id}"),
                    None => format!("{label}#Events[{i}]"),
                };
                match e.get("CloudTrailEvent").and_then(Value::as_str) {
                    Some(inner) => {
                        if let Err(message) = self.add_event_json(&provenance, inner) {
                            self.stats.bad_records += 1;
                            self.stats.errors.push(message);
                        }
                    }
                    None => {
                        self.stats.bad_records += 1;
                        self.stats
                            .errors
                            .push(format!("{provenance}: no CloudTrailEvent"));
                    }
                }
            }
            return Ok(());
        }
        if let Some(items) = doc.as_array() {
            if !items.iter().any(is_event) {
                return Err("a JSON array without CloudTrail events".to_owned());
            }
            for (i, r) in items.iter().enumerate() {
                let provenance = match str_at(r, &["eventID"]) {
                    Some(id) => format!("{label}#{id}"),
                    None => format!("{label}#[{i}]"),
                };
                self.add_checked(&provenance, r);
            }
            return Ok(());
        }
        if is_event(doc) {
            self.add_event(&format!("{label}:1"), doc);
            return Ok(());
        }
        Err("JSON, but neither CloudTrail records, events nor lookup-events output".to_owned())
    }

    fn add_checked(&mut self, provenance: &str, v: &Value) {
        if is_event(v) {
            self.add_event(provenance, v);
        } else {
            self.stats.bad_records += 1;
            self.stats
                .errors
                .push(format!("{provenance}: not a CloudTrail event"));
        }
    }

    /// Adds one event given as JSON text (a CloudWatch Logs event message
    /// of a trail's log group, a lookup-events `CloudTrailEvent`).
    /// `provenance` names where it came from (e.g. `group/stream#eventId`).
    /// Bad JSON is an error naming the provenance; nothing panics.
    pub fn add_event_json(&mut self, provenance: &str, text: &str) -> Result<(), String> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) if is_event(&v) => {
                self.add_event(provenance, &v);
                Ok(())
            }
            Ok(_) => Err(format!("{provenance}: not a CloudTrail event")),
            Err(e) => Err(format!("{provenance}: bad JSON: {e}")),
        }
    }

    /// Adds one parsed CloudTrail event.
    pub fn add_event(&mut self, provenance: &str, v: &Value) {
        if let Some(id) = str_at(v, &["eventID"])
            && !self.seen.insert(id.to_owned())
        {
            self.stats.duplicates += 1;
            return;
        }
        let event_type = str_at(v, &["eventType"]);
        if event_type == Some("AwsCloudTrailInsight") {
            self.stats.skipped += 1;
            return;
        }
        self.stats.events += 1;
        let Some(time_ms) = str_at(v, &["eventTime"])
            .or_else(|| str_at(v, &["@timestamp"]))
            .and_then(parse_event_time)
        else {
            self.stats.bad_records += 1;
            self.stats
                .errors
                .push(format!("{provenance}: no readable eventTime"));
            return;
        };
        let name = str_at(v, &["eventName"]).unwrap_or_default();
        let source_ip = str_at(v, &["sourceIPAddress"]);
        if let Some(ip) = source_ip.and_then(super::parse_ip) {
            self.addresses.insert(ip);
        }
        let caller_key = string_at(v, &["userIdentity", "accessKeyId"]);
        let caller_arn = string_at(v, &["userIdentity", "arn"]);
        if let Some(key) = &caller_key {
            if let Some(ip) = source_ip {
                self.key_uses.entry(key.clone()).or_default().push(KeyUse {
                    time_ms,
                    event_name: name.to_owned(),
                    source_ip: ip.to_owned(),
                    vpc_endpoint_id: string_at(v, &["vpcEndpointId"]),
                    principal_arn: caller_arn.clone(),
                    source: provenance.to_owned(),
                });
            }
            if str_at(v, &["userIdentity", "type"]) == Some("IAMUser")
                && let Some(arn) = &caller_arn
            {
                self.user_keys
                    .entry(arn.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        let Some(kind) = SessionKind::from_event(name) else {
            return;
        };
        if v.get("errorCode").is_some_and(|e| !e.is_null()) {
            return;
        }
        let Some(access_key_id) = string_at(v, &["responseElements", "credentials", "accessKeyId"])
        else {
            return;
        };
        let role_arn = if kind.is_role() {
            string_at(v, &["requestParameters", "roleArn"])
        } else {
            None
        };
        let mut session_name = match kind {
            SessionKind::GetFederationToken => string_at(v, &["requestParameters", "name"]),
            SessionKind::GetSessionToken => None,
            _ => string_at(v, &["requestParameters", "roleSessionName"]),
        };
        let account = role_arn
            .as_deref()
            .and_then(arn_account)
            .map(str::to_owned)
            .or_else(|| string_at(v, &["recipientAccountId"]));
        let principal_arn = match kind {
            SessionKind::GetFederationToken => {
                string_at(v, &["responseElements", "federatedUser", "arn"])
            }
            SessionKind::GetSessionToken => caller_arn.clone(),
            _ => string_at(v, &["responseElements", "assumedRoleUser", "arn"]).or_else(|| {
                // Instance-profile records carry no assumedRoleUser; the ARN
                // follows from role and session name.
                let role = role_arn.as_deref()?;
                let (acct, name) = (arn_account(role)?, role.rsplit('/').next()?);
                Some(format!(
                    "arn:aws:sts::{acct}:assumed-role/{name}/{}",
                    session_name.as_deref()?
                ))
            }),
        };
        if session_name.is_none() && kind.is_role() {
            session_name = principal_arn
                .as_deref()
                .and_then(|a| a.rsplit('/').next())
                .map(str::to_owned);
        }
        let source_identity = string_at(v, &["responseElements", "sourceIdentity"])
            .or_else(|| string_at(v, &["requestParameters", "sourceIdentity"]))
            .or_else(|| string_at(v, &["userIdentity", "sessionContext", "sourceIdentity"]));
        let parsed_expiry = str_at(v, &["responseElements", "credentials", "expiration"])
            .and_then(parse_expiration);
        let default_seconds = v
            .get("requestParameters")
            .and_then(|r| r.get("durationSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(if kind.is_role() {
                DEFAULT_ROLE_SECONDS
            } else {
                DEFAULT_TOKEN_SECONDS
            });
        let session = IamSession {
            kind,
            role_arn,
            principal_arn,
            session_name,
            source_identity,
            account,
            caller_type: string_at(v, &["userIdentity", "type"]),
            caller_arn,
            caller_account: string_at(v, &["userIdentity", "accountId"]),
            caller_key,
            invoked_by: string_at(v, &["userIdentity", "invokedBy"]),
            access_key_id: access_key_id.clone(),
            caller_ip: source_ip.map(str::to_owned),
            start_ms: time_ms,
            expires_ms: parsed_expiry
                .unwrap_or_else(|| time_ms.saturating_add(default_seconds.saturating_mul(1000))),
            expires_estimated: parsed_expiry.is_none(),
            parent: None,
            sources: vec![provenance.to_owned()],
        };
        match self.by_key.get(&access_key_id) {
            // The same issuance seen twice: a cross-account AssumeRole is
            // delivered to both accounts with different eventIDs.
            Some(&i) => merge(&mut self.sessions[i], session),
            None => {
                self.by_key.insert(access_key_id, self.sessions.len());
                self.sessions.push(session);
            }
        }
    }

    /// Orders sessions and key uses deterministically and links chained
    /// sessions to their parents. Call once after the last input.
    pub fn finish(&mut self) {
        self.sessions.sort_by(|a, b| {
            (a.start_ms, &a.access_key_id, &a.sources).cmp(&(
                b.start_ms,
                &b.access_key_id,
                &b.sources,
            ))
        });
        self.by_key = self
            .sessions
            .iter()
            .enumerate()
            .map(|(i, s)| (s.access_key_id.clone(), i))
            .collect();
        for i in 0..self.sessions.len() {
            let parent = self.sessions[i]
                .caller_key
                .as_ref()
                .and_then(|k| self.by_key.get(k))
                .copied()
                .filter(|&p| p != i);
            self.sessions[i].parent = parent;
        }
        self.by_principal.clear();
        for (i, s) in self.sessions.iter().enumerate() {
            if let Some(arn) = s.policy_arn() {
                self.by_principal.entry(arn.to_owned()).or_default().push(i);
            }
        }
        for uses in self.key_uses.values_mut() {
            uses.sort_by(|a, b| (a.time_ms, &a.source).cmp(&(b.time_ms, &b.source)));
        }
    }

    /// The sessions whose permissions are those of `arn` (see
    /// [`IamSession::policy_arn`]), in start order. Valid after `finish`.
    pub fn sessions_of(&self, arn: &str) -> &[usize] {
        self.by_principal.get(arn).map_or(&[][..], Vec::as_slice)
    }

    /// The chain of sessions that led to `index`, root first (guarded
    /// against cycles).
    pub fn chain(&self, index: usize) -> Vec<usize> {
        let mut chain = vec![index];
        let mut cur = index;
        while let Some(p) = self.sessions[cur].parent {
            if chain.contains(&p) {
                break;
            }
            chain.push(p);
            cur = p;
        }
        chain.reverse();
        chain
    }
}

/// Fills what `into` lacks from `other` (another copy of the same
/// issuance) and keeps both provenances.
fn merge(into: &mut IamSession, other: IamSession) {
    fn fill(slot: &mut Option<String>, value: Option<String>) {
        if slot.is_none() {
            *slot = value;
        }
    }
    // The caller account's copy names the caller; the role account's copy
    // only says `AWSAccount`.
    if into.caller_type.as_deref() == Some("AWSAccount")
        && other.caller_type.as_deref() != Some("AWSAccount")
    {
        into.caller_type = other.caller_type.clone();
        into.caller_arn.clone_from(&other.caller_arn);
        into.caller_key.clone_from(&other.caller_key);
    }
    fill(&mut into.role_arn, other.role_arn);
    fill(&mut into.principal_arn, other.principal_arn);
    fill(&mut into.session_name, other.session_name);
    fill(&mut into.source_identity, other.source_identity);
    fill(&mut into.caller_arn, other.caller_arn);
    fill(&mut into.caller_account, other.caller_account);
    fill(&mut into.caller_key, other.caller_key);
    fill(&mut into.caller_ip, other.caller_ip);
    if into.expires_estimated && !other.expires_estimated {
        into.expires_ms = other.expires_ms;
        into.expires_estimated = false;
    }
    for s in other.sources {
        if !into.sources.contains(&s) {
            into.sources.push(s);
        }
    }
}

/// The account field of an ARN (`arn:aws:iam::<account>:…`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .unwrap_or(i64::MIN)
    }

    #[test]
    fn expiration_formats() {
        assert_eq!(
            parse_expiration("Jul 18, 2014 4:07:39 PM"),
            Some(ms("2014-07-18T16:07:39Z"))
        );
        assert_eq!(
            parse_expiration("Sep 14, 2020, 7:01:26 AM"),
            Some(ms("2020-09-14T07:01:26Z"))
        );
        assert_eq!(
            parse_expiration("Nov 30, 2024, 8:43:17 PM"),
            Some(ms("2024-11-30T20:43:17Z"))
        );
        assert_eq!(
            parse_expiration("Oct 2, 2019 11:12:29 PM"),
            Some(ms("2019-10-02T23:12:29Z"))
        );
        // 12 AM is midnight, 12 PM noon.
        assert_eq!(
            parse_expiration("Jan 1, 2020, 12:00:00 AM"),
            Some(ms("2020-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_expiration("Jan 1, 2020, 12:30:00 PM"),
            Some(ms("2020-01-01T12:30:00Z"))
        );
        assert_eq!(
            parse_expiration("2021-09-15T04:00:36Z"),
            Some(ms("2021-09-15T04:00:36Z"))
        );
        assert_eq!(parse_expiration("tomorrow"), None);
        assert_eq!(parse_expiration(""), None);
    }

    fn assume(id: &str, key: &str, caller_key: Option<&str>, time: &str) -> String {
        let caller = match caller_key {
            Some(k) => format!(
                r#"{{"type":"AssumedRole","arn":"arn:aws:sts::111111111111:assumed-role/a/b","accountId":"111111111111","accessKeyId":"{k}"}}"#
            ),
            None => r#"{"type":"IAMUser","arn":"arn:aws:iam::111111111111:user/u","accountId":"111111111111","accessKeyId":"AKIAUSER"}"#.to_owned(),
        };
        format!(
            r#"{{"eventVersion":"1.08","eventID":"{id}","eventTime":"{time}","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","sourceIPAddress":"192.0.2.1","userIdentity":{caller},"requestParameters":{{"roleArn":"arn:aws:iam::111111111111:role/r","roleSessionName":"s"}},"responseElements":{{"credentials":{{"accessKeyId":"{key}","sessionToken":"SECRET","expiration":"Jan 1, 2020, 1:00:00 AM"}}}}}}"#
        )
    }

    #[test]
    fn dedupe_on_event_id_and_chain() {
        let mut idx = CloudTrailIndex::new();
        let a = assume("e1", "ASIA1", None, "2020-01-01T00:00:00Z");
        let b = assume("e2", "ASIA2", Some("ASIA1"), "2020-01-01T00:10:00Z");
        let text = format!("{a}\n2020-01-01T00:10:05.000Z {b}\n{a}\nnot json\n");
        assert!(idx.read_bytes("t.jsonl", text.as_bytes()).is_ok());
        idx.finish();
        assert_eq!(idx.stats.events, 2);
        assert_eq!(idx.stats.duplicates, 1);
        assert_eq!(idx.stats.bad_records, 1);
        assert!(idx.stats.errors[0].starts_with("t.jsonl:4: bad JSON"));
        assert_eq!(idx.sessions.len(), 2);
        assert_eq!(idx.sessions[1].parent, Some(0));
        assert_eq!(idx.chain(1), vec![0, 1]);
        assert_eq!(idx.sessions[0].sources, vec!["t.jsonl:1".to_owned()]);
        assert_eq!(idx.sessions[0].expires_ms, ms("2020-01-01T01:00:00Z"));
        // The chained call is also a use of the parent's key.
        assert_eq!(idx.key_uses["ASIA1"].len(), 1);
        // Never a session token anywhere.
        assert!(!format!("{:?}", idx.sessions).contains("SECRET"));
    }

    #[test]
    fn shapes_and_errors() {
        let mut idx = CloudTrailIndex::new();
        let a = assume("e1", "ASIA1", None, "2020-01-01T00:00:00Z");
        let records = format!(r#"{{"Records":[{a}, {{"x":1}}]}}"#);
        assert!(idx.read_bytes("r.json", records.as_bytes()).is_ok());
        assert_eq!(idx.stats.bad_records, 1);
        assert_eq!(
            idx.stats.errors[0],
            "r.json#Records[1]: not a CloudTrail event"
        );
        let lookup = serde_json::json!({"Events":[{"EventId":"e9","CloudTrailEvent": assume("e9","ASIA9",None,"2020-01-01T00:00:00Z")}, {"EventId":"bad","CloudTrailEvent":"{oops"}]});
        assert!(
            idx.read_bytes("l.json", lookup.to_string().as_bytes())
                .is_ok()
        );
        assert!(
            idx.stats
                .errors
                .iter()
                .any(|e| e.starts_with("l.json#bad: bad JSON"))
        );
        let digest = r#"{"awsAccountId":"1","digestStartTime":"x","logFiles":[]}"#;
        assert!(idx.read_bytes("d.json", digest.as_bytes()).is_ok());
        assert_eq!(idx.stats.skipped, 1);
        let insight = r#"{"Records":[{"eventVersion":"1.07","eventType":"AwsCloudTrailInsight","eventID":"i1","eventTime":"2020-01-01T00:00:00Z","eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceInformation","insightDetails":{"state":"Start"}}]}"#;
        assert!(idx.read_bytes("i.json", insight.as_bytes()).is_ok());
        assert_eq!(idx.stats.skipped, 2);
        assert!(idx.read_bytes("n.json", b"{\"a\":1}").is_err());
        assert!(idx.read_bytes("n.txt", b"hello\nworld\n").is_err());
        assert!(idx.read_bytes("e.txt", b"").is_err());
        idx.finish();
        assert_eq!(idx.sessions.len(), 2);
    }

    proptest::proptest! {
        /// No input makes the reader panic: arbitrary bytes, and real
        /// records cut anywhere or with a byte changed.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                        cut in 0usize..2000, flip in 0usize..2000, byte in proptest::prelude::any::<u8>()) {
            let mut idx = CloudTrailIndex::new();
            let _ = idx.read_bytes("x", &bytes);
            let real = format!("{}\n{}", assume("e1", "ASIA1", None, "2020-01-01T00:00:00Z"),
                assume("e2", "ASIA2", Some("ASIA1"), "2020-01-01T00:10:00Z"));
            let mut b = real.into_bytes();
            if !b.is_empty() {
                let i = flip % b.len();
                b[i] = byte;
                b.truncate(cut.min(b.len()));
            }
            let _ = idx.read_bytes("y", &b);
            let _ = idx.add_event_json("z", &String::from_utf8_lossy(&bytes));
            idx.finish();
            for i in 0..idx.sessions.len() {
                let _ = idx.chain(i);
            }
        }
    }
}
