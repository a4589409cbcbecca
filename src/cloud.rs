//! What pgtrail knows about the cloud side of a session: where a server
//! runs in AWS ([`CloudContext`]) and which IAM principal a database
//! session was ([`IamAttribution`]).
//!
//! These are plain data shared by three stages that must not know each
//! other: the CloudWatch source and the configuration fill a
//! `CloudContext`, the IAM correlator (`iam`) fills an `IamAttribution`,
//! and the sinks (session JSON, OCSF, ECS, CEF) read both. Nothing here
//! parses or serialises.

use std::fmt;

/// Where one server (a log file's `server` label, or a CloudWatch stream)
/// runs, as far as the configuration or the source says. Every field is
/// optional: unknown stays unknown, nothing is guessed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudContext {
    /// 12-digit AWS account id.
    pub account_id: Option<String>,
    /// AWS region, e.g. `us-east-1`.
    pub region: Option<String>,
    /// The `DbiResourceId` (`db-…`), `DbClusterResourceId` (`cluster-…`)
    /// or RDS Proxy id (`prx-…`) that `rds-db:connect` ARNs name.
    pub db_resource_id: Option<String>,
    /// The DB instance or cluster identifier (e.g. `mydb`).
    pub db_instance_id: Option<String>,
    /// The endpoint clients connect to, when known.
    pub host: Option<String>,
    /// The server port, when known.
    pub port: Option<u16>,
    /// The CloudWatch Logs group the records were read from.
    pub log_group: Option<String>,
}

impl CloudContext {
    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == CloudContext::default()
    }
}

/// How well a database session was tied to an IAM principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKind {
    /// One candidate, with address and time evidence agreeing.
    Exact,
    /// One best candidate, but without address agreement (time and policy
    /// only), or with weaker address evidence.
    Probable,
    /// Two or more candidates fit equally well.
    Ambiguous,
    /// IAM authentication was used but no candidate fits.
    None,
    /// The session did not log in through IAM (not PAM), and correlation
    /// of all sessions was not requested.
    NotApplicable,
}

impl MatchKind {
    pub const ALL: [MatchKind; 5] = [
        MatchKind::Exact,
        MatchKind::Probable,
        MatchKind::Ambiguous,
        MatchKind::None,
        MatchKind::NotApplicable,
    ];

    /// The snake_case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Probable => "probable",
            MatchKind::Ambiguous => "ambiguous",
            MatchKind::None => "none",
            MatchKind::NotApplicable => "not_applicable",
        }
    }
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One IAM session (or long-term principal) that could have signed the
/// token a database session logged in with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IamCandidate {
    /// The principal as it acts: `arn:aws:sts::…:assumed-role/<role>/<session>`,
    /// `arn:aws:iam::…:user/<name>`, `…:federated-user/<name>`.
    pub principal_arn: String,
    /// The role assumed (`arn:aws:iam::…:role/<name>`), for role sessions.
    pub role_arn: Option<String>,
    pub session_name: Option<String>,
    pub source_identity: Option<String>,
    /// The account the caller of `AssumeRole` came from, when it differs
    /// from or is known beside the role's account.
    pub source_account: Option<String>,
    pub access_key_id: Option<String>,
    /// When the credentials were issued (epoch ms).
    pub assumed_at_ms: Option<i64>,
    /// When they expire (epoch ms).
    pub expires_at_ms: Option<i64>,
    /// Signals that agreed, e.g. `policy`, `time`, `instance_ip`,
    /// `caller_ip`, `same_key_ip`; in a fixed order.
    pub evidence: Vec<String>,
    /// Provenance of the CloudTrail record(s) and inventory entries used
    /// (`file:line` or `file#eventID`).
    pub sources: Vec<String>,
    /// Higher is better; only comparable within one session.
    pub score: u32,
    /// For chained sessions, who assumed what, root first (caller ARNs
    /// and assumed-role ARNs), ending with this principal.
    pub chain: Vec<String>,
    /// The policy answer depends on conditions that were not evaluated.
    pub conditional: bool,
    /// The address evidence contradicts this candidate (an instance
    /// session used from another address): listed, never chosen.
    pub contradicted: bool,
}

/// The answer for one database session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamAttribution {
    pub kind: MatchKind,
    /// The chosen candidate (`exact`, `probable`); for `ambiguous`, none is
    /// chosen and `candidates` lists the tied ones.
    pub best: Option<IamCandidate>,
    /// How many candidates were considered plausible (allowed by policy and
    /// valid at connect time).
    pub candidate_count: usize,
    /// Every plausible candidate, best first (kept for `--explain`).
    pub candidates: Vec<IamCandidate>,
    /// Why the answer is what it is, in one sentence (e.g. "two instances
    /// share role app-role and neither address is known").
    pub reason: Option<String>,
    /// How many principals the authorization details allow to connect as
    /// the session's database user; `None` when no authorization details
    /// were given.
    pub policy_principals: Option<usize>,
    /// Whether the client address is known to the EC2 inventory or to
    /// CloudTrail; `None` when neither was given or there is no address.
    pub address_known: Option<bool>,
    /// An account of the chosen principal's chain other than the
    /// database's account (cross-account access).
    pub foreign_account: Option<String>,
}

impl IamAttribution {
    /// The answer for a session that did not use IAM authentication.
    pub fn not_applicable() -> Self {
        IamAttribution {
            kind: MatchKind::NotApplicable,
            best: None,
            candidate_count: 0,
            candidates: Vec::new(),
            reason: None,
            policy_principals: None,
            address_known: None,
            foreign_account: None,
        }
    }
}
