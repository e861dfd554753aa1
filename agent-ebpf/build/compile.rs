//! How the kernel programs are compiled: one clang invocation, shared by the
//! build script and by the test that compiles them for every supported
//! architecture, so the test checks what the build does.

use std::path::Path;
use std::process::{Command, Output};

/// The one translation unit, relative to the crate's directory.
pub const SOURCE: &str = "bpf/imprint.bpf.c";

/// The `__TARGET_ARCH_*` name (`bpf/arch.h`) for a Cargo target architecture.
pub fn bpf_target_arch(cargo_arch: &str) -> Result<&'static str, String> {
    match cargo_arch {
        "x86_64" => Ok("x86"),
        "aarch64" => Ok("arm64"),
        other => Err(format!(
            "the sensor supports x86_64 and aarch64; the target architecture is {other}, \
             whose syscall numbers and registers bpf/arch/ does not describe"
        )),
    }
}

/// The compilers to try, in order: `$IMPRINT_CLANG`, else `clang-19`, else `clang`.
pub fn clang_candidates() -> Vec<String> {
    match std::env::var("IMPRINT_CLANG") {
        Ok(clang) => vec![clang],
        Err(_) => vec!["clang-19".into(), "clang".into()],
    }
}

/// Runs `clang` on [`SOURCE`] for `bpf_arch` (a [`bpf_target_arch`] name),
/// writing `object`. The headers are self-contained (`bpf/uapi.h`): no host
/// header with an architecture in it is read, so any host builds any target.
pub fn compile(
    clang: &str,
    crate_dir: &Path,
    bpf_arch: &str,
    object: &Path,
) -> std::io::Result<Output> {
    Command::new(clang)
        .current_dir(crate_dir)
        .args(["-g", "-O2", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-D__TARGET_ARCH_{bpf_arch}"))
        .arg("-Ibpf")
        .args(["-c", SOURCE, "-o"])
        .arg(object)
        .output()
}
