//! Compiles the kernel programs (`bpf/*.bpf.c`, C, CO-RE) with clang into one BPF
//! object that `src/lib.rs` embeds. clang is `$IMPRINT_CLANG`, else `clang-19`,
//! else `clang`. Without one the crate still builds, with no object, and says so:
//! the agent then reports that it was built without its sensor.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("imprint.bpf.o");
    for file in ["bpf/imprint.bpf.c", "bpf/events.h", "bpf/kernel_types.h"] {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-env-changed=IMPRINT_CLANG");
    let candidates: Vec<String> = match std::env::var("IMPRINT_CLANG") {
        Ok(c) => vec![c],
        Err(_) => vec!["clang-19".into(), "clang".into()],
    };
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "arm64",
        _ => "x86",
    };
    let multiarch = match arch {
        "arm64" => "/usr/include/aarch64-linux-gnu",
        _ => "/usr/include/x86_64-linux-gnu",
    };
    let mut last_error = String::from("no clang found");
    for clang in candidates {
        let result = Command::new(&clang)
            .args(["-g", "-O2", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-D__TARGET_ARCH_{arch}"))
            .arg(format!("-I{multiarch}"))
            .arg("-Ibpf")
            .args(["-c", "bpf/imprint.bpf.c", "-o"])
            .arg(&object)
            .output();
        match result {
            Ok(o) if o.status.success() => {
                println!("cargo:rustc-cfg=imprint_bpf_object");
                println!("cargo:rustc-check-cfg=cfg(imprint_bpf_object)");
                return;
            }
            Ok(o) => {
                // A compiler that ran and failed is a real error: the C is wrong.
                panic!(
                    "{clang} failed to compile bpf/imprint.bpf.c:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            Err(e) => last_error = format!("{clang}: {e}"),
        }
    }
    println!("cargo:rustc-check-cfg=cfg(imprint_bpf_object)");
    println!(
        "cargo:warning=imprint-agent-ebpf: no BPF object built ({last_error}); install clang-19 and libbpf-dev (bash .ci/setup)"
    );
}
