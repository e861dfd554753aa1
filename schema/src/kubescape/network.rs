//! Network neighbours (and the kapprofiler generation's `dns`/`networkActivity`)
//! become egress and ingress peers.

use std::net::IpAddr;

use serde_json::Value;

use super::DYNAMIC;
use super::documents::string_of;
use super::model::{KContainer, KNeighbor, KPort};
use super::notes::Notes;
use crate::profile::{Peer, Profile, Protocol};
use crate::validate::{CidrError, DnsNameError, MAX_ENTRIES_PER_SET, check_cidr, check_dns_name};

/// A peer address before ports are applied.
enum Host {
    Dns(String),
    Cidr(String),
    Any,
}

pub(super) fn convert_neighbour(
    n: &KNeighbor,
    at: &str,
    peers: &mut Vec<Peer>,
    dropped: &mut Vec<String>,
    notes: &mut Notes,
) {
    let label = if n.identifier.is_empty() {
        at.to_string()
    } else {
        format!("{at} ({})", short(&n.identifier))
    };
    let mut hosts = Vec::new();
    let mut names: Vec<&str> = n.dns_names.iter().map(String::as_str).collect();
    names.push(&n.dns);
    let mut seen_address = false;
    for name in names.into_iter().filter(|s| !s.trim().is_empty()) {
        seen_address = true;
        match map_dns(name) {
            Ok((dns, narrowed)) => {
                if narrowed {
                    notes.push(format!(
                        "{label}: DNS name {name:?} ends in *, one or more labels in Kubescape; imprint's * is exactly one label, so deeper names are not covered"
                    ));
                }
                hosts.push(Host::Dns(dns));
            }
            Err(why) => dropped.push(format!("{label}: DNS name {name:?} ({why})")),
        }
    }
    let mut addresses: Vec<&str> = n.ip_addresses.iter().map(String::as_str).collect();
    addresses.push(&n.ip_address);
    for address in addresses.into_iter().filter(|s| !s.trim().is_empty()) {
        seen_address = true;
        if address.trim() == "*" {
            hosts.push(Host::Any);
            continue;
        }
        match map_ip(address) {
            Ok(cidr) => hosts.push(Host::Cidr(cidr)),
            Err(why) => dropped.push(format!("{label}: address {address:?} ({why})")),
        }
    }
    if hosts.is_empty() {
        if !seen_address {
            dropped.push(describe_unaddressed(n, &label));
        }
        return;
    }
    let mut ports = Vec::new();
    for port in &n.ports {
        match map_port(port) {
            Ok(p) => ports.push(p),
            Err(why) => dropped.push(format!("{label}: port {:?} ({why})", port.name)),
        }
    }
    if ports.is_empty() {
        if !n.ports.is_empty() {
            return; // every port was unusable: do not widen to any port
        }
        ports.push((None, None));
    }
    for host in &hosts {
        let (dns, cidr) = match host {
            Host::Dns(d) => (Some(d.clone()), None),
            Host::Cidr(c) => (None, Some(c.clone())),
            Host::Any => (None, None),
        };
        for (port, protocol) in &ports {
            // Hosts × ports can explode on hostile input: stop just past the bound,
            // and bound_sizes records the set as truncated.
            if peers.len() > MAX_ENTRIES_PER_SET {
                return;
            }
            peers.push(Peer {
                dns: dns.clone(),
                cidr: cidr.clone(),
                port: *port,
                protocol: *protocol,
            });
        }
    }
}

/// Says what a neighbour without DNS name or address allowed, for the warning.
fn describe_unaddressed(n: &KNeighbor, label: &str) -> String {
    let mut whom = Vec::new();
    if is_set(&n.pod_selector) {
        whom.push(format!("pods {}", selector_text(&n.pod_selector)));
    }
    if is_set(&n.namespace_selector) {
        whom.push(format!(
            "namespaces {}",
            selector_text(&n.namespace_selector)
        ));
    }
    let ports: Vec<String> = n
        .ports
        .iter()
        .map(|p| {
            if p.name.is_empty() {
                format!("{}/{}", p.protocol, p.port)
            } else {
                p.name.clone()
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "any port".to_string()
    } else {
        ports.join(",")
    };
    if whom.is_empty() {
        format!("{label}: {ports} (no DNS name, address or selector)")
    } else {
        format!(
            "{label}: {} on {ports} (selectors cannot be expressed as imprint peers)",
            whom.join(" in ")
        )
    }
}

/// `k=v,k2=v2` for a label selector's `matchLabels`; other selector forms verbatim.
fn selector_text(selector: &Value) -> String {
    match selector
        .get("matchLabels")
        .or_else(|| selector.get("MatchLabels"))
    {
        Some(Value::Object(labels))
            if selector.as_object().is_some_and(|o| o.len() == 1) && !labels.is_empty() =>
        {
            labels
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        }
        _ => selector.to_string(),
    }
}

fn short(identifier: &str) -> &str {
    if identifier.len() > 16 && identifier.bytes().all(|b| b.is_ascii_hexdigit()) {
        &identifier[..12]
    } else {
        identifier
    }
}

fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(m) => !m.is_empty(),
        _ => true,
    }
}

/// Why a Kubescape DNS name has no imprint equivalent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum DnsMapError {
    /// A `*` label in the middle of the name.
    #[error("'*' inside a name is not a Kubescape wildcard (⋯ is)")]
    InnerWildcard,
    /// A label with `*` beside other characters.
    #[error("wildcard {label:?} is not valid Kubescape DNS syntax")]
    PartialWildcard { label: String },
    /// The mapped name is not a valid imprint DNS name.
    #[error(transparent)]
    Invalid(#[from] DnsNameError),
}

/// Maps a Kubescape DNS name; `true` when a trailing `*` was narrowed.
pub(super) fn map_dns(raw: &str) -> Result<(String, bool), DnsMapError> {
    let lower = raw.trim().to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    let labels: Vec<&str> = name.split('.').collect();
    let last = labels.len() - 1;
    let mut out = Vec::with_capacity(labels.len());
    let mut narrowed = false;
    for (i, label) in labels.iter().enumerate() {
        out.push(match *label {
            DYNAMIC => "*",
            "*" if i == 0 => "*",
            "*" if i == last => {
                narrowed = true;
                "*"
            }
            "*" => return Err(DnsMapError::InnerWildcard),
            l if l.contains('*') => {
                return Err(DnsMapError::PartialWildcard {
                    label: l.to_string(),
                });
            }
            l => l,
        });
    }
    let name = out.join(".");
    check_dns_name(&name)?;
    Ok((name, narrowed))
}

/// Why a Kubescape address has no imprint equivalent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum IpMapError {
    /// The text is neither an address nor an address range.
    #[error("not an IP address or address range")]
    NotAnAddress { raw: String },
    /// The mapped range is not a valid imprint CIDR.
    #[error(transparent)]
    Invalid(#[from] CidrError),
}

/// Maps an address or range to a CIDR with host bits cleared.
pub(super) fn map_ip(raw: &str) -> Result<String, IpMapError> {
    let s = raw.trim();
    let net = if let Ok(ip) = s.parse::<IpAddr>() {
        ipnet::IpNet::from(ip)
    } else if let Ok(net) = s.parse::<ipnet::IpNet>() {
        net.trunc()
    } else {
        return Err(IpMapError::NotAnAddress {
            raw: raw.to_string(),
        });
    };
    let cidr = net.to_string();
    check_cidr(&cidr)?;
    Ok(cidr)
}

fn map_protocol(name: &str) -> Option<Protocol> {
    match name.trim().to_ascii_uppercase().as_str() {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

/// A Kubescape port entry as (port, protocol); the name (`TCP-443`) fills in what the
/// other fields leave out.
fn map_port(p: &KPort) -> Result<(Option<u16>, Option<Protocol>), String> {
    let (name_proto, name_port) = p.name.split_once('-').unwrap_or(("", ""));
    let protocol = if !p.protocol.trim().is_empty() {
        Some(
            map_protocol(&p.protocol)
                .ok_or_else(|| format!("protocol {:?} is not TCP, UDP or SCTP", p.protocol))?,
        )
    } else if name_proto.is_empty() {
        None
    } else {
        Some(
            map_protocol(name_proto)
                .ok_or_else(|| format!("protocol {name_proto:?} is not TCP, UDP or SCTP"))?,
        )
    };
    let number = match &p.port {
        Value::Null => name_port.parse::<i64>().ok(),
        Value::Number(n) => Some(
            n.as_i64()
                .ok_or_else(|| format!("port {n} is not an integer"))?,
        ),
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(
            s.trim()
                .parse::<i64>()
                .map_err(|_| format!("port {s:?} is not a number"))?,
        ),
        other => return Err(format!("port {other} is not a number")),
    };
    let port = match number {
        None => None,
        Some(n @ 1..=65535) => Some(n as u16),
        Some(n) => return Err(format!("port {n} is not 1 to 65535")),
    };
    Ok((port, protocol))
}

/// The kapprofiler generation's `dns` and `networkActivity.outgoing`.
pub(super) fn convert_legacy_network(c: &KContainer, p: &mut Profile, dropped: &mut Vec<String>) {
    for (i, entry) in c.dns.iter().enumerate() {
        let Some(name) = entry.get("dnsName").and_then(Value::as_str) else {
            dropped.push(format!("dns[{i}] (no dnsName)"));
            continue;
        };
        match map_dns(name) {
            Ok((dns, _)) => p.network.egress.push(Peer {
                dns: Some(dns),
                cidr: None,
                port: None,
                protocol: None,
            }),
            Err(why) => dropped.push(format!("dns[{i}]: {name:?} ({why})")),
        }
    }
    let activity = &c.network_activity;
    if let Some(Value::Array(outgoing)) = activity.get("outgoing") {
        for (i, conn) in outgoing.iter().enumerate() {
            let endpoint = conn
                .get("dstEndpoint")
                .and_then(Value::as_str)
                .unwrap_or("");
            let port = KPort {
                name: String::new(),
                protocol: string_of(conn.get("protocol")).unwrap_or_default(),
                port: conn.get("port").cloned().unwrap_or(Value::Null),
            };
            let host = match map_ip(endpoint) {
                Ok(cidr) => (None, Some(cidr)),
                Err(_) => match map_dns(endpoint) {
                    Ok((dns, _)) => (Some(dns), None),
                    Err(why) => {
                        dropped.push(format!(
                            "networkActivity.outgoing[{i}]: {endpoint:?} ({why})"
                        ));
                        continue;
                    }
                },
            };
            match map_port(&port) {
                Ok((port, protocol)) => p.network.egress.push(Peer {
                    dns: host.0,
                    cidr: host.1,
                    port,
                    protocol,
                }),
                Err(why) => dropped.push(format!("networkActivity.outgoing[{i}] ({why})")),
            }
        }
    }
    if let Some(Value::Array(incoming)) = activity.get("incoming")
        && !incoming.is_empty()
    {
        dropped.push(format!(
            "networkActivity.incoming ({} entries in a format this importer does not read)",
            incoming.len()
        ));
    }
}
