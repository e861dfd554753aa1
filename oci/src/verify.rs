//! Verifying profile artifacts in a registry against a policy, in cosign's layouts:
//! `sha256-<hex>.sig` and `.att` tags, and sigstore bundle v0.3 referrers (signing
//! and attesting are writes, in the registry client).
//!
//! Reading trusts nothing it has not checked: every blob's digest, every manifest's
//! subject, every signature against the policy's keys. Each form has its own
//! checker; [`Registry::verify`] runs them and lets the policy decide.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imprint_schema::Digest;

use crate::evidence::Piece;
use crate::layout::{self, Descriptor, Manifest};
use crate::policy::{self, Finding, Policy, Verdict};
use crate::registry::{Reference, Registry, RegistryError, at_digest, parse_any_manifest};
use crate::signing::{self, Bundle, Envelope, Statement};

mod evidence;
mod rejection;

pub use rejection::Rejection;

impl Registry {
    /// Verifies the artifact `digest` in `repository` against `policy`: every
    /// signature and attestation found (cosign tags and bundle referrers) is
    /// checked, and the verdict names each failing condition.
    ///
    /// An unreachable registry is an error, not a verdict: the caller keeps what it
    /// had.
    pub async fn verify(
        &self,
        repository: &Reference,
        digest: &Digest,
        policy: &Policy,
    ) -> Result<Verdict, RegistryError> {
        let checker = Checker {
            registry: self,
            repository,
            digest,
            policy,
        };
        // One deadline for the whole: a registry that drips delays only this.
        self.within_deadline("verify", repository, async {
            let (mut signatures, flooded_signatures) = checker.signature_tag().await;
            let (mut attestations, flooded_attestations) = checker.attestation_tag().await;
            let bundles = checker.bundle_referrers().await?;
            signatures.extend(bundles.signatures);
            attestations.extend(bundles.attestations);
            let mut verdict = Verdict::decide(policy, digest, signatures, attestations);
            verdict.unexamined = [flooded_signatures, flooded_attestations, bundles.unexamined]
                .into_iter()
                .flatten()
                .collect();
            Ok(verdict)
        })
        .await
    }
}

/// What is being verified, and against what: shared by the checkers of each form.
struct Checker<'a> {
    registry: &'a Registry,
    repository: &'a Reference,
    digest: &'a Digest,
    policy: &'a Policy,
}

/// The findings of the bundle referrers, split by what each bundle is listed as.
#[derive(Default)]
struct BundleFindings {
    signatures: Vec<Finding>,
    attestations: Vec<Finding>,
    /// When the list held more referrers than are examined: how many more.
    unexamined: Option<String>,
}

/// A finding that did not verify.
fn failed(source: String, error: Rejection) -> Finding {
    Finding {
        source,
        verified: false,
        authority: None,
        error: Some(error.to_string()),
        version: None,
        evidence: None,
    }
}

/// What a signature or attestation that verified gives: who signed it and, for
/// a learning attestation, the artifact's version.
struct Accepted {
    authority: String,
    version: Option<u64>,
    /// The signed material, kept with the verdict to judge again offline.
    piece: Option<Piece>,
}

impl Accepted {
    fn signed_by(authority: String) -> Accepted {
        Accepted {
            authority,
            version: None,
            piece: None,
        }
    }

    fn with(mut self, piece: Piece) -> Accepted {
        self.piece = Some(piece);
        self
    }
}

/// A finding that verified.
fn passed(source: String, accepted: Accepted) -> Finding {
    Finding {
        source,
        verified: true,
        authority: Some(accepted.authority),
        error: None,
        version: accepted.version,
        evidence: accepted.piece,
    }
}

impl Checker<'_> {
    /// Reads a signed blob (bounded, digest checked).
    async fn signed_blob(&self, layer: &Descriptor) -> Result<Vec<u8>, Rejection> {
        let bytes = self
            .registry
            .pull_checked_blob(self.repository, layer, signing::MAX_SIGNED_BLOB_BYTES)
            .await?;
        Ok(bytes)
    }

    /// cosign's `.sig` tag: simple-signing payloads with the signature annotated,
    /// each checked against the policy's keys.
    async fn signature_tag(&self) -> (Vec<Finding>, Option<String>) {
        self.tag_layers(
            signing::signature_tag(self.digest),
            signing::SIMPLE_SIGNING_MEDIA_TYPE,
            async |layer: &Descriptor| {
                let annotation = layer
                    .annotations
                    .get(signing::SIGNATURE_ANNOTATION)
                    .ok_or(Rejection::NoSignatureAnnotation)?;
                if annotation.len() > signing::MAX_SIGNATURE_ANNOTATION_BYTES {
                    return Err(Rejection::AnnotationTooLarge {
                        size: annotation.len(),
                        limit: signing::MAX_SIGNATURE_ANNOTATION_BYTES,
                    });
                }
                let signature =
                    STANDARD
                        .decode(annotation)
                        .map_err(|source| Rejection::NotBase64 {
                            what: "signature",
                            source,
                        })?;
                let payload = self.signed_blob(layer).await?;
                let authority =
                    policy::check_signature(self.policy, self.digest, &payload, &signature)?;
                Ok(Accepted::signed_by(authority).with(Piece::Signature { payload, signature }))
            },
        )
        .await
    }

    /// cosign's `.att` tag: DSSE envelopes around in-toto statements, each checked
    /// against the policy's keys and its statement against the policy's conditions.
    async fn attestation_tag(&self) -> (Vec<Finding>, Option<String>) {
        self.tag_layers(
            signing::attestation_tag(self.digest),
            signing::DSSE_MEDIA_TYPE,
            async |layer: &Descriptor| {
                let bytes = self.signed_blob(layer).await?;
                let envelope = Envelope::parse(&bytes)?;
                let (statement, authority) =
                    policy::check_envelope(self.policy, self.digest, &envelope)?;
                self.policy.check_statement(&statement)?;
                Ok(Accepted {
                    authority,
                    version: self.policy.attested_version(&statement),
                    piece: Some(Piece::Envelope { envelope: bytes }),
                })
            },
        )
        .await
    }

    /// Checks every layer of a cosign tag with `check` (after its media type),
    /// one finding each; a tag too large to examine whole says so in a finding,
    /// and in the note returned beside them.
    async fn tag_layers(
        &self,
        tag: String,
        media_type: &'static str,
        check: impl AsyncFn(&Descriptor) -> Result<Accepted, Rejection>,
    ) -> (Vec<Finding>, Option<String>) {
        let (tag, layers, skipped) =
            match self.registry.tag_layers(self.repository, tag.clone()).await {
                Err(e) => return (vec![failed(format!("tag {tag}"), e.into())], None),
                Ok(None) => return (Vec::new(), None),
                Ok(Some(found)) => found,
            };
        let mut findings = Vec::new();
        let unexamined = (skipped > 0).then(|| {
            format!(
                "tag {tag}: {skipped} more layers than the {} examined",
                signing::MAX_LAYERS_PER_TAG
            )
        });
        if skipped > 0 {
            findings.push(failed(
                format!("tag {tag}"),
                Rejection::TooManyLayers {
                    skipped,
                    limit: signing::MAX_LAYERS_PER_TAG,
                },
            ));
        }
        for (i, layer) in layers.iter().enumerate() {
            let source = format!("tag {tag} layer {i}");
            let result = if layer.media_type != media_type {
                Err(Rejection::MediaType {
                    found: layer.media_type.clone(),
                    expected: media_type,
                })
            } else {
                check(layer).await
            };
            findings.push(match result {
                Ok(accepted) => passed(source, accepted),
                Err(e) => failed(source, e),
            });
        }
        (findings, unexamined)
    }

    /// Sigstore bundle referrers (at most [`signing::MAX_LAYERS_PER_TAG`]): each
    /// bundle is a signature or an attestation by its predicate-type annotation;
    /// referrers that are not bundles are not judged here. A registry that cannot
    /// list referrers is an error.
    async fn bundle_referrers(&self) -> Result<BundleFindings, RegistryError> {
        let listed = self
            .registry
            .referrers(self.repository, self.digest)
            .await?;
        let mut findings = BundleFindings::default();
        let listed_count = listed.manifests.len();
        if listed_count > signing::MAX_LAYERS_PER_TAG {
            findings.unexamined = Some(format!(
                "referrers of {}: {} more than the {} examined",
                self.digest,
                listed_count - signing::MAX_LAYERS_PER_TAG,
                signing::MAX_LAYERS_PER_TAG
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for entry in listed.manifests.iter().take(signing::MAX_LAYERS_PER_TAG) {
            if !seen.insert(entry.digest.clone()) {
                continue;
            }
            let source = format!("referrer {}", entry.digest);
            let manifest = match self.referrer_manifest(&entry.digest).await {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    findings.attestations.push(failed(source, e));
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
            let finding = match self.bundle(&manifest, is_signature).await {
                Ok(accepted) => passed(source, accepted),
                Err(e) => failed(source, e),
            };
            if is_signature {
                findings.signatures.push(finding);
            } else {
                findings.attestations.push(finding);
            }
        }
        Ok(findings)
    }

    /// The manifest of a listed referrer, checked against its digest; `None` when
    /// the registry no longer has it.
    async fn referrer_manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Rejection> {
        let r = at_digest(self.repository, digest);
        let fetched = (self.registry)
            .get_manifest("fetch referrer", &r, &[layout::MANIFEST_MEDIA_TYPE])
            .await?;
        let Some(fetched) = fetched else {
            return Ok(None);
        };
        let manifest = parse_any_manifest(&fetched.bytes, Some(digest)).map_err(|source| {
            RegistryError::Layout {
                reference: r.whole(),
                source,
            }
        })?;
        Ok(Some(manifest))
    }

    /// One bundle referrer: its subject, its single bundle layer, the DSSE envelope
    /// inside (by key or keyless), and its statement: cosign's sign predicate for a
    /// signature, the policy's conditions for an attestation. Returns the authority.
    async fn bundle(&self, manifest: &Manifest, is_signature: bool) -> Result<Accepted, Rejection> {
        let digest = self.digest;
        let named = manifest.subject.as_ref().map(|s| &s.digest);
        if named != Some(digest) {
            return Err(Rejection::OtherSubject {
                named: named.cloned(),
                expected: digest.clone(),
            });
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(Rejection::LayerCount(manifest.layers.len()));
        };
        if layer.media_type != signing::BUNDLE_MEDIA_TYPE {
            return Err(Rejection::MediaType {
                found: layer.media_type.clone(),
                expected: signing::BUNDLE_MEDIA_TYPE,
            });
        }
        let bytes = self.signed_blob(layer).await?;
        let accepted = check_bundle(self.policy, digest, &bytes, is_signature)?;
        Ok(accepted.with(Piece::Bundle {
            bundle: bytes,
            signature: is_signature,
        }))
    }
}

/// A bundle's content under `policy`: its DSSE envelope (by key or keyless) and
/// its statement, cosign's sign predicate for a signature, the policy's
/// conditions for an attestation.
fn check_bundle(
    policy: &Policy,
    digest: &Digest,
    bytes: &[u8],
    is_signature: bool,
) -> Result<Accepted, Rejection> {
    let (statement, authority) = bundle_statement(policy, digest, bytes)?;
    if is_signature {
        if statement.predicate_type != signing::COSIGN_SIGN_PREDICATE_TYPE {
            return Err(Rejection::NotASignature(statement.predicate_type));
        }
        return Ok(Accepted::signed_by(authority));
    }
    policy.check_statement(&statement)?;
    Ok(Accepted {
        authority,
        version: policy.attested_version(&statement),
        piece: None,
    })
}

/// A bundle's verified statement about `digest`, with the authority that signed
/// it: its DSSE envelope by the policy's keys, or the whole bundle by its keyless
/// identities.
pub(crate) fn bundle_statement(
    policy: &Policy,
    digest: &Digest,
    bytes: &[u8],
) -> Result<(Statement, String), Rejection> {
    // Refuses a bundle holding both a DSSE envelope and a message signature,
    // or a repeated key: what is verified and what is read must be one content.
    let bundle = Bundle::parse(bytes)?;
    let envelope = (bundle.dsse_envelope.as_ref()).ok_or(Rejection::MessageSignature)?;
    // By key, imprint verifies the envelope it parsed; keyless, sigstore's
    // verifier checks the bytes and the statement comes from its parse.
    if bundle.verification_material.get("publicKey").is_some() {
        Ok(policy::check_envelope(policy, digest, envelope)?)
    } else {
        check_keyless(policy, digest, bytes)
    }
}

/// Verifies a keyless (certificate) bundle with the policy's keyless identities,
/// then reads its statement, which must be about `digest`, from the DSSE payload
/// sigstore's verifier checked (not from a parse of its own, which could differ).
fn check_keyless(
    policy: &Policy,
    digest: &Digest,
    bundle_bytes: &[u8],
) -> Result<(Statement, String), Rejection> {
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
        let subject = regex::Regex::new(&identity.subject_reg_exp).map_err(|source| {
            Rejection::IdentityPattern {
                authority: name.clone(),
                source,
            }
        })?;
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
                let verified = signer.dsse.ok_or(Rejection::MessageSignature)?;
                if verified.payload_type != signing::IN_TOTO_PAYLOAD_TYPE {
                    return Err(Rejection::PayloadType(verified.payload_type));
                }
                let statement = Statement::parse_for(&verified.payload, digest)?;
                return Ok((statement, format!("{name} ({})", signer.identity)));
            }
            Err(e) => reasons.push(format!("{name}: {e}")),
        }
    }
    if reasons.is_empty() {
        return Err(Rejection::NoKeylessIdentity);
    }
    Err(Rejection::NoIdentityAccepts(reasons))
}
