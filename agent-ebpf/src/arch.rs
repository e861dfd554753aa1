//! What differs by CPU architecture on the user side: how syscalls are
//! numbered. The kernel programs report a syscall by the number the running
//! architecture gives it (`bpf/arch/*.h` holds the ones they decode); this names
//! it. Only x86_64 and aarch64 are supported, as in `build/compile.rs`.

#[cfg(target_arch = "aarch64")]
use syscalls::aarch64::Sysno;
#[cfg(target_arch = "x86_64")]
use syscalls::x86_64::Sysno;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "imprint's sensor supports x86_64 and aarch64 only: other architectures number syscalls differently"
);

/// The name of syscall `nr` as this architecture numbers it ([`crate::Record::Syscall`]'s
/// number), or `None` for a number it does not assign.
pub fn syscall_name(nr: u64) -> Option<&'static str> {
    Sysno::new(usize::try_from(nr).ok()?).map(|s| s.name())
}

#[cfg(test)]
mod tests {
    use super::syscall_name;

    #[test]
    fn names_come_from_this_architectures_table() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            (syscall_name(101), syscall_name(257), syscall_name(2)),
            (Some("ptrace"), Some("openat"), Some("open"))
        );
        #[cfg(target_arch = "aarch64")]
        assert_eq!(
            (syscall_name(117), syscall_name(56), syscall_name(2)),
            (Some("ptrace"), Some("openat"), Some("io_submit"))
        );
        assert_eq!(syscall_name(100_000), None);
        assert_eq!(syscall_name(u64::MAX), None);
    }
}
