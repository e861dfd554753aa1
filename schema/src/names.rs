//! Names the profile uses for kernel concepts: open flags, capabilities, syscalls.
//!
//! Flags and capabilities are written the way Kubescape and Falco users read them:
//! `O_RDONLY`, `NET_ADMIN` (no `CAP_` prefix, as in a pod's `securityContext`).

use std::fmt;

/// Open flags by name, in bit order. The bits are imprint's own, not the kernel's:
/// the kernel's values differ between architectures (`O_DIRECTORY` on arm64, say).
pub const OPEN_FLAG_NAMES: [&str; 20] = [
    "O_RDONLY",
    "O_WRONLY",
    "O_RDWR",
    "O_CREAT",
    "O_EXCL",
    "O_NOCTTY",
    "O_TRUNC",
    "O_APPEND",
    "O_NONBLOCK",
    "O_DSYNC",
    "O_SYNC",
    "O_ASYNC",
    "O_DIRECT",
    "O_LARGEFILE",
    "O_DIRECTORY",
    "O_NOFOLLOW",
    "O_NOATIME",
    "O_CLOEXEC",
    "O_PATH",
    "O_TMPFILE",
];

/// A name that is not one of [`OPEN_FLAG_NAMES`] (see [`OpenFlags::from_names`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown open flag {name:?} (expected names such as O_RDONLY, O_CREAT)")]
pub struct UnknownOpenFlag {
    /// The unknown name.
    pub name: String,
}

/// A set of open flags, stored as a bitmask over [`OPEN_FLAG_NAMES`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpenFlags(u32);

impl OpenFlags {
    /// The empty set.
    pub const EMPTY: OpenFlags = OpenFlags(0);

    /// The flag with this name, if it is one.
    pub fn from_name(name: &str) -> Option<OpenFlags> {
        OPEN_FLAG_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| OpenFlags(1 << i))
    }

    /// Parses a list of flag names; the error names the first unknown one.
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<OpenFlags, UnknownOpenFlag> {
        let mut flags = OpenFlags::EMPTY;
        for name in names {
            flags |= OpenFlags::from_name(name).ok_or_else(|| UnknownOpenFlag {
                name: name.to_string(),
            })?;
        }
        Ok(flags)
    }

    /// Decodes the x86_64/generic Linux `open(2)` flag word.
    pub fn from_linux_bits(bits: u32) -> OpenFlags {
        // Values from include/uapi/asm-generic/fcntl.h (x86_64 uses the generic ones).
        const TABLE: [(u32, &str); 17] = [
            (0o100, "O_CREAT"),
            (0o200, "O_EXCL"),
            (0o400, "O_NOCTTY"),
            (0o1000, "O_TRUNC"),
            (0o2000, "O_APPEND"),
            (0o4000, "O_NONBLOCK"),
            (0o10000, "O_DSYNC"),
            (0o20000, "O_ASYNC"),
            (0o40000, "O_DIRECT"),
            (0o100000, "O_LARGEFILE"),
            (0o200000, "O_DIRECTORY"),
            (0o400000, "O_NOFOLLOW"),
            (0o1000000, "O_NOATIME"),
            (0o2000000, "O_CLOEXEC"),
            (0o4010000, "O_SYNC"),
            (0o10000000, "O_PATH"),
            (0o20200000, "O_TMPFILE"),
        ];
        let mut flags = match bits & 0o3 {
            0 => OpenFlags::from_name("O_RDONLY"),
            1 => OpenFlags::from_name("O_WRONLY"),
            _ => OpenFlags::from_name("O_RDWR"),
        }
        .unwrap_or_default();
        for (value, name) in TABLE {
            if bits & value == value {
                flags |= OpenFlags::from_name(name).unwrap_or_default();
            }
        }
        flags
    }

    /// The raw bitmask (imprint's bit order).
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Builds flags from a raw bitmask, dropping unknown bits.
    pub fn from_bits_truncate(bits: u32) -> OpenFlags {
        OpenFlags(bits & ((1 << OPEN_FLAG_NAMES.len()) - 1))
    }

    /// Whether every flag of `other` is in `self`.
    pub fn contains(self, other: OpenFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flag names, sorted alphabetically (the canonical order).
    pub fn names(self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = OPEN_FLAG_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        names.sort_unstable();
        names
    }
}

impl std::ops::BitOr for OpenFlags {
    type Output = OpenFlags;
    fn bitor(self, rhs: OpenFlags) -> OpenFlags {
        OpenFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for OpenFlags {
    fn bitor_assign(&mut self, rhs: OpenFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for OpenFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl serde::Serialize for OpenFlags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

impl<'de> serde::Deserialize<'de> for OpenFlags {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        OpenFlags::from_names(names.iter().map(String::as_str)).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for OpenFlags {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OpenFlags".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut names = OPEN_FLAG_NAMES.to_vec();
        names.sort_unstable();
        schemars::json_schema!({
            "description": "Open flags by name, as open(2) writes them.",
            "type": "array",
            "uniqueItems": true,
            "items": { "type": "string", "enum": names }
        })
    }
}

/// Linux capabilities by name, without the `CAP_` prefix, in number order.
pub const CAPABILITY_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capability name for a Linux capability number.
pub fn capability_name(number: u32) -> Option<&'static str> {
    CAPABILITY_NAMES.get(number as usize).copied()
}

/// Normalises a capability name: upper case, `CAP_` prefix removed. `None` if unknown.
pub fn normalize_capability(name: &str) -> Option<&'static str> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITY_NAMES.iter().find(|c| **c == bare).copied()
}

/// Whether `name` has the shape of a syscall name (`[a-z0-9_]+`, at most 64 bytes).
///
/// Names are not checked against one architecture's table: profiles learned on
/// arm64 carry names x86_64 lacks and the reverse.
pub fn is_syscall_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_bits_decode_access_mode_and_flags() {
        // O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC as x86_64 passes it.
        let flags = OpenFlags::from_linux_bits(0o1 | 0o100 | 0o1000 | 0o2000000);
        assert_eq!(
            flags.names(),
            ["O_CLOEXEC", "O_CREAT", "O_TRUNC", "O_WRONLY"]
        );
        assert_eq!(OpenFlags::from_linux_bits(0).names(), ["O_RDONLY"]);
        // O_TMPFILE includes O_DIRECTORY's bit.
        assert!(
            OpenFlags::from_linux_bits(0o20200000 | 2)
                .names()
                .contains(&"O_TMPFILE")
        );
    }

    #[test]
    fn unknown_flag_is_named() {
        assert_eq!(
            OpenFlags::from_names(["O_RDONLY", "O_BOGUS"]),
            Err(UnknownOpenFlag {
                name: "O_BOGUS".into()
            })
        );
        let err = serde_json::from_str::<OpenFlags>(r#"["O_BOGUS"]"#).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unknown open flag \"O_BOGUS\" (expected names such as O_RDONLY, O_CREAT)"
            ),
            "{err}"
        );
    }

    #[test]
    fn capabilities_normalise() {
        assert_eq!(normalize_capability("cap_net_admin"), Some("NET_ADMIN"));
        assert_eq!(normalize_capability("SYS_PTRACE"), Some("SYS_PTRACE"));
        assert_eq!(normalize_capability("CAP_FLY"), None);
        assert_eq!(capability_name(21), Some("SYS_ADMIN"));
        assert_eq!(capability_name(40), Some("CHECKPOINT_RESTORE"));
    }

    #[test]
    fn syscall_names_are_checked_for_shape() {
        assert!(is_syscall_name("openat2"));
        assert!(!is_syscall_name("Open"));
        assert!(!is_syscall_name(""));
    }
}
