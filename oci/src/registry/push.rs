//! Writing to a registry: blobs, manifests (on a precondition), profile artifacts
//! and their entry in the fallback referrers index, and signatures and attestations
//! in cosign's tags or as bundle referrers.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imprint_schema::Digest;

use super::{Reference, Registry, RegistryError, at_digest, at_tag, parse_any_manifest};
use crate::keys::SigningKey;
use crate::layout::{self, Artifact, Descriptor, Index, Manifest};
use crate::manifests::{Precondition, Resource};
use crate::signing::{self, Bundle, Envelope, Statement};

/// Where a signature or attestation was written.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    /// The manifest's reference (`repo:sha256-….sig`, or `repo@sha256:…`).
    pub reference: String,
    /// Its digest.
    pub digest: Digest,
}

impl Registry {
    /// Uploads a blob to `repository` (its digest is checked by the registry).
    pub async fn push_blob(
        &self,
        repository: &Reference,
        data: &[u8],
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::sha256_of(data);
        self.client
            .store_auth_if_needed(repository.resolve_registry(), &self.auth)
            .await;
        self.retry("push blob to", repository, || {
            self.client
                .push_blob(repository, data.to_vec(), digest.as_str())
        })
        .await?;
        Ok(digest)
    }

    /// Uploads a manifest under `reference` (a tag, or the repository alone to push
    /// by digest) and returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        self.push_manifest_if(reference, bytes, media_type, &Precondition::None)
            .await
    }

    /// [`Registry::push_manifest`] on a precondition: a 412 from the registry is
    /// an error that [`crate::manifests::is_precondition_failed`] recognises.
    pub(crate) async fn push_manifest_if(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
        precondition: &Precondition,
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::sha256_of(bytes);
        let target = match reference.tag() {
            Some(_) => reference.clone(),
            None => at_digest(reference, &digest),
        };
        if media_type.parse::<http::HeaderValue>().is_err() {
            return Err(RegistryError::Reference {
                reference: media_type.to_string(),
                message: "not a valid media type header".into(),
            });
        }
        self.retry("push manifest to", &target, || {
            self.manifests.put(
                &self.client,
                &self.auth,
                &target,
                bytes,
                media_type,
                precondition,
            )
        })
        .await?;
        Ok(digest)
    }

    /// Pushes a profile artifact: its blobs, then its manifest by digest, then its
    /// entry in the subject's fallback referrers index, then (when `tag` is given)
    /// the tag. Returns the artifact digest. Blobs first, so a failure
    /// half-way leaves no manifest that names missing content.
    pub async fn push_artifact(
        &self,
        repository: &Reference,
        artifact: &Artifact,
        tag: Option<&str>,
    ) -> Result<Digest, RegistryError> {
        self.push_blob(repository, &artifact.config.data).await?;
        for layer in &artifact.layers {
            self.push_blob(repository, &layer.data).await?;
        }
        let by_digest = at_digest(repository, &artifact.digest);
        let digest = self
            .push_manifest(
                &by_digest,
                &artifact.manifest_bytes,
                layout::MANIFEST_MEDIA_TYPE,
            )
            .await?;
        let subject = &artifact
            .manifest
            .subject
            .as_ref()
            .expect("built artifacts have a subject")
            .digest;
        self.update_fallback_index(repository, subject, layout::referrer_descriptor(artifact))
            .await?;
        if let Some(tag) = tag {
            let tagged = Reference::with_tag(
                repository.registry().to_string(),
                repository.repository().to_string(),
                tag.to_string(),
            );
            self.push_manifest(
                &tagged,
                &artifact.manifest_bytes,
                layout::MANIFEST_MEDIA_TYPE,
            )
            .await?;
        }
        Ok(digest)
    }

    /// Reads the fallback-tag index of `subject` in `repository` with the
    /// precondition that a write of it must meet: `If-Match` its ETag, or, when
    /// there is none yet, `If-None-Match: *`.
    async fn fallback_index(
        &self,
        tag: &Reference,
    ) -> Result<(Index, Precondition), RegistryError> {
        match self
            .get_listing("read referrers tag", tag, Resource::Manifest)
            .await?
        {
            None => Ok((Index::new(), Precondition::Absent)),
            Some(fetched) => {
                let etag = fetched
                    .etag
                    .clone()
                    .unwrap_or_else(|| format!("\"{}\"", Digest::sha256_of(&fetched.bytes)));
                // A tag that holds something else is replaced, not trusted; a
                // malformed entry is dropped, the others kept.
                let index = serde_json::from_slice(&fetched.bytes)
                    .ok()
                    .and_then(|value| layout::Listing::parse(value).ok())
                    .map(layout::Listing::into_index)
                    .unwrap_or_default();
                Ok((index, Precondition::IfMatch(etag)))
            }
        }
    }

    /// Adds `artifact` to the OCI 1.1 fallback referrers index of its subject
    /// (`sha256-<hex>` tag), for registries without the referrers API.
    ///
    /// Read-modify-write made safe with `If-Match` on the ETag read (or
    /// `If-None-Match: *` when creating the tag): when another pusher changed the
    /// tag in between, the registry answers 412 and the update is redone on the new
    /// index, a few times. Registries that ignore the condition (distribution 2.8
    /// does) leave the race to the caller, as with every OCI 1.1 client.
    pub async fn update_fallback_index(
        &self,
        repository: &Reference,
        subject: &Digest,
        entry: Descriptor,
    ) -> Result<(), RegistryError> {
        const ATTEMPTS: u32 = 5;
        let tag = Reference::with_tag(
            repository.registry().to_string(),
            repository.repository().to_string(),
            layout::fallback_tag(subject),
        );
        let mut attempt = 1;
        loop {
            let (mut index, precondition) = self.fallback_index(&tag).await?;
            if index.manifests.iter().any(|d| d.digest == entry.digest) {
                return Ok(());
            }
            index.manifests.push(entry.clone());
            let bytes = serde_json::to_vec(&index).expect("indexes serialize");
            match self
                .push_manifest_if(&tag, &bytes, layout::INDEX_MEDIA_TYPE, &precondition)
                .await
            {
                Err(RegistryError::Request { source, .. })
                    if crate::manifests::is_precondition_failed(&source) && attempt < ATTEMPTS =>
                {
                    attempt += 1;
                    tokio::time::sleep(self.backoff).await;
                }
                Err(RegistryError::Request {
                    source, reference, ..
                }) if crate::manifests::is_precondition_failed(&source) => {
                    return Err(RegistryError::Request {
                        operation: "update the referrers tag (it kept changing under us)",
                        reference,
                        source,
                    });
                }
                other => return other.map(|_| ()),
            }
        }
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
                    let etag = fetched
                        .etag
                        .clone()
                        .unwrap_or_else(|| format!("\"{}\"", Digest::sha256_of(&fetched.bytes)));
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
        let by_digest = at_digest(repository, &Digest::sha256_of(&manifest_bytes));
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
        self.write_statement(reference, &subject, &statement, key, bundle, created)
            .await
    }

    /// Signs `statement` (about `subject`) and writes it in `repository`: a DSSE
    /// envelope in cosign's `.att` tag of the subject, or a bundle referrer of it.
    /// The subject's manifest need not be in `repository`.
    pub(super) async fn write_statement(
        &self,
        repository: &Reference,
        subject: &Descriptor,
        statement: &Statement,
        key: &SigningKey,
        bundle: bool,
        created: jiff::Timestamp,
    ) -> Result<Written, RegistryError> {
        let predicate_type = statement.predicate_type.as_str();
        let payload = serde_json::to_vec(statement).expect("statements serialize");
        let envelope = Envelope::sign(signing::IN_TOTO_PAYLOAD_TYPE, &payload, key);
        if bundle {
            let bundle = Bundle::for_envelope(envelope, &key.verifying_key());
            return self
                .push_bundle(repository, subject, &bundle, predicate_type, created)
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
            repository,
            signing::attestation_tag(&subject.digest),
            layer,
            &envelope_bytes,
        )
        .await
    }
}
