//! Compiles the kernel programs (`bpf/imprint.bpf.c` and the headers it includes,
//! C, CO-RE) with clang into one BPF object that `src/lib.rs` embeds, for the
//! target's architecture (x86_64 or aarch64; any other is refused, since its
//! sensor would read the wrong registers). clang is `$IMPRINT_CLANG`, else
//! `clang-19`, else `clang`. Without one the crate still builds, with no object,
//! and says so: the agent then reports that it was built without its sensor.

use std::path::PathBuf;

mod compile;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let object = out.join("imprint.bpf.o");
    // A directory: Cargo scans every file under it, headers added later included.
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-env-changed=IMPRINT_CLANG");
    println!("cargo:rustc-check-cfg=cfg(imprint_bpf_object)");
    let cargo_arch =
        std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let bpf_arch = compile::bpf_target_arch(&cargo_arch).unwrap_or_else(|why| panic!("{why}"));
    let mut last_error = String::from("no clang found");
    for clang in compile::clang_candidates() {
        match compile::compile(&clang, &crate_dir, bpf_arch, &object) {
            Ok(o) if o.status.success() => {
                println!("cargo:rustc-cfg=imprint_bpf_object");
                return;
            }
            // A compiler that ran and failed is a real error: the C is wrong.
            Ok(o) => panic!(
                "{clang} failed to compile {}:\n{}",
                compile::SOURCE,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => last_error = format!("{clang}: {e}"),
        }
    }
    println!(
        "cargo:warning=imprint-agent-ebpf: no BPF object built ({last_error}); install clang-19 and libbpf-dev (bash .ci/setup)"
    );
}
