//! The private key the CLI signs with, in cosign's format, and its password
//! (COSIGN_PASSWORD, a prompt, or a line of stdin, as cosign reads it).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use imprint_oci::SigningKey;

use crate::files::{Failure, MAX_SMALL_FILE, read_bounded};

/// The key's password: COSIGN_PASSWORD, else a prompt on the terminal, else one
/// line of stdin (as cosign does).
pub(crate) fn password(confirm: bool) -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("COSIGN_PASSWORD") {
        return Ok(zeroize::Zeroizing::new(p));
    }
    if std::io::stdin().is_terminal() {
        let first = zeroize::Zeroizing::new(
            rpassword::prompt_password("Enter password for private key: ")
                .context("cannot read the password")?,
        );
        if confirm {
            let again = zeroize::Zeroizing::new(
                rpassword::prompt_password("Enter password for private key again: ")
                    .context("cannot read the password")?,
            );
            anyhow::ensure!(*first == *again, "the passwords do not match");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the key password from stdin (set COSIGN_PASSWORD)")?;
    Ok(zeroize::Zeroizing::new(
        line.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

pub(crate) fn load_signing_key(path: &Path) -> Result<SigningKey, Failure> {
    let pem = read_bounded(path, MAX_SMALL_FILE)
        .with_context(|| format!("cannot read --key {}", path.display()))?;
    let password = password(false)?;
    SigningKey::from_pem(&pem, password.as_bytes())
        .with_context(|| format!("--key {}", path.display()))
        .map_err(Failure::invalid)
}
