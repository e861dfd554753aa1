//! Signing, attesting and verifying profile artifacts in a registry, in cosign's
//! layouts: `sha256-<hex>.sig` and `.att` tags, and sigstore bundle v0.3 referrers.
//!
//! Writing appends to what a tag holds, on the ETag it was read with. Reading
//! trusts nothing it has not checked: every blob's digest, every manifest's
//! subject, every signature against the policy's keys.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::keys::SigningKey;
use crate::layout::{self, Descriptor, Manifest};
use crate::manifests::Precondition;
use crate::policy::{self, Finding, Policy, Verdict};
use crate::registry::{Reference, Registry, RegistryError};
use crate::signing::{self, Bundle, Envelope, Statement};

/// Where a signature or attestation was written.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    /// The manifest's reference (`repo:sha256-….sig`, or `repo@sha256:…`).
    pub reference: String,
    /// Its digest.
    pub digest: String,
}

fn at_tag(repository: &Reference, tag: String) -> Reference {
    Reference::with_tag(
        repository.registry().to_string(),
        repository.repository().to_string(),
        tag,
    )
}

fn at_digest(repository: &Reference, digest: &str) -> Reference {
    Reference::with_digest(
        repository.registry().to_string(),
        repository.repository().to_string(),
        digest.to_string(),
    )
}

/// Parses a signature-side manifest (not a profile artifact): bounded, and by
/// digest when one is expected.
fn parse_any_manifest(bytes: &[u8], expected: Option<&str>) -> Result<Manifest, String> {
    if let Some(expected) = expected {
        let actual = imprint_schema::document::sha256_digest(bytes);
        if actual != expected {
            return Err(format!("manifest digest is {actual}, not {expected}"));
        }
    }
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OCI manifest: {e}"))?;
    if manifest.schema_version != 2 {
        return Err(format!(
            "schemaVersion {} is not 2",
            manifest.schema_version
        ));
    }
    Ok(manifest)
}

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
    /// Reads a blob no larger than `limit` and checks its digest.
    async fn pull_checked_blob(
        &self,
        repository: &Reference,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, String> {
        if !imprint_schema::validate::is_digest(&descriptor.digest) {
            return Err(format!("{:?} is not a sha256 digest", descriptor.digest));
        }
        let data = self
            .pull_blob_bounded(repository, descriptor, limit)
            .await
            .map_err(|e| e.to_string())?;
        let actual = imprint_schema::document::sha256_digest(&data);
        if actual != descriptor.digest || data.len() as u64 != descriptor.size {
            return Err(format!(
                "blob {} does not match its descriptor (got {actual}, {} bytes)",
                descriptor.digest,
                data.len()
            ));
        }
        Ok(data)
    }

    /// Adds `layer` (whose blob is `blob`) to the cosign tag `tag`, keeping what it
    /// holds; the write is conditional on the tag not having changed since read.
    async fn append_to_tag(
        &self,
        repository: &Reference,
        tag: String,
        layer: Descriptor,
        blob: &[u8],
    ) -> Result<Written, RegistryError> {
        const ATTEMPTS: u32 = 5;
        let tagged = at_tag(repository, tag);
        self.push_blob(repository, blob).await?;
        let mut attempt = 1;
        loop {
            let existing = self
                .get_manifest(
                    "read signature tag",
                    &tagged,
                    &[layout::MANIFEST_MEDIA_TYPE],
                )
                .await?;
            let (manifest, precondition) = match &existing {
                None => (None, Precondition::Absent),
                Some(fetched) => {
                    let manifest = parse_any_manifest(&fetched.bytes, None).map_err(|message| {
                        RegistryError::Reference {
                            reference: tagged.whole(),
                            message: format!(
                                "the tag holds something cosign did not write: {message}"
                            ),
                        }
                    })?;
                    let etag = fetched.etag.clone().unwrap_or_else(|| {
                        format!(
                            "\"{}\"",
                            imprint_schema::document::sha256_digest(&fetched.bytes)
                        )
                    });
                    (Some(manifest), Precondition::IfMatch(etag))
                }
            };
            let layers = signing::append_layer(manifest.as_ref(), layer.clone());
            let (manifest_bytes, config) = signing::tag_manifest(layers);
            self.push_blob(repository, &config).await?;
            match self
                .push_manifest_if(
                    &tagged,
                    &manifest_bytes,
                    layout::MANIFEST_MEDIA_TYPE,
                    &precondition,
                )
                .await
            {
                Err(RegistryError::Request { source, .. })
                    if crate::manifests::is_precondition_failed(&source) && attempt < ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(digest) => {
                    return Ok(Written {
                        reference: tagged.whole(),
                        digest,
                    });
                }
            }
        }
    }

    /// Pushes a bundle referrer of `subject` and lists it in the fallback index.
    async fn push_bundle(
        &self,
        repository: &Reference,
        subject: &Descriptor,
        bundle: &Bundle,
        predicate_type: &str,
        created: jiff::Timestamp,
    ) -> Result<Written, RegistryError> {
        let bundle_bytes = serde_json::to_vec(bundle).expect("bundles serialize");
        let manifest_bytes =
            signing::bundle_manifest(&bundle_bytes, subject, predicate_type, created);
        self.push_blob(repository, layout::EMPTY_CONFIG).await?;
        self.push_blob(repository, &bundle_bytes).await?;
        let by_digest = at_digest(
            repository,
            &imprint_schema::document::sha256_digest(&manifest_bytes),
        );
        let digest = self
            .push_manifest(&by_digest, &manifest_bytes, layout::MANIFEST_MEDIA_TYPE)
            .await?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes).expect("just built");
        let entry = Descriptor {
            media_type: layout::MANIFEST_MEDIA_TYPE.to_string(),
            digest: digest.clone(),
            size: manifest_bytes.len() as u64,
            artifact_type: manifest.artifact_type.clone(),
            annotations: manifest.annotations.clone(),
            platform: None,
        };
        self.update_fallback_index(repository, &subject.digest, entry)
            .await?;
        Ok(Written {
            reference: at_digest(repository, &digest).whole(),
            digest,
        })
    }

    /// Signs the artifact `reference` names (by digest): cosign's `.sig` tag, or a
    /// bundle referrer (a DSSE envelope with cosign's sign predicate, as cosign v3
    /// writes) with `bundle`.
    pub async fn sign(
        &self,
        reference: &Reference,
        key: &SigningKey,
        bundle: bool,
        created: jiff::Timestamp,
    ) -> Result<Written, RegistryError> {
        let subject = self.resolve(reference).await?;
        let repository_name = format!("{}/{}", reference.registry(), reference.repository());
        if bundle {
            let statement = Statement::new(
                &repository_name,
                &subject.digest,
                signing::COSIGN_SIGN_PREDICATE_TYPE,
                serde_json::Value::Null,
            );
            let envelope = Envelope::sign(
                signing::IN_TOTO_PAYLOAD_TYPE,
                &serde_json::to_vec(&statement).expect("statements serialize"),
                key,
            );
            let bundle = Bundle::for_envelope(envelope, &key.verifying_key());
            return self
                .push_bundle(
                    reference,
                    &subject,
                    &bundle,
                    signing::COSIGN_SIGN_PREDICATE_TYPE,
                    created,
                )
                .await;
        }
        let payload = signing::simple_signing_payload(&repository_name, &subject.digest);
        let mut layer = Descriptor::of(signing::SIMPLE_SIGNING_MEDIA_TYPE, &payload);
        layer.annotations = BTreeMap::from([(
            signing::SIGNATURE_ANNOTATION.to_string(),
            STANDARD.encode(key.sign(&payload)),
        )]);
        self.append_to_tag(
            reference,
            signing::signature_tag(&subject.digest),
            layer,
            &payload,
        )
        .await
    }

    /// Attests the artifact `reference` names with `statement`'s predicate:
    /// a DSSE envelope in cosign's `.att` tag, or a bundle referrer.
    pub async fn attest(
        &self,
        reference: &Reference,
        key: &SigningKey,
        predicate_type: &str,
        predicate: serde_json::Value,
        bundle: bool,
        created: jiff::Timestamp,
    ) -> Result<Written, RegistryError> {
        let subject = self.resolve(reference).await?;
        let repository_name = format!("{}/{}", reference.registry(), reference.repository());
        let statement =
            Statement::new(&repository_name, &subject.digest, predicate_type, predicate);
        let payload = serde_json::to_vec(&statement).expect("statements serialize");
        let envelope = Envelope::sign(signing::IN_TOTO_PAYLOAD_TYPE, &payload, key);
        if bundle {
            let bundle = Bundle::for_envelope(envelope, &key.verifying_key());
            return self
                .push_bundle(reference, &subject, &bundle, predicate_type, created)
                .await;
        }
        let envelope_bytes = serde_json::to_vec(&envelope).expect("envelopes serialize");
        let mut layer = Descriptor::of(signing::DSSE_MEDIA_TYPE, &envelope_bytes);
        layer.annotations = BTreeMap::from([
            (
                signing::PREDICATE_TYPE_ANNOTATION.to_string(),
                predicate_type.to_string(),
            ),
            (signing::SIGNATURE_ANNOTATION.to_string(), String::new()),
        ]);
        self.append_to_tag(
            reference,
            signing::attestation_tag(&subject.digest),
            layer,
            &envelope_bytes,
        )
        .await
    }

    /// The layers of a cosign tag (none when there is no tag), at most
    /// [`signing::MAX_LAYERS_PER_TAG`] of them, with how many more were left
    /// unexamined: a tag flooded with signatures is not a reason to read a
    /// thousand blobs.
    async fn tag_layers(
        &self,
        repository: &Reference,
        tag: String,
    ) -> Result<Option<(String, Vec<Descriptor>, usize)>, String> {
        let tagged = at_tag(repository, tag.clone());
        let fetched = self
            .get_manifest("read", &tagged, &[layout::MANIFEST_MEDIA_TYPE])
            .await
            .map_err(|e| e.to_string())?;
        let Some(fetched) = fetched else {
            return Ok(None);
        };
        let manifest =
            parse_any_manifest(&fetched.bytes, None).map_err(|e| format!("tag {tag}: {e}"))?;
        let mut layers = manifest.layers;
        let skipped = layers.len().saturating_sub(signing::MAX_LAYERS_PER_TAG);
        layers.truncate(signing::MAX_LAYERS_PER_TAG);
        Ok(Some((tag, layers, skipped)))
    }

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
