//! Who may `rds-db:connect` as which database user.
//!
//! Reads `aws iam get-account-authorization-details` output (users with
//! their groups, groups, roles with their instance profiles, inline
//! policies and attached managed policies, and `Policies` with their
//! versions — the default version is the one in force). Policy documents
//! may be objects or URL-encoded JSON strings; `Statement` an object or an
//! array; `Action`/`Resource` a string or an array.
//!
//! Evaluates identity policies only, for the one action `rds-db:connect`
//! on `arn:aws:rds-db:<region>:<account>:dbuser:<resource-id>/<db-user>`:
//! `Allow`/`Deny`, `*`/`?` wildcards, `NotAction`/`NotResource`, an
//! explicit deny wins. Conditions are never evaluated: a statement with a
//! `Condition` is listed as "not evaluated" and makes the answer
//! *conditional* (an allow that may not apply; a deny that may apply).
//! Permission boundaries, SCPs and session policies are not read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::InputError;
use super::glob;
use super::json::{array, one_or_many, str_at, string_at};

/// The action IAM database authentication checks.
pub const CONNECT_ACTION: &str = "rds-db:connect";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalKind {
    User,
    Role,
}

/// One statement, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub allow: bool,
    /// Patterns of `Action`, or of `NotAction` when `not_action`.
    pub actions: Vec<String>,
    pub not_action: bool,
    pub resources: Vec<String>,
    pub not_resource: bool,
    /// The `Condition` block as compact JSON, when present.
    pub condition: Option<String>,
    /// Where it is: `file#role/name policy <name> statement <n>`.
    pub origin: String,
}

/// A user or role with every statement that applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub arn: String,
    pub name: String,
    pub account: Option<String>,
    pub statements: Vec<Statement>,
    /// Attached policies not found in the export (not evaluated).
    pub missing: Vec<String>,
    pub source: String,
}

/// The database user and resource a login is about. Unknown parts match
/// any policy value, and the answer says it could not verify them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub region: Option<&'a str>,
    pub account: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub db_user: &'a str,
}

/// The answer for one principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// An Allow applies and no unconditional Deny does.
    pub allowed: bool,
    /// The answer depends on conditions that were not evaluated.
    pub conditional: bool,
    /// Region, account or resource id of the target were unknown.
    pub unverified: bool,
    /// The statements that decided it, readable.
    pub evidence: Vec<String>,
}

/// A parsed get-account-authorization-details export (or several merged).
#[derive(Debug, Clone, Default)]
pub struct AuthorizationDetails {
    pub principals: Vec<Principal>,
    /// Instance profile ARN → (role ARN, provenance).
    pub profiles: HashMap<String, (String, String)>,
    pub files: usize,
    /// Files of a directory that were not this kind of export.
    pub skipped: Vec<String>,
}

/// A policy document: an object, or a URL-encoded JSON string.
fn document(v: &Value) -> Option<Value> {
    match v {
        Value::Object(_) => Some(v.clone()),
        Value::String(s) => {
            if let Ok(doc) = serde_json::from_str::<Value>(s) {
                return Some(doc);
            }
            let decoded = percent_decode(s)?;
            serde_json::from_str::<Value>(&decoded)
                .ok()
                .or_else(|| serde_json::from_str::<Value>(&decoded.replace('+', " ")).ok())
        }
        _ => None,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn statements(doc: &Value, origin: &str) -> Vec<Statement> {
    let list: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    list.into_iter()
        .enumerate()
        .filter_map(|(i, st)| {
            let allow = match str_at(st, &["Effect"])? {
                "Allow" => true,
                "Deny" => false,
                _ => return None,
            };
            let (actions, not_action) = match st.get("Action") {
                Some(a) => (one_or_many(Some(a)), false),
                None => (one_or_many(st.get("NotAction")), true),
            };
            let (resources, not_resource) = match st.get("Resource") {
                Some(r) => (one_or_many(Some(r)), false),
                None => (one_or_many(st.get("NotResource")), true),
            };
            let condition = st
                .get("Condition")
                .filter(|c| !c.is_null() && c.as_object().is_none_or(|o| !o.is_empty()))
                .map(Value::to_string);
            Some(Statement {
                allow,
                actions,
                not_action,
                resources,
                not_resource,
                condition,
                origin: format!("{origin} statement {i}"),
            })
        })
        .collect()
}

/// Does the ARN pattern match the target? Segment by segment when the
/// pattern has all six ARN fields, so that unknown target fields match
/// anything; otherwise as one glob with unknown fields spelled `unknown`.
fn resource_matches(pattern: &str, t: &Target<'_>) -> bool {
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let known = |p: &str, v: Option<&str>| v.is_none_or(|v| glob::matches(p, v));
    if parts.len() == 6 {
        // Any partition: aws, aws-cn, aws-us-gov.
        if !(glob::matches(parts[0], "arn")
            && (glob::matches(parts[1], "aws") || parts[1].starts_with("aws-"))
            && glob::matches(parts[2], "rds-db")
            && known(parts[3], t.region)
            && known(parts[4], t.account))
        {
            return false;
        }
        let rest = parts[5];
        return match (t.resource_id, rest.rsplit_once('/')) {
            (Some(id), _) => glob::matches(rest, &format!("dbuser:{id}/{}", t.db_user)),
            (None, Some((head, user))) => {
                glob::matches(user, t.db_user)
                    && (head.starts_with("dbuser:") || glob::matches(head, "dbuser:unknown"))
            }
            (None, None) => glob::matches(rest, &format!("dbuser:unknown/{}", t.db_user)),
        };
    }
    let arn = format!(
        "arn:aws:rds-db:{}:{}:dbuser:{}/{}",
        t.region.unwrap_or("unknown"),
        t.account.unwrap_or("unknown"),
        t.resource_id.unwrap_or("unknown"),
        t.db_user
    );
    glob::matches(pattern, &arn)
}

impl Statement {
    fn applies(&self, t: &Target<'_>) -> bool {
        let action = self
            .actions
            .iter()
            .any(|a| glob::matches_ignore_case(a, CONNECT_ACTION));
        let resource = self.resources.iter().any(|r| resource_matches(r, t));
        (action != self.not_action) && (resource != self.not_resource)
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "{}: {} {}{} on {}{}",
            self.origin,
            if self.allow { "Allow" } else { "Deny" },
            if self.not_action { "NotAction " } else { "" },
            self.actions.join(","),
            if self.not_resource {
                "NotResource "
            } else {
                ""
            },
            self.resources.join(","),
        );
        if let Some(c) = &self.condition {
            text.push_str(&format!("; condition not evaluated: {c}"));
        }
        text
    }
}

impl Principal {
    /// May this principal `rds-db:connect` to the target?
    pub fn access(&self, t: &Target<'_>) -> Access {
        let mut access = Access {
            unverified: t.region.is_none() || t.account.is_none() || t.resource_id.is_none(),
            ..Access::default()
        };
        let (mut allow, mut allow_conditional, mut deny) = (false, false, false);
        let mut allow_evidence = Vec::new();
        let mut deny_evidence = Vec::new();
        for st in self.statements.iter().filter(|s| s.applies(t)) {
            match (st.allow, st.condition.is_some()) {
                (true, false) => {
                    allow = true;
                    allow_evidence.push(st.describe());
                }
                (true, true) => {
                    allow_conditional = true;
                    allow_evidence.push(st.describe());
                }
                (false, false) => {
                    deny = true;
                    deny_evidence.push(format!("explicit deny: {}", st.describe()));
                }
                (false, true) => {
                    access.conditional = true;
                    deny_evidence.push(format!("explicit deny may apply: {}", st.describe()));
                }
            }
        }
        if deny {
            access.allowed = false;
            access.conditional = false;
            access.evidence = deny_evidence;
            return access;
        }
        if allow || allow_conditional {
            access.allowed = true;
            access.conditional |= !allow;
            access.evidence = allow_evidence;
            access.evidence.extend(deny_evidence);
        }
        for m in &self.missing {
            access.evidence.push(format!(
                "attached policy {m} is not in the export: not evaluated"
            ));
        }
        access
    }
}

impl AuthorizationDetails {
    pub fn new() -> Self {
        AuthorizationDetails::default()
    }

    /// Reads one export (a file, or every file of a directory) and adds it.
    pub fn read_path(&mut self, path: &Path) -> Result<(), InputError> {
        let mut skipped = std::mem::take(&mut self.skipped);
        let read = super::read_json_exports(path, &mut skipped, |label, doc| {
            self.add_document(label, doc)
        });
        self.skipped = skipped;
        read
    }

    /// Adds one parsed export; `Err` when it is not one.
    pub fn add_document(&mut self, label: &str, doc: &Value) -> Result<(), String> {
        let known = [
            "UserDetailList",
            "GroupDetailList",
            "RoleDetailList",
            "Policies",
        ];
        if !doc.is_object() || !known.iter().any(|k| doc.get(k).is_some()) {
            return Err(
                "not `aws iam get-account-authorization-details` output (no UserDetailList, \
                 GroupDetailList, RoleDetailList or Policies)"
                    .to_owned(),
            );
        }
        self.files += 1;
        // Managed policies: ARN → default version document.
        let mut managed: BTreeMap<&str, Value> = BTreeMap::new();
        for p in array(doc, "Policies") {
            let Some(arn) = str_at(p, &["Arn"]) else {
                continue;
            };
            let default = str_at(p, &["DefaultVersionId"]);
            let version = array(p, "PolicyVersionList").iter().find(|v| {
                v.get("IsDefaultVersion").and_then(Value::as_bool) == Some(true)
                    || (default.is_some() && str_at(v, &["VersionId"]) == default)
            });
            if let Some(d) = version.and_then(|v| v.get("Document")).and_then(document) {
                managed.insert(arn, d);
            }
        }
        let attached =
            |owner: &Value, origin: &str, out: &mut Vec<Statement>, missing: &mut Vec<String>| {
                for a in array(owner, "AttachedManagedPolicies") {
                    let Some(arn) = str_at(a, &["PolicyArn"]) else {
                        continue;
                    };
                    match managed.get(arn) {
                        Some(d) => out.extend(statements(d, &format!("{origin} managed {arn}"))),
                        None => missing.push(arn.to_owned()),
                    }
                }
            };
        let inline = |owner: &Value, list: &str, origin: &str, out: &mut Vec<Statement>| {
            for p in array(owner, list) {
                let name = str_at(p, &["PolicyName"]).unwrap_or("?");
                if let Some(d) = p.get("PolicyDocument").and_then(document) {
                    out.extend(statements(&d, &format!("{origin} inline {name}")));
                }
            }
        };
        // Groups by name.
        let mut groups: HashMap<&str, (Vec<Statement>, Vec<String>)> = HashMap::new();
        for g in array(doc, "GroupDetailList") {
            let Some(name) = str_at(g, &["GroupName"]) else {
                continue;
            };
            let origin = format!("{label}#group/{name}");
            let (mut st, mut missing) = (Vec::new(), Vec::new());
            inline(g, "GroupPolicyList", &origin, &mut st);
            attached(g, &origin, &mut st, &mut missing);
            groups.insert(name, (st, missing));
        }
        for u in array(doc, "UserDetailList") {
            let (Some(arn), Some(name)) = (str_at(u, &["Arn"]), str_at(u, &["UserName"])) else {
                continue;
            };
            let origin = format!("{label}#user/{name}");
            let (mut st, mut missing) = (Vec::new(), Vec::new());
            inline(u, "UserPolicyList", &origin, &mut st);
            attached(u, &origin, &mut st, &mut missing);
            for g in one_or_many(u.get("GroupList")) {
                match groups.get(g.as_str()) {
                    Some((gs, gm)) => {
                        st.extend(gs.iter().cloned());
                        missing.extend(gm.iter().cloned());
                    }
                    None => missing.push(format!("group {g}")),
                }
            }
            self.principals.push(Principal {
                kind: PrincipalKind::User,
                arn: arn.to_owned(),
                name: name.to_owned(),
                account: super::cloudtrail::arn_account(arn).map(str::to_owned),
                statements: st,
                missing,
                source: origin,
            });
        }
        for r in array(doc, "RoleDetailList") {
            let (Some(arn), Some(name)) = (str_at(r, &["Arn"]), str_at(r, &["RoleName"])) else {
                continue;
            };
            let origin = format!("{label}#role/{name}");
            let (mut st, mut missing) = (Vec::new(), Vec::new());
            inline(r, "RolePolicyList", &origin, &mut st);
            attached(r, &origin, &mut st, &mut missing);
            for p in array(r, "InstanceProfileList") {
                if let Some(profile) = string_at(p, &["Arn"]) {
                    self.profiles
                        .insert(profile, (arn.to_owned(), origin.clone()));
                }
            }
            self.principals.push(Principal {
                kind: PrincipalKind::Role,
                arn: arn.to_owned(),
                name: name.to_owned(),
                account: super::cloudtrail::arn_account(arn).map(str::to_owned),
                statements: st,
                missing,
                source: origin,
            });
        }
        self.principals
            .sort_by(|a, b| (&a.arn, &a.source).cmp(&(&b.arn, &b.source)));
        self.principals.dedup_by(|a, b| a.arn == b.arn);
        Ok(())
    }

    pub fn principal(&self, arn: &str) -> Option<&Principal> {
        self.principals
            .binary_search_by(|p| p.arn.as_str().cmp(arn))
            .ok()
            .map(|i| &self.principals[i])
    }

    /// Every principal that may connect to the target, with its answer, in
    /// ARN order.
    pub fn allowed(&self, t: &Target<'_>) -> Vec<(&Principal, Access)> {
        self.principals
            .iter()
            .map(|p| (p, p.access(t)))
            .filter(|(_, a)| a.allowed)
            .collect()
    }

    /// The role of an instance profile: from the export's
    /// `InstanceProfileList`, else (flagged `true`) a role with the
    /// profile's name in the same account.
    pub fn role_of_profile(&self, profile_arn: &str) -> Option<(String, String, bool)> {
        if let Some((role, source)) = self.profiles.get(profile_arn) {
            return Some((role.clone(), source.clone(), false));
        }
        let account = super::cloudtrail::arn_account(profile_arn)?;
        let name = profile_arn.rsplit('/').next()?;
        let role = format!("arn:aws:iam::{account}:role/{name}");
        self.principal(&role)
            .map(|p| (role.clone(), p.source.clone(), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RID: &str = "db-ABCDEFGHIJKL";

    fn target(user: &str) -> Target<'_> {
        Target {
            region: Some("us-east-1"),
            account: Some("123456789012"),
            resource_id: Some(RID),
            db_user: user,
        }
    }

    fn arn(user: &str) -> String {
        format!("arn:aws:rds-db:us-east-1:123456789012:dbuser:{RID}/{user}")
    }

    fn role(statements: Value) -> Principal {
        let doc = json!({"RoleDetailList":[{"RoleName":"r","Arn":"arn:aws:iam::123456789012:role/r",
            "RolePolicyList":[{"PolicyName":"p","PolicyDocument":{"Version":"2012-10-17","Statement":statements}}]}]});
        let mut d = AuthorizationDetails::new();
        assert!(d.add_document("a.json", &doc).is_ok());
        d.principals.remove(0)
    }

    #[test]
    fn allow_and_wildcards() {
        let p = role(json!({"Effect":"Allow","Action":"rds-db:connect","Resource":arn("app")}));
        assert!(p.access(&target("app")).allowed);
        assert!(!p.access(&target("other")).allowed);
        let p = role(json!([{"Effect":"Allow","Action":["rds-db:*"],
            "Resource":"arn:aws:rds-db:us-east-1:123456789012:dbuser:*/pgmonitor"}]));
        assert!(p.access(&target("pgmonitor")).allowed);
        assert!(!p.access(&target("pgmonitor2")).allowed);
        let p = role(json!({"Effect":"Allow","Action":"*","Resource":"*"}));
        assert!(p.access(&target("anyone")).allowed);
        let p = role(json!({"Effect":"Allow","Action":"RDS-DB:Conn?ct","Resource":arn("a?p")}));
        assert!(p.access(&target("app")).allowed);
        let p = role(json!({"Effect":"Allow","Action":"s3:*","Resource":"*"}));
        assert!(!p.access(&target("app")).allowed);
        let p = role(json!({"Effect":"Allow","Action":"rds-db:connect",
            "Resource":format!("arn:aws-cn:rds-db:us-east-1:123456789012:dbuser:{RID}/app")}));
        assert!(p.access(&target("app")).allowed);
        let p = role(json!({"Effect":"Allow","Action":"rds-db:connect",
            "Resource":format!("arn:aws:rds:us-east-1:123456789012:dbuser:{RID}/app")}));
        assert!(!p.access(&target("app")).allowed, "another service");
        // Another account's database.
        let p = role(json!({"Effect":"Allow","Action":"rds-db:connect",
            "Resource":"arn:aws:rds-db:us-east-1:999999999999:dbuser:*/*"}));
        assert!(!p.access(&target("app")).allowed);
    }

    #[test]
    fn deny_wins_and_not_action_not_resource() {
        let p = role(json!([
            {"Effect":"Allow","Action":"rds-db:*","Resource":"*"},
            {"Effect":"Deny","Action":"rds-db:connect","Resource":arn("admin")}]));
        assert!(p.access(&target("app")).allowed);
        let denied = p.access(&target("admin"));
        assert!(!denied.allowed);
        assert!(denied.evidence[0].starts_with("explicit deny:"));
        // NotAction: everything except s3 — includes rds-db:connect.
        let p = role(json!({"Effect":"Allow","NotAction":"s3:*","Resource":"*"}));
        assert!(p.access(&target("app")).allowed);
        let p = role(json!({"Effect":"Allow","NotAction":"rds-db:*","Resource":"*"}));
        assert!(!p.access(&target("app")).allowed);
        // NotResource: every resource but the admin user.
        let p =
            role(json!({"Effect":"Allow","Action":"rds-db:connect","NotResource":arn("admin")}));
        assert!(p.access(&target("app")).allowed);
        assert!(!p.access(&target("admin")).allowed);
        let p = role(
            json!([{"Effect":"Allow","Action":"rds-db:connect","Resource":"*"},
            {"Effect":"Deny","NotAction":"rds-db:connect","Resource":"*"}]),
        );
        assert!(p.access(&target("app")).allowed);
    }

    #[test]
    fn conditions_are_listed_not_evaluated() {
        let p = role(
            json!({"Effect":"Allow","Action":"rds-db:connect","Resource":arn("app"),
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}),
        );
        let a = p.access(&target("app"));
        assert!(a.allowed && a.conditional);
        assert!(a.evidence[0].contains("condition not evaluated"));
        let p = role(
            json!([{"Effect":"Allow","Action":"rds-db:connect","Resource":arn("app")},
            {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}]),
        );
        let a = p.access(&target("app"));
        assert!(a.allowed && a.conditional);
        assert!(
            a.evidence
                .iter()
                .any(|e| e.starts_with("explicit deny may apply"))
        );
    }

    #[test]
    fn unknown_target_parts_match_but_are_flagged() {
        let p = role(json!({"Effect":"Allow","Action":"rds-db:connect","Resource":arn("app")}));
        let t = Target {
            region: None,
            account: None,
            resource_id: None,
            db_user: "app",
        };
        let a = p.access(&t);
        assert!(a.allowed && a.unverified);
        assert!(!p.access(&Target { db_user: "x", ..t }).allowed);
    }

    #[test]
    fn managed_default_version_groups_and_url_encoded_documents() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22rds-db%3Aconnect%22%2C%22Resource%22%3A%22*%22%7D%7D";
        let doc = json!({
            "UserDetailList":[{"UserName":"bob","Arn":"arn:aws:iam::123456789012:user/bob","GroupList":["devs"],
                "AttachedManagedPolicies":[{"PolicyName":"gone","PolicyArn":"arn:aws:iam::123456789012:policy/gone"}]}],
            "GroupDetailList":[{"GroupName":"devs","GroupPolicyList":[{"PolicyName":"g","PolicyDocument":encoded}]}],
            "RoleDetailList":[{"RoleName":"r","Arn":"arn:aws:iam::123456789012:role/r",
                "AttachedManagedPolicies":[{"PolicyName":"m","PolicyArn":"arn:aws:iam::123456789012:policy/m"}],
                "InstanceProfileList":[{"Arn":"arn:aws:iam::123456789012:instance-profile/p"}]}],
            "Policies":[{"Arn":"arn:aws:iam::123456789012:policy/m","DefaultVersionId":"v2","PolicyVersionList":[
                {"VersionId":"v1","IsDefaultVersion":false,"Document":{"Statement":{"Effect":"Allow","Action":"rds-db:connect","Resource":"*"}}},
                {"VersionId":"v2","IsDefaultVersion":true,"Document":{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}}]}]
        });
        let mut d = AuthorizationDetails::new();
        assert!(d.add_document("a.json", &doc).is_ok());
        let bob = d.principal("arn:aws:iam::123456789012:user/bob");
        let a = bob.map(|b| b.access(&target("app"))).unwrap_or_default();
        assert!(a.allowed, "group policy (URL-encoded) applies to the user");
        assert!(a.evidence.iter().any(|e| e.contains("policy/gone")));
        let r = d.principal("arn:aws:iam::123456789012:role/r");
        assert!(
            !r.is_some_and(|r| r.access(&target("app")).allowed),
            "v1 is not the default"
        );
        assert_eq!(
            d.role_of_profile("arn:aws:iam::123456789012:instance-profile/p")
                .map(|(r, _, fallback)| (r, fallback)),
            Some(("arn:aws:iam::123456789012:role/r".to_owned(), false))
        );
        assert_eq!(
            d.role_of_profile("arn:aws:iam::123456789012:instance-profile/r")
                .map(|(r, _, fallback)| (r, fallback)),
            Some(("arn:aws:iam::123456789012:role/r".to_owned(), true))
        );
        assert!(
            d.add_document("x.json", &json!({"Reservations":[]}))
                .is_err()
        );
    }
}
