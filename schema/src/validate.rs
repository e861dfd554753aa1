//! The rules a parsed profile must keep, beyond what its types already enforce.
//! Every problem names the field path, so `imprint validate` can point at it.

use std::fmt;

use crate::names::{CAPABILITY_NAMES, is_syscall_name};
use crate::pattern;
use crate::profile::{API_VERSION, Completeness, KIND, Peer, Profile};

/// Most entries one behaviour set may hold. Learned profiles are bounded far below
/// this; the bound stops a hostile document from costing unbounded work downstream.
pub(crate) const MAX_ENTRIES_PER_SET: usize = 100_000;

/// Longest DNS name (RFC 1035).
const MAX_DNS_LEN: usize = 253;

/// One problem: the field path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// Field path such as `opens[2].path`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct Issues(Vec<ValidationIssue>);

impl Issues {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationIssue {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Why a DNS name pattern is not valid (see [`check_dns_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsNameError {
    /// The name is empty.
    #[error("empty DNS name")]
    Empty,
    /// The name is longer than a DNS name may be.
    #[error("DNS name is {len} bytes, more than {}", MAX_DNS_LEN)]
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The name ends in a dot.
    #[error("write the DNS name without the trailing dot")]
    TrailingDot,
    /// A label is empty or longer than 63 bytes.
    #[error("label {label:?} must be 1 to 63 bytes")]
    LabelLength {
        /// The offending label.
        label: String,
    },
    /// A label holds a character outside `[a-z0-9_-]` and is not `*`.
    #[error("label {label:?} may hold only lower-case letters, digits, '-' and '_', or be '*'")]
    LabelCharacters {
        /// The offending label.
        label: String,
    },
}

/// Checks a DNS name pattern: labels of `[a-z0-9_-]`, or `*` for any one label.
pub fn check_dns_name(name: &str) -> Result<(), DnsNameError> {
    if name.is_empty() {
        return Err(DnsNameError::Empty);
    }
    if name.len() > MAX_DNS_LEN {
        return Err(DnsNameError::TooLong { len: name.len() });
    }
    if name.ends_with('.') {
        return Err(DnsNameError::TrailingDot);
    }
    for label in name.split('.') {
        if label == "*" {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err(DnsNameError::LabelLength {
                label: label.to_string(),
            });
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(DnsNameError::LabelCharacters {
                label: label.to_string(),
            });
        }
    }
    Ok(())
}

/// Why an address range is not valid (see [`check_cidr`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CidrError {
    /// The text does not parse as an address range.
    #[error("{cidr:?} is not an address range such as 10.0.0.0/8")]
    Unparsable { cidr: String },
    /// The range has host bits set.
    #[error("host bits are set; did you mean {suggested}?")]
    HostBitsSet {
        cidr: String,
        suggested: ipnet::IpNet,
    },
}

/// Checks an address range: it must parse and have no host bits set.
pub(crate) fn check_cidr(cidr: &str) -> Result<(), CidrError> {
    let net: ipnet::IpNet = cidr.parse().map_err(|_| CidrError::Unparsable {
        cidr: cidr.to_string(),
    })?;
    if net.trunc() != net {
        return Err(CidrError::HostBitsSet {
            cidr: cidr.to_string(),
            suggested: net.trunc(),
        });
    }
    Ok(())
}

/// Checks a profile and returns every problem found (none means valid).
pub fn validate(profile: &Profile) -> Vec<ValidationIssue> {
    let mut issues = Issues(Vec::new());
    if profile.api_version != API_VERSION {
        issues.push(
            "apiVersion",
            format!("must be {API_VERSION}, not {:?}", profile.api_version),
        );
    }
    if profile.kind != KIND {
        issues.push("kind", format!("must be {KIND}, not {:?}", profile.kind));
    }
    if let Some(platform) = &profile.image.platform {
        let parts: Vec<&str> = platform.split('/').collect();
        let ok = (2..=3).contains(&parts.len())
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        if !ok {
            issues.push(
                "image.platform",
                format!("{platform:?} is not os/arch[/variant], such as linux/amd64"),
            );
        }
    }
    let learning = &profile.learning;
    if let (Some(start), Some(end)) = (learning.start, learning.end)
        && start > end
    {
        issues.push("learning.end", format!("{end} is before start {start}"));
    }
    if !learning.truncated.is_empty() && learning.completeness == Completeness::Complete {
        issues.push(
            "learning.completeness",
            "a truncated profile cannot be complete",
        );
    }

    check_size(&mut issues, "execs", profile.execs.len());
    for (i, exec) in profile.execs.iter().enumerate() {
        if let Err(e) = pattern::parse(&exec.path) {
            issues.push(format!("execs[{i}].path"), format!("{:?}: {e}", exec.path));
        }
        for (j, arg) in exec.args.iter().flatten().enumerate() {
            if arg.contains('\0') {
                issues.push(format!("execs[{i}].args[{j}]"), "NUL byte in argument");
            }
        }
    }
    check_size(&mut issues, "opens", profile.opens.len());
    for (i, open) in profile.opens.iter().enumerate() {
        if let Err(e) = pattern::parse(&open.path) {
            issues.push(format!("opens[{i}].path"), format!("{:?}: {e}", open.path));
        }
    }
    check_size(&mut issues, "syscalls", profile.syscalls.len());
    for (i, name) in profile.syscalls.iter().enumerate() {
        if !is_syscall_name(name) {
            issues.push(
                format!("syscalls[{i}]"),
                format!("{name:?} is not a syscall name (lower-case letters, digits, '_')"),
            );
        }
    }
    for (i, name) in profile.capabilities.iter().enumerate() {
        if !CAPABILITY_NAMES.contains(&name.as_str()) {
            issues.push(
                format!("capabilities[{i}]"),
                format!(
                    "{name:?} is not a capability name; write it upper-case without CAP_, such as NET_ADMIN"
                ),
            );
        }
    }
    for (dir, peers) in [
        ("network.egress", &profile.network.egress),
        ("network.ingress", &profile.network.ingress),
    ] {
        check_size(&mut issues, dir, peers.len());
        for (i, peer) in peers.iter().enumerate() {
            check_peer(&mut issues, &format!("{dir}[{i}]"), peer);
        }
    }
    issues.0
}

fn check_size(issues: &mut Issues, path: &str, len: usize) {
    if len > MAX_ENTRIES_PER_SET {
        issues.push(
            path,
            format!("{len} entries, more than the limit of {MAX_ENTRIES_PER_SET}"),
        );
    }
}

fn check_peer(issues: &mut Issues, path: &str, peer: &Peer) {
    if peer.dns.is_some() && peer.cidr.is_some() {
        issues.push(path, "give either dns or cidr, not both");
    }
    if let Some(dns) = &peer.dns
        && let Err(e) = check_dns_name(dns)
    {
        issues.push(format!("{path}.dns"), format!("{dns:?}: {e}"));
    }
    if let Some(cidr) = &peer.cidr
        && let Err(e) = check_cidr(cidr)
    {
        issues.push(format!("{path}.cidr"), e.to_string());
    }
    if peer.port == Some(0) {
        issues.push(
            format!("{path}.port"),
            "port 0 is not a port; omit it for any port",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Exec, Open};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_fresh_profile_is_valid() {
        assert!(validate(&Profile::new(DIGEST.parse().unwrap())).is_empty());
    }

    #[test]
    fn problems_name_their_field() {
        let mut p = Profile::new(DIGEST.parse().unwrap());
        p.opens.push(Open {
            path: "/ok".into(),
            flags: Default::default(),
        });
        p.opens.push(Open {
            path: "/lib/lib*.so".into(),
            flags: Default::default(),
        });
        p.execs.push(Exec {
            path: "bin/sh".into(),
            args: None,
        });
        p.capabilities.push("CAP_SYS_ADMIN".into());
        p.syscalls.push("Open".into());
        p.network.egress.push(Peer {
            dns: Some("Example.com.".into()),
            cidr: Some("10.0.0.1/8".into()),
            port: Some(0),
            protocol: None,
        });
        let paths: Vec<String> = validate(&p).into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "execs[0].path",
                "opens[1].path",
                "syscalls[0]",
                "capabilities[0]",
                "network.egress[0]",
                "network.egress[0].dns",
                "network.egress[0].cidr",
                "network.egress[0].port",
            ]
        );
    }

    #[test]
    fn dns_and_cidr_rules() {
        assert!(check_dns_name("*.example.com").is_ok());
        assert!(check_dns_name("api.*.example.com").is_ok());
        assert!(check_dns_name("ex ample.com").is_err());
        assert!(check_cidr("10.0.0.0/8").is_ok());
        assert!(check_cidr("2001:db8::1/128").is_ok());
        assert_eq!(
            check_cidr("10.1.2.3/8").unwrap_err().to_string(),
            "host bits are set; did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            check_cidr("10.0.0.1"),
            Err(CidrError::Unparsable {
                cidr: "10.0.0.1".into()
            })
        );
        assert_eq!(
            check_dns_name("a..b"),
            Err(DnsNameError::LabelLength {
                label: String::new()
            })
        );
        assert_eq!(
            check_dns_name("example.com.").unwrap_err().to_string(),
            "write the DNS name without the trailing dot"
        );
    }
}
