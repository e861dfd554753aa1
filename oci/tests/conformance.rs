//! The sigstore conformance suite's bundle-verification cases
//! (`../shared/conformance/sigstore-conformance/bundle-verify`), key-based and
//! keyless, positive and `_fail`: every case runs, and each must end as the suite
//! says. Skipped, with the reason, when the shared fixtures are absent.

use std::path::{Path, PathBuf};

use imprint_oci::VerifyingKey;
use imprint_oci::{BundleTrust, Signed, verify_bundle};

/// The identity and issuer of the suite's signing workflow, for cases that do
/// not name their own (as the suite's runner passes them).
const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Positive cases that fail here, and why. Each is checked to still fail, so a
/// fix shows up as a test failure that asks for this list to shrink.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    if dir.is_dir() {
        Some(dir)
    } else {
        imprint_test_support::skip(format!(
            "{} absent (the shared conformance fixtures are not beside the checkout)",
            dir.display()
        ));
        None
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Runs one case; `Ok` when verification succeeded.
fn run_case(case: &Path, suite: &Path, public_good_root: &Path) -> Result<String, String> {
    let bundle = std::fs::read(case.join("bundle.sigstore.json")).map_err(|e| e.to_string())?;
    let artifact_path = if case.join("artifact").exists() {
        case.join("artifact")
    } else {
        suite.join("a.txt")
    };
    let artifact = std::fs::read(&artifact_path).map_err(|e| e.to_string())?;
    let root_path = if case.join("trusted_root.json").exists() {
        case.join("trusted_root.json")
    } else {
        public_good_root.to_path_buf()
    };
    let root = std::fs::read(&root_path).map_err(|e| e.to_string())?;
    if let Ok(pem) = std::fs::read(case.join("key.pub")) {
        let key = VerifyingKey::from_pem(&pem).map_err(|e| e.to_string())?;
        return verify_bundle(
            &bundle,
            Signed::Bytes(&artifact),
            &BundleTrust::Key {
                key: &key,
                trusted_root: &root,
            },
        )
        .map(|s| s.identity)
        .map_err(|e| e.to_string());
    }
    let identity = read_trimmed(&case.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.into());
    let issuer = read_trimmed(&case.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.into());
    let subject = regex::Regex::new(&format!("^{}$", regex::escape(&identity))).unwrap();
    verify_bundle(
        &bundle,
        Signed::Bytes(&artifact),
        &BundleTrust::Keyless {
            issuer: &issuer,
            subject: &subject,
            trusted_root: &root,
        },
    )
    .map(|s| s.identity)
    .map_err(|e| e.to_string())
}

#[test]
fn sigstore_conformance_bundle_cases() {
    let Some(shared) = shared() else { return };
    let suite = shared.join("sigstore-conformance/bundle-verify");
    let root = shared.join("cosign-keys/trust_root/prod/trusted_root.json");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() > 50, "only {} cases found", cases.len());
    let mut wrong = Vec::new();
    let (mut passed, mut rejected) = (0, 0);
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let must_fail = name.ends_with("_fail");
        let result = run_case(case, &suite, &root);
        let known = KNOWN_FAILURES.iter().find(|(n, _)| *n == name);
        match (&result, must_fail, known) {
            (Ok(_), false, None) => passed += 1,
            (Err(e), true, None) => {
                eprintln!("  {name}: rejected: {e}");
                rejected += 1
            }
            (Err(_), false, Some(_)) => {}
            (Ok(who), true, _) => {
                wrong.push(format!("{name}: accepted (signed by {who}), must fail"))
            }
            (Err(e), false, None) => wrong.push(format!("{name}: rejected: {e}")),
            (Ok(_), false, Some(_)) => {
                wrong.push(format!("{name}: now passes; drop it from KNOWN_FAILURES"))
            }
            (Err(_), true, Some(_)) => {
                wrong.push(format!("{name}: a _fail case cannot be a known failure"))
            }
        }
    }
    eprintln!(
        "conformance: {passed} positive cases verified, {rejected} negative cases rejected, {} known failures",
        KNOWN_FAILURES.len()
    );
    assert!(
        wrong.is_empty(),
        "{} cases end wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
