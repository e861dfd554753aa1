//! Export of a profile's syscalls as an OCI/Docker seccomp profile (the JSON that
//! `docker run --security-opt seccomp=FILE`, Podman and a pod's `Localhost` seccomp
//! profile read).

use serde::Serialize;

use crate::profile::Profile;

/// What the kernel does with a syscall the profile does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// `SCMP_ACT_ERRNO`: fail it with EPERM (enforcing).
    Errno,
    /// `SCMP_ACT_LOG`: allow it and log it (audit, the safe first step).
    Log,
    /// `SCMP_ACT_KILL_PROCESS`: kill the process.
    KillProcess,
}

impl DefaultAction {
    fn name(self) -> &'static str {
        match self {
            DefaultAction::Errno => "SCMP_ACT_ERRNO",
            DefaultAction::Log => "SCMP_ACT_LOG",
            DefaultAction::KillProcess => "SCMP_ACT_KILL_PROCESS",
        }
    }
}

/// A seccomp profile in the OCI runtime / Docker JSON format.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    /// Action for unlisted syscalls.
    pub default_action: &'static str,
    /// `errno` for `SCMP_ACT_ERRNO` (EPERM), as Docker's default profile sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Architectures the names apply to.
    pub architectures: Vec<&'static str>,
    /// The allowed syscalls.
    pub syscalls: Vec<SyscallRule>,
}

/// One rule: these names get this action.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SyscallRule {
    /// Syscall names.
    pub names: Vec<String>,
    /// `SCMP_ACT_ALLOW`.
    pub action: &'static str,
}

/// Architectures for a profile's platform, as seccomp names them (x86_64 by default,
/// with its 32-bit compat ABIs, as Docker's default profile does).
fn architectures(platform: Option<&str>) -> Vec<&'static str> {
    let arch = platform
        .and_then(|p| p.split('/').nth(1))
        .unwrap_or("amd64");
    match arch {
        "arm64" | "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "arm" => vec!["SCMP_ARCH_ARM"],
        "s390x" => vec!["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "ppc64le" => vec!["SCMP_ARCH_PPC64LE"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        _ => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    }
}

/// Builds the seccomp profile that allows exactly the profile's syscalls.
pub fn to_seccomp(profile: &Profile, default_action: DefaultAction) -> SeccompProfile {
    let mut names = profile.syscalls.clone();
    names.sort_unstable();
    names.dedup();
    SeccompProfile {
        default_action: default_action.name(),
        default_errno_ret: (default_action == DefaultAction::Errno).then_some(1),
        architectures: architectures(profile.image.platform.as_deref()),
        syscalls: if names.is_empty() {
            Vec::new()
        } else {
            vec![SyscallRule {
                names,
                action: "SCMP_ACT_ALLOW",
            }]
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_allow_list() {
        let mut p = Profile::new(format!("sha256:{}", "a".repeat(64)).parse().unwrap());
        p.syscalls = vec!["write".into(), "read".into(), "read".into()];
        let s = serde_json::to_value(to_seccomp(&p, DefaultAction::Errno)).unwrap();
        assert_eq!(
            s,
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
            })
        );
        p.image.platform = Some("linux/arm64".into());
        let s = to_seccomp(&p, DefaultAction::Log);
        assert_eq!(s.default_action, "SCMP_ACT_LOG");
        assert_eq!(s.default_errno_ret, None);
        assert_eq!(s.architectures[0], "SCMP_ARCH_AARCH64");
    }
}
