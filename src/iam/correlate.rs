//! Ranking the IAM candidates of one database session.
//!
//! A candidate is an IAM session seen in CloudTrail (or a long-term IAM
//! user) that
//! 1. may `rds-db:connect` as the session's database user on its resource
//!    (`policy`; `policy_conditional` when conditions were not evaluated;
//!    `policy_not_checked` when no authorization details were given), and
//! 2. was valid when the connection was made: a token is signed with live
//!    credentials and is good for 15 minutes, so the connection time lies
//!    in `[session start, expiration + 15 min)` (`time`). Long-term user
//!    keys have no such window (`long_term_keys`).
//!
//! Address evidence then ranks them (any one is enough):
//! - `instance_ip`: the client address belongs to an EC2 instance whose id
//!   is the session name (instance-profile sessions are named after the
//!   instance) and whose instance profile holds the session's role;
//! - `caller_ip`: the STS call that issued the session came from the
//!   client address;
//! - `same_key_ip`: another call with the session's (or the user's) access
//!   key came from the client address within an hour of the connection.
//!
//! An instance-profile session whose instance is known to hold other
//! addresses only is contradicted (`address_mismatch`): listed, never
//! chosen, unless its key was used from the client address (then it is
//! chosen, and `address_mismatch` stays in the evidence: the instance's
//! credentials were used elsewhere) — unless the client address is a network interface without an
//! instance (a NAT gateway, proxy or load balancer: `via_interface`),
//! which hides the real client.
//!
//! The answer (`match`):
//! - `exact`: one best principal, with address and time agreement;
//! - `probable`: one best principal without address agreement;
//! - `ambiguous`: two or more principals fit equally well;
//! - `none`: an IAM login (PAM) that no candidate fits;
//! - `not_applicable`: not an IAM login (unless `--correlate-all` found
//!   a candidate). Sessions whose method the log does not show
//!   (successful logins before PostgreSQL 14) are treated as with
//!   `--correlate-all`.
//!
//! Several sessions of one principal (instance credentials are refreshed
//! before they expire) are not ambiguity: the latest one is chosen.
//! Candidates are ordered by score, principal ARN, latest start, key:
//! deterministic for any input order.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use super::cloudtrail::{CloudTrailIndex, IamSession, arn_account};
use super::config::AwsConfig;
use super::inventory::Inventory;
use super::policy::{Access, AuthorizationDetails, PrincipalKind, Target};
use crate::cloud::{CloudContext, IamAttribution, IamCandidate, MatchKind};
use crate::event::FailureClass;
use crate::session::Session;

/// An IAM token is valid for 15 minutes after signing.
pub const TOKEN_LIFETIME_MS: i64 = 15 * 60 * 1000;
/// How far from the connection a call with the same key still counts.
pub const SAME_KEY_WINDOW_MS: i64 = 60 * 60 * 1000;

const ADDRESS_SCORE: u32 = 100;
const SESSION_TIME_SCORE: u32 = 10;
const LONG_TERM_SCORE: u32 = 5;

/// What to correlate and how much to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorrelateOptions {
    /// Correlate every session, not only PAM (IAM) logins.
    pub all: bool,
    /// Keep every candidate with its evidence (`--explain`).
    pub explain: bool,
}

/// Everything read from AWS before the logs.
#[derive(Debug, Default)]
pub struct IamIndex {
    pub trail: CloudTrailIndex,
    pub auth: Option<AuthorizationDetails>,
    pub inventory: Option<Inventory>,
    pub config: AwsConfig,
}

/// Fills `Session::iam` (and `Session::cloud` from the configuration).
pub struct Correlator {
    index: IamIndex,
    options: CorrelateOptions,
    /// Policy answers per (region, account, resource id, db user): most
    /// logs have few distinct users.
    allowed_cache: RefCell<HashMap<CacheKey, Rc<Vec<Allowed>>>>,
}

type CacheKey = (Option<String>, Option<String>, Option<String>, String);

/// A principal allowed to connect, with its answer.
#[derive(Debug, Clone)]
struct Allowed {
    arn: String,
    kind: PrincipalKind,
    source: String,
    access: Access,
}

/// Whether a session logged in through PAM (how RDS IAM authentication
/// shows in the log), successfully or not.
pub fn is_iam_login(s: &Session) -> bool {
    s.auth_method.as_deref() == Some("pam") || s.failure_class == Some(FailureClass::Pam)
}

impl Correlator {
    pub fn new(mut index: IamIndex, options: CorrelateOptions) -> Self {
        index.trail.finish();
        Correlator {
            index,
            options,
            allowed_cache: RefCell::new(HashMap::new()),
        }
    }

    /// Who may connect to the target (`None` without authorization
    /// details), cached.
    fn allowed(&self, t: &Target<'_>) -> Option<Rc<Vec<Allowed>>> {
        let auth = self.index.auth.as_ref()?;
        let key: CacheKey = (
            t.region.map(str::to_owned),
            t.account.map(str::to_owned),
            t.resource_id.map(str::to_owned),
            t.db_user.to_owned(),
        );
        if let Some(hit) = self.allowed_cache.borrow().get(&key) {
            return Some(hit.clone());
        }
        let list: Rc<Vec<Allowed>> = Rc::new(
            auth.allowed(t)
                .into_iter()
                .map(|(p, access)| Allowed {
                    arn: p.arn.clone(),
                    kind: p.kind,
                    source: p.source.clone(),
                    access,
                })
                .collect(),
        );
        self.allowed_cache.borrow_mut().insert(key, list.clone());
        Some(list)
    }

    pub fn index(&self) -> &IamIndex {
        &self.index
    }

    pub fn options(&self) -> CorrelateOptions {
        self.options
    }

    /// Correlates one session in place.
    pub fn correlate(&self, s: &mut Session) {
        let ctx = self.index.config.context_for(&s.server, s.cloud.as_deref());
        if !ctx.is_empty() && s.cloud.as_deref() != Some(&ctx) {
            s.cloud = Some(Arc::new(ctx.clone()));
        }
        let iam_login = is_iam_login(s);
        // PostgreSQL before 14 logs no method for a successful login: such
        // sessions are correlated as with --correlate-all (a fit is
        // reported, no fit is not_applicable).
        let method_unknown = s.auth_method.is_none()
            && s.failure_class.is_none()
            && s.outcome == crate::session::Outcome::Success;
        if !iam_login && !self.options.all && !method_unknown {
            s.iam = Some(Box::new(IamAttribution::not_applicable()));
            return;
        }
        let mut answer = self.attribute(s, &ctx, iam_login);
        if method_unknown
            && answer.kind != MatchKind::NotApplicable
            && let Some(reason) = &mut answer.reason
        {
            reason.push_str(" (the log does not show the authentication method)");
        }
        if answer.kind == MatchKind::NotApplicable {
            answer.reason = None;
        }
        s.iam = Some(Box::new(answer));
    }

    fn attribute(&self, s: &Session, ctx: &CloudContext, iam_login: bool) -> IamAttribution {
        let mut answer = IamAttribution::not_applicable();
        answer.kind = if iam_login {
            MatchKind::None
        } else {
            MatchKind::NotApplicable
        };
        let Some(user) = s.user.as_deref() else {
            answer.reason = Some("the log names no database user".to_owned());
            return answer;
        };
        let Some(t) = s.start_ms else {
            answer.reason = Some("the connection has no time".to_owned());
            return answer;
        };
        let client: Option<IpAddr> = s.client_addr.as_deref().and_then(super::parse_ip);
        let trail = &self.index.trail;
        let inventory = self.index.inventory.as_ref();
        if let Some(ip) = client
            && (inventory.is_some() || trail.stats.events > 0)
        {
            answer.address_known = Some(
                inventory.is_some_and(|inv| !inv.hosts(&ip).is_empty())
                    || trail.addresses.contains(&ip),
            );
        }
        let target = Target {
            region: ctx.region.as_deref(),
            account: ctx.account_id.as_deref(),
            resource_id: ctx.db_resource_id.as_deref(),
            db_user: user,
        };
        let allowed = self.allowed(&target);
        answer.policy_principals = allowed.as_ref().map(|l| l.len());
        // Only the sessions of allowed principals (all without policy).
        let indices: Vec<usize> = match &allowed {
            None => (0..trail.sessions.len()).collect(),
            Some(list) => {
                let mut v: Vec<usize> = list
                    .iter()
                    .flat_map(|a| trail.sessions_of(&a.arn).iter().copied())
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        };

        let mut candidates: Vec<IamCandidate> = Vec::new();
        let mut live_elsewhere = 0usize;
        for i in indices {
            let sess = &trail.sessions[i];
            let access = match (&allowed, sess.policy_arn()) {
                (None, _) => None,
                (Some(list), Some(arn)) => match list.iter().find(|a| a.arn == arn) {
                    Some(a) => Some(&a.access),
                    None => continue,
                },
                (Some(_), None) => continue,
            };
            if !(t >= sess.start_ms && t < sess.expires_ms.saturating_add(TOKEN_LIFETIME_MS)) {
                live_elsewhere += 1;
                continue;
            }
            let mut c = self.session_candidate(i, sess, access, client, t);
            if sess.kind == super::cloudtrail::SessionKind::GetFederationToken {
                c.evidence
                    .push("federation_policy_not_evaluated".to_owned());
            }
            candidates.push(c);
        }
        if let Some(list) = &allowed {
            for a in list.iter().filter(|a| a.kind == PrincipalKind::User) {
                candidates.push(self.user_candidate(&a.arn, &a.source, &a.access, client, t));
            }
        }
        candidates.sort_by(|a, b| {
            b.score
                .cmp(&a.score)
                .then_with(|| a.principal_arn.cmp(&b.principal_arn))
                .then_with(|| b.assumed_at_ms.cmp(&a.assumed_at_ms))
                .then_with(|| a.access_key_id.cmp(&b.access_key_id))
        });
        let (fits, contradicted): (Vec<IamCandidate>, Vec<IamCandidate>) =
            candidates.into_iter().partition(|c| !c.contradicted);
        answer.candidate_count = fits.len();

        let Some(best) = fits.first() else {
            answer.reason = Some(
                self.reason_for_none(
                    user,
                    &allowed
                        .as_ref()
                        .map(|l| l.iter().map(|a| a.arn.clone()).collect()),
                    &contradicted,
                    live_elsewhere,
                ),
            );
            if self.options.explain {
                answer.candidates = contradicted;
            }
            return answer;
        };
        let top: Vec<&IamCandidate> = fits.iter().filter(|c| c.score == best.score).collect();
        let principals: BTreeSet<&str> = top.iter().map(|c| c.principal_arn.as_str()).collect();
        let agreed = has_address(best);
        if principals.len() > 1 {
            answer.kind = MatchKind::Ambiguous;
            answer.reason = Some(format!(
                "{} principals fit equally well ({}){}",
                principals.len(),
                principals.iter().copied().collect::<Vec<_>>().join(", "),
                if agreed {
                    ""
                } else {
                    "; the client address singles none out"
                }
            ));
        } else {
            answer.kind = if agreed {
                MatchKind::Exact
            } else {
                MatchKind::Probable
            };
            answer.reason = Some(if agreed {
                "the only best candidate; address and time agree".to_owned()
            } else if fits.len() == 1 {
                "the only candidate allowed and valid at connect time, but no address evidence"
                    .to_owned()
            } else {
                format!(
                    "the best of {} candidates by policy and time; no address evidence",
                    fits.len()
                )
            });
            answer.best = Some(best.clone());
            let db_account = ctx.account_id.clone().or_else(|| {
                best.role_arn
                    .as_deref()
                    .and_then(arn_account)
                    .map(str::to_owned)
            });
            answer.foreign_account = foreign_account(best, db_account.as_deref());
        }
        answer.candidates = if self.options.explain {
            fits.iter().cloned().chain(contradicted).collect()
        } else if answer.kind == MatchKind::Ambiguous {
            top.into_iter().cloned().collect()
        } else {
            Vec::new()
        };
        answer
    }

    fn session_candidate(
        &self,
        index: usize,
        sess: &IamSession,
        access: Option<&Access>,
        client: Option<IpAddr>,
        t: i64,
    ) -> IamCandidate {
        let trail = &self.index.trail;
        let mut c = IamCandidate {
            principal_arn: sess
                .principal_arn
                .clone()
                .unwrap_or_else(|| sess.access_key_id.clone()),
            role_arn: sess.role_arn.clone(),
            session_name: sess.session_name.clone(),
            source_identity: sess.source_identity.clone(),
            source_account: sess.caller_account.clone(),
            access_key_id: Some(sess.access_key_id.clone()),
            assumed_at_ms: Some(sess.start_ms),
            expires_at_ms: Some(sess.expires_ms),
            ..IamCandidate::default()
        };
        policy_evidence(&mut c, access);
        c.evidence.push("time".to_owned());
        if sess.expires_estimated {
            c.evidence.push("expiration_estimated".to_owned());
        }
        c.score += SESSION_TIME_SCORE;
        // The chain: root caller first.
        let chain = trail.chain(index);
        if let Some(root) = chain.first().map(|&r| &trail.sessions[r])
            && let Some(caller) = &root.caller_arn
        {
            c.chain.push(caller.clone());
        }
        for &j in &chain {
            let hop = &trail.sessions[j];
            c.chain.push(
                hop.principal_arn
                    .clone()
                    .unwrap_or_else(|| hop.access_key_id.clone()),
            );
            if j != index {
                c.sources.extend(hop.sources.iter().cloned());
            }
        }
        if c.chain.len() < 2 {
            c.chain.clear();
        }
        if c.source_identity.is_none() {
            c.source_identity = chain
                .iter()
                .find_map(|&j| trail.sessions[j].source_identity.clone());
        }
        c.sources.splice(0..0, sess.sources.iter().cloned());

        let Some(ip) = client else {
            return c;
        };
        let mut agreed = false;
        // The instance holding the client address, if the session is named
        // after it.
        if let (Some(inv), Some(name)) = (&self.index.inventory, &sess.session_name) {
            for host in inv.hosts(&ip) {
                if host.instance_id.as_deref() != Some(name.as_str()) {
                    continue;
                }
                match self.profile_role(inv, name) {
                    Some((role, source, fallback)) if Some(&role) == sess.role_arn.as_ref() => {
                        agreed = true;
                        c.evidence.push("instance_ip".to_owned());
                        if fallback {
                            c.evidence.push("instance_profile_by_name".to_owned());
                        }
                        c.sources.push(host.source.clone());
                        c.sources.push(source);
                    }
                    Some((role, _, _)) => c
                        .evidence
                        .push(format!("instance_profile_role_differs ({role})")),
                    None => {
                        agreed = true;
                        c.evidence.push("instance_ip".to_owned());
                        c.evidence.push("instance_profile_unknown".to_owned());
                        c.sources.push(host.source.clone());
                    }
                }
                break;
            }
            // An interface without an instance (NAT gateway, proxy, load
            // balancer) hides the real client: no contradiction.
            let middlebox = inv.hosts(&ip).iter().find(|h| h.instance_id.is_none());
            if !agreed && let Some(m) = middlebox {
                c.evidence.push(format!(
                    "via_interface ({}{})",
                    m.interface_id.as_deref().unwrap_or("?"),
                    m.description
                        .as_deref()
                        .map_or_else(String::new, |d| format!(": {d}"))
                ));
                c.sources.push(m.source.clone());
            } else if !agreed
                && let Some(ips) = inv.instance_ips.get(name)
                && !ips.contains(&ip)
            {
                c.contradicted = true;
                let listed: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
                c.evidence.push(format!(
                    "address_mismatch (instance {name} holds {})",
                    listed.join(", ")
                ));
                if let Some(h) = ips.first().and_then(|a| inv.hosts(a).first()) {
                    c.sources.push(h.source.clone());
                }
            }
        }
        if sess.caller_ip.as_deref().and_then(super::parse_ip) == Some(ip) {
            agreed = true;
            c.evidence.push("caller_ip".to_owned());
        }
        if let Some(uses) = trail.key_uses.get(&sess.access_key_id)
            && let Some(u) = same_key_use(uses, ip, t)
        {
            agreed = true;
            c.contradicted = false;
            c.evidence.push(match &u.vpc_endpoint_id {
                Some(e) => format!("same_key_ip (via {e})"),
                None => "same_key_ip".to_owned(),
            });
            c.sources.push(u.source.clone());
        }
        if agreed {
            c.contradicted = false;
            c.score += ADDRESS_SCORE;
        }
        c
    }

    fn user_candidate(
        &self,
        arn: &str,
        source: &str,
        access: &Access,
        client: Option<IpAddr>,
        t: i64,
    ) -> IamCandidate {
        let mut c = IamCandidate {
            principal_arn: arn.to_owned(),
            source_account: arn_account(arn).map(str::to_owned),
            ..IamCandidate::default()
        };
        policy_evidence(&mut c, Some(access));
        c.evidence.push("long_term_keys".to_owned());
        c.score += LONG_TERM_SCORE;
        c.sources.push(source.to_owned());
        let trail = &self.index.trail;
        if let (Some(ip), Some(keys)) = (client, trail.user_keys.get(arn)) {
            for key in keys {
                if let Some(u) = trail.key_uses.get(key).and_then(|u| same_key_use(u, ip, t)) {
                    c.access_key_id = Some(key.clone());
                    c.evidence.push("same_key_ip".to_owned());
                    c.sources.push(u.source.clone());
                    c.score += ADDRESS_SCORE;
                    break;
                }
            }
        }
        c
    }

    /// The role of the instance's profile (role ARN, provenance, by-name
    /// fallback).
    fn profile_role(&self, inv: &Inventory, instance: &str) -> Option<(String, String, bool)> {
        let (profile, _) = inv.profiles.get(instance)?;
        let auth = self.index.auth.as_ref()?;
        auth.role_of_profile(profile)
    }

    fn reason_for_none(
        &self,
        user: &str,
        allowed: &Option<Vec<String>>,
        contradicted: &[IamCandidate],
        outside_time: usize,
    ) -> String {
        if let Some(list) = allowed
            && list.is_empty()
        {
            return format!(
                "no principal in the authorization details may rds-db:connect as \"{user}\""
            );
        }
        if !contradicted.is_empty() {
            let names: BTreeSet<&str> = contradicted
                .iter()
                .map(|c| c.principal_arn.as_str())
                .collect();
            return format!(
                "the sessions allowed to connect as \"{user}\" run at other addresses ({}): \
                 a copied token or stolen credentials?",
                names.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        let mut text = format!("no IAM session allowed to connect as \"{user}\" was valid then");
        if let Some(list) = allowed {
            let shown: Vec<&str> = list.iter().take(3).map(String::as_str).collect();
            text.push_str(&format!(
                "; allowed: {}{}",
                shown.join(", "),
                if list.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        if outside_time > 0 {
            text.push_str(&format!(
                " ({outside_time} CloudTrail sessions of allowed principals were outside their validity)"
            ));
        }
        text
    }
}

fn has_address(c: &IamCandidate) -> bool {
    c.evidence
        .iter()
        .any(|e| e == "instance_ip" || e == "caller_ip" || e.starts_with("same_key_ip"))
}

fn policy_evidence(c: &mut IamCandidate, access: Option<&Access>) {
    match access {
        None => c.evidence.push("policy_not_checked".to_owned()),
        Some(a) => {
            c.conditional = a.conditional;
            if a.conditional {
                c.evidence.push("policy_conditional".to_owned());
                c.score += 1;
            } else {
                c.evidence.push("policy".to_owned());
                c.score += 2;
            }
            if a.unverified {
                c.evidence.push("resource_unverified".to_owned());
            }
            c.sources.extend(a.evidence.iter().cloned());
        }
    }
}

fn same_key_use(
    uses: &[super::cloudtrail::KeyUse],
    ip: IpAddr,
    t: i64,
) -> Option<&super::cloudtrail::KeyUse> {
    uses.iter().find(|u| {
        super::parse_ip(&u.source_ip) == Some(ip) && (u.time_ms - t).abs() <= SAME_KEY_WINDOW_MS
    })
}

/// An account in the candidate's chain that is not the database's.
fn foreign_account(c: &IamCandidate, db_account: Option<&str>) -> Option<String> {
    let db = db_account?;
    let mut accounts: Vec<&str> = Vec::new();
    accounts.extend(c.source_account.as_deref());
    accounts.extend(c.chain.iter().filter_map(|a| arn_account(a)));
    accounts.extend(arn_account(&c.principal_arn));
    accounts.into_iter().find(|a| *a != db).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventKind};
    use crate::session::stitch;
    use serde_json::json;

    const T0: i64 = 1_800_000_000_000; // 2027-01-15T08:00:00Z
    const MIN: i64 = 60_000;
    const DB: &str = "arn:aws:rds-db:us-east-1:111111111111:dbuser:db-X";

    fn iso(ms: i64) -> String {
        crate::time::format_rfc3339_ms(ms)
    }

    /// One PAM login of `user` from `client` at `t`.
    fn login(user: &str, client: &str, t: i64) -> Session {
        let mut events = Vec::new();
        for (kind, dt) in [
            (EventKind::Received, 0),
            (EventKind::Authenticated, 0),
            (EventKind::Authorized, 0),
            (EventKind::Disconnected, 1000),
        ] {
            let mut e = Event::new(kind, crate::name::Name::new("db1"));
            e.pid = Some(7);
            e.time_ms = Some(t + dt);
            e.client_addr = Some(client.into());
            if kind != EventKind::Received {
                e.user = Some(user.into());
                e.auth_method = Some("pam".into());
            }
            events.push(e);
        }
        stitch(events).remove(0)
    }

    fn assume(
        id: &str,
        key: &str,
        role: &str,
        session: &str,
        ip: &str,
        t: i64,
        hours: i64,
    ) -> String {
        json!({"eventVersion":"1.08","eventID":id,"eventTime":iso(t),"eventSource":"sts.amazonaws.com",
            "eventName":"AssumeRole","sourceIPAddress":ip,
            "userIdentity": if ip == "ec2.amazonaws.com" { json!({"type":"AWSService","invokedBy":ip}) }
                else { json!({"type":"IAMUser","arn":"arn:aws:iam::111111111111:user/human","accountId":"111111111111","accessKeyId":"AKIAHUMAN"}) },
            "requestParameters":{"roleArn":format!("arn:aws:iam::111111111111:role/{role}"),"roleSessionName":session},
            "responseElements":{"credentials":{"accessKeyId":key,"sessionToken":"TOKEN","expiration":iso(t + hours * 3_600_000)}}})
        .to_string()
    }

    fn call(id: &str, key: &str, arn: &str, kind: &str, ip: &str, t: i64) -> String {
        json!({"eventVersion":"1.08","eventID":id,"eventTime":iso(t),"eventSource":"s3.amazonaws.com",
            "eventName":"ListBuckets","sourceIPAddress":ip,
            "userIdentity":{"type":kind,"arn":arn,"accountId":"111111111111","accessKeyId":key}})
        .to_string()
    }

    fn auth() -> AuthorizationDetails {
        let allow = |user: &str| json!([{"PolicyName":"p","PolicyDocument":{"Statement":{"Effect":"Allow","Action":"rds-db:connect","Resource":format!("{DB}/{user}")}}}]);
        let doc = json!({
            "RoleDetailList":[
                {"RoleName":"app","Arn":"arn:aws:iam::111111111111:role/app","RolePolicyList":allow("app"),
                 "InstanceProfileList":[{"Arn":"arn:aws:iam::111111111111:instance-profile/app"}]},
                {"RoleName":"ops","Arn":"arn:aws:iam::111111111111:role/ops","RolePolicyList":
                    [{"PolicyName":"c","PolicyDocument":{"Statement":{"Effect":"Allow","Action":"rds-db:connect","Resource":format!("{DB}/ops"),
                      "Condition":{"StringEquals":{"aws:PrincipalTag/team":"ops"}}}}}]}],
            "UserDetailList":[{"UserName":"batch","Arn":"arn:aws:iam::111111111111:user/batch","UserPolicyList":allow("report")}]
        });
        let mut a = AuthorizationDetails::new();
        assert!(a.add_document("auth.json", &doc).is_ok());
        a
    }

    fn correlator(events: &[String], explain: bool) -> Correlator {
        let mut trail = CloudTrailIndex::new();
        for (i, e) in events.iter().enumerate() {
            assert!(
                trail
                    .add_event_json(&format!("t.jsonl:{}", i + 1), e)
                    .is_ok()
            );
        }
        let mut inv = Inventory::new();
        let doc = json!({"Reservations":[{"Instances":[
            {"InstanceId":"i-a","PrivateIpAddress":"10.0.0.1","IamInstanceProfile":{"Arn":"arn:aws:iam::111111111111:instance-profile/app"}}]}]});
        assert!(inv.add_document("ec2.json", &doc).is_ok());
        let config = AwsConfig::parse(
            "account_id = \"111111111111\"\nregion = \"us-east-1\"\ndb_resource_id = \"db-X\"\n",
            None,
        )
        .unwrap_or_default();
        Correlator::new(
            IamIndex {
                trail,
                auth: Some(auth()),
                inventory: Some(inv),
                config,
            },
            CorrelateOptions {
                all: false,
                explain,
            },
        )
    }

    fn attribute(c: &Correlator, mut s: Session) -> IamAttribution {
        c.correlate(&mut s);
        s.iam
            .map(|b| *b)
            .unwrap_or_else(IamAttribution::not_applicable)
    }

    #[test]
    fn refreshed_instance_credentials_are_one_principal() {
        let c = correlator(
            &[
                assume("e1", "ASIA1", "app", "i-a", "ec2.amazonaws.com", T0, 6),
                assume(
                    "e2",
                    "ASIA2",
                    "app",
                    "i-a",
                    "ec2.amazonaws.com",
                    T0 + 60 * MIN,
                    6,
                ),
            ],
            false,
        );
        let a = attribute(&c, login("app", "10.0.0.1", T0 + 90 * MIN));
        assert_eq!(a.kind, MatchKind::Exact);
        assert_eq!(a.candidate_count, 2);
        let best = a.best.unwrap_or_default();
        assert_eq!(
            best.access_key_id.as_deref(),
            Some("ASIA2"),
            "the latest session"
        );
        assert_eq!(best.evidence, ["policy", "time", "instance_ip"]);
        assert!(best.sources.contains(&"ec2.json#i-a".to_owned()));
        assert!(best.sources.contains(&"t.jsonl:2".to_owned()));
        // An IPv4-mapped IPv6 client address is the same address.
        let a = attribute(&c, login("app", "::ffff:10.0.0.1", T0 + 90 * MIN));
        assert_eq!(a.kind, MatchKind::Exact);
    }

    #[test]
    fn token_window_is_expiration_plus_fifteen_minutes() {
        let c = correlator(
            &[assume(
                "e1",
                "ASIA1",
                "app",
                "i-a",
                "ec2.amazonaws.com",
                T0,
                1,
            )],
            false,
        );
        let inside = attribute(&c, login("app", "10.0.0.1", T0 + 60 * MIN + 14 * MIN));
        assert_eq!(inside.kind, MatchKind::Exact);
        let after = attribute(&c, login("app", "10.0.0.1", T0 + 60 * MIN + 15 * MIN));
        assert_eq!(after.kind, MatchKind::None);
        assert!(
            after
                .reason
                .unwrap_or_default()
                .contains("outside their validity")
        );
        let before = attribute(&c, login("app", "10.0.0.1", T0 - 1000));
        assert_eq!(before.kind, MatchKind::None);
    }

    #[test]
    fn human_session_without_address_is_probable_and_conditional() {
        let c = correlator(
            &[assume("e1", "ASIA7", "ops", "jane", "198.51.100.7", T0, 1)],
            true,
        );
        let a = attribute(&c, login("ops", "10.9.9.9", T0 + 5 * MIN));
        assert_eq!(a.kind, MatchKind::Probable);
        let best = a.best.unwrap_or_default();
        assert!(best.conditional);
        assert_eq!(best.evidence, ["policy_conditional", "time"]);
        assert!(
            best.sources
                .iter()
                .any(|s| s.contains("condition not evaluated"))
        );
        assert_eq!(a.address_known, Some(false));
        // From the caller's own address: exact.
        let a = attribute(&c, login("ops", "198.51.100.7", T0 + 5 * MIN));
        assert_eq!(a.kind, MatchKind::Exact);
        assert_eq!(a.address_known, Some(true));
    }

    #[test]
    fn long_term_user_keys_and_same_key_activity() {
        let user = "arn:aws:iam::111111111111:user/batch";
        let c = correlator(
            &[call("e1", "AKIABATCH", user, "IAMUser", "10.0.0.9", T0)],
            false,
        );
        let a = attribute(&c, login("report", "10.0.0.9", T0 + 30 * MIN));
        assert_eq!(a.kind, MatchKind::Exact);
        let best = a.best.unwrap_or_default();
        assert_eq!(best.principal_arn, user);
        assert_eq!(best.access_key_id.as_deref(), Some("AKIABATCH"));
        assert_eq!(best.evidence, ["policy", "long_term_keys", "same_key_ip"]);
        // Elsewhere, or long after: only policy says it could be them.
        let a = attribute(&c, login("report", "10.0.0.8", T0 + 30 * MIN));
        assert_eq!(a.kind, MatchKind::Probable);
        let a = attribute(&c, login("report", "10.0.0.9", T0 + 2 * 60 * MIN));
        assert_eq!(a.kind, MatchKind::Probable);
    }

    #[test]
    fn two_principals_tie_and_stolen_instance_keys() {
        let c = correlator(
            &[
                assume("e1", "ASIA1", "app", "i-a", "ec2.amazonaws.com", T0, 6),
                assume("e2", "ASIA2", "app", "i-b", "ec2.amazonaws.com", T0, 6),
            ],
            true,
        );
        // From an unknown address: i-a is contradicted (the inventory says
        // it holds 10.0.0.1); i-b is not in the inventory, so nothing
        // contradicts it: probable.
        let a = attribute(&c, login("app", "10.7.7.7", T0 + MIN));
        assert_eq!(a.kind, MatchKind::Probable);
        assert_eq!(a.best.map(|b| b.session_name), Some(Some("i-b".to_owned())));
        assert_eq!(a.candidates.len(), 2, "the contradicted one is explained");
        assert!(a.candidates[1].contradicted);
        // The stolen key used from an outside address is seen through
        // same-key activity: no contradiction then.
        let c = correlator(
            &[
                assume("e1", "ASIA1", "app", "i-a", "ec2.amazonaws.com", T0, 6),
                call(
                    "e3",
                    "ASIA1",
                    "arn:aws:sts::111111111111:assumed-role/app/i-a",
                    "AssumedRole",
                    "1.2.3.4",
                    T0 + MIN,
                ),
            ],
            false,
        );
        let a = attribute(&c, login("app", "1.2.3.4", T0 + 2 * MIN));
        assert_eq!(a.kind, MatchKind::Exact);
        // Exact — and the evidence says the instance is elsewhere: its
        // credentials were used off-instance (the OTRF pattern).
        assert_eq!(
            a.best.map(|b| b.evidence),
            Some(vec![
                "policy".to_owned(),
                "time".to_owned(),
                "address_mismatch (instance i-a holds 10.0.0.1)".to_owned(),
                "same_key_ip".to_owned()
            ])
        );
        // Two instance sessions of the role without inventory entries tie.
        let c = correlator(
            &[
                assume("e1", "ASIA1", "app", "i-c", "ec2.amazonaws.com", T0, 6),
                assume("e2", "ASIA2", "app", "i-d", "ec2.amazonaws.com", T0, 6),
            ],
            false,
        );
        let a = attribute(&c, login("app", "10.7.7.7", T0 + MIN));
        assert_eq!(a.kind, MatchKind::Ambiguous);
        assert_eq!(a.candidate_count, 2);
        assert_eq!(a.candidates.len(), 2);
        assert!(a.best.is_none());
    }

    #[test]
    fn not_applicable_and_correlate_all() {
        let c = correlator(
            &[assume(
                "e1",
                "ASIA1",
                "app",
                "i-a",
                "ec2.amazonaws.com",
                T0,
                6,
            )],
            false,
        );
        let mut s = login("app", "10.0.0.1", T0 + MIN);
        s.auth_method = Some("scram-sha-256".into());
        assert_eq!(attribute(&c, s.clone()).kind, MatchKind::NotApplicable);
        let all = Correlator::new(
            IamIndex {
                trail: {
                    let mut t = CloudTrailIndex::new();
                    assert!(
                        t.add_event_json(
                            "x",
                            &assume("e1", "ASIA1", "app", "i-a", "ec2.amazonaws.com", T0, 6)
                        )
                        .is_ok()
                    );
                    t
                },
                auth: Some(auth()),
                inventory: None,
                config: AwsConfig::new(Some("db-X".to_owned())),
            },
            CorrelateOptions {
                all: true,
                explain: false,
            },
        );
        let a = attribute(&all, s);
        assert_eq!(
            a.kind,
            MatchKind::Probable,
            "--correlate-all: a fitting candidate"
        );
        assert!(
            a.best
                .is_some_and(|b| b.evidence.contains(&"resource_unverified".to_owned()))
        );
    }
}
