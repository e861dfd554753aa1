//! The kernel programs build for every architecture the sensor supports, on any
//! host: compiled for x86_64 and arm64 exactly as `build/main.rs` compiles them,
//! each object holds every program the agent attaches and every map it reads,
//! and reads its own architecture's registers. Any other architecture is refused.
//! The syscall numbers in `bpf/arch/*.h` agree with the user side's tables.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use imprint_agent_ebpf::{DEDUPED, DROPS, RAW_TRACEPOINTS, RING_BUFFER, TRACEPOINTS};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

#[path = "../build/compile.rs"]
mod compile;

const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The first clang of the build's candidates that runs, or `None` after saying
/// why (a failure when `IMPRINT_NO_SKIP=1`: CI installs clang-19).
fn clang() -> Option<String> {
    let candidates = compile::clang_candidates();
    let found = candidates.iter().find(|clang| {
        std::process::Command::new(clang)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        let why = format!("no clang to compile the BPF programs (tried {candidates:?})");
        if std::env::var("IMPRINT_NO_SKIP").as_deref() == Ok("1") {
            panic!("{why} (IMPRINT_NO_SKIP=1: a skipped real-component test fails)");
        }
        eprintln!("skipped: {why}");
    }
    found.cloned()
}

/// A fresh path for an object: the tests run in parallel and each compiles its own.
fn object_path(bpf_arch: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("imprint-{bpf_arch}-{n}.bpf.o"))
}

/// The object compiled for `bpf_arch`; panics with clang's errors when it fails.
fn build(clang: &str, bpf_arch: &str) -> Vec<u8> {
    let object = object_path(bpf_arch);
    let out = compile::compile(clang, Path::new(CRATE_DIR), bpf_arch, &object).unwrap();
    assert!(
        out.status.success(),
        "{clang} failed to compile for {bpf_arch}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&object).unwrap()
}

/// The section each program the agent attaches must be in, by program name.
fn expected_programs() -> Vec<(&'static str, String)> {
    let tracepoints = TRACEPOINTS
        .iter()
        .map(|(name, category, tp)| (*name, format!("tracepoint/{category}/{tp}")));
    let raw = RAW_TRACEPOINTS
        .iter()
        .map(|(name, tp)| (*name, format!("raw_tracepoint/{tp}")));
    tracepoints.chain(raw).collect()
}

/// The strings of the object's `.BTF` section (its names of types and fields).
fn btf_names(file: &object::File) -> Vec<String> {
    let btf = file
        .section_by_name(".BTF")
        .expect("a .BTF section")
        .data()
        .unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(btf[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(&btf[..2], &0xEB9Fu16.to_le_bytes(), "BTF magic");
    let (header_len, str_off, str_len) = (u32_at(4), u32_at(16), u32_at(20));
    let strings = &btf[header_len + str_off..header_len + str_off + str_len];
    strings
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[test]
fn the_programs_compile_for_x86_64_and_arm64_with_every_program_and_map() {
    let Some(clang) = clang() else { return };
    for bpf_arch in ["x86", "arm64"] {
        let data = build(&clang, bpf_arch);
        let file = object::File::parse(&*data).unwrap();
        assert_eq!(file.architecture(), object::Architecture::Bpf, "{bpf_arch}");
        assert!(file.is_little_endian(), "{bpf_arch}");
        let section_of = |symbol: &str| {
            let sym = file.symbols().find(|s| s.name() == Ok(symbol))?;
            let section = file.section_by_index(sym.section_index()?).ok()?;
            Some((sym.kind(), section.name().ok()?.to_string()))
        };
        for (program, section) in expected_programs() {
            assert_eq!(
                section_of(program),
                Some((SymbolKind::Text, section)),
                "{bpf_arch}: program {program}"
            );
        }
        for map in [RING_BUFFER, DROPS, DEDUPED] {
            assert_eq!(
                section_of(map).map(|(_, s)| s).as_deref(),
                Some(".maps"),
                "{bpf_arch}: map {map}"
            );
        }
        // Nothing compiled in that the agent would not attach.
        let mut programs: Vec<String> = file
            .sections()
            .filter_map(|s| s.name().ok().map(str::to_string))
            .filter(|n| n.starts_with("tracepoint/") || n.starts_with("raw_tracepoint/"))
            .collect();
        let mut expected: Vec<String> = expected_programs().into_iter().map(|(_, s)| s).collect();
        programs.sort();
        expected.sort();
        assert_eq!(programs, expected, "{bpf_arch}: program sections");
    }
}

#[test]
fn each_architecture_reads_its_own_registers() {
    let Some(clang) = clang() else { return };
    let names = |bpf_arch| {
        let data = build(&clang, bpf_arch);
        btf_names(&object::File::parse(&*data).unwrap())
    };
    let has = |names: &[String], name: &str| names.iter().any(|n| n == name);
    let x86 = names("x86");
    for name in ["pt_regs", "di", "si", "dx", "r10", "r8", "r9", "status"] {
        assert!(has(&x86, name), "x86_64 object lacks {name}");
    }
    assert!(!has(&x86, "user_pt_regs") && !has(&x86, "pstate"));
    let arm64 = names("arm64");
    for name in ["user_pt_regs", "regs", "pstate"] {
        assert!(has(&arm64, name), "arm64 object lacks {name}");
    }
    for name in ["di", "r10", "status"] {
        assert!(!has(&arm64, name), "arm64 object names x86's {name}");
    }
}

#[test]
fn an_unsupported_architecture_is_refused() {
    assert_eq!(compile::bpf_target_arch("x86_64"), Ok("x86"));
    assert_eq!(compile::bpf_target_arch("aarch64"), Ok("arm64"));
    let refused = compile::bpf_target_arch("riscv64").unwrap_err();
    assert!(refused.contains("supports x86_64 and aarch64"), "{refused}");
    let Some(clang) = clang() else { return };
    let out =
        compile::compile(&clang, Path::new(CRATE_DIR), "riscv", &object_path("riscv")).unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: \"imprint's sensor supports x86_64"),
        "no #error from bpf/arch.h:\n{stderr}"
    );
}

/// `#define NR_<NAME> <number>` lines of an architecture header.
fn syscall_numbers(header: &str) -> Vec<(String, usize)> {
    let text = std::fs::read_to_string(Path::new(CRATE_DIR).join("bpf/arch").join(header)).unwrap();
    text.lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("#define NR_")?.split_whitespace();
            let name = words.next()?.to_lowercase();
            Some((name, words.next()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn the_kernel_sides_syscall_numbers_are_the_user_sides() {
    let x86 = syscall_numbers("x86_64.h");
    let arm64 = syscall_numbers("arm64.h");
    assert!(x86.len() >= 24 && arm64.len() >= 21, "{x86:?} {arm64:?}");
    for (name, nr) in &x86 {
        let known = syscalls::x86_64::Sysno::new(*nr).map(|s| s.name());
        assert_eq!(known, Some(name.as_str()), "x86_64 NR_{name}");
    }
    for (name, nr) in &arm64 {
        let known = syscalls::aarch64::Sysno::new(*nr).map(|s| s.name());
        assert_eq!(known, Some(name.as_str()), "arm64 NR_{name}");
    }
    // arm64 has only the *at forms; the header defines nothing it lacks.
    for missing in ["open", "link", "symlink"] {
        assert!(
            arm64.iter().all(|(n, _)| n != missing),
            "arm64 defines NR_{missing}"
        );
        assert!(
            x86.iter().any(|(n, _)| n == missing),
            "x86_64 lacks NR_{missing}"
        );
    }
    // Both headers name the same syscalls, apart from those three.
    let mut x86_names: Vec<&str> = x86.iter().map(|(n, _)| n.as_str()).collect();
    x86_names.retain(|n| !["open", "link", "symlink"].contains(n));
    let mut arm64_names: Vec<&str> = arm64.iter().map(|(n, _)| n.as_str()).collect();
    x86_names.sort();
    arm64_names.sort();
    assert_eq!(x86_names, arm64_names);
}
