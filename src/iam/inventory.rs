//! EC2 inventory: which instance holds an address, and its instance
//! profile.
//!
//! Reads `aws ec2 describe-instances` (`Reservations[].Instances[]`) and
//! `aws ec2 describe-network-interfaces` (`NetworkInterfaces[]`) output:
//! private, public and IPv6 addresses of instances and of every network
//! interface (attached or not: a NAT gateway, a proxy, a load balancer),
//! and each instance's `IamInstanceProfile.Arn`. The profile's role comes
//! from the authorization details (`policy`). An inventory is a snapshot:
//! addresses are reused over time.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use super::InputError;
use super::json::{array, str_at, string_at};

/// What holds one address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Host {
    pub instance_id: Option<String>,
    pub interface_id: Option<String>,
    pub description: Option<String>,
    /// `file#i-…` or `file#eni-…`.
    pub source: String,
}

/// Addresses → hosts, instances → instance profiles.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub by_ip: HashMap<IpAddr, Vec<Host>>,
    /// Instance id → (instance profile ARN, provenance).
    pub profiles: HashMap<String, (String, String)>,
    /// Instance id → every address it holds.
    pub instance_ips: BTreeMap<String, Vec<IpAddr>>,
    pub files: usize,
    /// Files of a directory that were not this kind of export.
    pub skipped: Vec<String>,
}

impl Inventory {
    pub fn new() -> Self {
        Inventory::default()
    }

    pub fn read_path(&mut self, path: &Path) -> Result<(), InputError> {
        let mut skipped = std::mem::take(&mut self.skipped);
        let read = super::read_json_exports(path, &mut skipped, |label, doc| {
            self.add_document(label, doc)
        });
        self.skipped = skipped;
        read
    }

    /// Adds one describe-instances or describe-network-interfaces document.
    pub fn add_document(&mut self, label: &str, doc: &Value) -> Result<(), String> {
        if doc.get("Reservations").is_some() {
            for r in array(doc, "Reservations") {
                for i in array(r, "Instances") {
                    self.add_instance(label, i);
                }
            }
        } else if doc.get("NetworkInterfaces").is_some() {
            for n in array(doc, "NetworkInterfaces") {
                self.add_interface(label, n, None);
            }
        } else {
            return Err(
                "not `aws ec2 describe-instances` or `describe-network-interfaces` output \
                 (no Reservations or NetworkInterfaces)"
                    .to_owned(),
            );
        }
        self.files += 1;
        for hosts in self.by_ip.values_mut() {
            hosts.sort();
            hosts.dedup_by(|a, b| match (&a.instance_id, &b.instance_id) {
                (Some(x), Some(y)) => x == y,
                (None, None) => a.interface_id == b.interface_id,
                _ => false,
            });
        }
        for ips in self.instance_ips.values_mut() {
            ips.sort();
            ips.dedup();
        }
        Ok(())
    }

    fn add_instance(&mut self, label: &str, i: &Value) {
        let Some(id) = str_at(i, &["InstanceId"]) else {
            return;
        };
        let source = format!("{label}#{id}");
        if let Some(profile) = string_at(i, &["IamInstanceProfile", "Arn"]) {
            self.profiles
                .insert(id.to_owned(), (profile, source.clone()));
        }
        for key in ["PrivateIpAddress", "PublicIpAddress", "Ipv6Address"] {
            if let Some(ip) = str_at(i, &[key]) {
                self.add(ip, Some(id), None, None, &source);
            }
        }
        for n in array(i, "NetworkInterfaces") {
            self.add_interface(label, n, Some(id));
        }
    }

    fn add_interface(&mut self, label: &str, n: &Value, instance: Option<&str>) {
        let eni = str_at(n, &["NetworkInterfaceId"]);
        let instance = instance.or_else(|| str_at(n, &["Attachment", "InstanceId"]));
        let source = match (instance, eni) {
            (Some(i), _) => format!("{label}#{i}"),
            (None, Some(e)) => format!("{label}#{e}"),
            (None, None) => format!("{label}#interface"),
        };
        let description = str_at(n, &["Description"]);
        let mut ips: Vec<&str> = Vec::new();
        ips.extend(str_at(n, &["PrivateIpAddress"]));
        ips.extend(str_at(n, &["Association", "PublicIp"]));
        for a in array(n, "PrivateIpAddresses") {
            ips.extend(str_at(a, &["PrivateIpAddress"]));
            ips.extend(str_at(a, &["Association", "PublicIp"]));
        }
        for a in array(n, "Ipv6Addresses") {
            ips.extend(str_at(a, &["Ipv6Address"]));
        }
        for ip in ips {
            self.add(ip, instance, eni, description, &source);
        }
    }

    fn add(
        &mut self,
        ip: &str,
        instance: Option<&str>,
        eni: Option<&str>,
        description: Option<&str>,
        source: &str,
    ) {
        let Some(addr) = super::parse_ip(ip) else {
            return;
        };
        if let Some(i) = instance {
            self.instance_ips
                .entry(i.to_owned())
                .or_default()
                .push(addr);
        }
        self.by_ip.entry(addr).or_default().push(Host {
            instance_id: instance.map(str::to_owned),
            interface_id: eni.map(str::to_owned),
            description: description.map(str::to_owned),
            source: source.to_owned(),
        });
    }

    /// Hosts holding `ip` (empty when unknown).
    pub fn hosts(&self, ip: &IpAddr) -> &[Host] {
        self.by_ip.get(ip).map_or(&[][..], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instances_and_interfaces() {
        let mut inv = Inventory::new();
        let doc = json!({"Reservations":[{"Instances":[{"InstanceId":"i-1","PrivateIpAddress":"10.0.1.7",
            "PublicIpAddress":"203.0.113.9","IamInstanceProfile":{"Arn":"arn:aws:iam::1:instance-profile/p"},
            "NetworkInterfaces":[{"NetworkInterfaceId":"eni-1","PrivateIpAddresses":[{"PrivateIpAddress":"10.0.1.7"},{"PrivateIpAddress":"10.0.1.8"}]}]}]}]});
        assert!(inv.add_document("i.json", &doc).is_ok());
        let nat = json!({"NetworkInterfaces":[{"NetworkInterfaceId":"eni-9","PrivateIpAddress":"10.0.0.5","Description":"NAT"}]});
        assert!(inv.add_document("n.json", &nat).is_ok());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            inv.hosts(&ip("10.0.1.8"))[0].instance_id.as_deref(),
            Some("i-1")
        );
        assert_eq!(inv.hosts(&ip("10.0.1.7")).len(), 1);
        assert_eq!(inv.hosts(&ip("203.0.113.9")).len(), 1);
        assert_eq!(inv.hosts(&ip("10.0.0.5"))[0].source, "n.json#eni-9");
        assert!(inv.hosts(&ip("10.9.9.9")).is_empty());
        assert_eq!(inv.profiles["i-1"].0, "arn:aws:iam::1:instance-profile/p");
        assert_eq!(inv.instance_ips["i-1"].len(), 3);
        assert!(inv.add_document("x.json", &json!({"Users":[]})).is_err());
    }
}
