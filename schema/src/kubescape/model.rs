//! The Kubescape shapes. Field names are Kubernetes JSON; the aliases are the Go names
//! of the gob-decoded storage files. Every list may be `null`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Meta {
    #[serde(alias = "Name")]
    pub(super) name: Value,
    #[serde(rename = "creationTimestamp", alias = "CreationTimestamp")]
    pub(super) creation_timestamp: Value,
    #[serde(alias = "Labels", deserialize_with = "nullable")]
    pub(super) labels: BTreeMap<String, Value>,
    #[serde(alias = "Annotations", deserialize_with = "nullable")]
    pub(super) annotations: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct KGroups {
    #[serde(alias = "Containers", deserialize_with = "nullable")]
    pub(super) containers: Vec<KContainer>,
    #[serde(
        rename = "initContainers",
        alias = "InitContainers",
        deserialize_with = "nullable"
    )]
    pub(super) init_containers: Vec<KContainer>,
    #[serde(
        rename = "ephemeralContainers",
        alias = "EphemeralContainers",
        deserialize_with = "nullable"
    )]
    pub(super) ephemeral_containers: Vec<KContainer>,
    #[serde(alias = "Architectures", deserialize_with = "nullable")]
    pub(super) architectures: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct KContainer {
    #[serde(alias = "Name", deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(rename = "imageID", alias = "ImageID", deserialize_with = "nullable")]
    pub(super) image_id: String,
    #[serde(rename = "imageTag", alias = "ImageTag", deserialize_with = "nullable")]
    pub(super) image_tag: String,
    #[serde(alias = "Architectures", deserialize_with = "nullable")]
    pub(super) architectures: Vec<String>,
    #[serde(alias = "Execs", deserialize_with = "nullable")]
    pub(super) execs: Vec<KExec>,
    #[serde(alias = "Opens", deserialize_with = "nullable")]
    pub(super) opens: Vec<KOpen>,
    #[serde(alias = "Syscalls", deserialize_with = "nullable")]
    pub(super) syscalls: Vec<String>,
    /// Names; the kapprofiler generation wrote `{caps: [...], syscall}` objects.
    #[serde(alias = "Capabilities", deserialize_with = "nullable")]
    pub(super) capabilities: Vec<Value>,
    #[serde(alias = "Endpoints", deserialize_with = "nullable")]
    pub(super) endpoints: Vec<Value>,
    #[serde(rename = "seccompProfile", alias = "SeccompProfile")]
    pub(super) seccomp_profile: Value,
    #[serde(alias = "Egress", deserialize_with = "nullable")]
    pub(super) egress: Vec<KNeighbor>,
    #[serde(alias = "Ingress", deserialize_with = "nullable")]
    pub(super) ingress: Vec<KNeighbor>,
    /// kapprofiler generation: `[{dnsName: ...}]`.
    #[serde(deserialize_with = "nullable")]
    pub(super) dns: Vec<Value>,
    /// kapprofiler generation: `{outgoing: [{dstEndpoint, port, protocol}]}`.
    #[serde(rename = "networkActivity")]
    pub(super) network_activity: Value,
}

impl KContainer {
    pub(super) fn has_content(&self) -> bool {
        !(self.execs.is_empty()
            && self.opens.is_empty()
            && self.syscalls.is_empty()
            && self.capabilities.is_empty()
            && self.endpoints.is_empty()
            && self.egress.is_empty()
            && self.ingress.is_empty()
            && self.image_id.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct KExec {
    #[serde(alias = "Path", deserialize_with = "nullable")]
    pub(super) path: String,
    #[serde(alias = "Args", deserialize_with = "nullable")]
    pub(super) args: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct KOpen {
    #[serde(alias = "Path", deserialize_with = "nullable")]
    pub(super) path: String,
    #[serde(alias = "Flags", deserialize_with = "nullable")]
    pub(super) flags: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct KNeighbor {
    #[serde(alias = "Identifier", deserialize_with = "nullable")]
    pub(super) identifier: String,
    #[serde(alias = "DNS", deserialize_with = "nullable")]
    pub(super) dns: String,
    #[serde(rename = "dnsNames", alias = "DNSNames", deserialize_with = "nullable")]
    pub(super) dns_names: Vec<String>,
    #[serde(
        rename = "ipAddress",
        alias = "IPAddress",
        deserialize_with = "nullable"
    )]
    pub(super) ip_address: String,
    #[serde(
        rename = "ipAddresses",
        alias = "IPAddresses",
        deserialize_with = "nullable"
    )]
    pub(super) ip_addresses: Vec<String>,
    #[serde(alias = "Ports", deserialize_with = "nullable")]
    pub(super) ports: Vec<KPort>,
    #[serde(rename = "podSelector", alias = "PodSelector")]
    pub(super) pod_selector: Value,
    #[serde(rename = "namespaceSelector", alias = "NamespaceSelector")]
    pub(super) namespace_selector: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct KPort {
    #[serde(alias = "Name", deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(alias = "Protocol", deserialize_with = "nullable")]
    pub(super) protocol: String,
    #[serde(alias = "Port")]
    pub(super) port: Value,
}
