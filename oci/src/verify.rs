//! Signing, attesting and verifying profile artifacts in a registry, in cosign's
//! layouts: `sha256-<hex>.sig` and `.att` tags, and sigstore bundle v0.3 referrers.
//!
//! Writing appends to what a tag holds, on the ETag it was read with. Reading
//! trusts nothing it has not checked: every blob's digest, every manifest's
//! subject, every signature against the policy's keys.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::layout::{self, Descriptor};
use crate::policy::{self, Finding, Policy, Verdict};
use crate::registry::{Reference, Registry, RegistryError, at_digest, parse_any_manifest};
use crate::signing::{self, Bundle, Envelope, Statement};

/// Where a signature or attestation was written (kept here for existing users).
pub use crate::registry::Written;

/// Verifies a keyless (certificate) bundle with the policy's keyless identities,
/// then reads its statement, which must be about `digest`.
fn check_keyless(
    policy: &Policy,
    digest: &str,
    bundle_bytes: &[u8],
    envelope: &Envelope,
) -> Result<(Statement, String), String> {
    let mut reasons = Vec::new();
    for authority in &policy.authorities {
        let policy::Authority::Keyless {
            name,
            identity,
            trusted_root,
        } = authority
        else {
            continue;
        };
        let subject = regex::Regex::new(&identity.subject_reg_exp)
            .map_err(|e| format!("authority {name}: {e}"))?;
        let trust = crate::bundle_verify::BundleTrust::Keyless {
            issuer: &identity.issuer,
            subject: &subject,
            trusted_root,
        };
        match crate::bundle_verify::verify_bundle(
            bundle_bytes,
            crate::bundle_verify::Signed::Digest(digest),
            &trust,
        ) {
            Ok(signer) => {
                let payload = STANDARD
                    .decode(&envelope.payload)
                    .map_err(|e| format!("DSSE payload is not base64: {e}"))?;
                let statement =
                    Statement::parse_for(&payload, digest).map_err(|e| e.to_string())?;
                return Ok((statement, format!("{name} ({})", signer.identity)));
            }
            Err(e) => reasons.push(format!("{name}: {e}")),
        }
    }
    if reasons.is_empty() {
        return Err(
            "the bundle is keyless (a certificate) and the policy names no keyless identity".into(),
        );
    }
    Err(reasons.join("; "))
}

impl Registry {
    /// Checks every layer of a cosign tag with `check` (after its media type),
    /// one finding each; a tag too large to examine whole says so in a finding.
    async fn check_tag_layers(
        &self,
        repository: &Reference,
        tag: String,
        media_type: &str,
        check: impl AsyncFn(&Descriptor) -> Result<String, String>,
    ) -> Vec<Finding> {
        let failed = |source: String, error: String| Finding {
            source,
            verified: false,
            authority: None,
            error: Some(error),
        };
        let (tag, layers, skipped) = match self.tag_layers(repository, tag.clone()).await {
            Err(e) => return vec![failed(format!("tag {tag}"), e)],
            Ok(None) => return Vec::new(),
            Ok(Some(found)) => found,
        };
        let mut findings = Vec::new();
        if skipped > 0 {
            findings.push(failed(
                format!("tag {tag}"),
                format!(
                    "{skipped} more layers beyond the limit of {} were not examined",
                    signing::MAX_LAYERS_PER_TAG
                ),
            ));
        }
        for (i, layer) in layers.iter().enumerate() {
            let source = format!("tag {tag} layer {i}");
            let result = if layer.media_type != media_type {
                Err(format!(
                    "media type {:?} is not {media_type}",
                    layer.media_type
                ))
            } else {
                check(layer).await
            };
            findings.push(match result {
                Ok(authority) => Finding {
                    source,
                    verified: true,
                    authority: Some(authority),
                    error: None,
                },
                Err(e) => failed(source, e),
            });
        }
        findings
    }

    /// Verifies the artifact `digest` in `repository` against `policy`: every
    /// signature and attestation found (cosign tags and bundle referrers) is
    /// checked, and the verdict names each failing condition.
    ///
    /// An unreachable registry is an error, not a verdict: the caller keeps what it
    /// had.
    pub async fn verify(
        &self,
        repository: &Reference,
        digest: &str,
        policy: &Policy,
    ) -> Result<Verdict, RegistryError> {
        let limit = signing::MAX_SIGNED_BLOB_BYTES;
        let mut signatures = Vec::new();
        let mut attestations = Vec::new();
        let failed = |source: String, error: String| Finding {
            source,
            verified: false,
            authority: None,
            error: Some(error),
        };
        let passed = |source: String, authority: String| Finding {
            source,
            verified: true,
            authority: Some(authority),
            error: None,
        };

        // cosign's .sig tag: simple-signing payloads with the signature annotated.
        signatures.extend(
            self.check_tag_layers(
                repository,
                signing::signature_tag(digest),
                signing::SIMPLE_SIGNING_MEDIA_TYPE,
                async |layer: &Descriptor| {
                    let annotation = layer
                        .annotations
                        .get(signing::SIGNATURE_ANNOTATION)
                        .ok_or("no signature annotation")?;
                    if annotation.len() > signing::MAX_SIGNATURE_ANNOTATION_BYTES {
                        return Err(format!(
                            "signature annotation of {} bytes, more than the limit of {}",
                            annotation.len(),
                            signing::MAX_SIGNATURE_ANNOTATION_BYTES
                        ));
                    }
                    let signature = STANDARD
                        .decode(annotation)
                        .map_err(|e| format!("signature is not base64: {e}"))?;
                    let payload = self.pull_checked_blob(repository, layer, limit).await?;
                    policy::check_signature(policy, digest, &payload, &signature)
                        .map_err(|e| e.to_string())
                },
            )
            .await,
        );

        // cosign's .att tag: DSSE envelopes around in-toto statements.
        attestations.extend(
            self.check_tag_layers(
                repository,
                signing::attestation_tag(digest),
                signing::DSSE_MEDIA_TYPE,
                async |layer: &Descriptor| {
                    let bytes = self.pull_checked_blob(repository, layer, limit).await?;
                    let envelope = Envelope::parse(&bytes).map_err(|e| e.to_string())?;
                    let (statement, authority) = policy::check_envelope(policy, digest, &envelope)
                        .map_err(|e| e.to_string())?;
                    policy.check_statement(&statement)?;
                    Ok(authority)
                },
            )
            .await,
        );

        // Bundle referrers.
        let listed = self.referrers(repository, digest).await?;
        let mut seen = std::collections::BTreeSet::new();
        for entry in listed.manifests.iter().take(signing::MAX_LAYERS_PER_TAG) {
            if !seen.insert(entry.digest.clone()) {
                continue;
            }
            let source = format!("referrer {}", entry.digest);
            let r = at_digest(repository, &entry.digest);
            let fetched = match self
                .get_manifest("fetch referrer", &r, &[layout::MANIFEST_MEDIA_TYPE])
                .await
            {
                Ok(Some(f)) => f,
                Ok(None) => continue,
                Err(e) => {
                    attestations.push(failed(source, e.to_string()));
                    continue;
                }
            };
            let manifest = match parse_any_manifest(&fetched.bytes, Some(&entry.digest)) {
                Ok(m) => m,
                Err(e) => {
                    attestations.push(failed(source, e));
                    continue;
                }
            };
            // Not a bundle (a profile, say): not ours to judge here.
            if manifest.artifact_type.as_deref() != Some(signing::BUNDLE_MEDIA_TYPE) {
                continue;
            }
            let is_signature = manifest
                .annotations
                .get(signing::BUNDLE_PREDICATE_TYPE_ANNOTATION)
                .is_some_and(|t| t == signing::COSIGN_SIGN_PREDICATE_TYPE);
            let result = async {
                let named = manifest.subject.as_ref().map(|s| s.digest.as_str());
                if named != Some(digest) {
                    return Err(format!("its subject is {named:?}, not {digest}"));
                }
                let [layer] = manifest.layers.as_slice() else {
                    return Err(format!(
                        "a bundle referrer has one layer, this one has {}",
                        manifest.layers.len()
                    ));
                };
                if layer.media_type != signing::BUNDLE_MEDIA_TYPE {
                    return Err(format!(
                        "layer media type {:?} is not {}",
                        layer.media_type,
                        signing::BUNDLE_MEDIA_TYPE
                    ));
                }
                let bytes = self.pull_checked_blob(repository, layer, limit).await?;
                let bundle = Bundle::parse(&bytes).map_err(|e| e.to_string())?;
                let envelope = bundle.dsse_envelope.as_ref().ok_or(
                    "the bundle holds a message signature, not a DSSE envelope".to_string(),
                )?;
                let (statement, authority) =
                    if bundle.verification_material.get("publicKey").is_some() {
                        policy::check_envelope(policy, digest, envelope)
                            .map_err(|e| e.to_string())?
                    } else {
                        check_keyless(policy, digest, &bytes, envelope)?
                    };
                if is_signature {
                    if statement.predicate_type != signing::COSIGN_SIGN_PREDICATE_TYPE {
                        return Err(format!(
                            "listed as a signature, but its predicateType is {:?}",
                            statement.predicate_type
                        ));
                    }
                } else {
                    policy.check_statement(&statement)?;
                }
                Ok(authority)
            }
            .await;
            let finding = match result {
                Ok(authority) => passed(source, authority),
                Err(e) => failed(source, e),
            };
            if is_signature {
                signatures.push(finding);
            } else {
                attestations.push(finding);
            }
        }
        Ok(Verdict::decide(policy, digest, signatures, attestations))
    }
}
