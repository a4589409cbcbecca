//! Where each server runs in AWS: `--db-resource-id` and the `--aws-config`
//! TOML file, turned into a [`CloudContext`] per server.
//!
//! ```toml
//! # defaults for every server (all keys optional)
//! account_id = "123456789012"
//! region = "us-east-1"
//!
//! [[server]]
//! match = "orders-*"                         # glob on the server label
//! log_group = "/aws/rds/instance/orders-*"   # or on the CloudWatch log group
//! account_id = "123456789012"
//! region = "us-east-1"
//! db_resource_id = "db-ABCDEFGHIJKLMNOPQRSTUVWXY"
//! instance_id = "orders-db"
//! host = "orders-db.abc.us-east-1.rds.amazonaws.com"
//! port = 5432
//! ```
//!
//! The first `[[server]]` whose `match` (or `log_group`) glob fits wins;
//! its fields fill what the source already knew, then the top-level
//! defaults fill the rest, then `--db-resource-id`.

use std::path::Path;

use serde::Deserialize;

use super::InputError;
use super::glob;
use crate::cloud::CloudContext;

/// The location fields every level of the file may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fields {
    account_id: Option<String>,
    region: Option<String>,
    db_resource_id: Option<String>,
    instance_id: Option<String>,
    host: Option<String>,
    port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    #[serde(rename = "match")]
    server: Option<String>,
    log_group: Option<String>,
    account_id: Option<String>,
    region: Option<String>,
    db_resource_id: Option<String>,
    instance_id: Option<String>,
    host: Option<String>,
    port: Option<u16>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: Vec<ServerEntry>,
    account_id: Option<String>,
    region: Option<String>,
    db_resource_id: Option<String>,
    instance_id: Option<String>,
    host: Option<String>,
    port: Option<u16>,
}

impl ServerEntry {
    fn fields(&self) -> Fields {
        Fields {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            db_resource_id: self.db_resource_id.clone(),
            instance_id: self.instance_id.clone(),
            host: self.host.clone(),
            port: self.port,
        }
    }
}

impl File {
    fn defaults(&self) -> Fields {
        Fields {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            db_resource_id: self.db_resource_id.clone(),
            instance_id: self.instance_id.clone(),
            host: self.host.clone(),
            port: self.port,
        }
    }
}

/// The configuration of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsConfig {
    file: File,
    db_resource_id: Option<String>,
}

fn fill(ctx: &mut CloudContext, f: &Fields) {
    let set = |slot: &mut Option<String>, v: &Option<String>| {
        if slot.is_none() {
            slot.clone_from(v);
        }
    };
    set(&mut ctx.account_id, &f.account_id);
    set(&mut ctx.region, &f.region);
    set(&mut ctx.db_resource_id, &f.db_resource_id);
    set(&mut ctx.db_instance_id, &f.instance_id);
    set(&mut ctx.host, &f.host);
    if ctx.port.is_none() {
        ctx.port = f.port;
    }
}

impl AwsConfig {
    /// Only `--db-resource-id` (or nothing).
    pub fn new(db_resource_id: Option<String>) -> Self {
        AwsConfig {
            file: File::default(),
            db_resource_id,
        }
    }

    /// Parses the TOML text of `--aws-config`.
    pub fn parse(text: &str, db_resource_id: Option<String>) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(e) = file
            .server
            .iter()
            .find(|e| e.server.is_none() && e.log_group.is_none())
        {
            return Err(format!(
                "a [[server]] entry needs `match` or `log_group` (one has neither: {:?})",
                e.db_resource_id
                    .as_deref()
                    .or(e.region.as_deref())
                    .unwrap_or("")
            ));
        }
        Ok(AwsConfig {
            file,
            db_resource_id,
        })
    }

    /// Reads `--aws-config FILE`.
    pub fn read(path: &Path, db_resource_id: Option<String>) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::unreadable(path, e.to_string()))?;
        AwsConfig::parse(&text, db_resource_id).map_err(|m| InputError::unrecognised(path, m))
    }

    /// The context of a server: what the source knew (`known`, e.g. the
    /// CloudWatch log group), filled from the first matching entry, the
    /// defaults and `--db-resource-id`.
    pub fn context_for(&self, server: &str, known: Option<&CloudContext>) -> CloudContext {
        let mut ctx = known.cloned().unwrap_or_default();
        let entry = self.file.server.iter().find(|e| {
            e.server
                .as_deref()
                .is_some_and(|g| glob::matches(g, server))
                || e.log_group
                    .as_deref()
                    .zip(ctx.log_group.as_deref())
                    .is_some_and(|(g, lg)| glob::matches(g, lg))
        });
        if let Some(e) = entry {
            fill(&mut ctx, &e.fields());
        }
        fill(&mut ctx, &self.file.defaults());
        if ctx.db_resource_id.is_none() {
            ctx.db_resource_id.clone_from(&self.db_resource_id);
        }
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_defaults_and_flag() {
        let text = r#"
region = "eu-west-1"
[[server]]
match = "orders-*"
account_id = "123456789012"
db_resource_id = "db-ORDERS"
port = 5432
[[server]]
log_group = "/aws/rds/instance/billing/*"
db_resource_id = "db-BILLING"
region = "us-east-1"
"#;
        let c = AwsConfig::parse(text, Some("db-FLAG".into())).unwrap_or_default();
        let o = c.context_for("orders-1", None);
        assert_eq!(o.account_id.as_deref(), Some("123456789012"));
        assert_eq!(o.db_resource_id.as_deref(), Some("db-ORDERS"));
        assert_eq!(o.region.as_deref(), Some("eu-west-1"));
        assert_eq!(o.port, Some(5432));
        let known = CloudContext {
            log_group: Some("/aws/rds/instance/billing/postgresql".into()),
            ..CloudContext::default()
        };
        let b = c.context_for("x", Some(&known));
        assert_eq!(b.db_resource_id.as_deref(), Some("db-BILLING"));
        assert_eq!(b.region.as_deref(), Some("us-east-1"));
        let other = c.context_for("reports", None);
        assert_eq!(other.db_resource_id.as_deref(), Some("db-FLAG"));
        assert!(AwsConfig::parse("[[server]]\nregion = \"x\"\n", None).is_err());
        assert!(AwsConfig::parse("bogus = 1\n", None).is_err());
    }
}
